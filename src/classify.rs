//! `rempart classify`: what the policy would do with a request, or with a
//! whole replayed access log, without sending anything anywhere.
//!
//! Input lines are JSON (`{"ua": …, "ip": …, "path": …}`) or nginx/Apache
//! combined log lines; each gives one JSON verdict line.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::behaviour::{Assessment, SignalSet, Tracker};
use crate::conduct::{assess, RequestSide};
use crate::facts::{canonical, normalize_path, AddrSource, RequestFacts};
use crate::published::Published;
use crate::snapshot::Snapshot;

/// One request to classify.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Sample {
    #[serde(default)]
    pub ua: String,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    /// When the request was made: RFC 3339, or unix seconds. Combined log
    /// lines carry it; without it, each line is taken 100 ms after the last.
    #[serde(default)]
    pub ts: Option<TimeField>,
}

/// A timestamp in a JSON line.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum TimeField {
    Unix(f64),
    Text(String),
}

impl Eq for TimeField {}

impl TimeField {
    fn millis(&self) -> Option<u64> {
        match self {
            TimeField::Unix(s) if *s >= 0.0 => Some((s * 1000.0) as u64),
            TimeField::Unix(_) => None,
            TimeField::Text(t) => {
                let fmt = time::format_description::well_known::Rfc3339;
                let clf = time::macros::format_description!(
                    "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
                );
                time::OffsetDateTime::parse(t, &fmt)
                    .or_else(|_| time::OffsetDateTime::parse(t, &clf))
                    .ok()
                    .map(|d| (d.unix_timestamp_nanos() / 1_000_000) as u64)
            }
        }
    }
}

/// Behaviour state carried across the lines of a replayed log.
pub struct Replay {
    tracker: Tracker,
    published: Published,
    last_ms: u64,
}

impl Replay {
    pub fn new(snap: &Snapshot) -> Self {
        Self {
            tracker: Tracker::new(snap.behaviour.max_clients),
            published: Published::new(None),
            last_ms: 0,
        }
    }
}

/// The verdict as printed.
#[derive(Debug, Serialize)]
pub struct VerdictLine<'a> {
    pub identity: &'static str,
    pub agent: Option<&'a str>,
    pub operator: Option<&'a str>,
    pub purpose: Option<&'static str>,
    pub verification: &'static str,
    pub method: crate::identify::VerifyMethod,
    pub action: &'static str,
    pub rule: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_only: Option<LogOnly<'a>>,
    /// Behaviour signals and score (replayed logs carry state across lines).
    pub signals: SignalSet,
    pub score: u16,
    pub ip: String,
    pub path: String,
    pub ua: &'a str,
}

#[derive(Debug, Serialize)]
pub struct LogOnly<'a> {
    pub rule: &'a str,
    pub action: &'static str,
}

static COMBINED: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)]
    Regex::new(
        r#"^(\S+) \S+ \S+ \[([^\]]*)\] "(?:[A-Z]+ )?(\S*)[^"]*" \d{3} \S+(?: "(?:[^"\\]|\\.)*" "((?:[^"\\]|\\.)*)")?"#,
    )
    .expect("static regex")
});

/// Parses one input line: JSON first, then combined log format.
pub fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    if line.starts_with('{') {
        return serde_json::from_str(line).ok();
    }
    let caps = COMBINED.captures(line)?;
    let path = caps.get(3).map(|m| m.as_str().to_owned());
    let path = path.map(|p| p.split('?').next().unwrap_or("/").to_owned());
    Some(Sample {
        ip: caps.get(1).map(|m| m.as_str().to_owned()),
        path,
        ua: caps
            .get(4)
            .map_or(String::new(), |m| m.as_str().replace("\\\"", "\"")),
        host: None,
        ts: caps.get(2).map(|m| TimeField::Text(m.as_str().to_owned())),
    })
}

/// Classifies one sample against a snapshot; with a [`Replay`], the
/// sample also counts in its client's behaviour.
pub fn classify<'s>(
    snap: &'s Snapshot,
    sample: &'s Sample,
    replay: Option<&mut Replay>,
) -> VerdictLine<'s> {
    let ip: IpAddr = sample
        .ip
        .as_deref()
        .and_then(|s| s.trim().parse().ok())
        .map(canonical)
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let raw_path = sample.path.as_deref().unwrap_or("/");
    let facts = RequestFacts {
        client_ip: ip,
        addr_source: AddrSource::Peer,
        method: "GET",
        host: sample.host.as_deref(),
        path: normalize_path(raw_path),
        user_agent: sample.ua.as_bytes(),
    };
    let identity = snap.identify(&facts, false);
    let conduct = match replay {
        Some(r) => {
            let now_ms = sample
                .ts
                .as_ref()
                .and_then(TimeField::millis)
                .unwrap_or(r.last_ms + 100);
            r.last_ms = now_ms;
            let robots = (facts.path == "/robots.txt")
                .then(|| r.published.robots(&snap.pages.robots_txt.body));
            let side = RequestSide {
                header_signals: SignalSet::EMPTY,
                robots_served: robots.as_deref(),
                builtin: robots.is_some(),
                now_ms,
            };
            assess(
                snap,
                &r.tracker,
                &r.published,
                &facts,
                &identity,
                side,
                None,
            )
        }
        None => Assessment::default(),
    };
    let v = snap.decide(&facts, identity, &conduct);
    let agent = v.identity.agent.map(|a| snap.catalogue.agent(a));
    VerdictLine {
        identity: v.identity.kind.as_str(),
        agent: agent.map(|a| a.name.as_str()),
        operator: agent.map(|a| a.operator.as_str()),
        purpose: v.identity.purpose.map(|p| p.as_str()),
        verification: v.identity.verification.as_str(),
        method: v.identity.method,
        action: v.decision.action.as_str(),
        rule: snap.policy.rule_name(v.decision.rule),
        log_only: v.decision.shadow.map(|(r, a)| LogOnly {
            rule: snap.policy.rule_name(Some(r)),
            action: a.as_str(),
        }),
        signals: conduct.signals,
        score: conduct.score,
        ip: ip.to_string(),
        path: match facts.path {
            Cow::Borrowed(p) => p.to_owned(),
            Cow::Owned(p) => p,
        },
        ua: &sample.ua,
    }
}

/// Counts of verdicts by action, for the summary.
#[derive(Debug, Default)]
pub struct Summary {
    pub by_action: BTreeMap<&'static str, u64>,
    pub unparsed: u64,
}

impl Summary {
    pub fn render(&self) -> String {
        let total: u64 = self.by_action.values().sum();
        let mut out = format!("{total} requests classified");
        for (action, n) in &self.by_action {
            out.push_str(&format!(", {action}: {n}"));
        }
        if self.unparsed > 0 {
            out.push_str(&format!(", {} lines not understood", self.unparsed));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_json_lines() {
        let s = parse_line(r#"{"ua":"GPTBot/1.2","ip":"1.2.3.4","path":"/x"}"#).unwrap();
        assert_eq!(
            (s.ua.as_str(), s.ip.as_deref(), s.path.as_deref()),
            ("GPTBot/1.2", Some("1.2.3.4"), Some("/x"))
        );
        assert!(parse_line("{not json").is_none());
        assert!(parse_line("   ").is_none());
    }

    #[test]
    fn parses_combined_log_lines() {
        let line = r#"66.249.66.1 - - [23/Nov/2026:10:00:00 +0100] "GET /films/1?x=2 HTTP/1.1" 200 5120 "-" "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)""#;
        let s = parse_line(line).unwrap();
        assert_eq!(s.ip.as_deref(), Some("66.249.66.1"));
        assert_eq!(s.path.as_deref(), Some("/films/1"));
        assert!(s.ua.contains("Googlebot/2.1"));
        let common = r#"10.0.0.1 - - [23/Nov/2026:10:00:00 +0100] "GET / HTTP/1.0" 304 -"#;
        let s = parse_line(common).unwrap();
        assert_eq!((s.ua.as_str(), s.path.as_deref()), ("", Some("/")));
        let escaped = r#"1.1.1.1 - - [x] "GET / HTTP/1.1" 200 1 "-" "say \"hi\" bot""#;
        assert_eq!(parse_line(escaped).unwrap().ua, "say \"hi\" bot");
        assert!(parse_line("garbage line").is_none());
    }
}
