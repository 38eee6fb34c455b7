//! rempart's own documents, served ahead of policy so that no rule can make
//! the opt-out unreadable: robots.txt, the offer page, tdmrep.json, the TDM
//! policy, license.xml and the clause for the site's terms.

use bytes::Bytes;

use super::pages::{Page, Pages};
use crate::optout::origin_robots::OriginRobots;
use crate::optout::reservation::{LICENSE_PATH, POLICY_PATH, TDMREP_PATH};

/// One of rempart's own documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    RobotsTxt,
    OfferPage,
    TdmRep,
    TdmPolicy,
    License,
    /// The clause for the site's terms that reserves text and data mining.
    Clause,
    /// The browser challenge's verification path.
    ChallengeVerify,
}

impl Document {
    pub const ALL: [Document; 7] = [
        Document::RobotsTxt,
        Document::OfferPage,
        Document::TdmRep,
        Document::TdmPolicy,
        Document::License,
        Document::Clause,
        Document::ChallengeVerify,
    ];

    /// Bounded label for `rempart_served_documents_total{document}`.
    pub fn name(self) -> &'static str {
        match self {
            Document::RobotsTxt => "robots.txt",
            Document::OfferPage => "offer",
            Document::TdmRep => "tdmrep.json",
            Document::TdmPolicy => "tdm-policy",
            Document::License => "license.xml",
            Document::Clause => "clause",
            Document::ChallengeVerify => "challenge",
        }
    }

    /// The document a GET or HEAD of this canonical path asks for
    /// (`clause_path` is the reservation's, when there is one).
    pub fn find(
        method: &http::Method,
        path: &str,
        offer_path: &str,
        clause_path: Option<&str>,
    ) -> Option<Self> {
        let reserved = clause_path.is_some();
        if method != http::Method::GET && method != http::Method::HEAD {
            return None;
        }
        match path {
            "/robots.txt" => Some(Document::RobotsTxt),
            p if p == offer_path => Some(Document::OfferPage),
            TDMREP_PATH if reserved => Some(Document::TdmRep),
            POLICY_PATH if reserved => Some(Document::TdmPolicy),
            LICENSE_PATH if reserved => Some(Document::License),
            p if Some(p) == clause_path => Some(Document::Clause),
            crate::challenge::VERIFY_PATH => Some(Document::ChallengeVerify),
            _ => None,
        }
    }
}

/// The robots.txt to serve now: the origin's merged with rempart's parts
/// (merged per request: robots.txt is fetched rarely, and the merge depends
/// on both the origin's copy and this snapshot's), or rempart's own.
pub fn robots_txt(pages: &Pages, origin: Option<&OriginRobots>) -> Page {
    match origin.and_then(|o| o.current()) {
        Some(copy) => Page {
            content_type: pages.robots_txt.content_type,
            body: Bytes::from(pages.robots.merged(&copy.text)),
        },
        None => pages.robots_txt.clone(),
    }
}

/// Protocol errors and limits: plain text, not pages of the rights holder.
pub mod fixed {
    use super::Page;
    use bytes::Bytes;

    const TEXT: &str = "text/plain; charset=utf-8";

    pub static NOT_FOUND: Page = Page {
        content_type: TEXT,
        body: Bytes::from_static(b"404 Not Found\n"),
    };

    pub static BAD_SIGNATURE: Page = Page {
        content_type: TEXT,
        body: Bytes::from_static(b"400 Bad Request: oversized or repeated Signature headers.\n"),
    };

    pub static RATE_LIMITED: Page = Page {
        content_type: TEXT,
        body: Bytes::from_static(
            b"429 Too Many Requests: this client is requesting pages faster than a person reads them. \
              Slow down, and read /robots.txt: text and data mining of this site is reserved.\n",
        ),
    };

    pub static QUOTA_EXCEEDED: Page = Page {
        content_type: TEXT,
        body: Bytes::from_static(
            b"429 Too Many Requests: the daily quota of this licence is used up.\n",
        ),
    };

    /// The page of a request with no single reading (400) or too large a
    /// header block (431).
    pub fn bad_request(status: u16, reason: &str) -> Page {
        let name = http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Bad Request");
        Page {
            content_type: TEXT,
            body: Bytes::from(format!("{status} {name}: {reason}.\n")),
        }
    }
}
