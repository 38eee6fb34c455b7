//! Mistakes located in a TOML file: file, line, column and key.
//!
//! Both kinds of mistakes land here: what serde rejects while parsing (a typo
//! in a key, a string where a number belongs) and what validation rejects
//! afterwards (an unknown agent in a rule, an overlapping range). Each is
//! reported as `file:line:column: key: message`, the form editors and CI
//! annotate.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A mistake at a known place in a TOML file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub path: PathBuf,
    /// 1-based line, 0 when the place is unknown.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Dotted key path (`rules[2].action`), empty for syntax errors.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": key `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for Located {}

/// 1-based (line, column) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// Parses TOML into `T`, locating any error by line, column and key path.
pub fn parse_toml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, Located> {
    let de = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let key = err.path().to_string();
        let key = if key == "." { String::new() } else { key };
        let inner = err.into_inner();
        let (line, column) = match inner.span() {
            Some(span) => line_col(text, span.start),
            None => locate_key(text, &key).unwrap_or((0, 0)),
        };
        Located {
            path: path.to_owned(),
            line,
            column,
            key,
            message: inner.message().trim().to_owned(),
        }
    })
}

/// Builds a [`Located`] error for a key found valid TOML but wrong, such as
/// `rules[3].agent`, by finding where that key stands in the text.
pub fn at_key(path: &Path, text: &str, key: &str, message: impl Into<String>) -> Located {
    let (line, column) = locate_key(text, key).unwrap_or((0, 0));
    Located {
        path: path.to_owned(),
        line,
        column,
        key: key.to_owned(),
        message: message.into(),
    }
}

/// Finds the (line, column) of a dotted key path like `rules[3].agent[1]`,
/// falling back to the deepest part of the path that exists.
fn locate_key(text: &str, key: &str) -> Option<(usize, usize)> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut item: &toml_edit::Item = doc.as_item();
    let mut best = None;
    for segment in split_key(key) {
        let next = match segment {
            Segment::Key(k) => item.get(k),
            Segment::Index(i) => item.get(i),
        };
        match next {
            Some(found) => {
                item = found;
                if let Some(span) = item_span(item) {
                    best = Some(line_col(text, span));
                }
            }
            None => break,
        }
    }
    best
}

/// Start offset of an item's value.
fn item_span(item: &toml_edit::Item) -> Option<usize> {
    match item {
        toml_edit::Item::Value(v) => v.span().map(|s| s.start),
        toml_edit::Item::Table(t) => t.span().map(|s| s.start),
        toml_edit::Item::ArrayOfTables(a) => a.span().map(|s| s.start),
        toml_edit::Item::None => None,
    }
}

#[derive(Clone, Copy)]
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn split_key(key: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in key.split('.').filter(|p| !p.is_empty()) {
        let (name, rest) = part.split_at(part.find('[').unwrap_or(part.len()));
        if !name.is_empty() {
            out.push(Segment::Key(name));
        }
        for idx in rest.split('[').filter(|s| !s.is_empty()) {
            if let Ok(i) = idx.trim_end_matches(']').parse() {
                out.push(Segment::Index(i));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        server: Server,
        #[serde(default)]
        rules: Vec<Rule>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Server {
        threads: usize,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Rule {
        name: String,
    }

    #[test]
    fn type_errors_name_line_and_key() {
        let text = "[server]\nthreads = \"two\"\n";
        let err = parse_toml::<Doc>(Path::new("r.toml"), text).unwrap_err();
        assert_eq!((err.line, err.key.as_str()), (2, "server.threads"), "{err}");
        assert!(
            err.to_string()
                .starts_with("r.toml:2:11: key `server.threads`"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_name_line_and_key() {
        let text = "[server]\nthreads = 2\n\n[[rules]]\nname = 'a'\n\n[[rules]]\nnmae = 'b'\n";
        let err = parse_toml::<Doc>(Path::new("r.toml"), text).unwrap_err();
        assert!(err.message.contains("nmae"), "{err}");
        assert_eq!(err.line, 8, "{err}");
        assert!(err.key.starts_with("rules[1]"), "{err}");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = parse_toml::<Doc>(Path::new("r.toml"), "[server]\nthreads = = 2\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
    }

    #[test]
    fn validation_errors_find_the_key() {
        let text = "[server]\nthreads = 2\n\n[[rules]]\nname = 'a'\n[[rules]]\nname = 'b'\n";
        let err = at_key(
            Path::new("r.toml"),
            text,
            "rules[1].name",
            "duplicate rule name",
        );
        assert_eq!(err.line, 7, "{err}");
        let err = at_key(Path::new("r.toml"), text, "server.threads", "too many");
        assert_eq!((err.line, err.column), (2, 11), "{err}");
    }
}
