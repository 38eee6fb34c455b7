//! Turning the public lists' patterns into matcher tokens.
//!
//! The lists write regular expressions (`Googlebot\/`, `(?:Sogou web
//! spider|Sogou inst spider)`, `[wW]get`); the matcher takes whole-word
//! literals. A pattern whose language is a small finite set of strings gives
//! those strings; otherwise, where the list gives real user agents
//! (`instances`), the words the pattern matches in them become the tokens.
//! Every token is checked so that it can never name a browser: it starts and
//! ends with a letter or digit, is not one of the words every browser user
//! agent carries, and (where instances exist) matches one of them as a whole
//! word, the way the matcher will read it.

use regex_syntax::hir::literal::{ExtractKind, Extractor};

use super::matcher::UaMatcher;

/// Words of ordinary browser user agents (and words too vague to name one
/// agent): a token equal to one of them would take browsers for bots.
const BROWSER_WORDS: &[&str] = &[
    "mozilla",
    "applewebkit",
    "khtml",
    "gecko",
    "like",
    "compatible",
    "chrome",
    "chromium",
    "safari",
    "mobile",
    "android",
    "linux",
    "windows",
    "version",
    "firefox",
    "iphone",
    "ipad",
    "macintosh",
    "mac",
    "intel",
    "x11",
    "win64",
    "wow64",
    "x64",
    "build",
    "edge",
    "edg",
    "opera",
    "opr",
    "trident",
    "msie",
    "webkit",
    "google",
    "yahoo",
    "microsoft",
    "apple",
    "facebook",
    "instagram",
    "samsung",
    "huawei",
    "xiaomi",
    "tv",
    "smart-tv",
    "bot",
    "crawler",
    "spider",
    "http",
    "https",
    "www",
    "com",
    "the",
    "web",
    "search",
    "cubot",
    // Browsers and in-app browsers that name themselves in their user agent
    // (Amazon's Silk on Kindle and Fire TV, messengers, social and desktop apps).
    "silk",
    "whale",
    "puffin",
    "vivaldi",
    "brave",
    "yabrowser",
    "ucbrowser",
    "qqbrowser",
    "line",
    "kakaotalk",
    "micromessenger",
    "snapchat",
    "pinterest",
    "twitter",
    "tiktok",
    "viber",
    "telegram",
    "tumblr",
    "discord",
    "slack",
    "teams",
    "spotify",
    "electron",
    "steam",
    "outlook",
    "thunderbird",
    "zoom",
    "gsa",
    "duckduckgo",
    "ecosia",
    "quark",
    "baiduboxapp",
    "sonic",
];

/// Why a pattern gave no token (counted in the import summary).
pub const NOT_LITERAL: &str =
    "pattern is not a small set of literals and no instance gives a whole-word token";
pub const UNSAFE: &str = "every literal of the pattern is a browser word or too short";

/// Strips the edges that are not letters or digits (`Googlebot/` → `Googlebot`).
fn trim_edges(s: &str) -> &str {
    s.trim_matches(|c: char| !c.is_ascii_alphanumeric())
}

/// Whether `token` may go into the matcher. No `/`: a path (`yandex.com/bots`)
/// or a version (`Code/1`) is longer than the product token it stands beside
/// and would win the match over it.
pub fn is_safe(token: &str) -> bool {
    let lower = token.to_ascii_lowercase();
    (3..=48).contains(&token.len())
        && token.bytes().all(|b| {
            b.is_ascii_alphanumeric() || b" -_.+:@!".contains(&b)
        })
        && token == trim_edges(token)
        && token.matches(' ').count() <= 3
        && !lower.starts_with("mozilla")
        // At least one word that is neither a number nor a browser's word.
        && lower
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| !w.is_empty() && !w.bytes().all(|b| b.is_ascii_digit()) && !BROWSER_WORDS.contains(&w))
}

/// The strings a pattern matches, when that is a small finite set.
pub fn literals(pattern: &str) -> Option<Vec<String>> {
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(pattern)
        .ok()?;
    let mut extractor = Extractor::new();
    extractor
        .kind(ExtractKind::Prefix)
        .limit_class(4)
        .limit_repeat(4)
        .limit_literal_len(64)
        .limit_total(16);
    let seq = extractor.extract(&hir);
    if !seq.is_exact() {
        return None;
    }
    let lits = seq.literals()?;
    let out: Vec<String> = lits
        .iter()
        .filter_map(|l| std::str::from_utf8(l.as_bytes()).ok())
        .map(|s| trim_edges(s).to_owned())
        .collect();
    (!out.is_empty()).then_some(out)
}

/// Whether the matcher would find `token` in `ua` as a whole word.
pub fn names(token: &str, ua: &str) -> bool {
    UaMatcher::new([(token, 0)]).is_ok_and(|m| m.find(ua.as_bytes()).is_some())
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The whole word(s) around what `pattern` matches in `ua`.
fn word_at(pattern: &regex::Regex, ua: &str) -> Option<String> {
    let m = pattern.find(ua)?;
    let bytes = ua.as_bytes();
    let (mut start, mut end) = (m.start(), m.end());
    while start > 0
        && is_word_byte(bytes[start - 1])
        && start < bytes.len()
        && is_word_byte(bytes[start])
    {
        start -= 1;
    }
    while end < bytes.len() && end > 0 && is_word_byte(bytes[end - 1]) && is_word_byte(bytes[end]) {
        end += 1;
    }
    ua.get(start..end).map(|s| trim_edges(s).to_owned())
}

/// Pushes `token` unless a case-insensitive equal is already there.
pub fn push_unique(tokens: &mut Vec<String>, token: &str) {
    if !tokens.iter().any(|t| t.eq_ignore_ascii_case(token)) {
        tokens.push(token.to_owned());
    }
}

/// The tokens of one list entry, or the reason it has none.
///
/// With `instances`, a token must name at least one of them; a literal that
/// does not (the pattern `Aboundex` in `Aboundexbot/0.3`) is widened to the
/// whole word it stands in.
pub fn derive(pattern: &str, instances: &[String]) -> Result<Vec<String>, &'static str> {
    let mut tokens = Vec::new();
    let literal_set = literals(pattern);
    if instances.is_empty() {
        let Some(lits) = literal_set else {
            return Err(NOT_LITERAL);
        };
        for lit in lits.iter().filter(|l| is_safe(l)) {
            push_unique(&mut tokens, lit);
        }
        return if tokens.is_empty() {
            Err(UNSAFE)
        } else {
            Ok(tokens)
        };
    }
    let compiled = regex::Regex::new(pattern).ok();
    for ua in instances {
        let from_literal = literal_set
            .iter()
            .flatten()
            .find(|l| is_safe(l) && names(l, ua))
            .cloned();
        let token = from_literal.or_else(|| compiled.as_ref().and_then(|re| word_at(re, ua)));
        if let Some(t) = token.filter(|t| is_safe(t) && names(t, ua)) {
            push_unique(&mut tokens, &t);
        }
    }
    if tokens.is_empty() {
        Err(NOT_LITERAL)
    } else {
        Ok(tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finite_patterns_give_their_literals() {
        assert_eq!(literals(r"Googlebot\/").unwrap(), ["Googlebot"]);
        assert_eq!(
            literals("(?:Sogou web spider|Sogou inst spider)").unwrap(),
            ["Sogou web spider", "Sogou inst spider"]
        );
        assert_eq!(literals("[wW]get").unwrap().len(), 2);
        assert_eq!(literals("^Mozilla.*Foo"), None);
    }

    #[test]
    fn instances_widen_and_check_tokens() {
        let got = derive("Aboundex", &["Aboundexbot/0.3 (+http://x)".into()]).unwrap();
        assert_eq!(got, ["Aboundexbot"]);
        let got = derive(
            r"[a-z]+-crawler\/",
            &["Mozilla/5.0 (compatible; acme-crawler/1.0)".into()],
        )
        .unwrap();
        assert_eq!(got, ["acme-crawler"]);
        assert_eq!(
            derive("^Mozilla.*Chrome", &["Mozilla/5.0 Chrome/1".into()]),
            Err(NOT_LITERAL)
        );
        assert_eq!(derive("Mobile", &[]), Err(UNSAFE));
    }

    #[test]
    fn browser_words_are_never_tokens() {
        for t in [
            "Mozilla",
            "Chrome",
            "Mobile Safari",
            "bot",
            "12.0",
            "x",
            "(foo)",
            "Mozilla/5.0",
        ] {
            assert!(!is_safe(t), "{t}");
        }
        assert!(!is_safe("Mozilla/5.0 (compatible"));
        assert!(is_safe("Googlebot-Mobile"));
    }
}
