//! Web Bot Auth: RFC 9421 HTTP message signatures from crawlers
//! (`Signature-Agent`, `Signature-Input` with `tag="web-bot-auth"`,
//! `Signature`), verified with Cloudflare's `web-bot-auth` crate.
//! `Signature-Agent` is accepted in both forms: the structured-field
//! dictionary of draft-ietf-webbotauth-httpsig-protocol (`sig1="https://…"`,
//! covered as `"signature-agent";key="sig1"`), and the legacy bare string.
//! All three headers reach the origin unchanged: the draft asks proxies not
//! to strip them, and an origin may verify them again.
//!
//! A signature proves who holds a key, never who someone is. So a key
//! directory counts only when it is *bound*: listed in the catalogue for the
//! agent the user agent claims (an HTTPS origin, with its source), or named
//! in the config for a licensee. Any other directory (another server, an
//! inline `data:` one, plain HTTP but for hosts the config allows) is never
//! fetched and confers nothing: the request is `signed-unbound`.
//!
//! The hot path never waits on the network: a bound directory not in the
//! cache makes the signature `unverifiable` for this request and starts one
//! background fetch (capped in flight); the next requests find the keys
//! cached until `ttl` passes. The cache holds bound origins only, so it is
//! as small as the catalogue and the config.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::catalog::AgentId;
use crate::request::Request;
use pingora::connectors::http::Connector;
use web_bot_auth::components::{
    CoveredComponent, DerivedComponent, HTTPField, HTTPFieldParameters,
};
use web_bot_auth::keyring::{JSONWebKeySet, KeyRing};
use web_bot_auth::message_signatures::SignedMessage;
use web_bot_auth::{SignatureAgentLink, WebBotAuthVerifier};

/// Larger signature headers are refused with 400 before any parsing.
pub const MAX_SIGNATURE_HEADER: usize = 4096;
/// Larger key directories are not accepted.
const MAX_DIRECTORY_BYTES: usize = 64 * 1024;
/// Clock skew tolerated on `created`.
const SKEW_SECS: i64 = 60;

/// The well-known path of a key directory under its origin.
pub const DIRECTORY_PATH: &str = "/.well-known/http-message-signatures-directory";

/// Who a bound directory speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// The agent the user agent claims: its operator publishes this directory.
    Agent,
    /// A licensee, by the index of its entry.
    Licensee(usize),
}

/// The directories that may verify whom: origin (`https://host[:port]`) →
/// the agents whose catalogue entry lists it, and the licensee the config
/// gives it to.
#[derive(Debug, Clone, Default)]
pub struct Bindings {
    origins: HashMap<String, Bound>,
    /// Hosts whose directories may be fetched over plain HTTP (tests).
    allow_http: Vec<String>,
}

#[derive(Debug, Clone, Default)]
struct Bound {
    agents: Vec<AgentId>,
    licensee: Option<usize>,
}

impl Bindings {
    pub fn new(allow_http_hosts: &[String]) -> Self {
        Self {
            origins: HashMap::new(),
            allow_http: allow_http_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
        }
    }

    /// The origin of a directory URL, if it may be fetched at all: HTTPS, or
    /// plain HTTP to a host the config allows; no credentials, no `data:`.
    pub fn origin_of(&self, url: &str) -> Option<String> {
        let uri: http::Uri = url.trim().parse().ok()?;
        let authority = uri.authority()?;
        if authority.as_str().contains('@') {
            return None;
        }
        let host = authority.host().to_ascii_lowercase();
        let scheme = match uri.scheme_str() {
            Some("https") => "https",
            Some("http") if self.allow_http.contains(&host) => "http",
            _ => return None,
        };
        Some(match authority.port_u16() {
            Some(port) => format!("{scheme}://{host}:{port}"),
            None => format!("{scheme}://{host}"),
        })
    }

    /// Binds a directory to an agent; `Err` when it may not be fetched.
    pub fn bind_agent(&mut self, url: &str, agent: AgentId) -> Result<(), String> {
        let origin = self.origin_of(url).ok_or_else(|| not_fetchable(url))?;
        self.origins.entry(origin).or_default().agents.push(agent);
        Ok(())
    }

    /// Binds a directory to a licensee; `Err` when it may not be fetched.
    pub fn bind_licensee(&mut self, url: &str, licensee: usize) -> Result<(), String> {
        let origin = self.origin_of(url).ok_or_else(|| not_fetchable(url))?;
        self.origins.entry(origin).or_default().licensee = Some(licensee);
        Ok(())
    }

    /// What a directory may verify for a request claiming `agent`.
    fn binding(&self, origin: &str, agent: Option<AgentId>) -> Option<Binding> {
        let bound = self.origins.get(origin)?;
        if agent.is_some_and(|a| bound.agents.contains(&a)) {
            return Some(Binding::Agent);
        }
        bound.licensee.map(Binding::Licensee)
    }

    pub fn is_empty(&self) -> bool {
        self.origins.is_empty()
    }
}

fn not_fetchable(url: &str) -> String {
    format!("{url:?} is not an https:// origin (plain http only for web_bot_auth.allow_http_hosts)")
}

/// The verdict on a request's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// No `Signature-Input` header.
    Absent,
    /// Valid, by the key with this JWK thumbprint, from a bound directory.
    Verified { keyid: String, by: Binding },
    /// Signed with a key from a directory bound to nobody it claims (or an
    /// inline or plain-HTTP one): proves only that the sender holds a key.
    Unbound,
    /// The key directory is not cached yet (a fetch has been started) or cannot be had.
    Unverifiable,
    /// Malformed, expired, not yet valid, or not matching its key.
    Invalid(&'static str),
    /// Oversized headers: answer 400.
    Hostile,
}

impl Signature {
    pub fn label(&self) -> &'static str {
        match self {
            Signature::Absent => "absent",
            Signature::Verified { .. } => "verified",
            Signature::Unbound => "signed-unbound",
            Signature::Unverifiable => "unverifiable",
            Signature::Invalid(_) => "invalid",
            Signature::Hostile => "hostile",
        }
    }
}

/// A request as the signature base sees it: the target as the client wrote it.
struct Message<'a> {
    req: &'a Request<'a>,
    authority: &'a str,
    scheme: &'static str,
}

impl Message<'_> {
    /// A header's values as the signature base covers them: every value,
    /// or, for `"name";key="member"` (RFC 9421 section 2.1.2), that one
    /// member of the field read as a dictionary, serialized again. The
    /// current draft signs `"signature-agent";key="sig1"` this way, and the
    /// bare-string form signs the whole field.
    fn field_values(&self, field: &HTTPField) -> Vec<String> {
        let values: Vec<String> = self
            .req
            .headers
            .get_all(field.name.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned())
            .collect();
        let key = field.parameters.0.iter().find_map(|p| match p {
            HTTPFieldParameters::Key(k) => Some(k.as_str()),
            _ => None,
        });
        match key {
            None => values,
            // A missing member or an unparsable field covers nothing, and
            // the verifier then refuses the signature.
            Some(key) => dictionary_member(&values.join(", "), key)
                .into_iter()
                .collect(),
        }
    }
}

/// The member `key` of a structured-field dictionary, serialized alone.
fn dictionary_member(field: &str, key: &str) -> Option<String> {
    let dict: sfv::Dictionary = sfv::Parser::new(field).parse_dictionary().ok()?;
    let entry = dict.get(key)?.clone();
    let one: sfv::List = vec![entry];
    sfv::FieldType::serialize(&one)
}

impl SignedMessage for Message<'_> {
    fn lookup_component(&self, name: &CoveredComponent) -> Vec<String> {
        let uri = self.req.uri;
        let path = uri.path();
        let query = uri.query();
        match name {
            CoveredComponent::HTTP(field) => self.field_values(field),
            CoveredComponent::Derived(d) => match d {
                DerivedComponent::Authority { .. } => vec![self.authority.to_ascii_lowercase()],
                DerivedComponent::Method { .. } => vec![self.req.method.as_str().to_owned()],
                DerivedComponent::Path { .. } => vec![path.to_owned()],
                DerivedComponent::Scheme { .. } => vec![self.scheme.to_owned()],
                DerivedComponent::Query { .. } => vec![format!("?{}", query.unwrap_or(""))],
                DerivedComponent::RequestTarget { .. } => vec![uri
                    .path_and_query()
                    .map_or_else(|| path.to_owned(), |pq| pq.as_str().to_owned())],
                DerivedComponent::TargetUri { .. } => vec![format!(
                    "{}://{}{}",
                    self.scheme,
                    self.authority.to_ascii_lowercase(),
                    uri.path_and_query().map_or(path, |pq| pq.as_str())
                )],
                _ => vec![],
            },
        }
    }
}

/// A cached key directory.
#[derive(Clone)]
struct Directory {
    keys: Option<Arc<KeyRing>>,
    at: Instant,
}

/// Key directories of bound origins, shared by every request: a bounded
/// cache (S3-FIFO eviction), read without copying on the request path.
pub struct KeyDirectories {
    cache: quick_cache::sync::Cache<String, Directory>,
    in_flight: AtomicUsize,
    max_in_flight: usize,
    ttl: Duration,
    /// Built on the first fetch: a connector loads the system's root
    /// certificates, megabytes that a site without signed crawlers never needs.
    connector: std::sync::OnceLock<Connector>,
}

impl Default for KeyDirectories {
    fn default() -> Self {
        Self::new(Duration::from_secs(3600), 8)
    }
}

/// At most this many directories are cached (only bound origins are).
const MAX_DIRECTORIES: usize = 1024;

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl KeyDirectories {
    pub fn new(ttl: Duration, max_in_flight: usize) -> Self {
        Self {
            cache: quick_cache::sync::Cache::new(MAX_DIRECTORIES),
            in_flight: AtomicUsize::new(0),
            max_in_flight,
            ttl,
            connector: std::sync::OnceLock::new(),
        }
    }

    /// Checks the signature of a request that claims `agent`. Never waits
    /// on the network, and fetches only bound directories.
    pub fn check(
        self: &Arc<Self>,
        req: &Request<'_>,
        agent: Option<AgentId>,
        bindings: &Bindings,
    ) -> Signature {
        // Most requests carry no signature: one lookup, then nothing.
        use crate::request::names;
        if !req.signed {
            return Signature::Absent;
        }
        for name in [
            names::SIGNATURE_INPUT,
            names::SIGNATURE,
            names::SIGNATURE_AGENT,
        ] {
            for (count, v) in req.headers.get_all(name).iter().enumerate() {
                if v.len() > MAX_SIGNATURE_HEADER || count >= 4 {
                    return Signature::Hostile;
                }
            }
        }
        let authority = req
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri.authority().map(|a| a.as_str()))
            .unwrap_or("");
        let message = Message {
            req,
            authority,
            scheme: if req.secure { "https" } else { "http" },
        };
        let Ok(verifier) = WebBotAuthVerifier::parse(&message) else {
            return Signature::Invalid("malformed");
        };
        let details = &verifier.get_parsed_label().base.parameters.details;
        let now = now_unix();
        if details.created.is_some_and(|c| c > now + SKEW_SECS) {
            return Signature::Invalid("not yet valid");
        }
        if details.expires.is_none_or(|e| e < now) {
            return Signature::Invalid("expired");
        }
        let keyid = details.keyid.clone().unwrap_or_default();
        // The first directory named that is bound for this request.
        let bound = verifier
            .get_signature_agents()
            .iter()
            .find_map(|link| match link {
                SignatureAgentLink::External(url) => {
                    let origin = bindings.origin_of(url)?;
                    bindings.binding(&origin, agent).map(|by| (origin, by))
                }
                SignatureAgentLink::Inline(_) => None,
            });
        let Some((origin, by)) = bound else {
            return Signature::Unbound;
        };
        let Some(ring) = self.lookup(&origin, bindings) else {
            return Signature::Unverifiable;
        };
        match verifier.verify(&ring, None) {
            Ok(_) => Signature::Verified { keyid, by },
            Err(_) => Signature::Invalid("signature"),
        }
    }

    /// The cached keys of a directory; on a miss or a stale entry, starts a fetch.
    fn lookup(self: &Arc<Self>, origin: &str, bindings: &Bindings) -> Option<Arc<KeyRing>> {
        match self.cache.get(origin) {
            Some(d) if d.at.elapsed() < self.ttl => d.keys,
            stale => {
                self.spawn_fetch(origin.to_owned(), bindings.allow_http.clone());
                // A stale copy still verifies while the new one is fetched.
                stale.and_then(|d| d.keys)
            }
        }
    }

    fn spawn_fetch(self: &Arc<Self>, origin: String, private_ok: Vec<String>) {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.max_in_flight {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return;
        };
        // Mark the origin as being fetched (an empty, fresh entry) so that the
        // requests behind this one do not start fetches of their own.
        self.store(&origin, None);
        let this = self.clone();
        handle.spawn(async move {
            let fetch = this.fetch(&origin, &private_ok);
            let keys = tokio::time::timeout(Duration::from_secs(5), fetch).await;
            let m = crate::metrics::metrics();
            match keys {
                Ok(Ok(ring)) => {
                    m.key_directory_fetches.with_label_values(&["ok"]).inc();
                    this.store(&origin, Some(Arc::new(ring)));
                }
                Ok(Err(e)) => {
                    m.key_directory_fetches.with_label_values(&["error"]).inc();
                    tracing::warn!(origin, error = %e, "key directory fetch failed");
                }
                Err(_) => {
                    m.key_directory_fetches
                        .with_label_values(&["timeout"])
                        .inc();
                    tracing::warn!(origin, "key directory fetch timed out");
                }
            }
            this.in_flight.fetch_sub(1, Ordering::AcqRel);
        });
    }

    fn store(&self, origin: &str, keys: Option<Arc<KeyRing>>) {
        self.cache.insert(
            origin.to_owned(),
            Directory {
                keys,
                at: Instant::now(),
            },
        );
    }

    async fn fetch(&self, origin: &str, private_ok: &[String]) -> Result<KeyRing, String> {
        let connector = self.connector.get_or_init(|| Connector::new(None));
        let url = format!("{origin}{DIRECTORY_PATH}");
        let body = crate::ops::fetch::get(
            connector,
            &url,
            "application/http-message-signatures-directory+json, application/json",
            MAX_DIRECTORY_BYTES,
            Duration::from_secs(3),
            private_ok,
        )
        .await
        .map_err(|e| format!("directory: {e}"))?;
        let jwks: JSONWebKeySet =
            serde_json::from_slice(&body).map_err(|e| format!("not a JWKS: {e}"))?;
        let mut ring = KeyRing::default();
        ring.import_jwks(jwks);
        Ok(ring)
    }
}

#[cfg(test)]
mod tests {
    use super::dictionary_member;

    #[test]
    fn a_dictionary_member_is_serialized_alone() {
        let field = r#"sig1="https://agent.example", sig2="https://other.example";p=1"#;
        assert_eq!(
            dictionary_member(field, "sig1").as_deref(),
            Some(r#""https://agent.example""#)
        );
        assert_eq!(
            dictionary_member(field, "sig2").as_deref(),
            Some(r#""https://other.example";p=1"#)
        );
        assert_eq!(dictionary_member(field, "sig3"), None);
        // The legacy bare string is not a dictionary: no member to cover.
        assert_eq!(
            dictionary_member(r#""https://agent.example""#, "sig1"),
            None
        );
    }
}
