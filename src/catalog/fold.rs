//! Folding one list's candidates into the catalogue the other files already
//! make, so that the same agent named by several lists is one entry and a
//! token never belongs to two agents (a load error).
//!
//! The files of the lists merged before this one are `Before`: an agent they
//! already name gets a short entry under *their* name carrying only the new
//! tokens and this list's `source`, so that the first list keeps its
//! operator and purpose. Hand-written files merged after (`curated.toml`) are
//! `After`: a candidate that is one of their agents is written under that
//! agent's name in full, and the hand-written entry is merged over it.

use std::collections::{BTreeMap, HashMap};

use super::file::{AgentEntry, CatalogFile};
use super::sources::Read;

/// Where a known agent's file stands relative to the list being imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Before,
    After,
}

/// The agents of the other catalogue files: names and token owners.
#[derive(Debug, Default)]
pub struct Known {
    /// Lower-cased name or matchable token → (agent name, side).
    owner: HashMap<String, (String, Side)>,
}

impl Known {
    /// Adds a catalogue file's agents.
    pub fn add(&mut self, file: &CatalogFile, side: Side) {
        for e in &file.agents {
            let name = self
                .owner
                .get(&e.name.to_ascii_lowercase())
                .map_or_else(|| (e.name.clone(), side), Clone::clone);
            self.owner.insert(e.name.to_ascii_lowercase(), name.clone());
            if e.robots_only == Some(true) {
                continue;
            }
            for t in e.tokens.iter().flatten() {
                self.owner.insert(t.to_ascii_lowercase(), name.clone());
            }
        }
    }

    fn get(&self, key: &str) -> Option<&(String, Side)> {
        self.owner.get(&key.to_ascii_lowercase())
    }
}

/// What an import did, for its summary line.
#[derive(Debug, Default)]
pub struct Summary {
    pub entries: usize,
    /// Entries the list itself gives an AI purpose.
    pub ai_entries: usize,
    pub agents: usize,
    /// Entries that joined an agent of a file merged before.
    pub joined: usize,
    /// Candidates folded into another candidate of the same list.
    pub folded: usize,
    pub ai: usize,
    /// Tokens left out because another agent owns them.
    pub tokens_owned_elsewhere: usize,
    pub skipped: BTreeMap<&'static str, usize>,
}

impl Summary {
    pub fn line(&self) -> String {
        let skipped: usize = self.skipped.values().sum();
        let mut s = format!(
            "{} entries read ({} of them AI): {} agents written ({} new with an AI purpose, {} merged into agents of earlier files), {} folded into another entry, {} tokens owned by other agents left out, {} entries skipped",
            self.entries, self.ai_entries, self.agents, self.ai, self.joined, self.folded, self.tokens_owned_elsewhere, skipped
        );
        for (reason, n) in &self.skipped {
            s.push_str(&format!("\n  skipped {n}: {reason}"));
        }
        s
    }
}

/// Builds the list's catalogue file. `provenance` goes into every `source`.
pub fn fold(read: Read, known: &Known, provenance: &str) -> (CatalogFile, Summary) {
    let mut summary = Summary {
        entries: read.entries,
        ai_entries: read.candidates.iter().filter(|c| c.purpose.is_ai()).count(),
        skipped: read.skipped,
        ..Summary::default()
    };
    let mut out: Vec<AgentEntry> = Vec::new();
    // Lower-cased name or token → index in `out`.
    let mut here: HashMap<String, usize> = HashMap::new();
    for c in read.candidates {
        let keys = std::iter::once(&c.name).chain(&c.tokens);
        let known_target = keys.clone().find_map(|k| known.get(k)).cloned();
        let (index, target_name) = match &known_target {
            Some((name, side)) => {
                let i = match here.get(&name.to_ascii_lowercase()) {
                    Some(&i) => i,
                    None => {
                        let entry = match side {
                            Side::Before => {
                                summary.joined += 1;
                                AgentEntry {
                                    name: name.clone(),
                                    source: Some(source_of(provenance, &c.said)),
                                    ..Default::default()
                                }
                            }
                            Side::After => full(name.clone(), &c, provenance),
                        };
                        here.insert(name.to_ascii_lowercase(), out.len());
                        out.push(entry);
                        out.len() - 1
                    }
                };
                (i, name.clone())
            }
            None => match keys.clone().find_map(|k| here.get(&k.to_ascii_lowercase())) {
                Some(&i) => {
                    summary.folded += 1;
                    (i, out[i].name.clone())
                }
                None => {
                    here.insert(c.name.to_ascii_lowercase(), out.len());
                    out.push(full(c.name.clone(), &c, provenance));
                    (out.len() - 1, c.name.clone())
                }
            },
        };
        give_tokens(
            &c.tokens,
            index,
            &target_name,
            known,
            &mut here,
            &mut out,
            &mut summary,
        );
    }
    // A new agent left with no token of its own would default to its name,
    // which another agent may own: drop it.
    out.retain(|e| {
        let keep = e.operator.is_none() || e.tokens.as_ref().is_some_and(|t| !t.is_empty());
        if !keep {
            *summary
                .skipped
                .entry("every token belongs to another agent")
                .or_default() += 1;
        }
        keep
    });
    for e in &mut out {
        if e.tokens.as_deref() == Some(std::slice::from_ref(&e.name)) {
            e.tokens = None;
        }
        if e.purpose.is_some_and(|p| p.is_ai()) {
            summary.ai += 1;
        }
    }
    summary.agents = out.len();
    (CatalogFile { agents: out }, summary)
}

/// Gives agent `index` (named `target_name`) the tokens of one candidate
/// that no other agent, here or in a file before, already owns.
fn give_tokens(
    tokens: &[String],
    index: usize,
    target_name: &str,
    known: &Known,
    here: &mut HashMap<String, usize>,
    out: &mut [AgentEntry],
    summary: &mut Summary,
) {
    for t in tokens {
        let lower = t.to_ascii_lowercase();
        let owned_elsewhere = known
            .get(t)
            .is_some_and(|(n, _)| !n.eq_ignore_ascii_case(target_name))
            || here.get(&lower).is_some_and(|&j| j != index);
        if owned_elsewhere {
            summary.tokens_owned_elsewhere += 1;
            continue;
        }
        // A token a file before already gives this agent needs no repeating.
        if known.get(t).is_some_and(|(_, side)| *side == Side::Before) {
            continue;
        }
        here.insert(lower, index);
        let tokens = out[index].tokens.get_or_insert_with(Vec::new);
        super::tokens::push_unique(tokens, t);
    }
}

fn source_of(provenance: &str, said: &str) -> String {
    if said.is_empty() {
        provenance.to_owned()
    } else {
        format!("{provenance}: {said}")
    }
}

fn full(name: String, c: &super::sources::Candidate, provenance: &str) -> AgentEntry {
    AgentEntry {
        name,
        operator: Some(c.operator.clone()),
        purpose: Some(c.purpose),
        source: Some(source_of(provenance, &c.said)),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::sources::Candidate;
    use crate::model::Purpose;

    fn cand(name: &str, tokens: &[&str]) -> Candidate {
        Candidate {
            name: name.into(),
            tokens: tokens.iter().map(|t| t.to_string()).collect(),
            operator: "op".into(),
            purpose: Purpose::AiTraining,
            said: "tag".into(),
        }
    }

    #[test]
    fn joins_known_agents_and_never_shares_a_token() {
        let mut known = Known::default();
        known.add(
            &toml::from_str("[[agent]]\nname='GPTBot'\noperator='OpenAI'\npurpose='ai-training'\n")
                .unwrap(),
            Side::Before,
        );
        known.add(
            &toml::from_str("[[agent]]\nname='Googlebot'\ntokens=['Googlebot']\noperator='Google'\npurpose='search-engine'\n").unwrap(),
            Side::After,
        );
        let read = Read {
            entries: 5,
            candidates: vec![
                cand("gptbot", &["gptbot", "GPTBot-Extra"]),
                cand("Googlebot", &["Googlebot", "Googlebot-Mobile"]),
                // Names one known agent's token, then another's: joins the first.
                cand("AliasBot", &["AliasBot", "GPTBot", "Googlebot"]),
                cand("NewBot", &["NewBot", "NewBot-Image"]),
                cand("newbot", &["NEWBOT", "NewBot-Video"]),
            ],
            skipped: BTreeMap::new(),
        };
        let (file, summary) = fold(read, &known, "list 1.0");
        let names: Vec<&str> = file.agents.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["GPTBot", "Googlebot", "NewBot"]);
        let gpt = &file.agents[0];
        assert_eq!(
            gpt.tokens.as_deref(),
            Some(&["GPTBot-Extra".to_string(), "AliasBot".to_string()][..])
        );
        assert_eq!(gpt.operator, None, "the earlier list keeps its operator");
        assert_eq!(gpt.source.as_deref(), Some("list 1.0: tag"));
        assert_eq!(
            file.agents[1].operator.as_deref(),
            Some("op"),
            "curated is merged over it"
        );
        assert_eq!(
            file.agents[2].tokens.as_deref(),
            Some(
                &[
                    "NewBot".to_string(),
                    "NewBot-Image".to_string(),
                    "NewBot-Video".to_string()
                ][..]
            )
        );
        assert_eq!(
            (
                summary.joined,
                summary.folded,
                summary.tokens_owned_elsewhere
            ),
            (1, 1, 1)
        );
    }
}
