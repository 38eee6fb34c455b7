//! The public lists the catalogue is imported from, each read into the same
//! shape: candidate agents with tokens, operator, purpose and the list's own
//! words for that purpose (kept in each entry's `source`, so a reviewer sees
//! where a purpose came from).
//!
//! The readings are mechanical; `curated.toml` corrects them.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::import::{self, purpose_from_function};
use super::tokens;
use crate::model::Purpose;

/// A list rempart imports from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// ai.robots.txt's `robots.json`.
    AiRobots,
    /// The `crawler-user-agents` package's `crawler-user-agents.json`.
    CrawlerUserAgents,
    /// Matomo device-detector's `bots.yml`.
    DeviceDetector,
    /// The `ai-crawler-index` package's `data.json`.
    AiCrawlerIndex,
}

impl Source {
    /// In the order of the shipped `catalog.agents`: a list is merged over the ones before it.
    pub const ALL: [Source; 4] = [
        Source::AiRobots,
        Source::CrawlerUserAgents,
        Source::DeviceDetector,
        Source::AiCrawlerIndex,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Source::AiRobots => "ai-robots",
            Source::CrawlerUserAgents => "crawler-user-agents",
            Source::DeviceDetector => "device-detector",
            Source::AiCrawlerIndex => "ai-crawler-index",
        }
    }

    pub fn parse_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Where the list comes from and under which licence (for the generated file's header).
    pub fn origin(self) -> &'static str {
        match self {
            Source::AiRobots => "https://github.com/ai-robots-txt/ai.robots.txt (MIT licence)",
            Source::CrawlerUserAgents => {
                "npm package crawler-user-agents, https://github.com/monperrus/crawler-user-agents (MIT licence)"
            }
            Source::DeviceDetector => {
                "Matomo device-detector bots.yml, from the PyPI package device-detector, https://github.com/matomo-org/device-detector (LGPL-3.0-or-later)"
            }
            Source::AiCrawlerIndex => {
                "PyPI package ai-crawler-index (code MIT, data CC0-1.0)"
            }
        }
    }

    /// Reads the list's text into candidates.
    pub fn read(self, text: &str) -> Result<Read, ReadError> {
        match self {
            Source::AiRobots => ai_robots(text),
            Source::CrawlerUserAgents => crawler_user_agents(text),
            Source::DeviceDetector => device_detector(text),
            Source::AiCrawlerIndex => ai_crawler_index(text),
        }
    }
}

/// One agent as a list describes it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub name: String,
    pub tokens: Vec<String>,
    pub operator: String,
    pub purpose: Purpose,
    /// The list's own classification the purpose was read from (`tags ai-crawler`).
    pub said: String,
}

/// A list read: its candidates and the entries it gave no token for, by reason.
#[derive(Debug, Default)]
pub struct Read {
    pub entries: usize,
    pub candidates: Vec<Candidate>,
    pub skipped: BTreeMap<&'static str, usize>,
}

impl Read {
    fn skip(&mut self, reason: &'static str) {
        *self.skipped.entry(reason).or_default() += 1;
    }
}

/// A list file that is not in its expected format.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    RobotsJson(#[from] import::ImportError),
    #[error("not a crawler-user-agents.json or ai-crawler-index data.json file: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not a device-detector bots.yml file: {0}")]
    Yaml(#[from] serde_yaml::Error),
}

fn ai_robots(text: &str) -> Result<Read, ReadError> {
    let file = import::import(text, "")?;
    let candidates = file
        .agents
        .into_iter()
        .map(|a| Candidate {
            tokens: a.tokens.unwrap_or_else(|| vec![a.name.clone()]),
            name: a.name,
            operator: a.operator.unwrap_or_else(|| "unknown".into()),
            purpose: a.purpose.unwrap_or(Purpose::AiTraining),
            said: String::new(),
        })
        .collect::<Vec<_>>();
    Ok(Read {
        entries: candidates.len(),
        candidates,
        skipped: BTreeMap::new(),
    })
}

#[derive(Deserialize)]
struct CuaEntry {
    pattern: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    instances: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    description: String,
}

/// `http://www.google.com/bot.html` → `google.com`.
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?', '#', ':']).next()?.trim();
    let host = host.strip_prefix("www.").unwrap_or(host);
    (host.contains('.') && !host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The crawler-user-agents tags, most specific first.
fn purpose_from_tags(tags: &[String], description: &str) -> Purpose {
    let has = |t: &str| tags.iter().any(|x| x == t);
    if has("ai-crawler") {
        purpose_from_function(description)
    } else if has("search-engine") {
        Purpose::SearchEngine
    } else if has("archiver") {
        Purpose::Archiver
    } else if has("social-preview") {
        Purpose::SocialPreview
    } else if has("seo") {
        Purpose::Seo
    } else if has("http-library") || has("browser-automation") {
        Purpose::Tool
    } else {
        Purpose::OtherBot
    }
}

fn crawler_user_agents(text: &str) -> Result<Read, ReadError> {
    let entries: Vec<CuaEntry> = serde_json::from_str(text)?;
    let mut read = Read {
        entries: entries.len(),
        ..Read::default()
    };
    for e in entries {
        match tokens::derive(&e.pattern, &e.instances) {
            Ok(tokens) => read.candidates.push(Candidate {
                name: tokens[0].clone(),
                operator: e
                    .url
                    .as_deref()
                    .and_then(host_of)
                    .unwrap_or_else(|| "unknown".into()),
                purpose: purpose_from_tags(&e.tags, &e.description),
                said: format!("tags {}", e.tags.join(",")),
                tokens,
            }),
            Err(reason) => read.skip(reason),
        }
    }
    Ok(read)
}

#[derive(Deserialize)]
struct DdEntry {
    regex: String,
    name: String,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    producer: Option<DdProducer>,
}

#[derive(Deserialize)]
struct DdProducer {
    #[serde(default)]
    name: Option<String>,
}

fn purpose_from_category(category: &str) -> Purpose {
    match category {
        "AI Agent" | "AI Assistant" => Purpose::AiAssistant,
        "AI Data Scraper" => Purpose::AiTraining,
        "AI Search Crawler" => Purpose::AiSearch,
        "Search bot" | "Security search bot" => Purpose::SearchEngine,
        "Social Media Agent" => Purpose::SocialPreview,
        _ => Purpose::OtherBot,
    }
}

/// Why device-detector's catch-all entries are not imported.
const CATCH_ALL: &str = "catch-all entry (`Generic Bot`): left to generic identification";

fn device_detector(text: &str) -> Result<Read, ReadError> {
    let entries: Vec<DdEntry> = serde_yaml::from_str(text)?;
    let mut read = Read {
        entries: entries.len(),
        ..Read::default()
    };
    for e in entries {
        if e.name == "Generic Bot" {
            read.skip(CATCH_ALL);
            continue;
        }
        let category = e.category.unwrap_or_default();
        let operator = e
            .producer
            .and_then(|p| p.name)
            .filter(|n| !n.trim().is_empty())
            .or_else(|| e.url.as_deref().and_then(host_of))
            .unwrap_or_else(|| "unknown".into());
        let purpose = purpose_from_category(&category);
        let said = format!("category {category:?}");
        let mut tokens = match tokens::derive(&e.regex, &[]) {
            Ok(t) => t,
            Err(reason) => {
                read.skip(reason);
                continue;
            }
        };
        // `name: '\g<1>'`: the group names the agent, one agent per alternative.
        if let Some((before, after)) = e.name.split_once("\\g<1>") {
            for t in tokens {
                read.candidates.push(Candidate {
                    name: format!("{before}{t}{after}").trim().to_owned(),
                    tokens: vec![t],
                    operator: operator.clone(),
                    purpose,
                    said: said.clone(),
                });
            }
            continue;
        }
        // The name is also how the agent signs when it differs from the pattern.
        if tokens::is_safe(&e.name) {
            tokens::push_unique(&mut tokens, &e.name);
        }
        read.candidates.push(Candidate {
            name: e.name,
            tokens,
            operator,
            purpose,
            said,
        });
    }
    Ok(read)
}

#[derive(Deserialize)]
struct AciFile {
    crawlers: Vec<AciEntry>,
}

#[derive(Deserialize)]
struct AciEntry {
    name: String,
    #[serde(default)]
    operator: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    ua: String,
}

fn ai_crawler_index(text: &str) -> Result<Read, ReadError> {
    let file: AciFile = serde_json::from_str(text)?;
    let mut read = Read {
        entries: file.crawlers.len(),
        ..Read::default()
    };
    for e in file.crawlers {
        let purpose = match e.category.as_str() {
            "ai-training" | "dataset" => Purpose::AiTraining,
            "ai-search" => Purpose::AiSearch,
            "user-fetch" => Purpose::AiAssistant,
            "search" => Purpose::SearchEngine,
            "seo" => Purpose::Seo,
            "preview" => Purpose::SocialPreview,
            "archive" => Purpose::Archiver,
            "tool" => Purpose::Tool,
            _ => Purpose::OtherBot,
        };
        let mut tokens = Vec::new();
        for t in [&e.ua, &e.name] {
            if tokens::is_safe(t) {
                tokens::push_unique(&mut tokens, t);
            }
        }
        if tokens.is_empty() {
            read.skip(tokens::UNSAFE);
            continue;
        }
        read.candidates.push(Candidate {
            name: e.name,
            tokens,
            operator: if e.operator.trim().is_empty() {
                "unknown".into()
            } else {
                e.operator
            },
            purpose,
            said: format!("category {}", e.category),
        });
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crawler_user_agents_entries() {
        let read = Source::CrawlerUserAgents
            .read(r#"[{"pattern":"GPTBot","url":"https://openai.com/gptbot","instances":["Mozilla/5.0 (compatible; GPTBot/1.0)"],"tags":["ai-crawler"],"description":"OpenAI's crawler to train models"},
                     {"pattern":"^Mozilla.*Safari$","instances":[],"tags":[]}]"#)
            .unwrap();
        assert_eq!(read.entries, 2);
        let c = &read.candidates[0];
        assert_eq!(
            (c.name.as_str(), c.operator.as_str(), c.purpose),
            ("GPTBot", "openai.com", Purpose::AiTraining)
        );
        assert_eq!(read.skipped.values().sum::<usize>(), 1);
    }

    #[test]
    fn device_detector_group_names() {
        let read = Source::DeviceDetector
            .read("- regex: '(360Spider(?:-Image|-Video)?)'\n  name: '\\g<1>'\n  category: 'Search bot'\n- regex: 'GPTBot'\n  name: 'GPTBot'\n  category: 'AI Data Scraper'\n  producer:\n    name: 'OpenAI'\n")
            .unwrap();
        let names: Vec<&str> = read.candidates.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["360Spider-Image", "360Spider-Video", "360Spider", "GPTBot"]
        );
        assert_eq!(read.candidates[3].operator, "OpenAI");
        assert_eq!(read.candidates[3].purpose, Purpose::AiTraining);
    }
}
