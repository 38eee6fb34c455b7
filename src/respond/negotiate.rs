//! Which language and which format a client gets rempart's pages in.

use crate::model::Lang;
use crate::respond::clause::Format;

/// The items of an `Accept`-style header, at most 32: each value with its
/// weight in thousandths (`q=0.9` → 900; none, or one that does not parse,
/// → 1000). Bytes in, no copy, no float parsing: refusals read these
/// headers on every request, so items are found with `memchr` rather than
/// byte-by-byte splitting.
fn items(header: &[u8]) -> Items<'_> {
    Items {
        rest: Some(header),
        left: 32,
    }
}

/// The iterator behind [`items`]: like splitting on `,` (an empty header is
/// one empty item), then each item on `;`.
struct Items<'h> {
    /// What is left after the last comma; `None` once the last item is out.
    rest: Option<&'h [u8]>,
    left: u8,
}

impl<'h> Iterator for Items<'h> {
    type Item = (&'h [u8], u16);

    fn next(&mut self) -> Option<Self::Item> {
        self.left = self.left.checked_sub(1)?;
        let rest = self.rest?;
        let (item, tail) = split_once(rest, b',');
        self.rest = tail;
        let (value, params) = split_once(item, b';');
        let q = params.map_or(1000, |params| {
            params
                .split(|&b| b == b';')
                .filter_map(|p| p.trim_ascii().strip_prefix(b"q="))
                .find_map(parse_q)
                .unwrap_or(1000)
        });
        Some((value.trim_ascii(), q))
    }
}

/// The bytes before the first `sep`, and those after it when there is one.
fn split_once(bytes: &[u8], sep: u8) -> (&[u8], Option<&[u8]>) {
    match memchr::memchr(sep, bytes) {
        Some(i) => {
            let (head, tail) = bytes.split_at(i);
            (head, tail.get(1..))
        }
        None => (bytes, None),
    }
}

/// `1`, `1.0`, `0`, `0.8`, `0.85`, `0.855` → thousandths.
fn parse_q(q: &[u8]) -> Option<u16> {
    match q.trim_ascii() {
        [b'1', rest @ ..] if rest.iter().all(|&b| b == b'.' || b == b'0') => Some(1000),
        [b'0'] | [b'0', b'.'] => Some(0),
        [b'0', b'.', digits @ ..] if !digits.is_empty() && digits.len() <= 3 => {
            let mut v = 0u16;
            let mut scale = 100;
            for &d in digits {
                if !d.is_ascii_digit() {
                    return None;
                }
                v += u16::from(d - b'0') * scale;
                scale /= 10;
            }
            Some(v)
        }
        _ => None,
    }
}

/// Picks the page language from `Accept-Language` (highest q among those we
/// have; `fr-CA` counts as `fr`), else `default`.
pub fn choose_lang(accept_language: &[u8], default: Lang) -> Lang {
    let mut best: Option<(u16, Lang)> = None;
    for (tag, q) in items(accept_language) {
        let primary = tag.split(|&b| b == b'-').next().unwrap_or(b"");
        let lang = Lang::ALL
            .into_iter()
            .find(|l| primary.eq_ignore_ascii_case(l.as_str().as_bytes()));
        if let Some(lang) = lang {
            // Nothing ranks above 1 and ties go to the first: most browsers
            // name their language first, without a weight.
            if q == 1000 {
                return lang;
            }
            if q > 0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
    }
    best.map_or(default, |(_, l)| l)
}

/// True when `Accept` ranks `application/json` above `text/html`.
pub fn prefers_json(accept: &[u8]) -> bool {
    // Every JSON media type has a `j`: most refused clients' `Accept` has
    // none, and needs no parsing.
    if memchr::memchr2(b'j', b'J', accept).is_none() {
        return false;
    }
    let (mut json, mut html) = (0u32, 0u32);
    for (media, q) in items(accept) {
        let q = u32::from(q);
        let suffix_json =
            media.len() >= 5 && media[media.len() - 5..].eq_ignore_ascii_case(b"+json");
        if media.eq_ignore_ascii_case(b"application/json") || suffix_json {
            json = json.max(q * 1000);
        } else if media == b"*/*" {
            html = html.max(q * 990);
        } else if media.eq_ignore_ascii_case(b"text/html") || media.eq_ignore_ascii_case(b"text/*")
        {
            html = html.max(q * 1000);
        }
    }
    json > 0 && json >= html
}

/// The clause's format from `Accept`: plain text or Markdown when the client
/// ranks it above HTML, else HTML (what a browser, or `*/*`, gets).
pub fn choose_text_format(accept: &[u8]) -> Format {
    let (mut html, mut text, mut markdown) = (0u16, 0u16, 0u16);
    for (media, q) in items(accept) {
        if media.eq_ignore_ascii_case(b"text/html") || media == b"*/*" || media == b"text/*" {
            html = html.max(q);
        } else if media.eq_ignore_ascii_case(b"text/plain") {
            text = text.max(q);
        } else if media.eq_ignore_ascii_case(b"text/markdown") {
            markdown = markdown.max(q);
        }
    }
    if markdown > html && markdown >= text {
        Format::Markdown
    } else if text > html {
        Format::Text
    } else {
        Format::Html
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_by_accept_language() {
        assert_eq!(choose_lang(b"fr-FR,fr;q=0.9,en;q=0.8", Lang::En), Lang::Fr);
        assert_eq!(choose_lang(b"en-GB,fr;q=0.5", Lang::Fr), Lang::En);
        assert_eq!(choose_lang(b"de-DE, fr;q=0.3", Lang::En), Lang::Fr);
        assert_eq!(choose_lang(b"de", Lang::Fr), Lang::Fr);
        assert_eq!(choose_lang(b"", Lang::En), Lang::En);
        assert_eq!(choose_lang(b"fr;q=0", Lang::En), Lang::En);
        assert_eq!(choose_lang(b"\xff", Lang::Fr), Lang::Fr);
        assert_eq!(choose_lang(b"en;q=0.9, fr, en", Lang::En), Lang::Fr);
        assert_eq!(choose_lang(b"fr;q=0.5, en;q=0.5", Lang::En), Lang::Fr);
    }

    #[test]
    fn weights() {
        assert_eq!(parse_q(b"0.9"), Some(900));
        assert_eq!(parse_q(b"0.85"), Some(850));
        assert_eq!(parse_q(b"1.0"), Some(1000));
        assert_eq!(parse_q(b"0"), Some(0));
        assert_eq!(parse_q(b"2"), None);
        assert_eq!(parse_q(b"0.1234"), None);
        assert_eq!(choose_lang(b"fr;q=abc, en;q=0.5", Lang::En), Lang::Fr);
    }

    #[test]
    fn items_split_like_the_header_grammar() {
        let all: Vec<(&[u8], u16)> = items(b" a ;q=0.5, ,b;x=1;q=0.2,c;q=zz;q=0.3").collect();
        assert_eq!(
            all,
            vec![
                (&b"a"[..], 500),
                (&b""[..], 1000),
                (&b"b"[..], 200),
                (&b"c"[..], 300)
            ]
        );
        assert_eq!(items(b"").collect::<Vec<_>>(), vec![(&b""[..], 1000)]);
        assert_eq!(items(b"a,").count(), 2);
        assert_eq!(items(&[b','; 100]).count(), 32);
    }

    #[test]
    fn accept_negotiation() {
        assert!(prefers_json(b"APPLICATION/JSON"));
        assert!(prefers_json(b"application/ld+json"));
        assert!(prefers_json(b"application/json"));
        assert!(!prefers_json(b"text/html,application/xhtml+xml,*/*;q=0.8"));
        assert!(prefers_json(b"application/json, */*;q=0.5"));
        assert!(!prefers_json(b"text/html, application/json;q=0.5"));
        assert!(!prefers_json(b""));
        assert!(!prefers_json(b"\xff\xfe"));
    }

    #[test]
    fn clause_format_by_accept() {
        assert_eq!(
            choose_text_format(b"text/html,application/xhtml+xml,*/*;q=0.8"),
            Format::Html
        );
        assert_eq!(choose_text_format(b""), Format::Html);
        assert_eq!(choose_text_format(b"*/*"), Format::Html);
        assert_eq!(choose_text_format(b"text/plain"), Format::Text);
        assert_eq!(
            choose_text_format(b"text/markdown, text/plain;q=0.5"),
            Format::Markdown
        );
        assert_eq!(
            choose_text_format(b"text/html, text/markdown;q=0.9"),
            Format::Html
        );
    }
}
