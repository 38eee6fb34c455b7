//! The shared vocabulary of a decision: what kind of client is asking, what it
//! does with what it fetches, how sure we are of its identity, and what we do.
//!
//! Every enum here has a fixed, small set of values, so they double as bounded
//! Prometheus label values (`as_str`) and as config keywords (serde, kebab-case).

use serde::{Deserialize, Serialize};

/// What an agent does with the content it fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Purpose {
    /// Collects content to train models.
    AiTraining,
    /// Indexes content for an AI search or answer engine.
    AiSearch,
    /// Fetches on behalf of a user of an AI assistant or agent.
    AiAssistant,
    /// A classic search engine crawler.
    SearchEngine,
    /// Web archives.
    Archiver,
    /// SEO and marketing analytics crawlers.
    Seo,
    /// Link-preview fetchers of social networks and messengers.
    SocialPreview,
    /// Any other declared bot.
    OtherBot,
    /// Generic HTTP tools and libraries (curl, python-requests, headless browsers).
    Tool,
}

impl Purpose {
    pub const ALL: [Purpose; 9] = [
        Purpose::AiTraining,
        Purpose::AiSearch,
        Purpose::AiAssistant,
        Purpose::SearchEngine,
        Purpose::Archiver,
        Purpose::Seo,
        Purpose::SocialPreview,
        Purpose::OtherBot,
        Purpose::Tool,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::AiTraining => "ai-training",
            Purpose::AiSearch => "ai-search",
            Purpose::AiAssistant => "ai-assistant",
            Purpose::SearchEngine => "search-engine",
            Purpose::Archiver => "archiver",
            Purpose::Seo => "seo",
            Purpose::SocialPreview => "social-preview",
            Purpose::OtherBot => "other-bot",
            Purpose::Tool => "tool",
        }
    }

    /// True for the three AI purposes the rights holders reserve against.
    pub fn is_ai(self) -> bool {
        matches!(
            self,
            Purpose::AiTraining | Purpose::AiSearch | Purpose::AiAssistant
        )
    }
}

/// How far a claimed identity is backed by the network address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verification {
    /// The address is in the operator's published ranges.
    Verified,
    /// The operator publishes ranges and the address is not in them.
    Spoofed,
    /// The operator publishes nothing to check against.
    Unverifiable,
    /// Nothing was claimed, so there is nothing to verify (browsers, unknown clients).
    None,
}

impl Verification {
    pub fn as_str(self) -> &'static str {
        match self {
            Verification::Verified => "verified",
            Verification::Spoofed => "spoofed",
            Verification::Unverifiable => "unverifiable",
            Verification::None => "none",
        }
    }
}

/// The broad kind of client, the first thing a policy rule can match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdentityKind {
    /// A catalogue agent, named in its user agent.
    Declared,
    /// A generic HTTP tool or library from the catalogue.
    Tool,
    /// A user agent shaped like a web browser's.
    Browser,
    /// Anything else, including an empty user agent.
    Unknown,
}

impl IdentityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::Declared => "declared",
            IdentityKind::Tool => "tool",
            IdentityKind::Browser => "browser",
            IdentityKind::Unknown => "unknown",
        }
    }
}

/// What the proxy does with a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Forward to the origin.
    #[default]
    Allow,
    /// Refuse with 403 and a short page that links to the offer.
    Block,
    /// Answer with the licensing offer (402 by default).
    Offer,
    /// Answer 429 with `Retry-After`: the client is going too fast.
    #[serde(rename = "ratelimit")]
    RateLimit,
    /// Answer page navigations without a valid pass with the interstitial a
    /// browser solves by itself (`challenge`); a valid pass, or a request
    /// that is not a page navigation, goes on to the next rule.
    Challenge,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Block => "block",
            Action::Offer => "offer",
            Action::RateLimit => "ratelimit",
            Action::Challenge => "challenge",
        }
    }
}

/// The languages of the served pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    En,
    Fr,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Fr];
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }
}

/// Whether a rule acts or only records (`mode` of a rule, and what an
/// override can put a rule in).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    #[default]
    Enforce,
    LogOnly,
}
