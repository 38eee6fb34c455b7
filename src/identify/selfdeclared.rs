//! Bots that say they are bots but that no list names yet.
//!
//! A user agent the catalogue does not know is still `declared` when it says
//! what it is: a word that is or ends in `bot`, `crawler`, `spider` or
//! `fetcher` (`FooBot`, `foo-crawler`, `SomeSpider/1.0`), a `+http…` contact
//! URL (the crawler convention browsers never follow), or a domain of a
//! known AI operator (`+https://openai.com/…`, `…@anthropic.com`). The
//! operator domains are data (`config/agents/operator-domains.toml`, a source
//! per entry); a domain gives its operator's purpose, anything else
//! `other-bot`. Such a request has no catalogue agent: metrics, evidence and
//! `classify` show it as [`UNKNOWN_BOT`].
//!
//! Compiled once into the snapshot; the scan is one pass over the bytes and
//! one automaton over the domains, and runs only when the catalogue matched
//! nothing.

use std::path::{Path, PathBuf};

use aho_corasick::{AhoCorasick, MatchKind};
use serde::Deserialize;

use crate::catalog::CatalogError;
use crate::config::located::parse_toml;
use crate::model::Purpose;

/// How metrics, evidence and `classify` name a declared bot with no catalogue agent.
pub const UNKNOWN_BOT: &str = "unknown-bot";

/// Word endings by which a client calls itself a bot.
const BOT_WORDS: &[&[u8]] = &[b"bot", b"crawler", b"spider", b"fetcher"];

/// Words that end like a bot but name something else: `CUBOT` phones.
const NOT_BOTS: &[&[u8]] = &[b"cubot"];

/// The operator-domains file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainsFile {
    #[serde(default, rename = "operator")]
    pub operators: Vec<OperatorDomains>,
}

/// One AI operator and the domains its clients name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorDomains {
    pub name: String,
    pub purpose: Purpose,
    pub domains: Vec<String>,
    /// Where the domains and the purpose come from.
    pub source: String,
}

/// The compiled rule.
#[derive(Debug, Clone, Default)]
pub struct SelfDeclared {
    domains: Option<AhoCorasick>,
    /// For each domain pattern, its operator's purpose.
    purposes: Vec<Purpose>,
}

fn entry_error(path: &Path, name: &str, message: String) -> CatalogError {
    CatalogError::Entry {
        path: path.to_owned(),
        agent: name.to_owned(),
        message,
    }
}

impl SelfDeclared {
    /// Reads and compiles an operator-domains file.
    pub fn load(path: &PathBuf) -> Result<Self, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
            path: path.clone(),
            source,
        })?;
        let file: DomainsFile = parse_toml(path, &text)?;
        Self::compile(path, &file)
    }

    pub fn compile(path: &Path, file: &DomainsFile) -> Result<Self, CatalogError> {
        let mut patterns = Vec::new();
        let mut purposes = Vec::new();
        for op in &file.operators {
            if op.source.trim().is_empty() {
                return Err(entry_error(path, &op.name, "missing `source`".into()));
            }
            for d in &op.domains {
                let ok = d.contains('.')
                    && d.len() >= 4
                    && d.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
                if !ok {
                    return Err(entry_error(path, &op.name, format!("bad domain {d:?}")));
                }
                patterns.push(d.to_ascii_lowercase());
                purposes.push(op.purpose);
            }
        }
        let domains = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .map_err(|e| entry_error(path, "", format!("cannot build the domain matcher: {e}")))?;
        Ok(Self {
            domains: Some(domains),
            purposes,
        })
    }

    /// The purpose of a user agent that declares itself a bot, if it does.
    pub fn classify(&self, ua: &[u8]) -> Option<Purpose> {
        if let Some(p) = self.operator_domain(ua) {
            return Some(p);
        }
        (has_contact_url(ua) || has_bot_word(ua)).then_some(Purpose::OtherBot)
    }

    /// The purpose of the first AI operator domain the user agent names as a
    /// host (`openai.com` in `+https://openai.com/bot` or `bot@openai.com`,
    /// not in `notopenai.com` or `openai.community`).
    fn operator_domain(&self, ua: &[u8]) -> Option<Purpose> {
        let automaton = self.domains.as_ref()?;
        automaton.find_iter(ua).find_map(|m| {
            let label = |b: u8| b.is_ascii_alphanumeric() || b == b'-';
            let before_ok = m.start() == 0 || !label(ua[m.start() - 1]);
            let after = ua.get(m.end()).copied();
            let after_ok = match after {
                None => true,
                Some(b'.') => !ua
                    .get(m.end() + 1)
                    .is_some_and(|b| b.is_ascii_alphanumeric()),
                Some(b) => !label(b),
            };
            (before_ok && after_ok).then(|| self.purposes[m.pattern().as_usize()])
        })
    }
}

/// `+http://…` or `+https://…`: the crawler's contact page.
fn has_contact_url(ua: &[u8]) -> bool {
    memchr::memmem::find_iter(ua, b"+http").any(|i| {
        let rest = &ua[i + 5..];
        rest.starts_with(b"://") || rest.starts_with(b"s://")
    })
}

/// A run of letters and digits that is or ends in a bot word.
fn has_bot_word(ua: &[u8]) -> bool {
    // Compared in place: no allocation on the request path.
    let ends_with = |word: &[u8], end: &[u8]| {
        word.len() >= end.len() && word[word.len() - end.len()..].eq_ignore_ascii_case(end)
    };
    ua.split(|b| !b.is_ascii_alphanumeric()).any(|word| {
        BOT_WORDS.iter().any(|w| ends_with(word, w))
            && !NOT_BOTS.iter().any(|n| word.eq_ignore_ascii_case(n))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> SelfDeclared {
        let file: DomainsFile = toml::from_str(
            "[[operator]]\nname='OpenAI'\npurpose='ai-training'\ndomains=['openai.com']\nsource='s'\n\
             [[operator]]\nname='Perplexity'\npurpose='ai-search'\ndomains=['perplexity.ai']\nsource='s'\n",
        )
        .unwrap();
        SelfDeclared::compile(Path::new("d.toml"), &file).unwrap()
    }

    #[test]
    fn bots_that_say_so() {
        let r = rule();
        for ua in [
            "FooBot/1.0",
            "Mozilla/5.0 (compatible; foo-crawler)",
            "SomeSpider/1.0",
            "acme fetcher",
            "Mozilla/5.0 (compatible; Acme/2.0; +https://acme.example/about)",
        ] {
            assert_eq!(r.classify(ua.as_bytes()), Some(Purpose::OtherBot), "{ua}");
        }
        assert_eq!(
            r.classify(b"Mozilla/5.0 (compatible; NewThing/0.1; +https://openai.com/newthing)"),
            Some(Purpose::AiTraining)
        );
        assert_eq!(
            r.classify(b"Thing/1 (crawl@perplexity.ai)"),
            Some(Purpose::AiSearch)
        );
    }

    #[test]
    fn browsers_and_look_alikes_are_not() {
        let r = rule();
        for ua in [
            "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
            "Thing/1 (+notopenai.com)",
            "Thing/1 (openai.community)",
            "botany/1.0",
            "",
        ] {
            assert_eq!(r.classify(ua.as_bytes()), None, "{ua}");
        }
        assert_eq!(r.classify(&[0xff, b'+', b'h']), None);
    }

    #[test]
    fn bad_files_name_the_operator() {
        let file: DomainsFile =
            toml::from_str("[[operator]]\nname='X'\npurpose='ai-training'\ndomains=['no spaces.com']\nsource='s'\n").unwrap();
        let err = SelfDeclared::compile(Path::new("d.toml"), &file).unwrap_err();
        assert!(
            err.to_string().contains("d.toml: agent \"X\": bad domain"),
            "{err}"
        );
    }
}
