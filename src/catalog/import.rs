//! `rempart catalog import --source NAME FILE`: regenerates one list's part
//! of the catalogue (see [`super::sources`] for the lists).
//!
//! The import is mechanical on purpose. For robots.json: one entry per
//! agent, the operator stripped of its markdown link, and a purpose read from
//! the free-text `function` field. Everything that needs judgement (range
//! files, reverse DNS, robots-only tokens, purpose corrections such as
//! Applebot being a search engine) lives in `curated.toml`, which is merged
//! over the generated files and survives every refresh.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::file::{AgentEntry, CatalogFile};
use crate::model::Purpose;

/// One entry of robots.json (only the fields the import uses).
#[derive(Debug, Deserialize)]
struct RobotsJsonEntry {
    #[serde(default)]
    operator: String,
    #[serde(default)]
    function: String,
}

/// Errors reading robots.json.
#[derive(Debug, thiserror::Error)]
#[error("not an ai.robots.txt robots.json file (expected an object of agents): {0}")]
pub struct ImportError(#[from] serde_json::Error);

/// Reads the purpose out of the `function` text of robots.json.
///
/// Assistants and agents fetch on a user's behalf; search crawlers feed an
/// answer engine; everything else (data scrapers, data providers, training,
/// undocumented agents) is treated as training, the most restrictive reading.
pub fn purpose_from_function(function: &str) -> Purpose {
    let f = function.to_ascii_lowercase();
    if [
        "assistant",
        "agent",
        "user-initiated",
        "user initiated",
        "user prompt",
        "coding",
        "on behalf",
    ]
    .iter()
    .any(|w| f.contains(w))
    {
        Purpose::AiAssistant
    } else if f
        .match_indices("search")
        .any(|(i, _)| !f[..i].ends_with("re"))
    {
        // "search", not "research" (LAION's "machine learning research" is no search engine).
        Purpose::AiSearch
    } else {
        Purpose::AiTraining
    }
}

/// `[Ai2](https://allenai.org/crawler)` → `Ai2`; "Unclear at this time." → "unknown".
fn clean_operator(raw: &str) -> String {
    let text = raw.trim();
    let text = match (text.find('['), text.find("](")) {
        (Some(open), Some(close)) if open < close => {
            let rest = &text[close..];
            let after = rest.find(')').map_or("", |p| &rest[p + 1..]);
            format!("{}{}{}", &text[..open], &text[open + 1..close], after)
        }
        _ => text.to_owned(),
    };
    let text = text.trim().trim_end_matches('.').trim().to_owned();
    if text.is_empty() || text.to_ascii_lowercase().starts_with("unclear") {
        "unknown".to_owned()
    } else {
        text
    }
}

/// A name that is another name plus a version (`Brightbot 1.0`, `iaskspider/2.0`)
/// is folded into the base agent as an extra token.
fn base_of(name: &str) -> Option<&str> {
    let cut = name.rfind([' ', '/'])?;
    let (base, version) = (&name[..cut], &name[cut + 1..]);
    let is_version = !version.is_empty() && version.chars().all(|c| c.is_ascii_digit() || c == '.');
    is_version.then_some(base)
}

/// Converts robots.json text into a catalogue file. `provenance` is recorded
/// in each entry's `source`.
pub fn import(robots_json: &str, provenance: &str) -> Result<CatalogFile, ImportError> {
    // robots.json is an object; keep its order stable by name.
    let entries: BTreeMap<String, RobotsJsonEntry> = serde_json::from_str(robots_json)?;
    let lower: BTreeMap<String, &str> = entries
        .keys()
        .map(|k| (k.to_ascii_lowercase(), k.as_str()))
        .collect();

    let mut agents: Vec<AgentEntry> = Vec::new();
    let mut by_lower: BTreeMap<String, usize> = BTreeMap::new();
    for (name, entry) in &entries {
        // Fold case variants and versioned variants into their base entry.
        let base_name = base_of(name)
            .and_then(|b| lower.get(&b.to_ascii_lowercase()).copied())
            .unwrap_or(name.as_str());
        let key = base_name.to_ascii_lowercase();
        if let Some(&i) = by_lower.get(&key) {
            let tokens = agents[i].tokens.get_or_insert_with(Vec::new);
            if !tokens.iter().any(|t| t.eq_ignore_ascii_case(name)) {
                tokens.push(name.clone());
            }
            continue;
        }
        let base = entries.get(base_name).unwrap_or(entry);
        by_lower.insert(key, agents.len());
        agents.push(AgentEntry {
            name: base_name.to_owned(),
            tokens: Some(vec![base_name.to_owned()]),
            operator: Some(clean_operator(&base.operator)),
            purpose: Some(purpose_from_function(&base.function)),
            source: Some(provenance.to_owned()),
            ..Default::default()
        });
        if base_name != name {
            if let Some(tokens) = agents.last_mut().and_then(|a| a.tokens.as_mut()) {
                tokens.push(name.clone());
            }
        }
    }
    // A token list equal to the name is the default: leave it implicit.
    for agent in &mut agents {
        if agent.tokens.as_deref() == Some(std::slice::from_ref(&agent.name)) {
            agent.tokens = None;
        }
    }
    Ok(CatalogFile { agents })
}

/// Imports one list: reads it, folds it into the agents `known` from the
/// other catalogue files, and renders the generated file.
pub fn import_source(
    source: super::sources::Source,
    text: &str,
    provenance: &str,
    known: &super::fold::Known,
) -> Result<(CatalogFile, super::fold::Summary, String), anyhow::Error> {
    let read = source.read(text)?;
    let (file, summary) = super::fold::fold(read, known, provenance);
    let header = format!(
        "Generated by `rempart catalog import --source {}` from {provenance}.\n\
         Do not edit: corrections and additions belong in curated.toml, which is merged over this file.\n\
         Source: {}.\n\
         {} agents ({} with an AI purpose, {} merged into agents of the files before this one).",
        source.name(),
        source.origin(),
        summary.agents,
        summary.ai,
        summary.joined,
    );
    let text = render(&file, &header)?;
    Ok((file, summary, text))
}

/// The agents of the other catalogue files, as an import of `source` sees
/// them: the generated files of the lists before it, and the hand-written
/// files (any file not named after a list). Later lists' files are ignored,
/// so that each generated file depends only on the ones before it.
pub fn known_for(
    source: super::sources::Source,
    files: &[std::path::PathBuf],
) -> Result<super::fold::Known, super::CatalogError> {
    use super::fold::Side;
    use super::sources::Source;
    let rank = |s: Source| Source::ALL.iter().position(|x| *x == s);
    let mut known = super::fold::Known::default();
    for path in files {
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let side = match Source::parse_name(stem) {
            Some(other) if rank(other) < rank(source) => Side::Before,
            Some(_) => continue,
            None => Side::After,
        };
        let text = std::fs::read_to_string(path).map_err(|e| super::CatalogError::Read {
            path: path.clone(),
            source: e,
        })?;
        let file: CatalogFile = crate::config::located::parse_toml(path, &text)?;
        known.add(&file, side);
    }
    Ok(known)
}

/// Renders a catalogue file with a header saying where it came from.
pub fn render(file: &CatalogFile, header: &str) -> Result<String, toml::ser::Error> {
    let body = toml::to_string(file)?;
    let mut out = String::with_capacity(body.len() + header.len() + 64);
    for line in header.lines() {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
      "GPTBot": {"operator": "[OpenAI](https://openai.com)", "function": "Scrapes data to train OpenAI's products."},
      "Brightbot": {"operator": "Bright", "function": "AI Data Scrapers"},
      "Brightbot 1.0": {"operator": "Bright", "function": "AI Data Scrapers"},
      "meta-externalagent": {"operator": "Meta", "function": "AI Data Scrapers"},
      "Meta-ExternalAgent": {"operator": "Meta", "function": "AI Data Scrapers"},
      "ChatGPT-User": {"operator": "OpenAI", "function": "AI Assistants"},
      "PerplexityBot": {"operator": "Unclear at this time.", "function": "AI Search Crawlers"},
      "LAIONDownloader": {"operator": "LAION", "function": "AI tools and models for machine learning research."}
    }"#;

    #[test]
    fn imports_and_folds_variants() {
        let file = import(SAMPLE, "robots.json@test").unwrap();
        let names: Vec<&str> = file.agents.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Brightbot",
                "ChatGPT-User",
                "GPTBot",
                "LAIONDownloader",
                "Meta-ExternalAgent",
                "PerplexityBot"
            ]
        );
        let bright = &file.agents[0];
        assert_eq!(
            bright.tokens.as_deref(),
            Some(&["Brightbot".to_string(), "Brightbot 1.0".to_string()][..])
        );
        assert_eq!(
            file.agents[3].purpose,
            Some(Purpose::AiTraining),
            "research is no search"
        );
        let meta = &file.agents[4];
        // Case variants are one token: matching is case-insensitive.
        assert_eq!(meta.tokens, None);
        assert_eq!(file.agents[1].purpose, Some(Purpose::AiAssistant));
        assert_eq!(file.agents[2].operator.as_deref(), Some("OpenAI"));
        assert_eq!(file.agents[2].purpose, Some(Purpose::AiTraining));
        assert_eq!(file.agents[5].operator.as_deref(), Some("unknown"));
        assert_eq!(file.agents[5].purpose, Some(Purpose::AiSearch));
    }

    #[test]
    fn rendered_file_parses_back() {
        let file = import(SAMPLE, "robots.json@test").unwrap();
        let text = render(&file, "generated\nby test").unwrap();
        assert!(text.starts_with("# generated\n# by test\n"));
        let back: CatalogFile = toml::from_str(&text).unwrap();
        assert_eq!(back.agents.len(), file.agents.len());
    }

    #[test]
    fn rejects_other_json() {
        assert!(import("[1,2]", "x").is_err());
    }
}
