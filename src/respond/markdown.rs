//! The small subset of Markdown the clause templates are written in, turned
//! into HTML or plain text: headings (`#` to `######`), paragraphs, bullet
//! (`- `) and numbered (`1. `) lists, `**strong**`, `[text](url)` links and
//! backslash escapes. A full Markdown engine would be one more dependency for
//! a page a lawyer writes once; the values the template inserts are
//! backslash-escaped ([`escape`]) so that none of them can become markup,
//! and every character of text is HTML-escaped on the way out.

/// Backslash-escapes what this subset (or any Markdown reader) would take as
/// markup, so that a value inserted into a template stays text. Line breaks
/// become spaces: a value cannot start a block.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '<' | '>' | '#' | '!' | '|' | '~'
            | '&' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// One block of the document.
#[derive(Debug, PartialEq)]
enum Block {
    Heading(usize, String),
    Paragraph(String),
    List { ordered: bool, items: Vec<String> },
}

/// A list item's marker: `- `, `* ` or `12. `; `Some(ordered)` and the rest.
fn item(line: &str) -> Option<(bool, &str)> {
    if let Some(rest) = line.strip_prefix("- ").or_else(|| line.strip_prefix("* ")) {
        return Some((false, rest));
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    (digits > 0 && digits < 4)
        .then(|| line[digits..].strip_prefix(". "))
        .flatten()
        .map(|rest| (true, rest))
}

fn heading(line: &str) -> Option<(usize, &str)> {
    let level = line.bytes().take_while(|&b| b == b'#').count();
    let rest = line[level..].strip_prefix(' ')?;
    (1..=6).contains(&level).then_some((level, rest.trim()))
}

/// Splits the source into blocks (blank lines end paragraphs and lists;
/// an indented line continues a list item).
fn blocks(source: &str) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    let mut open = false;
    for raw in source.lines() {
        let line = raw.trim_end();
        if line.trim().is_empty() {
            open = false;
            continue;
        }
        if let Some((level, text)) = heading(line) {
            out.push(Block::Heading(level, text.to_owned()));
            open = false;
            continue;
        }
        let continued = raw.starts_with([' ', '\t']);
        match (out.last_mut(), item(line)) {
            (Some(Block::List { ordered, items }), Some((o, text))) if open && *ordered == o => {
                items.push(text.trim().to_owned());
            }
            (_, Some((ordered, text))) => out.push(Block::List {
                ordered,
                items: vec![text.trim().to_owned()],
            }),
            (Some(Block::List { items, .. }), None) if open && continued => {
                if let Some(last) = items.last_mut() {
                    last.push(' ');
                    last.push_str(line.trim());
                }
            }
            (Some(Block::Paragraph(p)), None) if open => {
                p.push(' ');
                p.push_str(line.trim());
            }
            (_, None) => out.push(Block::Paragraph(line.trim().to_owned())),
        }
        open = true;
    }
    out
}

/// A piece of inline text.
#[derive(Debug, PartialEq)]
enum Inline {
    Text(String),
    Strong,
    Link { text: String, href: String },
}

/// Reads up to the unescaped `close`, unescaping; `None` if there is none.
fn until(chars: &[char], mut i: usize, close: char) -> Option<(String, usize)> {
    let mut out = String::new();
    while i < chars.len() {
        match chars[i] {
            '\\' if chars.get(i + 1).is_some_and(char::is_ascii_punctuation) => {
                out.push(chars[i + 1]);
                i += 2;
            }
            c if c == close => return Some((out, i + 1)),
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    None
}

/// `[text](href)` at `i`: the link and the index after it.
fn link(chars: &[char], i: usize) -> Option<(Inline, usize)> {
    let (text, next) = until(chars, i + 1, ']')?;
    if chars.get(next) != Some(&'(') {
        return None;
    }
    let (href, end) = until(chars, next + 1, ')')?;
    Some((Inline::Link { text, href }, end))
}

fn inlines(text: &str) -> Vec<Inline> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' if chars.get(i + 1).is_some_and(char::is_ascii_punctuation) => {
                buf.push(chars[i + 1]);
                i += 2;
                continue;
            }
            '*' if chars.get(i + 1) == Some(&'*') => {
                out.push(Inline::Text(std::mem::take(&mut buf)));
                out.push(Inline::Strong);
                i += 2;
                continue;
            }
            '[' => {
                if let Some((l, next)) = link(&chars, i) {
                    out.push(Inline::Text(std::mem::take(&mut buf)));
                    out.push(l);
                    i = next;
                    continue;
                }
            }
            _ => {}
        }
        buf.push(chars[i]);
        i += 1;
    }
    out.push(Inline::Text(buf));
    out
}

/// HTML-escapes text and attribute values alike.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn inline_html(text: &str) -> String {
    let mut out = String::new();
    let mut strong = false;
    for piece in inlines(text) {
        match piece {
            Inline::Text(t) => out.push_str(&html_escape(&t)),
            Inline::Strong => {
                out.push_str(if strong { "</strong>" } else { "<strong>" });
                strong = !strong;
            }
            Inline::Link { text, href } => out.push_str(&format!(
                "<a href=\"{}\">{}</a>",
                html_escape(&href),
                html_escape(&text)
            )),
        }
    }
    if strong {
        out.push_str("</strong>");
    }
    out
}

fn inline_text(text: &str) -> String {
    let mut out = String::new();
    for piece in inlines(text) {
        match piece {
            Inline::Text(t) => out.push_str(&t),
            Inline::Strong => {}
            Inline::Link { text, href } => {
                let bare = href.strip_prefix("mailto:").unwrap_or(&href);
                if bare == text {
                    out.push_str(&text);
                } else {
                    out.push_str(&format!("{text} ({bare})"));
                }
            }
        }
    }
    out
}

/// The document's first heading, as text (the HTML page's title).
pub fn title(source: &str) -> Option<String> {
    blocks(source).into_iter().find_map(|b| match b {
        Block::Heading(_, t) => Some(inline_text(&t)),
        _ => None,
    })
}

/// The HTML of the body (no `<html>` around it).
pub fn to_html(source: &str) -> String {
    let mut out = String::new();
    for b in blocks(source) {
        match b {
            Block::Heading(n, t) => out.push_str(&format!("<h{n}>{}</h{n}>\n", inline_html(&t))),
            Block::Paragraph(t) => out.push_str(&format!("<p>{}</p>\n", inline_html(&t))),
            Block::List { ordered, items } => {
                let tag = if ordered { "ol" } else { "ul" };
                out.push_str(&format!("<{tag}>\n"));
                for i in items {
                    out.push_str(&format!("<li>{}</li>\n", inline_html(&i)));
                }
                out.push_str(&format!("</{tag}>\n"));
            }
        }
    }
    out
}

/// Plain text: headings underlined, lists with their markers, links as
/// `text (url)`.
pub fn to_text(source: &str) -> String {
    let mut parts = Vec::new();
    for b in blocks(source) {
        match b {
            Block::Heading(n, t) => {
                let t = inline_text(&t);
                let rule = if n == 1 { "=" } else { "-" };
                parts.push(format!("{t}\n{}", rule.repeat(t.chars().count())));
            }
            Block::Paragraph(t) => parts.push(inline_text(&t)),
            Block::List { ordered, items } => {
                let lines: Vec<String> = items
                    .iter()
                    .enumerate()
                    .map(|(i, t)| match ordered {
                        true => format!("{}. {}", i + 1, inline_text(t)),
                        false => format!("- {}", inline_text(t)),
                    })
                    .collect();
                parts.push(lines.join("\n"));
            }
        }
    }
    let mut out = parts.join("\n\n");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# Title **here**\n\nA paragraph\nthat goes on.\n\n- one [link](https://a.example/?a=1&b=2)\n  continued\n- two\n\n1. first\n2. second\n";

    #[test]
    fn blocks_and_inlines_to_html() {
        let html = to_html(DOC);
        assert_eq!(
            html,
            "<h1>Title <strong>here</strong></h1>\n<p>A paragraph that goes on.</p>\n<ul>\n<li>one <a href=\"https://a.example/?a=1&amp;b=2\">link</a> continued</li>\n<li>two</li>\n</ul>\n<ol>\n<li>first</li>\n<li>second</li>\n</ol>\n"
        );
    }

    #[test]
    fn plain_text() {
        let text = to_text(DOC);
        assert!(text.starts_with("Title here\n==========\n\nA paragraph that goes on.\n\n- one link (https://a.example/?a=1&b=2) continued\n- two\n\n1. first\n2. second\n"), "{text}");
        assert_eq!(title(DOC).as_deref(), Some("Title here"));
    }

    #[test]
    fn escaped_values_stay_text_and_are_html_escaped() {
        let value = "A & B <script>**x**</script> [l](javascript:x) /films/*";
        let source = format!("Holder: {}\n", escape(value));
        assert_eq!(
            to_html(&source),
            "<p>Holder: A &amp; B &lt;script&gt;**x**&lt;/script&gt; [l](javascript:x) /films/*</p>\n"
        );
        assert_eq!(to_text(&source), format!("Holder: {value}\n"));
        let link = format!("[{0}](mailto:{0})", escape("a_b@x.example"));
        assert_eq!(
            to_html(&link),
            "<p><a href=\"mailto:a_b@x.example\">a_b@x.example</a></p>\n"
        );
    }
}
