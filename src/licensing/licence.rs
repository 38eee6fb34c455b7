//! Licensed crawlers: credentials the rights holder issued, checked on every
//! request that presents one.
//!
//! Tokens are never stored: the config holds their SHA-256, and a presented
//! token is hashed and compared in constant time against every credential.
//! `Authorization: License <token>` is RSL's scheme and always rempart's
//! business, so a wrong or expired one gets 401. `Bearer` tokens may belong
//! to the origin's own API, so an unknown bearer token is left alone and only
//! a known one (valid or expired) is acted upon.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::catalog::{AgentId, Catalogue};

/// Longest token accepted; anything longer is refused without hashing.
pub const MAX_TOKEN_LEN: usize = 512;

/// A licensee as written in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenseeSpec {
    /// Short stable identifier, sent upstream and used in metrics.
    pub id: String,
    pub name: String,
    /// Catalogue agents the licence covers; any user agent when empty.
    #[serde(default)]
    pub agents: Vec<String>,
    /// Path prefixes (`/films/`) the licence covers; all when empty.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Hosts the licence covers; all when empty.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Last day of validity (`YYYY-MM-DD`, UTC), inclusive.
    #[serde(default)]
    pub expires: Option<String>,
    /// Requests per UTC day the licence allows; past it, 429 until midnight UTC.
    #[serde(default)]
    pub quota_per_day: Option<u64>,
    /// SHA-256 of each credential, in hex (`rempart licences hash-token`).
    #[serde(default)]
    pub token_sha256: Vec<String>,
    /// Web Bot Auth keys (JWK thumbprints) bound to this licence: a request
    /// signed with one of them is licensed without a token.
    #[serde(default)]
    pub key_ids: Vec<String>,
    /// Origins (`https://crawler.example`) whose key directory holds those
    /// keys; only these directories are ever fetched for this licensee.
    #[serde(default)]
    pub key_directories: Vec<String>,
}

/// A compiled licensee.
#[derive(Debug, Clone)]
pub struct Licensee {
    pub id: String,
    pub name: String,
    agents: Vec<AgentId>,
    paths: Vec<String>,
    hosts: Vec<String>,
    /// Seconds since the epoch after which the licence is void.
    expires_at: Option<u64>,
    pub quota_per_day: Option<u64>,
    hashes: Vec<[u8; 32]>,
    key_ids: Vec<String>,
    /// Metric handles, resolved on first use so that the per-request count
    /// is one atomic add, not a label hash under the family's lock.
    requests: std::sync::OnceLock<prometheus::IntCounter>,
    bytes: std::sync::OnceLock<prometheus::IntCounter>,
}

impl Licensee {
    /// Counts one licensed request.
    pub fn count_request(&self) {
        self.requests
            .get_or_init(|| {
                crate::metrics::metrics()
                    .licensed_requests
                    .with_label_values(&[self.id.as_str()])
            })
            .inc();
    }

    /// Counts the body bytes sent on a licensed request.
    pub fn count_bytes(&self, n: u64) {
        self.bytes
            .get_or_init(|| {
                crate::metrics::metrics()
                    .licensed_bytes
                    .with_label_values(&[self.id.as_str()])
            })
            .inc_by(n);
    }
}

/// What a request's credential says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// No licence credential presented (or a bearer token rempart does not know).
    None,
    /// A valid licence covering this request.
    Licensed(usize),
    /// A valid licence that does not cover this agent, host or path.
    OutOfScope(usize),
    /// Wrong, malformed, oversized or expired: answer 401.
    Invalid,
}

/// A licensee entry that cannot be compiled.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct LicenceError {
    pub index: usize,
    pub field: String,
    pub message: String,
}

/// Requests counted against a licence's daily quota (UTC day).
#[derive(Debug, Default)]
struct QuotaCounter {
    day: std::sync::atomic::AtomicU64,
    count: std::sync::atomic::AtomicU64,
}

/// All licensees.
#[derive(Debug, Clone, Default)]
pub struct Licensees {
    list: Vec<Licensee>,
    /// One counter per licensee; kept for the life of the snapshot.
    usage: std::sync::Arc<Vec<QuotaCounter>>,
}

/// The SHA-256 of a token, as stored in the config.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Licensee {
    /// One licensee whose id was checked, against the catalogue.
    fn compile(
        s: &LicenseeSpec,
        catalogue: &Catalogue,
        err: &dyn Fn(&str, String) -> LicenceError,
    ) -> Result<Self, LicenceError> {
        let mut agents = Vec::new();
        for (j, a) in s.agents.iter().enumerate() {
            agents.push(catalogue.by_name(a).ok_or_else(|| {
                err(
                    &format!("agents[{j}]"),
                    format!("no agent {a:?} in the catalogue"),
                )
            })?);
        }
        if let Some((j, p)) = s
            .paths
            .iter()
            .enumerate()
            .find(|(_, p)| !p.starts_with('/'))
        {
            return Err(err(
                &format!("paths[{j}]"),
                format!("{p:?} must start with '/'"),
            ));
        }
        let expires_at = s
            .expires
            .as_ref()
            .map(|d| d.parse::<crate::day::Day>().map(|d| d.end_unix()))
            .transpose()
            .map_err(|e| err("expires", e.to_string()))?;
        if !s.key_ids.is_empty() && s.key_directories.is_empty() {
            return Err(err(
                "key_directories",
                "key_ids need the origin of the key directory that holds them".into(),
            ));
        }
        if s.token_sha256.is_empty() && s.key_ids.is_empty() {
            return Err(err(
                "token_sha256",
                "give at least one credential hash or Web Bot Auth key id".into(),
            ));
        }
        let mut hashes = Vec::with_capacity(s.token_sha256.len());
        for (j, h) in s.token_sha256.iter().enumerate() {
            let mut out = [0u8; 32];
            hex::decode_to_slice(h.trim(), &mut out).map_err(|_| {
                err(
                    &format!("token_sha256[{j}]"),
                    "not a SHA-256 in hex (64 characters)".into(),
                )
            })?;
            hashes.push(out);
        }
        Ok(Licensee {
            id: s.id.clone(),
            name: s.name.clone(),
            agents,
            paths: s.paths.clone(),
            hosts: s.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
            expires_at,
            quota_per_day: s.quota_per_day,
            hashes,
            key_ids: s.key_ids.clone(),
            requests: std::sync::OnceLock::new(),
            bytes: std::sync::OnceLock::new(),
        })
    }
}

impl Licensees {
    /// Compiles the written licensees against a catalogue (agent names must
    /// exist); an error names the licensee's index and field.
    pub fn compile(specs: &[LicenseeSpec], catalogue: &Catalogue) -> Result<Self, LicenceError> {
        let mut list = Vec::with_capacity(specs.len());
        let mut ids = std::collections::HashSet::new();
        for (index, s) in specs.iter().enumerate() {
            let err = |field: &str, message: String| LicenceError {
                index,
                field: field.to_owned(),
                message,
            };
            let valid = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
            if s.id.is_empty() || !s.id.bytes().all(valid) {
                return Err(err(
                    "id",
                    format!("{:?}: use letters, digits, '-' and '_'", s.id),
                ));
            }
            if !ids.insert(s.id.as_str()) {
                return Err(err("id", format!("duplicate licensee id {:?}", s.id)));
            }
            let licensee = Licensee::compile(s, catalogue, &err)?;
            list.push(licensee);
        }
        let usage = std::sync::Arc::new(list.iter().map(|_| QuotaCounter::default()).collect());
        Ok(Self { list, usage })
    }

    /// Counts one request against licence `i`'s daily quota; false once the
    /// quota of the current UTC day is used up.
    pub fn take_quota(&self, i: usize, now: SystemTime) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let (Some(l), Some(c)) = (self.list.get(i), self.usage.get(i)) else {
            return true;
        };
        let Some(quota) = l.quota_per_day else {
            return true;
        };
        let day = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 86_400);
        if c.day.swap(day, Relaxed) != day {
            c.count.store(0, Relaxed);
        }
        c.count.fetch_add(1, Relaxed) < quota
    }

    pub fn get(&self, i: usize) -> Option<&Licensee> {
        self.list.get(i)
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Licensee> {
        self.list.iter()
    }

    /// Checks the `Authorization` header of a request.
    pub fn check(
        &self,
        authorization: Option<&[u8]>,
        agent: Option<AgentId>,
        host: Option<&str>,
        path: &str,
        now: SystemTime,
    ) -> Credential {
        let Some(raw) = authorization else {
            return Credential::None;
        };
        let (scheme, token) = match raw.iter().position(|&b| b == b' ') {
            Some(i) => (&raw[..i], raw[i + 1..].trim_ascii()),
            None => (raw, &b""[..]),
        };
        let licence_scheme = scheme.eq_ignore_ascii_case(b"License");
        if !licence_scheme && !scheme.eq_ignore_ascii_case(b"Bearer") {
            return Credential::None;
        }
        if self.list.is_empty() && !licence_scheme {
            return Credential::None;
        }
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return if licence_scheme {
                Credential::Invalid
            } else {
                Credential::None
            };
        }
        let digest: [u8; 32] = Sha256::digest(token).into();
        // Compare against every credential, without stopping at a match.
        let mut found: Option<usize> = None;
        for (i, l) in self.list.iter().enumerate() {
            for h in &l.hashes {
                if bool::from(h.ct_eq(&digest)) && found.is_none() {
                    found = Some(i);
                }
            }
        }
        let Some(i) = found else {
            return if licence_scheme {
                Credential::Invalid
            } else {
                Credential::None
            };
        };
        self.scope(i, agent, host, path, now)
    }

    /// Licence `i`, for a request signed with a key from its directory:
    /// licensed only when the config binds that key id to it.
    pub fn check_key(
        &self,
        i: usize,
        keyid: &str,
        agent: Option<AgentId>,
        host: Option<&str>,
        path: &str,
        now: SystemTime,
    ) -> Credential {
        match self.list.get(i) {
            Some(l) if l.key_ids.iter().any(|k| k == keyid) => {
                self.scope(i, agent, host, path, now)
            }
            _ => Credential::None,
        }
    }

    /// Validity and scope of licence `i` for this request.
    fn scope(
        &self,
        i: usize,
        agent: Option<AgentId>,
        host: Option<&str>,
        path: &str,
        now: SystemTime,
    ) -> Credential {
        let l = &self.list[i];
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if l.expires_at.is_some_and(|t| now >= t) {
            return Credential::Invalid;
        }
        let agent_ok = l.agents.is_empty() || agent.is_some_and(|a| l.agents.contains(&a));
        let path_ok = l.paths.is_empty() || l.paths.iter().any(|p| path.starts_with(p.as_str()));
        let host_ok = l.hosts.is_empty()
            || host.is_some_and(|h| l.hosts.iter().any(|x| h.eq_ignore_ascii_case(x)));
        if agent_ok && path_ok && host_ok {
            Credential::Licensed(i)
        } else {
            Credential::OutOfScope(i)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::file::CatalogFile;
    use crate::identify::ranges::RangeTable;
    use std::path::PathBuf;
    use std::time::Duration;

    fn catalogue() -> Catalogue {
        let file: CatalogFile =
            toml::from_str("[[agent]]\nname='GPTBot'\noperator='OpenAI'\npurpose='ai-training'\n")
                .unwrap();
        Catalogue::compile(
            vec![(PathBuf::from("a.toml"), file)],
            &RangeTable::default(),
        )
        .unwrap()
    }

    fn licensees(extra: &str) -> Licensees {
        try_licensees(extra).unwrap()
    }

    fn try_licensees(extra: &str) -> Result<Licensees, LicenceError> {
        #[derive(Deserialize)]
        struct F {
            licensees: Vec<LicenseeSpec>,
        }
        let text = format!(
            "[[licensees]]\nid='acme'\nname='ACME'\nagents=['GPTBot']\npaths=['/films/']\ntoken_sha256=['{}']\n{extra}",
            hash_token("s3cret-token")
        );
        let f: F = toml::from_str(&text).unwrap();
        Licensees::compile(&f.licensees, &catalogue())
    }

    #[test]
    fn an_expiry_day_that_does_not_exist_is_refused() {
        for bad in ["2026-02-31", "2026-13-99", "31/12/2026"] {
            let e = try_licensees(&format!("expires='{bad}'\n")).unwrap_err();
            assert_eq!(e.field, "expires", "{bad}");
            assert!(e.message.contains(bad), "{}", e.message);
        }
    }

    fn at(date: &str) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(date.parse::<crate::day::Day>().unwrap().end_unix() - 3600)
    }

    #[test]
    fn licence_tokens() {
        let l = licensees("");
        let gpt = Some(AgentId(0));
        let now = at("2026-11-23");
        let huge = format!("License {}", "a".repeat(10_000));
        type Case<'a> = (Option<&'a [u8]>, Option<AgentId>, &'a str, Credential);
        let cases: [Case; 12] = [
            (
                Some(b"License s3cret-token"),
                gpt,
                "/films/x",
                Credential::Licensed(0),
            ),
            (
                Some(b"Bearer s3cret-token"),
                gpt,
                "/films/x",
                Credential::Licensed(0),
            ),
            (
                Some(b"license   s3cret-token  "),
                gpt,
                "/films/x",
                Credential::Licensed(0),
            ),
            (Some(b"License wrong"), gpt, "/films/x", Credential::Invalid),
            (Some(b"License"), gpt, "/films/x", Credential::Invalid),
            (
                Some(b"Bearer someone-elses-api-token"),
                gpt,
                "/films/x",
                Credential::None,
            ),
            (
                Some(b"Basic dXNlcjpwYXNz"),
                gpt,
                "/films/x",
                Credential::None,
            ),
            (None, gpt, "/films/x", Credential::None),
            (
                Some(b"License s3cret-token"),
                None,
                "/films/x",
                Credential::OutOfScope(0),
            ),
            (
                Some(b"License s3cret-token"),
                gpt,
                "/news/x",
                Credential::OutOfScope(0),
            ),
            (Some(huge.as_bytes()), gpt, "/films/x", Credential::Invalid),
            (
                Some(b"License \xff\xfe"),
                gpt,
                "/films/x",
                Credential::Invalid,
            ),
        ];
        for (auth, agent, path, expected) in cases {
            let shown = auth.map(|a| String::from_utf8_lossy(&a[..a.len().min(40)]).into_owned());
            assert_eq!(
                l.check(auth, agent, None, path, now),
                expected,
                "{shown:?} {path}"
            );
        }
    }

    #[test]
    fn expired_licences_are_invalid() {
        let l = licensees("expires='2026-06-30'\n");
        let gpt = Some(AgentId(0));
        assert_eq!(
            l.check(
                Some(b"License s3cret-token"),
                gpt,
                None,
                "/films/x",
                at("2026-06-30")
            ),
            Credential::Licensed(0)
        );
        assert_eq!(
            l.check(
                Some(b"License s3cret-token"),
                gpt,
                None,
                "/films/x",
                at("2026-07-01")
            ),
            Credential::Invalid
        );
        assert_eq!(
            l.check(
                Some(b"Bearer s3cret-token"),
                gpt,
                None,
                "/films/x",
                at("2026-07-01")
            ),
            Credential::Invalid
        );
    }

    #[test]
    fn daily_quota() {
        let l = licensees("quota_per_day=2\n");
        let day1 = at("2026-11-23");
        assert!(l.take_quota(0, day1));
        assert!(l.take_quota(0, day1));
        assert!(!l.take_quota(0, day1));
        assert!(l.take_quota(0, at("2026-11-24")), "a new day, a new quota");
        assert!(licensees("").take_quota(0, day1), "no quota, no limit");
    }

    #[test]
    fn bad_entries_name_the_field() {
        #[derive(Deserialize)]
        struct F {
            licensees: Vec<LicenseeSpec>,
        }
        let f: F =
            toml::from_str("[[licensees]]\nid='a'\nname='A'\ntoken_sha256=['abc']\n").unwrap();
        let e = Licensees::compile(&f.licensees, &catalogue()).unwrap_err();
        assert_eq!(e.field, "token_sha256[0]");
        let f: F = toml::from_str("[[licensees]]\nid='a b'\nname='A'\ntoken_sha256=[]\n").unwrap();
        assert_eq!(
            Licensees::compile(&f.licensees, &catalogue())
                .unwrap_err()
                .field,
            "id"
        );
    }
}
