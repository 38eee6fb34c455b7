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
