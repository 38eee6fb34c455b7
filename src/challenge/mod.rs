//! The browser challenge: an interstitial that a real browser passes by
//! itself, for clients that cannot be told apart from a person.
//!
//! A page navigation that a `challenge` rule matches, from a client without
//! a valid pass, gets the interstitial ([`page`]): a script finds a small
//! proof of work ([`pow`]) for a nonce signed by rempart ([`token`]) and
//! goes to the verification path; a browser without JavaScript follows a
//! delayed `<noscript>` meta refresh to the same path instead. The
//! verification sets the pass cookie (bound to the client's address and user
//! agent, expiring) and redirects to the page, which then passes. A valid
//! pass, or a request that is not a page navigation (assets, media segments,
//! API calls), passes over the challenge rule to the next one.
//!
//! What a pass proves: the client ran a browser engine that executed the
//! script (or followed the refresh and waited), kept cookies, and spent a
//! little CPU, once per address and user agent. What it does not prove:
//! that a person is there (a headless browser passes too) or that the
//! client is not a crawler. It makes scraping from many addresses cost one
//! browser session per address; it is never a wall.

pub mod key;
pub mod page;
pub mod pow;
pub mod token;

use std::net::IpAddr;
use std::path::Path;

use percent_encoding::{percent_decode, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::behaviour::PathClass;
use crate::config::challenge::ChallengeSection;
use crate::request::cookie::PASS_COOKIE;
use crate::request::{FetchMetadata, Request};
use token::{Key, Rejected};

/// The verification path: under `/.well-known/`, which the shipped rules
/// keep reachable, and one of rempart's own documents.
pub const VERIFY_PATH: &str = "/.well-known/rempart/challenge";

/// What the pass cookie of a request gave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Pass {
    /// None sent (or the challenge is off).
    #[default]
    Absent,
    Valid,
    /// Forged, expired, or made for another client.
    Invalid,
}

/// One step of a challenge, as counted in `rempart_challenges_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Issued,
    Passed,
    Failed,
    Admitted,
    InvalidPass,
}

impl Event {
    pub const ALL: [Event; 5] = [
        Event::Issued,
        Event::Passed,
        Event::Failed,
        Event::Admitted,
        Event::InvalidPass,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::Issued => "issued",
            Event::Passed => "passed",
            Event::Failed => "failed",
            Event::Admitted => "admitted",
            Event::InvalidPass => "invalid-pass",
        }
    }
}

/// The challenge, compiled.
#[derive(Debug, Clone)]
pub struct Settings {
    pub enabled: bool,
    key: Key,
    pub pass_lifetime_secs: u64,
    pub difficulty: u8,
    nonce_lifetime_ms: u64,
    /// The `<noscript>` step's wait.
    pub noscript_delay_secs: u64,
    pub status: u16,
}

/// What the verification path decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Set this cookie and go back to this same-site path.
    Passed {
        set_cookie: String,
        location: String,
    },
    /// Challenge again, for this page.
    Failed { return_to: String },
}

/// Characters left as they are in the return path: unreserved and `/`; the
/// rest is percent-encoded, so that it is safe in an HTML attribute, a
/// script string and a query value alike.
const RETURN: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl Settings {
    /// Compiles the section. The key is read from `key_path`; when absent it
    /// is created, unless `create` is false (commands that serve nothing),
    /// which then use a key of their own for the run.
    pub fn compile(s: &ChallengeSection, key_path: &Path, create: bool) -> anyhow::Result<Self> {
        const WHAT: &str = "challenge key";
        let key = match (s.enabled, create) {
            (true, true) => key::load_or_create(key_path, WHAT)?,
            _ => match key::read(key_path, WHAT)? {
                Some(k) => k,
                None => key::random(WHAT)?,
            },
        };
        Ok(Self {
            enabled: s.enabled,
            key: Key::new(key),
            pass_lifetime_secs: s.pass_lifetime_seconds,
            difficulty: s.difficulty,
            nonce_lifetime_ms: s.nonce_lifetime_seconds * 1000,
            noscript_delay_secs: s.noscript_delay_seconds,
            status: s.status,
        })
    }

    /// Checks the pass cookie the request carries.
    pub fn pass(&self, req: &Request<'_>) -> Pass {
        match (self.enabled, req.pass_cookie) {
            (true, Some(value)) => {
                let now = req.now_ms / 1000;
                let lifetime = self.pass_lifetime_secs;
                match self
                    .key
                    .check_pass(req.client_ip, req.user_agent, value, now, lifetime)
                {
                    Ok(()) => Pass::Valid,
                    Err(_) => Pass::Invalid,
                }
            }
            _ => Pass::Absent,
        }
    }

    /// A fresh nonce for this client.
    pub fn nonce(&self, req: &Request<'_>) -> String {
        self.key.nonce(req.client_ip, req.user_agent, req.now_ms)
    }

    /// Checks an answer at the verification path: `n` (the nonce), and `a`
    /// (the proof of work) or `m=wait` (the no-JavaScript step, accepted
    /// once its delay has passed), and `r` (the page to return to).
    pub fn verify(&self, req: &Request<'_>) -> Verdict {
        let q = Query::parse(req.uri.query().unwrap_or(""));
        let return_to = q.return_to.and_then(same_site_path).unwrap_or("/".into());
        let ok = self.answer_holds(&q, req.client_ip, req.user_agent, req.now_ms);
        if !ok {
            return Verdict::Failed { return_to };
        }
        let expires = req.now_ms / 1000 + self.pass_lifetime_secs;
        let value = self.key.pass(req.client_ip, req.user_agent, expires);
        let secure = if req.secure { "; Secure" } else { "" };
        Verdict::Passed {
            set_cookie: format!(
                "{PASS_COOKIE}={value}; Max-Age={}; Path=/; HttpOnly; SameSite=Lax{secure}",
                self.pass_lifetime_secs
            ),
            location: return_to,
        }
    }

    fn answer_holds(&self, q: &Query<'_>, client: IpAddr, ua: &[u8], now_ms: u64) -> bool {
        let Some(nonce) = q.nonce else { return false };
        let issued =
            match self
                .key
                .check_nonce(client, ua, nonce.as_bytes(), now_ms, self.nonce_lifetime_ms)
            {
                Ok(t) => t,
                Err(Rejected::Malformed | Rejected::Forged | Rejected::Expired) => return false,
            };
        match (q.answer, q.wait) {
            (Some(a), _) => pow::solves(nonce.as_bytes(), a.as_bytes(), self.difficulty),
            (None, true) => now_ms.saturating_sub(issued) >= self.noscript_delay_secs * 1000,
            (None, false) => false,
        }
    }
}

/// The verification path's query.
#[derive(Debug, Default)]
struct Query<'a> {
    nonce: Option<&'a str>,
    answer: Option<&'a str>,
    wait: bool,
    return_to: Option<&'a str>,
}

impl<'a> Query<'a> {
    fn parse(q: &'a str) -> Self {
        let mut out = Query::default();
        for pair in q.split('&').take(16) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "n" => out.nonce = out.nonce.or(Some(v)),
                "a" => out.answer = out.answer.or(Some(v)),
                "m" => out.wait |= v == "wait",
                "r" => out.return_to = out.return_to.or(Some(v)),
                _ => {}
            }
        }
        out
    }
}

/// The return path, percent-decoded, when it is a path of this site:
/// starting with one `/`, not `//` or `/\` (which browsers read as another
/// host), printable ASCII only. Anything else goes back to `/`.
pub fn same_site_path(encoded: &str) -> Option<String> {
    let decoded = percent_decode(encoded.as_bytes()).decode_utf8().ok()?;
    let b = decoded.as_bytes();
    let printable = b.iter().all(|&c| c.is_ascii_graphic());
    let one_slash = b.first() == Some(&b'/') && !matches!(b.get(1), Some(b'/' | b'\\'));
    (printable && one_slash && !b.contains(&b'\\')).then(|| decoded.into_owned())
}

/// The page a challenged request returns to, encoded for the interstitial.
pub fn return_to(req: &Request<'_>) -> String {
    encode_return(req.uri.path_and_query().map_or("/", |pq| pq.as_str()))
}

/// A same-site path, encoded for the interstitial.
pub fn encode_return(path: &str) -> String {
    utf8_percent_encode(path, RETURN).to_string()
}

/// Whether the request is a page navigation, the only kind a challenge
/// answers: what the browser says (`Sec-Fetch-Mode: navigate`, or a
/// document destination), or, from a client that sends no `Sec-Fetch-*`
/// (older browsers, plain HTTP, scripts), a path of the page class.
/// Subresources (assets, segments, fetch and XHR calls) are never
/// challenged: an interstitial cannot be solved inside an image or a
/// player, and a person's page would break.
pub fn is_navigation(fetch: FetchMetadata<'_>, class: PathClass) -> bool {
    match (fetch.mode, fetch.dest) {
        (Some(mode), _) => mode.eq_ignore_ascii_case(b"navigate"),
        (None, Some(dest)) => matches!(dest, b"document" | b"iframe" | b"frame"),
        (None, None) => class == PathClass::Page,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_site_paths_are_returned_to() {
        assert_eq!(
            same_site_path("/films/1%3Fa%3D1").as_deref(),
            Some("/films/1?a=1")
        );
        assert_eq!(same_site_path("/").as_deref(), Some("/"));
        for bad in [
            "//evil.example/",
            "%2F%2Fevil.example",
            "/%5Cevil.example",
            "/\\evil.example",
            "https://evil.example/",
            "https%3A%2F%2Fevil.example",
            "evil.example",
            "",
            "/a%0d%0aSet-Cookie:x",
            "/%ff",
            "/a b",
        ] {
            assert_eq!(same_site_path(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_query_is_read_once() {
        let q = Query::parse("n=1.ab&a=42&r=%2Ffilms&n=other&m=wait");
        assert_eq!(
            (q.nonce, q.answer, q.return_to, q.wait),
            (Some("1.ab"), Some("42"), Some("%2Ffilms"), true)
        );
        let q = Query::parse("");
        assert!(q.nonce.is_none() && !q.wait);
    }
}
