//! Web Bot Auth: RFC 9421 HTTP message signatures from crawlers
//! (`Signature-Agent`, `Signature-Input` with `tag="web-bot-auth"`,
//! `Signature`), verified with Cloudflare's `web-bot-auth` crate.
//!
//! The agent's keys live in its key directory (a JWKS at the
//! `Signature-Agent` URL). The hot path never waits on the network: a
//! directory not in the cache makes the signature `unverifiable` for this
//! request and starts one background fetch (capped in flight); the next
//! requests find the keys cached until `ttl` passes. Inline `data:`
//! directories need no fetch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use web_bot_auth::components::{CoveredComponent, DerivedComponent, HTTPField};
use web_bot_auth::keyring::{JSONWebKeySet, KeyRing};
use web_bot_auth::message_signatures::SignedMessage;
use web_bot_auth::{SignatureAgentLink, WebBotAuthVerifier};

/// Larger signature headers are refused with 400 before any parsing.
pub const MAX_SIGNATURE_HEADER: usize = 4096;
/// Larger key directories are not accepted.
const MAX_DIRECTORY_BYTES: usize = 64 * 1024;
/// Clock skew tolerated on `created`.
const SKEW_SECS: i64 = 60;

/// The verdict on a request's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// No `Signature-Input` header.
    Absent,
    /// Valid, by the key with this JWK thumbprint.
    Verified { keyid: String },
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
            Signature::Unverifiable => "unverifiable",
            Signature::Invalid(_) => "invalid",
            Signature::Hostile => "hostile",
        }
    }
}

/// A request as the signature base sees it.
struct Message<'a> {
    req: &'a RequestHeader,
    authority: &'a str,
    scheme: &'static str,
}

impl SignedMessage for Message<'_> {
    fn lookup_component(&self, name: &CoveredComponent) -> Vec<String> {
        let uri = &self.req.uri;
        let path = uri.path();
        let query = uri.query();
        match name {
            CoveredComponent::HTTP(HTTPField { name, .. }) => self
                .req
                .headers
                .get_all(name.as_str())
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(|v| v.trim().to_owned())
                .collect(),
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
struct Directory {
    keys: Option<Arc<KeyRing>>,
    at: Instant,
}

/// Key directories by URL, shared by every request.
pub struct KeyDirectories {
    cache: ArcSwap<HashMap<String, Arc<Directory>>>,
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

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl KeyDirectories {
    pub fn new(ttl: Duration, max_in_flight: usize) -> Self {
        Self {
            cache: ArcSwap::from_pointee(HashMap::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight,
            ttl,
            connector: std::sync::OnceLock::new(),
        }
    }

    /// Checks the signature of a request. Never waits on the network.
    pub fn check(self: &Arc<Self>, req: &RequestHeader, authority: &str, tls: bool) -> Signature {
        // Most requests carry no signature: one lookup, then nothing.
        if !req.headers.contains_key("signature-input") {
            return Signature::Absent;
        }
        let headers = ["signature-input", "signature", "signature-agent"];
        let mut present = false;
        for name in headers {
            let values = req.headers.get_all(name);
            let mut count = 0;
            for v in values.iter() {
                count += 1;
                if v.len() > MAX_SIGNATURE_HEADER || count > 4 {
                    return Signature::Hostile;
                }
            }
            present |= name == "signature-input" && count > 0;
        }
        if !present {
            return Signature::Absent;
        }
        let message = Message {
            req,
            authority,
            scheme: if tls { "https" } else { "http" },
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
        let mut keyring = None;
        for link in verifier.get_signature_agents() {
            match link {
                SignatureAgentLink::Inline(jwks) => {
                    let mut ring = KeyRing::default();
                    ring.import_jwks(jwks.clone());
                    keyring = Some(Arc::new(ring));
                }
                SignatureAgentLink::External(url) => keyring = self.lookup(url),
            }
            if keyring.is_some() {
                break;
            }
        }
        let Some(ring) = keyring else {
            return Signature::Unverifiable;
        };
        match verifier.verify(&ring, None) {
            Ok(_) => Signature::Verified { keyid },
            Err(_) => Signature::Invalid("signature"),
        }
    }

    /// The cached keys of a directory; on a miss or a stale entry, starts a fetch.
    fn lookup(self: &Arc<Self>, url: &str) -> Option<Arc<KeyRing>> {
        let cache = self.cache.load();
        let entry = cache.get(url).cloned();
        drop(cache);
        match entry {
            Some(d) if d.at.elapsed() < self.ttl => d.keys.clone(),
            stale => {
                self.spawn_fetch(url.to_owned());
                // A stale copy still verifies while the new one is fetched.
                stale.and_then(|d| d.keys.clone())
            }
        }
    }

    fn spawn_fetch(self: &Arc<Self>, url: String) {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.max_in_flight {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return;
        };
        // Mark the URL as being fetched (an empty, fresh entry) so that the
        // requests behind this one do not start fetches of their own.
        self.store(&url, None);
        let this = self.clone();
        handle.spawn(async move {
            let keys = tokio::time::timeout(Duration::from_secs(5), this.fetch(&url)).await;
            let m = crate::metrics::metrics();
            match keys {
                Ok(Ok(ring)) => {
                    m.key_directory_fetches.with_label_values(&["ok"]).inc();
                    this.store(&url, Some(Arc::new(ring)));
                }
                Ok(Err(e)) => {
                    m.key_directory_fetches.with_label_values(&["error"]).inc();
                    tracing::warn!(url, error = %e, "key directory fetch failed");
                }
                Err(_) => {
                    m.key_directory_fetches
                        .with_label_values(&["timeout"])
                        .inc();
                    tracing::warn!(url, "key directory fetch timed out");
                }
            }
            this.in_flight.fetch_sub(1, Ordering::AcqRel);
        });
    }

    fn store(&self, url: &str, keys: Option<Arc<KeyRing>>) {
        self.cache.rcu(|old| {
            let mut map = HashMap::clone(old);
            map.insert(
                url.to_owned(),
                Arc::new(Directory {
                    keys: keys.clone(),
                    at: Instant::now(),
                }),
            );
            map
        });
    }

    async fn fetch(&self, url: &str) -> Result<KeyRing, String> {
        let connector = self.connector.get_or_init(|| Connector::new(None));
        let body = crate::fetch::get(
            connector,
            url,
            "application/http-message-signatures-directory+json, application/json",
            MAX_DIRECTORY_BYTES,
            Duration::from_secs(3),
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
