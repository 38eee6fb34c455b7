//! Which language and which format a client gets rempart's pages in.

use crate::model::Lang;

/// Picks the page language from `Accept-Language` (highest q among those we
/// have; `fr-CA` counts as `fr`), else `default`.
pub fn choose_lang(accept_language: &[u8], default: Lang) -> Lang {
    let Ok(header) = std::str::from_utf8(accept_language) else {
        return default;
    };
    let mut best: Option<(f32, Lang)> = None;
    for item in header.split(',').take(32) {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let primary = tag.split('-').next().unwrap_or("");
        let lang = Lang::ALL
            .into_iter()
            .find(|l| primary.eq_ignore_ascii_case(l.as_str()));
        if let Some(lang) = lang {
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
    }
    best.map_or(default, |(_, l)| l)
}

/// True when `Accept` ranks `application/json` above `text/html`.
pub fn prefers_json(accept: &[u8]) -> bool {
    let Ok(accept) = std::str::from_utf8(accept) else {
        return false;
    };
    let mut json = 0.0f32;
    let mut html = 0.0f32;
    for item in accept.split(',').take(32) {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let suffix_json = media.len() >= 5
            && media.is_char_boundary(media.len() - 5)
            && media[media.len() - 5..].eq_ignore_ascii_case("+json");
        if media.eq_ignore_ascii_case("application/json") || suffix_json {
            json = json.max(q);
        } else if media.eq_ignore_ascii_case("text/html")
            || media == "*/*"
            || media.eq_ignore_ascii_case("text/*")
        {
            html = html.max(q * if media == "*/*" { 0.99 } else { 1.0 });
        }
    }
    json > 0.0 && json >= html
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
    }

    #[test]
    fn accept_negotiation() {
        assert!(prefers_json(b"application/json"));
        assert!(!prefers_json(b"text/html,application/xhtml+xml,*/*;q=0.8"));
        assert!(prefers_json(b"application/json, */*;q=0.5"));
        assert!(!prefers_json(b"text/html, application/json;q=0.5"));
        assert!(!prefers_json(b""));
        assert!(!prefers_json(b"\xff\xfe"));
    }
}
