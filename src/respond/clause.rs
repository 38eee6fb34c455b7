//! The clause for the site's terms, rendered once per snapshot in each
//! language and format: its Markdown template filled with the reservation's
//! facts, then turned into HTML, plain text, or kept as Markdown.

use bytes::Bytes;

use super::markdown;
use super::pages::Page;
use crate::model::Lang;

/// The formats the clause is served and printed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Html,
    Text,
    Markdown,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Html, Format::Text, Format::Markdown];

    /// The file extension the ledger archives this format under.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Html => "html",
            Format::Text => "txt",
            Format::Markdown => "md",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Html => "text/html; charset=utf-8",
            Format::Text => "text/plain; charset=utf-8",
            Format::Markdown => "text/markdown; charset=utf-8",
        }
    }
}

/// The clause in every language and format.
#[derive(Debug, Clone)]
pub struct ClausePages {
    /// By language, then format (the order of [`Format::ALL`]).
    pages: [[Page; 3]; 2],
}

impl ClausePages {
    /// Renders every variant from the filled Markdown of each language
    /// (`sources[Lang as usize]`).
    pub fn new(sources: [String; 2]) -> Self {
        let [en, fr] = sources;
        Self {
            pages: [variants(&en, Lang::En), variants(&fr, Lang::Fr)],
        }
    }

    pub fn get(&self, lang: Lang, format: Format) -> &Page {
        &self.pages[lang as usize][format as usize]
    }
}

fn variants(source: &str, lang: Lang) -> [Page; 3] {
    Format::ALL.map(|f| Page {
        content_type: f.content_type(),
        body: Bytes::from(render(source, lang, f)),
    })
}

/// One variant of the filled Markdown.
fn render(source: &str, lang: Lang, format: Format) -> String {
    match format {
        Format::Markdown => source.to_owned(),
        Format::Text => markdown::to_text(source),
        Format::Html => {
            let title = markdown::title(source).unwrap_or_default();
            format!(
                "<!doctype html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n\
                 <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
                 <title>{}</title>\n\
                 <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:3rem auto;padding:0 1rem;color:#1d1d1f}}</style>\n\
                 </head>\n<body>\n{}</body>\n</html>\n",
                lang.as_str(),
                markdown::html_escape(&title),
                markdown::to_html(source)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, RightsHolder};
    use crate::optout::reservation::Reservation;
    use std::path::Path;

    /// The shipped config's rights holder and reservation.
    fn shipped() -> (RightsHolder, Reservation) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let config = Config::load(&root.join("config/rempart.toml")).expect("shipped config");
        let spec = config.raw.reservation.as_ref().expect("a reservation");
        let reservation = Reservation::compile(spec).expect("compiles");
        (config.raw.rights_holder.clone(), reservation)
    }

    fn clause(holder: &RightsHolder, r: &Reservation) -> ClausePages {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/templates");
        crate::respond::pages::render_clause(&dir, holder, r).expect("renders")
    }

    fn text(c: &ClausePages, lang: Lang, format: Format) -> String {
        String::from_utf8_lossy(&c.get(lang, format).body).into_owned()
    }

    #[test]
    fn french_clause_from_the_shipped_config() {
        let (holder, r) = shipped();
        let t = text(&clause(&holder, &r), Lang::Fr, Format::Text);
        for needle in [
            "article 4, paragraphe 3, de la directive (UE) 2019/790",
            "article L.122-5-3 du code de la propriété intellectuelle",
            "article L.211-3, 8°",
            "article 53, paragraphe 1, point c), du règlement (UE) 2024/1689",
            "Catalogue Démo SAS s'oppose expressément",
            "- /*",
            "licences@catalogue-demo.example",
            "https://catalogue-demo.example/licences-ia",
            "0,01 euro",
            "l'entraînement, l'affinage ou l'évaluation de modèles",
            "Restent autorisés :\n\n- l'indexation par les moteurs de recherche",
            "https://catalogue-demo.example/tdm-reservation",
        ] {
            assert!(t.contains(needle), "{needle:?} missing from:\n{t}");
        }
        assert!(!t.contains("expressly reserves"), "no English: {t}");
    }

    #[test]
    fn english_clause_from_the_shipped_config() {
        let (holder, r) = shipped();
        let c = clause(&holder, &r);
        let t = text(&c, Lang::En, Format::Text);
        for needle in [
            "article 4 (3) of Directive (EU) 2019/790",
            "article L.122-5-3 of the French intellectual property code (CPI)",
            "article L.211-3 8°",
            "Article 53 (1) (c) of Regulation (EU) 2024/1689",
            "Catalogue Démo SAS expressly reserves",
            "- /*",
            "licences@catalogue-demo.example",
            "EUR 0.01 per page",
            "training, fine-tuning or evaluating",
        ] {
            assert!(t.contains(needle), "{needle:?} missing from:\n{t}");
        }
        let md = text(&c, Lang::En, Format::Markdown);
        assert!(
            md.starts_with("# Reservation of text and data mining rights\n"),
            "{md}"
        );
        assert!(
            md.contains("- **/\\***"),
            "the path is escaped, not emphasis: {md}"
        );
        let html = text(&c, Lang::En, Format::Html);
        assert!(html.contains("<html lang=\"en\">"), "{html}");
        assert!(html.contains("<li><strong>/*</strong></li>"), "{html}");
        assert!(
            html.contains("<a href=\"mailto:licences@catalogue-demo.example\">"),
            "{html}"
        );
    }

    #[test]
    fn every_value_is_escaped_in_html_and_markdown() {
        let (mut holder, r) = shipped();
        holder.name = "A & B <script>alert(1)</script> **Films**".into();
        holder.terms_url = "https://t.example/?a=1&b=\"2\"".into();
        let c = clause(&holder, &r);
        let html = text(&c, Lang::Fr, Format::Html);
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("A &amp; B &lt;script&gt;alert(1)&lt;/script&gt; **Films**"),
            "{html}"
        );
        assert!(
            html.contains("href=\"https://t.example/?a=1&amp;b=&quot;2&quot;\""),
            "{html}"
        );
        let md = text(&c, Lang::Fr, Format::Markdown);
        assert!(
            md.contains("A \\& B \\<script\\>alert\\(1\\)\\</script\\> \\*\\*Films\\*\\*"),
            "{md}"
        );
        let t = text(&c, Lang::Fr, Format::Text);
        assert!(
            t.contains("A & B <script>alert(1)</script> **Films** s'oppose"),
            "{t}"
        );
    }
}
