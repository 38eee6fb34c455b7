//! Identity: who is asking, as far as the user agent and the address tell.
//!
//! The order is fixed: a catalogue agent named in the user agent is
//! `declared` (or `tool` for HTTP libraries), then checked against its
//! operator's published ranges; otherwise the user agent is `browser`-shaped
//! or, failing that, `declared` without an agent when it calls itself a bot
//! ([`selfdeclared`]), or `unknown`. A later stage (licence credentials,
//! reverse DNS) slots in before or after the range check without changing
//! the callers. The address's network ([`network`]: its AS, and whether it is
//! a hosting network) is looked up once per request by the decision's
//! identify step.

mod interval;
pub mod network;
pub mod ranges;
pub mod rdns;
pub mod referrer;
pub mod selfdeclared;
pub mod webbotauth;

use std::net::IpAddr;

use serde::Serialize;

use crate::catalog::{AgentId, Catalogue};
use crate::identify::network::NetworkFacts;
use crate::identify::ranges::{RangeTable, SourceSet};
use crate::model::{IdentityKind, Purpose, Verification};

/// How a verification verdict was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerifyMethod {
    /// Checked against the operator's published IP ranges.
    IpRanges,
    /// A valid Web Bot Auth (RFC 9421) signature.
    WebBotAuth,
    /// Forward-confirmed reverse DNS against the operator's host suffixes.
    ReverseDns,
    /// Nothing to check against (no ranges published), or nothing claimed.
    None,
}

impl VerifyMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyMethod::IpRanges => "ip-ranges",
            VerifyMethod::WebBotAuth => "web-bot-auth",
            VerifyMethod::ReverseDns => "reverse-dns",
            VerifyMethod::None => "none",
        }
    }
}

/// The identity of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub kind: IdentityKind,
    pub agent: Option<AgentId>,
    pub purpose: Option<Purpose>,
    pub verification: Verification,
    pub method: VerifyMethod,
    /// Every published range source containing the client address, whatever
    /// it claims (an operator's address is not a person's).
    pub operator_sources: SourceSet,
    /// The client address's AS and whether it is a hosting network (set by
    /// the decision's identify step from the snapshot's network table).
    pub network: NetworkFacts,
}

impl Identity {
    /// Nothing known: a request refused before it was identified.
    pub fn unidentified() -> Self {
        Self {
            kind: IdentityKind::Unknown,
            agent: None,
            purpose: None,
            verification: Verification::None,
            method: VerifyMethod::None,
            operator_sources: SourceSet::EMPTY,
            network: NetworkFacts::UNKNOWN,
        }
    }
}

/// What a user agent says on its own, before the address is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Says {
    /// A catalogue agent's token.
    Agent(AgentId),
    /// A bot naming itself, no catalogue agent ([`selfdeclared`]).
    Declared(Purpose),
    Browser,
    Unknown,
}

/// The codes of [`Says`] in the catalogue's memo: agents from 0, then the rest.
const SAYS_DECLARED: u16 = 0xff00;
const SAYS_BROWSER: u16 = 0xfff0;
const SAYS_UNKNOWN: u16 = 0xfff1;

impl Says {
    /// Works it out: the catalogue's tokens, then a self-declared bot, then
    /// the browsers' form.
    fn work_out(catalogue: &Catalogue, ua: &[u8]) -> Self {
        if let Some(id) = catalogue.match_ua(ua) {
            Says::Agent(id)
        } else if let Some(purpose) = catalogue.self_declared(ua) {
            Says::Declared(purpose)
        } else if looks_like_browser(ua) {
            Says::Browser
        } else {
            Says::Unknown
        }
    }

    /// What `ua` says, remembered per catalogue (a pure function of the
    /// bytes and the catalogue, so the answer is the same either way). An
    /// agent index too large for the code is worked out every time.
    fn of(catalogue: &Catalogue, ua: &[u8]) -> Self {
        let mut fresh = None;
        let code = catalogue.memo().answer(ua, || {
            let says = Self::work_out(catalogue, ua);
            fresh = Some(says);
            says.code().unwrap_or(u16::MAX)
        });
        fresh.unwrap_or_else(|| {
            Self::from_code(code).unwrap_or_else(|| Self::work_out(catalogue, ua))
        })
    }

    fn code(self) -> Option<u16> {
        match self {
            Says::Agent(id) => u16::try_from(id.0).ok().filter(|&c| c < SAYS_DECLARED),
            Says::Declared(p) => Purpose::ALL
                .iter()
                .position(|&q| q == p)
                .map(|i| SAYS_DECLARED + i as u16),
            Says::Browser => Some(SAYS_BROWSER),
            Says::Unknown => Some(SAYS_UNKNOWN),
        }
    }

    fn from_code(code: u16) -> Option<Self> {
        match code {
            c if c < SAYS_DECLARED => Some(Says::Agent(AgentId(u32::from(c)))),
            SAYS_BROWSER => Some(Says::Browser),
            SAYS_UNKNOWN => Some(Says::Unknown),
            c => Purpose::ALL
                .get(usize::from(c - SAYS_DECLARED))
                .map(|&p| Says::Declared(p)),
        }
    }
}

/// Identifies a request from its user agent and client address.
pub fn identify(catalogue: &Catalogue, ranges: &RangeTable, ua: &[u8], ip: IpAddr) -> Identity {
    let operator_sources = ranges.lookup(ip);
    let id = match Says::of(catalogue, ua) {
        Says::Agent(id) => id,
        Says::Declared(purpose) => {
            return Identity {
                kind: IdentityKind::Declared,
                agent: None,
                purpose: Some(purpose),
                verification: Verification::Unverifiable,
                method: VerifyMethod::None,
                operator_sources,
                network: NetworkFacts::UNKNOWN,
            };
        }
        says => {
            let kind = if says == Says::Browser {
                IdentityKind::Browser
            } else {
                IdentityKind::Unknown
            };
            return Identity {
                kind,
                agent: None,
                purpose: None,
                verification: Verification::None,
                method: VerifyMethod::None,
                operator_sources,
                network: NetworkFacts::UNKNOWN,
            };
        }
    };
    let agent = catalogue.agent(id);
    let (kind, verification, method) = if agent.purpose == crate::model::Purpose::Tool {
        (IdentityKind::Tool, Verification::None, VerifyMethod::None)
    } else if agent.ranges.is_empty() {
        (
            IdentityKind::Declared,
            Verification::Unverifiable,
            VerifyMethod::None,
        )
    } else if agent.ranges.intersects(operator_sources) {
        (
            IdentityKind::Declared,
            Verification::Verified,
            VerifyMethod::IpRanges,
        )
    } else {
        (
            IdentityKind::Declared,
            Verification::Spoofed,
            VerifyMethod::IpRanges,
        )
    };
    Identity {
        kind,
        agent: Some(id),
        purpose: Some(agent.purpose),
        verification,
        method,
        operator_sources,
        network: NetworkFacts::UNKNOWN,
    }
}

impl Identity {
    /// The agent's name for metrics, logs and evidence: the catalogue's name,
    /// or `unknown-bot` for a bot that declares itself without a catalogue entry.
    pub fn agent_name<'a>(&self, catalogue: &'a Catalogue) -> Option<&'a str> {
        match (self.agent, self.kind) {
            (Some(id), _) => Some(catalogue.agent(id).name.as_str()),
            (None, IdentityKind::Declared) => Some(selfdeclared::UNKNOWN_BOT),
            (None, _) => None,
        }
    }
}

/// A valid message signature by a key bound to the claimed agent proves the
/// agent's identity whatever its address: `verified` by Web Bot Auth.
pub fn with_signature(mut id: Identity) -> Identity {
    id.verification = Verification::Verified;
    id.method = VerifyMethod::WebBotAuth;
    id
}

/// Browsers all open with `Mozilla/5.0 (` and carry an engine token.
fn looks_like_browser(ua: &[u8]) -> bool {
    ua.starts_with(b"Mozilla/5.0 (")
        && [&b"Gecko"[..], b"AppleWebKit", b"Trident"]
            .iter()
            .any(|engine| ua.windows(engine.len()).any(|w| w == *engine))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::file::CatalogFile;
    use crate::identify::ranges::RangeSource;
    use std::path::{Path, PathBuf};

    fn setup() -> (Catalogue, RangeTable) {
        let ranges = RangeTable::new(vec![RangeSource::parse(
            "gptbot",
            Path::new("gptbot.json"),
            r#"{"prefixes":[{"ipv4Prefix":"192.0.2.0/24"}]}"#,
        )
        .unwrap()]);
        let file: CatalogFile = toml::from_str(
            "[[agent]]\nname='GPTBot'\noperator='OpenAI'\npurpose='ai-training'\nranges=['gptbot']\n\
             [[agent]]\nname='Bytespider'\noperator='ByteDance'\npurpose='ai-training'\n\
             [[agent]]\nname='curl'\noperator='curl'\npurpose='tool'\n",
        )
        .unwrap();
        let cat = Catalogue::compile(vec![(PathBuf::from("a.toml"), file)], &ranges).unwrap();
        (cat, ranges)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn verification_follows_the_ranges() {
        let (c, r) = setup();
        let id = identify(&c, &r, b"GPTBot/1.2", ip("192.0.2.9"));
        assert_eq!(
            (id.kind, id.verification),
            (IdentityKind::Declared, Verification::Verified)
        );
        let id = identify(&c, &r, b"GPTBot/1.2", ip("127.0.0.1"));
        assert_eq!(id.verification, Verification::Spoofed);
        let id = identify(&c, &r, b"Bytespider", ip("127.0.0.1"));
        assert_eq!(id.verification, Verification::Unverifiable);
    }

    #[test]
    fn tools_browsers_and_unknowns() {
        let (c, r) = setup();
        assert_eq!(
            identify(&c, &r, b"curl/8.5.0", ip("127.0.0.1")).kind,
            IdentityKind::Tool
        );
        let chrome = b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";
        let id = identify(&c, &r, chrome, ip("127.0.0.1"));
        assert_eq!(
            (id.kind, id.purpose, id.verification),
            (IdentityKind::Browser, None, Verification::None)
        );
        assert_eq!(
            identify(&c, &r, b"", ip("127.0.0.1")).kind,
            IdentityKind::Unknown
        );
        assert_eq!(
            identify(&c, &r, b"\xff\xfe\x00", ip("127.0.0.1")).kind,
            IdentityKind::Unknown
        );
    }

    #[test]
    fn what_a_user_agent_says_is_remembered_as_worked_out() {
        let (c, r) = setup();
        let c = c.with_self_declared(
            selfdeclared::SelfDeclared::compile(
                Path::new("d.toml"),
                &toml::from_str(
                    "[[operator]]\nname='OpenAI'\npurpose='ai-search'\ndomains=['openai.com']\nsource='s'\n",
                )
                .unwrap(),
            )
            .unwrap(),
        );
        let uas: [&[u8]; 6] = [
            b"GPTBot/1.2",
            b"curl/8.5.0",
            b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
            b"NewBot/1.0 (+https://openai.com/newbot)",
            b"SomeCrawler/2.0 (+https://example.org/bot)",
            b"",
        ];
        let want = [
            Says::Agent(AgentId(0)),
            Says::Agent(AgentId(2)),
            Says::Browser,
            Says::Declared(Purpose::AiSearch),
            Says::Declared(Purpose::OtherBot),
            Says::Unknown,
        ];
        for round in 0..3 {
            for (ua, want) in uas.iter().zip(want) {
                assert_eq!(Says::work_out(&c, ua), want, "round {round}");
                assert_eq!(Says::of(&c, ua), want, "round {round}");
                let code = want.code().unwrap();
                assert_eq!(Says::from_code(code), Some(want));
            }
        }
        // The identities themselves, from the table: as on the first request.
        let first: Vec<_> = uas
            .iter()
            .map(|ua| identify(&c, &r, ua, ip("192.0.2.9")))
            .collect();
        for (ua, id) in uas.iter().zip(&first) {
            let again = identify(&c, &r, ua, ip("192.0.2.9"));
            assert_eq!(
                (again.kind, again.agent, again.purpose, again.verification),
                (id.kind, id.agent, id.purpose, id.verification)
            );
        }
    }

    #[test]
    fn operator_sources_are_reported_without_a_claim() {
        let (c, r) = setup();
        let id = identify(&c, &r, b"Mozilla/5.0 (X11) Gecko", ip("192.0.2.1"));
        assert!(!id.operator_sources.is_empty());
    }
}
