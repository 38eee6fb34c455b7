//! `rempart classify`: what the policy would do with a request, or with a
//! whole replayed access log, without sending anything anywhere.
//!
//! Input lines are JSON or nginx/Apache combined log lines (see [`log`]);
//! each gives one JSON verdict line.

mod log;

pub use log::{parse_line, ClientFrom};

use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use crate::behaviour::SignalSet;
use crate::decide::{decide_read, LocalState};
use crate::identify::rdns::BlockingRdns;
use crate::identify::webbotauth::Signature;
use crate::request::{canonical, Malformed, Received, Request};
use crate::snapshot::Snapshot;

/// One request to classify.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sample {
    pub ua: String,
    pub ip: Option<String>,
    /// The request-target as logged (path and query).
    pub path: Option<String>,
    pub host: Option<String>,
    pub method: Option<String>,
    /// Further request headers (`authorization`, `accept`, price bids …).
    pub headers: BTreeMap<String, String>,
    /// When the request was made: RFC 3339, or unix seconds. Combined log
    /// lines carry it; without it, each line is taken 100 ms after the last.
    pub ts: Option<TimeField>,
}

/// A timestamp in a JSON line.
#[derive(Debug, Clone, PartialEq)]
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

/// The state a replay carries across lines, as the proxy carries it across
/// requests: behaviour, refusals, robots.txt versions served, key
/// directories, and reverse-DNS answers (looked up on the spot).
pub struct Replay {
    local: LocalState,
    last_ms: u64,
}

impl Replay {
    pub fn new(snap: &Snapshot) -> Self {
        Self {
            local: LocalState::new(snap),
            last_ms: 0,
        }
    }

    /// Verifies operators that publish host names by reverse DNS, as the
    /// proxy does once its cache is warm.
    pub fn with_rdns(mut self, rdns: BlockingRdns) -> Self {
        self.local.rdns = Some(Box::new(rdns));
        self
    }
}

/// The verdict as printed: what the proxy would do with the request.
#[derive(Debug, Serialize)]
pub struct VerdictLine<'a> {
    pub identity: &'static str,
    pub agent: Option<&'a str>,
    pub operator: Option<&'a str>,
    pub purpose: Option<&'static str>,
    pub verification: &'static str,
    pub method: crate::identify::VerifyMethod,
    /// The client address's AS, its name and whether it is a hosting
    /// network (with `[network]` on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_org: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub hosting: bool,
    /// The action the proxy applies (after licences and payment).
    pub action: &'static str,
    /// The status rempart answers with; none when the origin answers.
    pub status: Option<u16>,
    pub rule: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_only: Option<LogOnly<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub licensee: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<&'static str>,
    /// The operator whose AI product referred this browser page visit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referred_by: Option<&'a str>,
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

/// The sample as the request the proxy would have received.
fn rebuild(sample: &Sample) -> Option<http::request::Parts> {
    let mut b = http::Request::builder()
        .method(sample.method.as_deref().unwrap_or("GET"))
        .uri(sample.path.as_deref().unwrap_or("/"));
    if let Some(h) = &sample.host {
        b = b.header(http::header::HOST, h);
    }
    if !sample.ua.is_empty() {
        b = b.header(http::header::USER_AGENT, &sample.ua);
    }
    for (k, v) in &sample.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    b.body(()).ok().map(|r| r.into_parts().0)
}

/// Classifies one sample with the proxy's own decision; the replay's state
/// carries over to the next sample.
pub fn classify<'s>(
    snap: &'s Snapshot,
    sample: &'s Sample,
    replay: &mut Replay,
) -> VerdictLine<'s> {
    let ip: IpAddr = sample
        .ip
        .as_deref()
        .and_then(|s| s.trim().parse().ok())
        .map(canonical)
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let now_ms = sample
        .ts
        .as_ref()
        .and_then(TimeField::millis)
        .unwrap_or(replay.last_ms + 100);
    replay.last_ms = now_ms;
    let parts = rebuild(sample);
    let read = match &parts {
        Some(p) => Request::read(
            Received {
                // A log line without a host is read as HTTP/1.0, which
                // needs none; the version is not judged in a replay.
                version: if sample.host.is_some() {
                    http::Version::HTTP_11
                } else {
                    http::Version::HTTP_10
                },
                replayed: true,
                ..Received::of(p, ip, now_ms)
            },
            &snap.trusted,
            snap.read,
        ),
        None => Err(Malformed::Target(
            crate::request::TargetError::NotOriginForm,
        )),
    };
    let o = decide_read(snap, &replay.local.state(), &read);
    let (client, path) = match &read {
        Ok(r) => (r.client_ip, r.path_owned()),
        Err(_) => (ip, sample.path.clone().unwrap_or_default()),
    };
    let agent = o.identity.agent.map(|a| snap.catalogue.agent(a));
    VerdictLine {
        identity: o.identity.kind.as_str(),
        agent: o.identity.agent_name(&snap.catalogue),
        operator: agent.map(|a| a.operator.as_str()),
        purpose: o.identity.purpose.map(|p| p.as_str()),
        verification: o.identity.verification.as_str(),
        method: o.identity.method,
        asn: o.identity.network.asn.map(|a| a.get()),
        as_org: o
            .identity
            .network
            .asn
            .and_then(|a| snap.network.as_name(a.get())),
        hosting: o.identity.network.hosting,
        action: o.action.as_str(),
        status: o.status(),
        rule: o.rule_name(snap),
        log_only: o.decision.shadow.map(|(r, a)| LogOnly {
            rule: snap.policy.rule_name(Some(r)),
            action: a.as_str(),
        }),
        signature: (o.signature != Signature::Absent).then(|| o.signature.label()),
        licensee: o
            .licensee
            .and_then(|i| snap.licensees.get(i))
            .map(|l| l.id.as_str()),
        document: o.document.map(|d| d.name()),
        referred_by: o.referred_by.map(|r| snap.referrers.referrers.name(r)),
        signals: o.conduct.signals,
        score: o.conduct.score,
        ip: client.to_string(),
        path,
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
    fn a_day_in_a_log_line_is_read_as_a_time() {
        let t = TimeField::Text("23/Nov/2026:10:00:00 +0100".into());
        assert_eq!(t.millis(), Some(1_795_424_400_000));
        assert_eq!(TimeField::Unix(1.5).millis(), Some(1_500));
    }
}
