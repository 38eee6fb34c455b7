//! A request's evidence record, built from its decided [`Outcome`] and the
//! canonical request it was decided on, never from what the client wrote.

use std::net::IpAddr;

use super::pseudonym::PseudonymKey;
use super::record::{clip, signal_names, ReservationInForce, RobotsFetch, Shadow, Truncated};
use super::writer::rfc3339;
use super::{ClientId, RequestRecord};
use crate::decide::Outcome;
use crate::identify::webbotauth::Signature;
use crate::optout::published::Published;
use crate::snapshot::Snapshot;

/// What the record needs of the request, kept past the request filter.
#[derive(Debug, Clone, Default)]
pub struct Kept {
    pub client_ip: Option<IpAddr>,
    pub method: String,
    pub host: Option<String>,
    /// The canonical path the decision saw.
    pub path: String,
    pub user_agent: String,
    /// Client-supplied fields cut to the record's limit.
    pub truncated: Vec<Truncated>,
}

impl Kept {
    /// Keeps a request's fields for its record, each cut to [`super::record::MAX_FIELD`]
    /// bytes (hashing the whole value only when it is longer).
    pub fn new(method: &str, host: Option<&str>, path: &str, user_agent: &[u8]) -> Self {
        let mut truncated = Vec::new();
        let mut keep = |field, value: &[u8]| {
            let (text, cut) = clip(field, value);
            truncated.extend(cut);
            text
        };
        let user_agent = keep("user_agent", user_agent);
        let path = keep("path", path.as_bytes());
        let host = host.map(|h| keep("host", h.as_bytes()));
        Self {
            client_ip: None,
            method: method.to_owned(),
            host,
            path,
            user_agent,
            truncated,
        }
    }
}

/// The reservation in force at a location, as the record shows it.
fn reservation(snap: &Snapshot, host: Option<&str>, path: &str) -> Option<ReservationInForce> {
    let r = snap.reservation.as_ref()?;
    let loc = r.lookup(host, path).and_then(|i| r.locations.get(i))?;
    let mut served = vec!["robots.txt".to_owned()];
    if loc.tdm_reserved {
        served.push("tdmrep.json".into());
    }
    if r.headers_enabled {
        served.push("response headers".into());
    }
    served.push("license.xml".into());
    Some(ReservationInForce {
        location: loc.pattern.clone(),
        tdm_reserved: loc.tdm_reserved,
        signals_served: served,
        content_usage: loc
            .headers
            .content_usage
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    })
}

/// The record of one request (none when no client address was read).
pub fn request_record(
    snap: &Snapshot,
    o: &Outcome,
    kept: &Kept,
    key: &PseudonymKey,
    published: &Published,
    request_id: String,
    status: u16,
) -> Option<RequestRecord> {
    let ip = kept.client_ip?;
    let id = &o.identity;
    let agent = id.agent.map(|a| snap.catalogue.agent(a));
    let robots = o.conduct.robots.map(|(at, version)| RobotsFetch {
        fetched_at: time::OffsetDateTime::from_unix_timestamp(i64::from(at))
            .map(rfc3339)
            .unwrap_or_default(),
        sha256: published.get(version).map_or_else(
            || "unknown (no longer kept)".to_owned(),
            |v| v.sha256.clone(),
        ),
    });
    Some(RequestRecord {
        request_id,
        client: if id.operator_sources.is_empty() {
            ClientId::Pseudonym(key.pseudonym(ip))
        } else {
            ClientId::Ip(ip.to_string())
        },
        user_agent: kept.user_agent.clone(),
        agent: id.agent_name(&snap.catalogue).map(str::to_owned),
        operator: agent.map(|a| a.operator.clone()),
        purpose: id.purpose.map(|p| p.as_str().to_owned()),
        identity: id.kind.as_str().to_owned(),
        verification: id.verification.as_str().to_owned(),
        verified_by: id.method.as_str().to_owned(),
        signature: (o.signature != Signature::Absent).then(|| o.signature.label().to_owned()),
        method: kept.method.clone(),
        host: kept.host.clone(),
        path: kept.path.clone(),
        decision: o.action.as_str().to_owned(),
        status,
        rule: o.rule_name(snap).to_owned(),
        log_only: o.decision.shadow.map(|(rule, would)| Shadow {
            rule: snap.policy.rule_name(Some(rule)).to_owned(),
            would: would.as_str().to_owned(),
        }),
        score: o.conduct.score,
        signals: signal_names(o.conduct.signals),
        fingerprint: o.conduct.fingerprint.map(|f| format!("{f:016x}")),
        asn: id.network.asn.map(|a| a.get()),
        as_org: id
            .network
            .asn
            .and_then(|a| snap.network.as_name(a.get()))
            .map(str::to_owned),
        hosting: id.network.hosting,
        reservation: reservation(snap, kept.host.as_deref(), &kept.path),
        robots_txt: robots,
        truncated: kept.truncated.clone(),
    })
}
