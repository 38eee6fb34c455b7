//! The agent catalogue: who the bots are, who runs them, what they do with
//! what they fetch, and how to check their address.
//!
//! The data lives in TOML files under `config/agents/` (see [`file`]); this
//! module merges them, validates them against the loaded range files, and
//! compiles the user-agent tokens into one automaton ([`matcher`]).

pub mod diff;
pub mod file;
pub mod fold;
pub mod import;
pub mod matcher;
pub mod memo;
pub mod refresh;
pub mod sources;
pub mod tokens;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::config::located::{parse_toml, Located};
use crate::identify::ranges::{RangeTable, SourceSet};
use crate::identify::selfdeclared::SelfDeclared;
use crate::model::Purpose;
use file::{AgentEntry, CatalogFile};
use matcher::UaMatcher;

/// Index of an agent in its catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AgentId(pub u32);

/// A compiled catalogue entry.
#[derive(Debug, Clone)]
pub struct Agent {
    pub name: String,
    pub operator: String,
    pub purpose: Purpose,
    pub tokens: Vec<String>,
    /// The operator's range sources; empty when it publishes none.
    pub ranges: SourceSet,
    pub range_names: Vec<String>,
    pub rdns: Vec<String>,
    /// Origins of the key directories that verify this agent's signatures.
    pub signature_agents: Vec<String>,
    pub robots_only: bool,
    pub source: String,
    /// The catalogue file that introduced the agent.
    pub file: PathBuf,
}

/// Errors in catalogue files. Each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{path}: cannot read catalogue file: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Parse(#[from] Located),
    #[error("{path}: agent {agent:?}: {message}")]
    Entry {
        path: PathBuf,
        agent: String,
        message: String,
    },
    #[error(transparent)]
    Matcher(#[from] matcher::MatcherError),
}

/// The compiled catalogue.
#[derive(Debug, Clone)]
pub struct Catalogue {
    agents: Vec<Agent>,
    matcher: UaMatcher,
    /// Identifies the bots that name themselves but no catalogue file names.
    self_declared: SelfDeclared,
    /// What recent user agents were found to say (see [`crate::identify`]).
    memo: memo::UaMemo,
}

impl Catalogue {
    /// Reads, merges and compiles catalogue files (later files override earlier ones).
    pub fn load(files: &[PathBuf], ranges: &RangeTable) -> Result<Self, CatalogError> {
        let mut parsed = Vec::with_capacity(files.len());
        for path in files {
            let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
                path: path.clone(),
                source,
            })?;
            let file: CatalogFile = parse_toml(path, &text)?;
            parsed.push((path.clone(), file));
        }
        Self::compile(parsed, ranges)
    }

    /// Merges parsed files in order and compiles the result.
    pub fn compile(
        files: Vec<(PathBuf, CatalogFile)>,
        ranges: &RangeTable,
    ) -> Result<Self, CatalogError> {
        // Merge by case-insensitive name, keeping first-seen order and the
        // file that introduced each agent (for error messages).
        let mut order: Vec<(PathBuf, AgentEntry)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (path, file) in files {
            for entry in file.agents {
                let key = entry.name.to_ascii_lowercase();
                if key.trim().is_empty() {
                    return Err(entry_error(&path, &entry.name, "empty agent name"));
                }
                match index.get(&key) {
                    Some(&i) => order[i].1.merge(entry),
                    None => {
                        index.insert(key, order.len());
                        order.push((path.clone(), entry));
                    }
                }
            }
        }

        let mut agents = Vec::with_capacity(order.len());
        for (path, entry) in order {
            agents.push(compile_entry(&path, entry, ranges)?);
        }

        // Every matchable token belongs to exactly one agent.
        let mut owners: HashMap<String, usize> = HashMap::new();
        let mut tokens = Vec::new();
        for (i, agent) in agents.iter().enumerate() {
            if agent.robots_only {
                continue;
            }
            for token in &agent.tokens {
                if let Some(&other) = owners.get(&token.to_ascii_lowercase()) {
                    return Err(CatalogError::Entry {
                        path: agent.file.clone(),
                        agent: agent.name.clone(),
                        message: format!(
                            "token {token:?} is also a token of agent {:?}",
                            agents[other].name
                        ),
                    });
                }
                owners.insert(token.to_ascii_lowercase(), i);
                tokens.push((token.as_str(), i as u32));
            }
        }
        let matcher = UaMatcher::new(tokens)?;
        Ok(Self {
            agents,
            matcher,
            self_declared: SelfDeclared::default(),
            memo: memo::UaMemo::new(),
        })
    }

    /// The table of recent user agents' answers, bound to this catalogue.
    pub fn memo(&self) -> &memo::UaMemo {
        &self.memo
    }

    /// The catalogue agent named in a user agent, if any.
    pub fn match_ua(&self, ua: &[u8]) -> Option<AgentId> {
        self.matcher.find(ua).map(AgentId)
    }

    pub fn agent(&self, id: AgentId) -> &Agent {
        &self.agents[id.0 as usize]
    }

    pub fn agents(&self) -> &[Agent] {
        &self.agents
    }

    /// Sets the AI operators' domains of generic identification (while the snapshot is built).
    pub fn with_self_declared(mut self, rule: SelfDeclared) -> Self {
        self.self_declared = rule;
        self.memo = memo::UaMemo::new();
        self
    }

    /// For a user agent that names no catalogue agent: the purpose of the bot
    /// it declares itself to be, if it does (see [`SelfDeclared`]).
    pub fn self_declared(&self, ua: &[u8]) -> Option<Purpose> {
        self.self_declared.classify(ua)
    }

    /// Looks an agent up by name, case-insensitively.
    pub fn by_name(&self, name: &str) -> Option<AgentId> {
        self.agents
            .iter()
            .position(|a| a.name.eq_ignore_ascii_case(name))
            .map(|i| AgentId(i as u32))
    }

    /// Number of user-agent tokens in the matcher.
    pub fn token_count(&self) -> usize {
        self.matcher.len()
    }
}

fn entry_error(path: &Path, agent: &str, message: impl Into<String>) -> CatalogError {
    CatalogError::Entry {
        path: path.to_owned(),
        agent: agent.to_owned(),
        message: message.into(),
    }
}

fn compile_entry(
    path: &Path,
    entry: AgentEntry,
    ranges: &RangeTable,
) -> Result<Agent, CatalogError> {
    let name = entry.name;
    let operator = entry
        .operator
        .filter(|o| !o.trim().is_empty())
        .ok_or_else(|| entry_error(path, &name, "missing `operator`"))?;
    let purpose = entry
        .purpose
        .ok_or_else(|| entry_error(path, &name, "missing `purpose`"))?;
    let tokens = entry.tokens.unwrap_or_else(|| vec![name.clone()]);
    if tokens.is_empty() || tokens.iter().any(|t| t.trim().len() < 2) {
        return Err(entry_error(
            path,
            &name,
            "every token needs at least two characters",
        ));
    }
    let range_names = entry.ranges.unwrap_or_default();
    let mut set = SourceSet::EMPTY;
    for r in &range_names {
        let idx = ranges.source_index(r).ok_or_else(|| {
            entry_error(
                path,
                &name,
                format!("unknown range file {r:?} (no {r}.json in the ranges directory)"),
            )
        })?;
        set = set.with(idx);
    }
    let rdns = entry.rdns.unwrap_or_default();
    if let Some(bad) = rdns
        .iter()
        .find(|s| s.is_empty() || s.contains(char::is_whitespace))
    {
        return Err(entry_error(
            path,
            &name,
            format!("bad reverse-DNS suffix {bad:?}"),
        ));
    }
    Ok(Agent {
        name,
        operator,
        purpose,
        tokens,
        ranges: set,
        range_names,
        rdns,
        signature_agents: entry.signature_agents.unwrap_or_default(),
        robots_only: entry.robots_only.unwrap_or(false),
        source: entry.source.unwrap_or_else(|| path.display().to_string()),
        file: path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(texts: &[&str]) -> Result<Catalogue, CatalogError> {
        let ranges = RangeTable::new(vec![crate::identify::ranges::RangeSource::parse(
            "gptbot",
            Path::new("gptbot.json"),
            r#"{"prefixes":[{"ipv4Prefix":"192.0.2.0/24"}]}"#,
        )
        .unwrap()]);
        let files = texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                (
                    PathBuf::from(format!("f{i}.toml")),
                    toml::from_str(t).unwrap(),
                )
            })
            .collect();
        Catalogue::compile(files, &ranges)
    }

    #[test]
    fn later_files_enrich_earlier_ones() {
        let c = compile(&[
            "[[agent]]\nname='GPTBot'\noperator='OpenAI'\npurpose='ai-training'\n[[agent]]\nname='Google-Extended'\noperator='Google'\npurpose='ai-training'\n",
            "[[agent]]\nname='gptbot'\nranges=['gptbot']\n[[agent]]\nname='Google-Extended'\nrobots_only=true\n",
        ])
        .unwrap();
        let id = c.match_ua(b"Mozilla/5.0 (compatible; GPTBot/1.2)").unwrap();
        assert_eq!(c.agent(id).name, "GPTBot");
        assert!(!c.agent(id).ranges.is_empty());
        assert_eq!(
            c.match_ua(b"Google-Extended"),
            None,
            "robots-only tokens never match"
        );
        assert_eq!(c.token_count(), 1);
    }

    #[test]
    fn incomplete_or_conflicting_entries_name_file_and_agent() {
        let err = compile(&["[[agent]]\nname='X'\npurpose='seo'\n"]).unwrap_err();
        assert_eq!(err.to_string(), "f0.toml: agent \"X\": missing `operator`");
        let err =
            compile(&["[[agent]]\nname='XBot'\noperator='o'\npurpose='seo'\nranges=['nope']\n"])
                .unwrap_err();
        assert!(
            err.to_string().contains("unknown range file \"nope\""),
            "{err}"
        );
        let err = compile(&[
            "[[agent]]\nname='XBot'\noperator='o'\npurpose='seo'\ntokens=['Dup']\n[[agent]]\nname='YBot'\noperator='o'\npurpose='seo'\ntokens=['dup']\n",
        ])
        .unwrap_err();
        assert!(
            err.to_string().contains("also a token of agent \"XBot\""),
            "{err}"
        );
    }
}
