//! The robots.txt versions rempart has served, so that a later request can be
//! checked against the very text the client read, and so that each version is
//! archived in the evidence ledger once.

use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::evidence::{Body, Evidence, PublishedRecord};

/// Versions kept for checking; a client that read an older one is not checked.
const KEEP: usize = 16;

/// One robots.txt text as served.
pub struct RobotsVersion {
    pub id: u32,
    pub sha256: String,
    pub text: Bytes,
    /// Parsed groups, per product token (lower case), built on first use.
    robots: quick_cache::sync::Cache<String, Arc<Option<texting_robots::Robot>>>,
}

impl std::fmt::Debug for RobotsVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RobotsVersion")
            .field("id", &self.id)
            .field("sha256", &self.sha256)
            .finish()
    }
}

/// The token of the `*` group: a name no group lists.
const ANY_AGENT: &str = "rempart-unlisted-client";

impl RobotsVersion {
    /// Whether this robots.txt disallows `path` for a client that goes by
    /// `token` (its catalogue product token; `None` for browsers and unknowns,
    /// which fall under `User-agent: *`).
    pub fn disallows(&self, token: Option<&str>, path: &str) -> bool {
        let token = token.unwrap_or(ANY_AGENT).to_ascii_lowercase();
        let robot = match self.robots.get(&token) {
            Some(r) => r,
            None => {
                let r = Arc::new(texting_robots::Robot::new(&token, &self.text).ok());
                self.robots.insert(token, r.clone());
                r
            }
        };
        match robot.as_ref() {
            Some(r) => !r.allowed(path),
            None => false,
        }
    }
}

/// Every robots.txt version served since start (the last [`KEEP`]).
#[derive(Default)]
pub struct Published {
    versions: ArcSwap<Vec<Arc<RobotsVersion>>>,
    next_id: std::sync::atomic::AtomicU32,
    evidence: Option<Evidence>,
    /// Documents already archived (document, sha256), so that a reload that
    /// changes nothing archives nothing. Touched at start and on reload only.
    archived: std::sync::Mutex<std::collections::HashSet<(String, String)>>,
}

impl std::fmt::Debug for Published {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Published").finish_non_exhaustive()
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Published {
    pub fn new(evidence: Option<Evidence>) -> Self {
        Self {
            versions: ArcSwap::from_pointee(Vec::new()),
            next_id: std::sync::atomic::AtomicU32::new(1),
            evidence,
            archived: std::sync::Mutex::new(std::collections::HashSet::new()),
        }
    }

    /// The version of a robots.txt text about to be served; a new text is
    /// archived in the ledger.
    pub fn robots(&self, text: &Bytes) -> Arc<RobotsVersion> {
        let sha = sha256_hex(text);
        if let Some(v) = self.versions.load().iter().find(|v| v.sha256 == sha) {
            return v.clone();
        }
        let v = Arc::new(RobotsVersion {
            id: self
                .next_id
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            sha256: sha.clone(),
            text: text.clone(),
            robots: quick_cache::sync::Cache::new(256),
        });
        let mut added = false;
        self.versions.rcu(|old| {
            if old.iter().any(|o| o.sha256 == sha) {
                added = false;
                return old.clone();
            }
            added = true;
            let mut next: Vec<Arc<RobotsVersion>> = old.iter().cloned().collect();
            next.push(v.clone());
            if next.len() > KEEP {
                next.remove(0);
            }
            Arc::new(next)
        });
        if added {
            self.archive("robots.txt", text);
        }
        self.versions
            .load()
            .iter()
            .find(|o| o.sha256 == sha)
            .cloned()
            .unwrap_or(v)
    }

    /// A version by id, if still kept.
    pub fn get(&self, id: u32) -> Option<Arc<RobotsVersion>> {
        self.versions.load().iter().find(|v| v.id == id).cloned()
    }

    /// Archives a document in the ledger unless this version already is.
    pub fn archive_once(&self, document: &str, content: &[u8]) {
        let key = (document.to_owned(), sha256_hex(content));
        let fresh = self
            .archived
            .lock()
            .map(|mut set| set.insert(key))
            .unwrap_or(true);
        if fresh {
            self.archive(document, content);
        }
    }

    /// The evidence ledger, when one is kept (for records that are not
    /// documents: the console's controls).
    pub fn ledger(&self) -> Option<&Evidence> {
        self.evidence.as_ref()
    }

    /// Archives a document in the ledger.
    fn archive(&self, document: &str, content: &[u8]) {
        if let Some(e) = &self.evidence {
            e.record(Body::Published(PublishedRecord {
                document: document.to_owned(),
                sha256: sha256_hex(content),
                content: String::from_utf8_lossy(content).into_owned(),
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_interned_and_checked_per_group() {
        let p = Published::new(None);
        let text = Bytes::from_static(
            b"User-agent: GPTBot\nUser-agent: ClaudeBot\nDisallow: /\n\nUser-agent: *\nAllow: /\nDisallow: /trap/\n",
        );
        let a = p.robots(&text);
        let b = p.robots(&text.clone());
        assert_eq!(a.id, b.id, "same text, same version");
        assert!(a.disallows(Some("GPTBot"), "/films/x"));
        assert!(a.disallows(Some("claudebot"), "/"));
        assert!(!a.disallows(None, "/films/x"));
        assert!(a.disallows(None, "/trap/page"));
        assert!(!a.disallows(Some("Googlebot"), "/films/x"));
        let c = p.robots(&Bytes::from_static(b"User-agent: *\nDisallow:\n"));
        assert_ne!(c.id, a.id);
        assert_eq!(
            p.get(a.id).map(|v| v.sha256.clone()),
            Some(a.sha256.clone())
        );
    }
}
