//! What the ledger holds, one JSON object per line.
//!
//! Every line starts with `seq` (gapless across files), `ts` (UTC, RFC 3339)
//! and `prev` (SHA-256, hex, of the previous line's bytes), then `type` and
//! the body. The first line of a ledger has `prev` = 64 zeros.

use serde::{Deserialize, Serialize};
use sha2::Digest;

/// `prev` of the very first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who made the request. A crawler address from an operator's published
/// ranges is a company's, and kept; any other address may be a person's
/// (GDPR) and is replaced by a keyed hash that the operator alone can
/// recompute for a given address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientId {
    Ip(String),
    Pseudonym(String),
}

/// The reservation in force for the requested path.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReservationInForce {
    /// The reservation location (`/films/*`).
    pub location: String,
    pub tdm_reserved: bool,
    /// What the client could have read: robots.txt, tdmrep.json, and the
    /// response headers of this path.
    pub signals_served: Vec<String>,
    /// `Content-Usage` value served for the path (IETF AIPREF), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_usage: Option<String>,
}

/// The client's last robots.txt fetch before this request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RobotsFetch {
    pub fetched_at: String,
    pub sha256: String,
}

/// A log-only rule that matched.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shadow {
    pub rule: String,
    pub would: String,
}

/// A refused, offered, rate-limited or log-only request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestRecord {
    pub request_id: String,
    /// When rempart read and decided the request (RFC 3339, UTC, to the
    /// millisecond); the line's `ts` is when the writer wrote it. Absent in
    /// ledgers written before this field existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<String>,
    pub client: ClientId,
    pub user_agent: String,
    pub agent: Option<String>,
    pub operator: Option<String>,
    pub purpose: Option<String>,
    pub identity: String,
    pub verification: String,
    pub verified_by: String,
    /// The Web Bot Auth verdict when the request was signed (`signed-unbound`:
    /// a key bound to nobody it claims, which confers nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    pub method: String,
    pub host: Option<String>,
    pub path: String,
    pub decision: String,
    pub status: u16,
    pub rule: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_only: Option<Shadow>,
    pub score: u16,
    pub signals: Vec<String>,
    /// The request's header fingerprint (hex): links the records of one
    /// client spread over many addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// The AS announcing the client address, its organisation name, and
    /// whether it is a hosting network (when `[network]` is on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_org: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hosting: bool,
    pub reservation: Option<ReservationInForce>,
    pub robots_txt: Option<RobotsFetch>,
    /// Client-supplied fields cut to [`MAX_FIELD`] bytes in this record, with
    /// the whole value's length and SHA-256.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<Truncated>,
}

/// The most bytes of a client-supplied field (user agent, path, host) a
/// record keeps.
pub const MAX_FIELD: usize = 512;

/// A field cut in a record: which, and what the whole value was.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Truncated {
    pub field: String,
    pub len: usize,
    pub sha256: String,
}

/// A client-supplied value as a record keeps it, appended to `out`: at most
/// [`MAX_FIELD`] bytes (cut on a character boundary); and what was cut, if
/// anything.
pub fn clip_into(field: &str, value: &[u8], out: &mut String) -> Option<Truncated> {
    if value.len() <= MAX_FIELD {
        out.push_str(&String::from_utf8_lossy(value));
        return None;
    }
    let mut end = MAX_FIELD;
    loop {
        match std::str::from_utf8(&value[..end]) {
            Ok(t) => break out.push_str(t),
            Err(e) if e.error_len().is_none() => end = e.valid_up_to(),
            Err(_) => break out.push_str(&String::from_utf8_lossy(&value[..MAX_FIELD])),
        }
    }
    Some(Truncated {
        field: field.to_owned(),
        len: value.len(),
        sha256: hex::encode(sha2::Sha256::digest(value)),
    })
}

/// A document rempart published, archived so that one can prove what was
/// served when.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublishedRecord {
    /// `robots.txt`, `tdmrep.json`, `reservation` (the config section),
    /// `clause.fr.html` and the clause's other languages and formats.
    pub document: String,
    pub sha256: String,
    pub content: String,
}

/// An override set or removed through the admin console's controls, and
/// what came of it: who was let in or kept out, from when (the line's `ts`)
/// until when, and the config in force afterwards.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ControlRecord {
    /// `allow`, `block`, `log-only` or `remove`.
    pub control: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// When the override stops applying (UTC, RFC 3339); none: until removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// `ok`, or `invalid` (refused: the override file was restored and the
    /// previous configuration kept serving) or `error`.
    pub result: String,
    /// The config hash in force afterwards (short form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// Why it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The body of a ledger line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Body {
    /// A process started writing; `torn_tail` names a last line the previous
    /// process left half-written (it crashed while writing it).
    Start {
        version: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        torn_tail: Option<String>,
    },
    Request(Box<RequestRecord>),
    Published(PublishedRecord),
    /// An operator's control from the admin console.
    Control(ControlRecord),
    /// Records that could not be written (queue overflow, or a full disk for
    /// longer than the queue could hold): the chain says what is missing.
    Gap {
        missing: u64,
        reason: String,
    },
    /// One client's request records beyond `evidence.max_records_per_client_minute`
    /// in the minute starting at `minute_start`: counted, not written.
    Limited {
        client: String,
        minute_start: String,
        records: u64,
    },
    /// Whole closed ledger files removed by retention (`evidence.retention_days`
    /// or `evidence.retention_bytes`), written into the live chain before they
    /// are removed, so that `verify` can tell a documented pruning from files
    /// that went missing.
    Pruned {
        reason: String,
        files: Vec<PrunedFile>,
    },
    /// What was counted, not recorded, between `period_start` and
    /// `period_end`, by operator: browser page visits its AI products
    /// referred, and its AI crawlers' pages let through.
    Tally {
        period_start: String,
        period_end: String,
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        referred: std::collections::BTreeMap<String, u64>,
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        crawled_allowed: std::collections::BTreeMap<String, u64>,
    },
}

/// A ledger file removed by retention: enough to show what it held (its
/// size and SHA-256 match a copy archived elsewhere) and where the chain
/// continues (the next file's first `prev` is `last_hash`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PrunedFile {
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
    /// `seq` of its first and last whole lines (none in an empty file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
    /// SHA-256 of its last whole line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_hash: Option<String>,
}

/// One ledger line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Line {
    pub seq: u64,
    pub ts: String,
    pub prev: String,
    #[serde(flatten)]
    pub body: Body,
}

/// A line as the writer serialises it: the same fields in the same order
/// (so the same bytes as [`Line`]), borrowing the body instead of copying
/// every string of it.
#[derive(Debug, Serialize)]
pub struct LineRef<'a> {
    pub seq: u64,
    pub ts: &'a str,
    pub prev: &'a str,
    #[serde(flatten)]
    pub body: &'a Body,
}

/// A request's line as the writer serialises it straight from what the
/// request path handed over ([`super::build::Pending`]): the fields of a
/// [`Line`] whose body is a [`RequestRecord`], in the same order with the same
/// omissions (so the same bytes, read back as a [`Line`]), every string
/// borrowed from the snapshot or the request's kept fields.
#[derive(Debug, Serialize)]
pub struct RequestLine<'a> {
    pub seq: u64,
    pub ts: &'a str,
    pub prev: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<&'a str>,
    pub client: &'a ClientId,
    pub user_agent: &'a str,
    pub agent: Option<&'a str>,
    pub operator: Option<&'a str>,
    pub purpose: Option<&'static str>,
    pub identity: &'static str,
    pub verification: &'static str,
    pub verified_by: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<&'static str>,
    pub method: &'a str,
    pub host: Option<&'a str>,
    pub path: &'a str,
    pub decision: &'static str,
    pub status: u16,
    pub rule: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_only: Option<ShadowRef<'a>>,
    pub score: u16,
    pub signals: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_org: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub hosting: bool,
    pub reservation: Option<ReservationRef<'a>>,
    pub robots_txt: Option<RobotsFetchRef<'a>>,
    #[serde(skip_serializing_if = "<[Truncated]>::is_empty")]
    pub truncated: &'a [Truncated],
}

/// [`Shadow`], borrowed.
#[derive(Debug, Serialize)]
pub struct ShadowRef<'a> {
    pub rule: &'a str,
    pub would: &'static str,
}

/// [`ReservationInForce`], borrowed.
#[derive(Debug, Serialize)]
pub struct ReservationRef<'a> {
    pub location: &'a str,
    pub tdm_reserved: bool,
    pub signals_served: &'static [&'static str],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_usage: Option<&'a str>,
}

/// [`RobotsFetch`], borrowed.
#[derive(Debug, Serialize)]
pub struct RobotsFetchRef<'a> {
    pub fetched_at: &'a str,
    pub sha256: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_borrowed_line_is_written_byte_for_byte_as_a_line() {
        let bodies = [
            Body::Gap {
                missing: 3,
                reason: "queue full".into(),
            },
            Body::Published(PublishedRecord {
                document: "robots.txt".into(),
                sha256: "ab".repeat(32),
                content: "User-agent: GPTBot\nDisallow: /\n\"quoted\" é".into(),
            }),
            Body::Start {
                version: "1".into(),
                torn_tail: None,
            },
        ];
        for body in bodies {
            let owned = Line {
                seq: 7,
                ts: "2026-12-02T02:00:00Z".into(),
                prev: GENESIS.into(),
                body: body.clone(),
            };
            let borrowed = LineRef {
                seq: 7,
                ts: "2026-12-02T02:00:00Z",
                prev: GENESIS,
                body: &body,
            };
            let (a, b) = (
                serde_json::to_vec(&owned).unwrap(),
                serde_json::to_vec(&borrowed).unwrap(),
            );
            assert_eq!(a, b);
            let back: Line = serde_json::from_slice(&b).unwrap();
            assert_eq!(serde_json::to_vec(&back).unwrap(), a);
        }
    }
}
