//! AI products that send people back: which operator referred a visit.
//!
//! Rights holders weigh pages taken against visitors sent back, so a browser
//! page visit is attributed to the AI operator whose product linked to it:
//! its `Referer` host is one of the operator's hosts or a subdomain of one
//! (`www.perplexity.ai` under `perplexity.ai`; never `chatgpt.com.evil.example`),
//! or its query's `utm_source` is one of the operator's values. The hosts and
//! values are data (`config/agents/ai-referrers.toml`, a source per entry),
//! compiled once into the snapshot. Matching compares in place, without
//! allocating: it runs only for the visits that can count (see `decide`).

use std::path::PathBuf;

use serde::Deserialize;

use crate::catalog::CatalogError;
use crate::config::located::{at_key, parse_toml};

/// The referrers file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferrersFile {
    #[serde(default, rename = "operator")]
    pub operators: Vec<ReferrerEntry>,
}

/// One operator and how its products' links are recognised.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferrerEntry {
    /// The operator, spelled as in the catalogue.
    pub name: String,
    /// Hosts of its products (a subdomain matches too).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// `utm_source` values its products add to links.
    #[serde(default)]
    pub utm_sources: Vec<String>,
    /// Where the hosts and values come from.
    pub source: String,
}

/// An operator of the referrers file, by its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Referrer(pub u16);

/// The compiled referrers.
#[derive(Debug, Clone, Default)]
pub struct Referrers {
    operators: Vec<String>,
    /// Lower-case host and its operator.
    hosts: Vec<(String, Referrer)>,
    /// Lower-case `utm_source` value and its operator.
    utm: Vec<(String, Referrer)>,
}

impl Referrers {
    /// Reads and compiles a referrers file; errors name the file, line and key.
    pub fn load(path: &PathBuf) -> Result<Self, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
            path: path.clone(),
            source,
        })?;
        let file: ReferrersFile = parse_toml(path, &text)?;
        Self::compile(&file).map_err(|(key, message)| at_key(path, &text, &key, message).into())
    }

    /// Checks and compiles the entries; an error gives the key and why.
    pub fn compile(file: &ReferrersFile) -> Result<Self, (String, String)> {
        let mut out = Self::default();
        if file.operators.len() > usize::from(u16::MAX) {
            return Err(("operator".into(), "too many operators".into()));
        }
        for (i, op) in file.operators.iter().enumerate() {
            let id = Referrer(i as u16);
            let key = |field: &str| format!("operator[{i}].{field}");
            if op.name.trim().is_empty() {
                return Err((key("name"), "empty operator name".into()));
            }
            if op.source.trim().is_empty() {
                return Err((key("source"), "missing source".into()));
            }
            if out.operators.contains(&op.name) {
                return Err((key("name"), format!("{:?} is listed twice", op.name)));
            }
            for (j, h) in op.hosts.iter().enumerate() {
                if !is_host(h) {
                    return Err((
                        format!("operator[{i}].hosts[{j}]"),
                        format!("bad host {h:?}"),
                    ));
                }
                out.hosts.push((h.to_ascii_lowercase(), id));
            }
            for (j, u) in op.utm_sources.iter().enumerate() {
                if u.is_empty() || u.bytes().any(|b| b <= b' ' || b == b'&' || b == b'=') {
                    return Err((
                        format!("operator[{i}].utm_sources[{j}]"),
                        format!("bad value {u:?}"),
                    ));
                }
                out.utm.push((u.to_ascii_lowercase(), id));
            }
            out.operators.push(op.name.clone());
        }
        Ok(out)
    }

    /// The operators, in file order (a [`Referrer`] indexes this).
    pub fn operators(&self) -> &[String] {
        &self.operators
    }

    /// The operator's name.
    pub fn name(&self, r: Referrer) -> &str {
        self.operators
            .get(usize::from(r.0))
            .map_or("", String::as_str)
    }

    /// The operator whose product referred this visit: by `Referer` host
    /// first, then by the query's `utm_source`.
    pub fn find(&self, referer: Option<&[u8]>, query: Option<&str>) -> Option<Referrer> {
        referer
            .and_then(referer_host)
            .and_then(|h| self.by_host(h))
            .or_else(|| query.and_then(utm_source).and_then(|u| self.by_utm(u)))
    }

    /// Exact host, or a subdomain of a listed host (the match ends at a dot).
    fn by_host(&self, host: &[u8]) -> Option<Referrer> {
        self.hosts.iter().find_map(|(h, id)| {
            let h = h.as_bytes();
            let exact = host.eq_ignore_ascii_case(h);
            let sub = host.len() > h.len()
                && host[host.len() - h.len()..].eq_ignore_ascii_case(h)
                && host[host.len() - h.len() - 1] == b'.';
            (exact || sub).then_some(*id)
        })
    }

    fn by_utm(&self, value: &[u8]) -> Option<Referrer> {
        self.utm
            .iter()
            .find_map(|(u, id)| value.eq_ignore_ascii_case(u.as_bytes()).then_some(*id))
    }
}

/// A host name as a data file may list it: letters, digits, dots and hyphens,
/// with a dot, no empty label.
fn is_host(h: &str) -> bool {
    h.contains('.')
        && h.split('.').all(|l| !l.is_empty())
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

/// The host of an absolute `http(s)` `Referer`, without user info, port or
/// trailing dot; `None` for anything else.
fn referer_host(value: &[u8]) -> Option<&[u8]> {
    let rest =
        strip_prefix_ci(value, b"https://").or_else(|| strip_prefix_ci(value, b"http://"))?;
    let end = rest
        .iter()
        .position(|b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = match authority.iter().rposition(|&b| b == b'@') {
        Some(at) => &authority[at + 1..],
        None => authority,
    };
    let host = match host.iter().rposition(|&b| b == b':') {
        Some(colon) if !host.starts_with(b"[") => &host[..colon],
        _ => host,
    };
    let host = host.strip_suffix(b".").unwrap_or(host);
    (!host.is_empty()).then_some(host)
}

fn strip_prefix_ci<'a>(value: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let head = value.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &value[prefix.len()..])
}

/// The first `utm_source` value of a query string, as written (the values
/// the products use need no percent-decoding).
fn utm_source(query: &str) -> Option<&[u8]> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("utm_source="))
        .map(str::as_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn referrers() -> Referrers {
        let path = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/agents/ai-referrers.toml"
        ));
        Referrers::load(&path).expect("the shipped file loads")
    }

    fn by_referer(r: &Referrers, referer: &str) -> Option<String> {
        r.find(Some(referer.as_bytes()), None)
            .map(|id| r.name(id).to_owned())
    }

    #[test]
    fn hosts_match_exactly_or_as_subdomains() {
        let r = referrers();
        assert_eq!(
            by_referer(&r, "https://chatgpt.com/").as_deref(),
            Some("OpenAI")
        );
        assert_eq!(
            by_referer(&r, "https://chat.openai.com/c/1").as_deref(),
            Some("OpenAI")
        );
        assert_eq!(
            by_referer(&r, "https://www.perplexity.ai/search?q=x").as_deref(),
            Some("Perplexity")
        );
        assert_eq!(
            by_referer(&r, "https://claude.ai/chat/abc").as_deref(),
            Some("Anthropic")
        );
        assert_eq!(
            by_referer(&r, "HTTPS://Gemini.Google.COM:443/app").as_deref(),
            Some("Google")
        );
        assert_eq!(
            by_referer(&r, "https://user@copilot.microsoft.com./").as_deref(),
            Some("Microsoft")
        );
    }

    #[test]
    fn look_alike_hosts_are_not_matched() {
        let r = referrers();
        for referer in [
            "https://chatgpt.com.evil.example/",
            "https://notchatgpt.com/",
            "https://evil.example/?https://chatgpt.com/",
            "https://evil.example/chatgpt.com",
            "https://www.google.com/search?q=gemini.google.com",
            "chatgpt.com",
            "ftp://chatgpt.com/",
            "https://evil.example#@chatgpt.com",
        ] {
            assert_eq!(by_referer(&r, referer), None, "{referer}");
        }
    }

    #[test]
    fn utm_source_names_the_operator() {
        let r = referrers();
        let name = |q: &str| r.find(None, Some(q)).map(|id| r.name(id).to_owned());
        assert_eq!(name("utm_source=chatgpt.com").as_deref(), Some("OpenAI"));
        assert_eq!(
            name("a=1&utm_source=Perplexity&utm_medium=x").as_deref(),
            Some("Perplexity")
        );
        assert_eq!(name("utm_source=chatgpt.com.evil"), None);
        assert_eq!(name("xutm_source=chatgpt.com"), None);
        assert_eq!(name("utm_medium=chatgpt.com"), None);
        // An unknown Referer still lets the query decide.
        let both = r.find(
            Some(b"https://news.example/"),
            Some("utm_source=perplexity"),
        );
        assert_eq!(both.map(|id| r.name(id)), Some("Perplexity"));
    }

    #[test]
    fn a_bad_entry_names_its_key_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.toml");
        std::fs::write(
            &path,
            "[[operator]]\nname = \"X\"\nsource = \"s\"\nhosts = [\"ok.example\", \"bad host\"]\n",
        )
        .unwrap();
        let err = Referrers::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("r.toml") && err.contains("operator[0].hosts[1]"),
            "{err}"
        );
        assert!(err.contains(":4"), "{err}");
    }
}
