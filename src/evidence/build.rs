//! A request's evidence record, built from its decided [`Outcome`] and the
//! canonical request it was decided on, never from what the client wrote.
//!
//! The request path only moves what the record needs into a [`Pending`]
//! (handles and the fields it already kept) and queues it; the writer thread
//! names the client (the address pseudonym) and writes the line from it,
//! borrowing every name from the snapshot.

use std::net::IpAddr;
use std::sync::Arc;

use super::pseudonym::PseudonymKey;
use super::record::{
    clip_into, RequestLine, ReservationRef, RobotsFetchRef, ShadowRef, Truncated, MAX_FIELD,
};
use super::ClientId;
use crate::behaviour::Assessment;
use crate::day::{rfc3339, rfc3339_ms};
use crate::decide::{Decision, Outcome};
use crate::identify::webbotauth::Signature;
use crate::identify::Identity;
use crate::model::Action;
use crate::optout::published::RobotsVersion;
use crate::request::RequestId;
use crate::snapshot::Snapshot;

/// What the record needs of the request, kept past the request filter.
///
/// The four strings share one buffer: one allocation on the request path
/// (and one free on the writer thread) instead of four.
#[derive(Debug, Clone, Default)]
pub struct Kept {
    pub client_ip: Option<IpAddr>,
    /// When the request was read and decided (unix milliseconds: the clock
    /// its decision used). The record's `ts` is when the writer wrote it,
    /// which a flood can delay by a second or more.
    pub requested_ms: u64,
    /// The user agent, the canonical path, the host and the method, one
    /// after the other.
    text: String,
    /// Where the user agent, the path and the host end in `text`.
    ends: [usize; 3],
    has_host: bool,
    /// Client-supplied fields cut to the record's limit.
    pub truncated: Vec<Truncated>,
}

impl Kept {
    /// Keeps a request's fields for its record, each cut to [`MAX_FIELD`]
    /// bytes (hashing the whole value only when it is longer).
    pub fn new(method: &str, host: Option<&str>, path: &str, user_agent: &[u8]) -> Self {
        let clipped =
            [user_agent.len(), path.len(), host.map_or(0, str::len)].map(|n| n.min(MAX_FIELD));
        let mut text = String::with_capacity(clipped.iter().sum::<usize>() + method.len());
        let mut truncated = Vec::new();
        truncated.extend(clip_into("user_agent", user_agent, &mut text));
        let ua_end = text.len();
        truncated.extend(clip_into("path", path.as_bytes(), &mut text));
        let path_end = text.len();
        if let Some(h) = host {
            truncated.extend(clip_into("host", h.as_bytes(), &mut text));
        }
        let host_end = text.len();
        text.push_str(method);
        Self {
            client_ip: None,
            requested_ms: 0,
            text,
            ends: [ua_end, path_end, host_end],
            has_host: host.is_some(),
            truncated,
        }
    }

    pub fn user_agent(&self) -> &str {
        self.part(0, self.ends[0])
    }

    /// The canonical path the decision saw.
    pub fn path(&self) -> &str {
        self.part(self.ends[0], self.ends[1])
    }

    pub fn host(&self) -> Option<&str> {
        self.has_host.then(|| self.part(self.ends[1], self.ends[2]))
    }

    pub fn method(&self) -> &str {
        self.part(self.ends[2], self.text.len())
    }

    fn part(&self, start: usize, end: usize) -> &str {
        self.text.get(start..end).unwrap_or_default()
    }
}

/// What a client could have read at a reserved location: robots.txt,
/// tdmrep.json where the location reserves TDM, the response headers when
/// they are on, and the RSL file.
fn signals_served(tdm_reserved: bool, headers: bool) -> &'static [&'static str] {
    match (tdm_reserved, headers) {
        (true, true) => &[
            "robots.txt",
            "tdmrep.json",
            "response headers",
            "license.xml",
        ],
        (true, false) => &["robots.txt", "tdmrep.json", "license.xml"],
        (false, true) => &["robots.txt", "response headers", "license.xml"],
        (false, false) => &["robots.txt", "license.xml"],
    }
}

/// The reservation in force at a location, as the record shows it.
fn reservation<'s>(
    snap: &'s Snapshot,
    host: Option<&str>,
    path: &str,
) -> Option<ReservationRef<'s>> {
    let r = snap.reservation.as_ref()?;
    let loc = r.lookup(host, path).and_then(|i| r.locations.get(i))?;
    Some(ReservationRef {
        location: &loc.pattern,
        tdm_reserved: loc.tdm_reserved,
        signals_served: signals_served(loc.tdm_reserved, r.headers_enabled),
        content_usage: loc
            .headers
            .content_usage
            .as_ref()
            .and_then(|v| v.to_str().ok()),
    })
}

/// What the record needs of a decided [`Outcome`]: who asked, how it
/// behaved, which rule decided and what rempart did. The answer, the
/// credential and the pages' choices stay behind: 168 of the outcome's 432
/// bytes are its answer alone, and a refusal flood keeps the writer's queue
/// full (16,384 requests by default), so every byte here is held that many
/// times over.
#[derive(Debug, Clone)]
pub struct Decided {
    pub identity: Identity,
    pub signature: Signature,
    pub conduct: Assessment,
    pub decision: Decision,
    pub action: Action,
    /// The request had no single reading (recorded as `bad-request`).
    pub malformed: bool,
}

impl From<Outcome> for Decided {
    fn from(o: Outcome) -> Self {
        Self {
            identity: o.identity,
            signature: o.signature,
            conduct: o.conduct,
            decision: o.decision,
            action: o.action,
            malformed: o.malformed.is_some(),
        }
    }
}

impl Decided {
    /// The name of the rule that decided, as counted and recorded.
    pub fn rule_name<'s>(&self, snap: &'s Snapshot) -> &'s str {
        crate::decide::rule_name(snap, &self.decision, self.malformed)
    }
}

/// A request's record as the request path hands it over: moved, not built.
/// Nothing in it is formatted or hashed; the writer thread names the client
/// ([`Pending::client`]) and serialises the line straight from it
/// ([`Pending::write_line`]).
pub struct Pending {
    /// The snapshot the request was decided under (names, reservation).
    pub snapshot: Arc<Snapshot>,
    pub outcome: Decided,
    pub kept: Kept,
    /// The robots.txt version the client last fetched, when it did.
    pub robots: Option<Arc<RobotsVersion>>,
    pub key: Arc<PseudonymKey>,
    pub request_id: RequestId,
    pub status: u16,
}

impl Pending {
    /// Who made the request, as the record names it (none when no client
    /// address was read): a crawler address from an operator's published
    /// ranges as it is, any other as its pseudonym.
    pub fn client(&self) -> Option<ClientId> {
        let ip = self.kept.client_ip?;
        Some(if self.outcome.identity.operator_sources.is_empty() {
            ClientId::Pseudonym(self.key.pseudonym(ip))
        } else {
            ClientId::Ip(ip.to_string())
        })
    }

    /// Serialises the request's ledger line into `out` (the JSON of a
    /// [`super::record::Line`] with a [`super::RequestRecord`] body).
    pub fn write_line(
        &self,
        out: &mut Vec<u8>,
        seq: u64,
        ts: &str,
        prev: &str,
        client: &ClientId,
    ) -> serde_json::Result<()> {
        let (snap, o, kept) = (&*self.snapshot, &self.outcome, &self.kept);
        let id = &o.identity;
        let request_id = self.request_id.to_string();
        let requested_at = (kept.requested_ms != 0).then(|| rfc3339_ms(kept.requested_ms));
        let fingerprint = o.conduct.fingerprint.map(|f| format!("{f:016x}"));
        let fetched_at = o.conduct.robots.map(|(at, _)| {
            time::OffsetDateTime::from_unix_timestamp(i64::from(at))
                .map(rfc3339)
                .unwrap_or_default()
        });
        let robots_txt = o
            .conduct
            .robots
            .zip(fetched_at.as_deref())
            .map(|((_, version), at)| RobotsFetchRef {
                fetched_at: at,
                sha256: self
                    .robots
                    .as_deref()
                    .filter(|v| v.id == version)
                    .map_or("unknown (no longer kept)", |v| v.sha256.as_str()),
            });
        let line = RequestLine {
            seq,
            ts,
            prev,
            kind: "request",
            request_id: &request_id,
            requested_at: requested_at.as_deref(),
            client,
            user_agent: kept.user_agent(),
            agent: id.agent_name(&snap.catalogue),
            operator: id.agent.map(|a| snap.catalogue.agent(a).operator.as_str()),
            purpose: id.purpose.map(|p| p.as_str()),
            identity: id.kind.as_str(),
            verification: id.verification.as_str(),
            verified_by: id.method.as_str(),
            signature: (o.signature != Signature::Absent).then(|| o.signature.label()),
            method: kept.method(),
            host: kept.host(),
            path: kept.path(),
            decision: o.action.as_str(),
            status: self.status,
            rule: o.rule_name(snap),
            log_only: o.decision.shadow.map(|(rule, would)| ShadowRef {
                rule: snap.policy.rule_name(Some(rule)),
                would: would.as_str(),
            }),
            score: o.conduct.score,
            signals: o.conduct.signals.names(),
            fingerprint: fingerprint.as_deref(),
            asn: id.network.asn.map(|a| a.get()),
            as_org: id.network.asn.and_then(|a| snap.network.as_name(a.get())),
            hosting: id.network.hosting,
            reservation: reservation(snap, kept.host(), kept.path()),
            robots_txt,
            truncated: &kept.truncated,
        };
        serde_json::to_writer(out, &line)
    }
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("request_id", &self.request_id.to_string())
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queued_request_is_small() {
        // A refusal flood keeps 16,384 of these queued: what they weigh is
        // the ledger's share of the proxy's memory.
        assert!(std::mem::size_of::<Decided>() <= 144);
        assert!(std::mem::size_of::<Pending>() <= 288);
        assert!(std::mem::size_of::<Decided>() * 2 < std::mem::size_of::<Outcome>());
    }

    #[test]
    fn kept_fields_read_back_from_the_one_buffer() {
        let k = Kept::new(
            "PROPFIND",
            Some("catalogue.example"),
            "/films/é",
            b"GPTBot/1.2",
        );
        assert_eq!(k.method(), "PROPFIND");
        assert_eq!(k.host(), Some("catalogue.example"));
        assert_eq!(k.path(), "/films/é");
        assert_eq!(k.user_agent(), "GPTBot/1.2");
        assert!(k.truncated.is_empty());

        let k = Kept::new("GET", None, "/", b"");
        assert_eq!(
            (k.method(), k.host(), k.path(), k.user_agent()),
            ("GET", None, "/", "")
        );
        // An empty host is a host.
        assert_eq!(Kept::new("GET", Some(""), "/", b"x").host(), Some(""));

        let d = Kept::default();
        assert_eq!(
            (d.method(), d.host(), d.path(), d.user_agent()),
            ("", None, "", "")
        );
    }

    #[test]
    fn each_field_is_cut_on_its_own_and_the_cuts_keep_their_order() {
        let long = "a".repeat(MAX_FIELD + 10);
        let k = Kept::new("GET", Some(&long), &format!("/{long}"), long.as_bytes());
        assert_eq!(k.user_agent().len(), MAX_FIELD);
        assert_eq!(k.path().len(), MAX_FIELD);
        assert_eq!(k.host().map(str::len), Some(MAX_FIELD));
        assert_eq!(k.method(), "GET");
        let fields: Vec<&str> = k.truncated.iter().map(|t| t.field.as_str()).collect();
        assert_eq!(fields, ["user_agent", "path", "host"]);
        assert_eq!(k.truncated[1].len, MAX_FIELD + 11);
    }
}
