//! The on-disk format of agent catalogue files (`config/agents/*.toml`).
//!
//! A catalogue is a list of files read in order. An entry whose name (compared
//! case-insensitively) already exists overrides only the fields it sets, so that
//! the generated files (`ai-robots.toml` and the other lists', rewritten by
//! `rempart catalog import`) can be refreshed without losing the hand-curated
//! facts (operator ranges, reverse-DNS suffixes, purpose corrections) kept in
//! `curated.toml`. Tokens add up instead: each list contributes the spellings
//! it has seen.

use serde::{Deserialize, Serialize};

use crate::model::Purpose;

/// One catalogue file.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    #[serde(default, rename = "agent")]
    pub agents: Vec<AgentEntry>,
}

/// One entry as written. Every field but `name` is optional so that a later
/// file can override part of an earlier entry; a new agent must give at least
/// `operator` and `purpose`.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentEntry {
    /// The agent's name, as its operator spells it.
    pub name: String,
    /// User-agent tokens matched case-insensitively on whole words.
    /// Defaults to the name. A later file adds to them (it cannot take one away).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<Purpose>,
    /// Names of the operator's IP range files (file stems under the ranges directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranges: Option<Vec<String>>,
    /// Reverse-DNS suffixes that the operator documents for its crawler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdns: Option<Vec<String>>,
    /// Web Bot Auth: the origins (`https://host`) whose key directory
    /// (`/.well-known/http-message-signatures-directory`) the operator
    /// publishes for this agent. Only these can verify it by signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_agents: Option<Vec<String>>,
    /// A robots.txt token with no crawler of its own (Google-Extended):
    /// listed in robots.txt, never matched against user agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub robots_only: Option<bool>,
    /// Where the facts of this entry come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl AgentEntry {
    /// Applies the fields that `other` sets on top of `self`.
    pub fn merge(&mut self, other: AgentEntry) {
        let AgentEntry {
            name: _,
            tokens,
            operator,
            purpose,
            ranges,
            rdns,
            signature_agents,
            robots_only,
            source,
        } = other;
        if let Some(extra) = tokens {
            let mine = self.tokens.get_or_insert_with(|| vec![self.name.clone()]);
            for t in extra {
                if !mine.iter().any(|m| m.eq_ignore_ascii_case(&t)) {
                    mine.push(t);
                }
            }
        }
        if operator.is_some() {
            self.operator = operator;
        }
        if purpose.is_some() {
            self.purpose = purpose;
        }
        if ranges.is_some() {
            self.ranges = ranges;
        }
        if rdns.is_some() {
            self.rdns = rdns;
        }
        if signature_agents.is_some() {
            self.signature_agents = signature_agents;
        }
        if robots_only.is_some() {
            self.robots_only = robots_only;
        }
        if let Some(extra) = source {
            self.source = Some(match self.source.take() {
                Some(base) if base != extra => format!("{base}; {extra}"),
                _ => extra,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_overrides_only_set_fields() {
        let mut base = AgentEntry {
            name: "Applebot".into(),
            operator: Some("Apple".into()),
            purpose: Some(Purpose::AiTraining),
            source: Some("robots.json".into()),
            ..Default::default()
        };
        base.merge(AgentEntry {
            name: "applebot".into(),
            tokens: Some(vec!["applebot".into(), "Applebot-Mobile".into()]),
            purpose: Some(Purpose::SearchEngine),
            ranges: Some(vec!["applebot".into()]),
            source: Some("curated".into()),
            ..Default::default()
        });
        assert_eq!(base.name, "Applebot");
        assert_eq!(base.operator.as_deref(), Some("Apple"));
        assert_eq!(base.purpose, Some(Purpose::SearchEngine));
        assert_eq!(base.ranges, Some(vec!["applebot".to_string()]));
        assert_eq!(base.source.as_deref(), Some("robots.json; curated"));
        // Tokens are a union: each file adds the spellings it knows.
        assert_eq!(
            base.tokens,
            Some(vec!["Applebot".to_string(), "Applebot-Mobile".to_string()])
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = toml::from_str::<CatalogFile>("[[agent]]\nname='x'\nopertor='y'\n").unwrap_err();
        assert!(err.to_string().contains("opertor"), "{err}");
    }
}
