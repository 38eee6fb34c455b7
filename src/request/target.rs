//! The request-target, made canonical once: the path every stage decides on
//! and the path the origin receives are the same path.
//!
//! The rule (docs/security.md gives it with how common origins read the same
//! bytes):
//!
//! - origin-form only (`/…`); HTTP/1 absolute-form is read as its own host
//!   and path, and forwarded in origin-form with that host;
//! - percent-escapes are decoded, then `.` and `..` segments are removed and
//!   repeated slashes folded, so that no origin can resolve them otherwise;
//! - what cannot be kept without guessing is refused with 400: an escape that
//!   is not two hex digits, an encoded `/` or `\`, a raw `\`, a `;` path
//!   parameter (Tomcat and Jetty drop it, others keep it), bytes that do not
//!   decode to UTF-8 (overlong forms such as `%c0%ae` among them: IIS reads
//!   that as a dot), NUL and other control characters, a fragment, and an
//!   escape encoded twice (`%252e`), which an origin decoding twice reads
//!   as a dot;
//! - case is kept (paths are case-sensitive) unless the config says the
//!   origin ignores case, then both forms are lower-cased.
//!
//! A path that is already canonical (the common case) is borrowed, not
//! copied. Otherwise the decided form is the decoded text and the forwarded
//! form re-encodes it: only unreserved characters, `/` and the sub-delimiters
//! other than `;` stay literal.

use std::borrow::Cow;

/// Why a request-target cannot be made canonical.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetError {
    /// No leading `/`: authority-form, asterisk-form or a relative path.
    NotOriginForm,
    /// `%` not followed by two hex digits.
    BadEscape,
    /// `%2F` or `%5C`: a separator that origins read differently.
    EncodedSeparator,
    /// A raw `\`, which IIS reads as `/`.
    Backslash,
    /// `;` path parameters, which Tomcat and Jetty strip and others keep.
    PathParameter,
    /// Escapes that do not decode to UTF-8 (including overlong forms).
    InvalidUtf8,
    /// NUL or another control character, raw or encoded.
    Control,
    /// A `#` in the request-target.
    Fragment,
    /// `%25` followed by two hex digits: an origin that decodes twice would
    /// read another path than the one decided on.
    DoubleEncoding,
}

impl TargetError {
    /// Bounded label for `rempart_bad_requests_total{reason}`.
    pub fn label(self) -> &'static str {
        match self {
            TargetError::NotOriginForm => "target-form",
            TargetError::BadEscape => "target-escape",
            TargetError::EncodedSeparator => "target-encoded-separator",
            TargetError::Backslash => "target-backslash",
            TargetError::PathParameter => "target-path-parameter",
            TargetError::InvalidUtf8 => "target-invalid-utf8",
            TargetError::Control => "target-control",
            TargetError::Fragment => "target-fragment",
            TargetError::DoubleEncoding => "target-double-encoding",
        }
    }

    /// What the 400 page says.
    pub fn message(self) -> &'static str {
        match self {
            TargetError::NotOriginForm => "the request-target must start with '/'",
            TargetError::BadEscape => "a '%' must be followed by two hexadecimal digits",
            TargetError::EncodedSeparator => "encoded '/' or '\\' in the path",
            TargetError::Backslash => "'\\' in the path",
            TargetError::PathParameter => "';' path parameters are not accepted",
            TargetError::InvalidUtf8 => "percent-escapes that do not decode to UTF-8",
            TargetError::Control => "control characters in the path",
            TargetError::Fragment => "a fragment ('#') in the request-target",
            TargetError::DoubleEncoding => "a percent-escape encoded twice",
        }
    }
}

/// A canonical path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    /// The decoded path every stage decides on: starts with `/`, no dot
    /// segments, no repeated slashes.
    pub path: Cow<'a, str>,
    /// The same path as sent to the origin, when it differs from what the
    /// client wrote (`None`: forward the client's bytes, they are canonical).
    pub wire: Option<String>,
}

/// Characters that stay literal in a canonical path on the wire: RFC 3986
/// unreserved, `/`, and the sub-delimiters, `:` and `@`, but not `;`.
const LITERAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'/'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b'='
                    | b':'
                    | b'@'
            );
        b += 1;
    }
    t
};

fn literal(b: u8) -> bool {
    LITERAL[b as usize]
}

/// What one pass over a raw path finds: whether it can be used as it is
/// (every byte literal, no `//`, no `.` or `..` segment), and whether it has
/// an upper-case letter. One pass because every request's path goes through
/// it.
#[derive(Debug, PartialEq, Eq)]
struct Scan {
    plain: bool,
    upper: bool,
}

/// Scans a path that starts with `/`.
fn scan(path: &[u8]) -> Scan {
    let dots_only = |len: usize, dots: usize| len > 0 && len <= 2 && dots == len;
    let (mut upper, mut len, mut dots) = (false, 0usize, 0usize);
    for &b in path.iter().skip(1) {
        if !literal(b) {
            return Scan {
                plain: false,
                upper,
            };
        }
        if b == b'/' {
            if len == 0 || dots_only(len, dots) {
                return Scan {
                    plain: false,
                    upper,
                };
            }
            (len, dots) = (0, 0);
        } else {
            len += 1;
            dots += usize::from(b == b'.');
            upper |= b.is_ascii_uppercase();
        }
    }
    Scan {
        plain: !dots_only(len, dots),
        upper,
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Makes a raw path (no query) canonical.
pub fn canonical_path(raw: &str, fold_case: bool) -> Result<Target<'_>, TargetError> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(TargetError::NotOriginForm);
    }
    let scan = scan(bytes);
    if scan.plain && !(fold_case && scan.upper) {
        return Ok(Target {
            path: Cow::Borrowed(raw),
            wire: None,
        });
    }
    // Decode, refusing what has no single reading.
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let (Some(h), Some(l)) = (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(TargetError::BadEscape);
                };
                let c = h << 4 | l;
                match c {
                    b'/' | b'\\' => return Err(TargetError::EncodedSeparator),
                    0..=0x1f | 0x7f => return Err(TargetError::Control),
                    _ => decoded.push(c),
                }
                i += 3;
                continue;
            }
            b'\\' => return Err(TargetError::Backslash),
            b';' => return Err(TargetError::PathParameter),
            b'#' => return Err(TargetError::Fragment),
            0..=0x20 | 0x7f => return Err(TargetError::Control),
            _ => decoded.push(b),
        }
        i += 1;
    }
    let double = decoded
        .windows(3)
        .any(|w| w[0] == b'%' && hex(w[1]).is_some() && hex(w[2]).is_some());
    if double {
        return Err(TargetError::DoubleEncoding);
    }
    let text = String::from_utf8(decoded).map_err(|_| TargetError::InvalidUtf8)?;
    let text = if fold_case {
        text.to_ascii_lowercase()
    } else {
        text
    };
    // RFC 3986 remove_dot_segments, with empty segments folded.
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing = false;
    for seg in text.split('/').skip(1) {
        trailing = false;
        match seg {
            "" | "." => trailing = true,
            ".." => {
                segments.pop();
                trailing = true;
            }
            s => segments.push(s),
        }
    }
    let mut path = String::with_capacity(text.len());
    for seg in &segments {
        path.push('/');
        path.push_str(seg);
    }
    if path.is_empty() || trailing {
        path.push('/');
    }
    let wire = encode(&path);
    let wire = (wire != raw).then_some(wire);
    Ok(Target {
        path: Cow::Owned(path),
        wire,
    })
}

/// The wire form of a decoded path.
fn encode(path: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(path.len() + 8);
    for &b in path.as_bytes() {
        if literal(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scan against the plain reading of its rules, on every path of a
    /// `/` and up to four more bytes from a small alphabet.
    #[test]
    fn scan_matches_its_rules() {
        let plain = |p: &[u8]| {
            p.iter().all(|&b| literal(b))
                && !p.windows(2).any(|w| w == b"//")
                && !p.split(|&b| b == b'/').any(|s| s == b"." || s == b"..")
        };
        let alphabet = [b'/', b'.', b'a', b'A', b'%', b' '];
        let mut paths = vec![b"/".to_vec()];
        for _ in 0..4 {
            let longer: Vec<Vec<u8>> = paths
                .iter()
                .flat_map(|p| alphabet.iter().map(move |&c| [p.as_slice(), &[c]].concat()))
                .collect();
            paths.extend(longer);
        }
        for p in &paths {
            let got = scan(p);
            assert_eq!(got.plain, plain(p), "{:?}", String::from_utf8_lossy(p));
            if got.plain {
                assert_eq!(got.upper, p.iter().any(u8::is_ascii_uppercase));
            }
        }
    }

    fn ok(raw: &str) -> (String, Option<String>) {
        let t = canonical_path(raw, false).unwrap_or_else(|e| panic!("{raw}: {e:?}"));
        (t.path.into_owned(), t.wire)
    }

    #[test]
    fn canonical_paths_are_borrowed() {
        for p in ["/", "/films/a", "/a-b_c.d~e/f:g@h!$&'()*+,=", "/films/"] {
            let t = canonical_path(p, false).unwrap();
            assert!(matches!(t.path, Cow::Borrowed(_)), "{p}");
            assert_eq!(t.wire, None, "{p}");
        }
    }

    #[test]
    fn decoding_and_dot_segments() {
        let cases = [
            ("/%66ilms/a", "/films/a", Some("/films/a")),
            ("//films/./x/../a/", "/films/a/", Some("/films/a/")),
            ("/../../etc", "/etc", Some("/etc")),
            ("/films/%2e%2e/private", "/private", Some("/private")),
            ("/films/.%2E/private", "/private", Some("/private")),
            ("/a/b/..", "/a/", Some("/a/")),
            ("/a/.", "/a/", Some("/a/")),
            ("/caf%C3%A9", "/café", None),
            ("/caf%c3%a9", "/café", Some("/caf%C3%A9")),
            ("/a%20b", "/a b", None),
            ("/q%3Fx", "/q?x", None),
            ("/p%25", "/p%", None),
            ("/100%25-sure", "/100%-sure", None),
            ("/semi%3Bcolon", "/semi;colon", None),
            ("/%41", "/A", Some("/A")),
        ];
        for (raw, path, wire) in cases {
            assert_eq!(ok(raw), (path.to_owned(), wire.map(str::to_owned)), "{raw}");
        }
    }

    #[test]
    fn what_cannot_be_kept_is_refused() {
        let cases = [
            ("films/x", TargetError::NotOriginForm),
            ("*", TargetError::NotOriginForm),
            ("", TargetError::NotOriginForm),
            ("/a%2Fb", TargetError::EncodedSeparator),
            ("/a%2fb", TargetError::EncodedSeparator),
            ("/a%5Cb", TargetError::EncodedSeparator),
            ("/a\\..\\b", TargetError::Backslash),
            ("/films;jsessionid=1/x", TargetError::PathParameter),
            ("/..;/films", TargetError::PathParameter),
            ("/%ff/../films", TargetError::InvalidUtf8),
            ("/.well-known/%ff/../../films/x", TargetError::InvalidUtf8),
            ("/%c0%ae%c0%ae/films", TargetError::InvalidUtf8),
            ("/%ff", TargetError::InvalidUtf8),
            ("/a%00b", TargetError::Control),
            ("/a%0ab", TargetError::Control),
            ("/a%zz", TargetError::BadEscape),
            ("/a%4", TargetError::BadEscape),
            ("/a#frag", TargetError::Fragment),
            ("/%252e%252e/films", TargetError::DoubleEncoding),
            ("/a%2541", TargetError::DoubleEncoding),
        ];
        for (raw, err) in cases {
            assert_eq!(canonical_path(raw, false), Err(err), "{raw}");
        }
    }

    #[test]
    fn case_folding_when_the_origin_ignores_case() {
        let t = canonical_path("/FILMS/A", true).unwrap();
        assert_eq!(
            (t.path.as_ref(), t.wire.as_deref()),
            ("/films/a", Some("/films/a"))
        );
        assert_eq!(ok("/FILMS/A").0, "/FILMS/A");
    }

    #[test]
    fn canonicalisation_is_idempotent() {
        for raw in ["/%66ilms/./a/../b//c/", "/caf%c3%a9/%7euser", "/a%20b/%2e"] {
            let once = canonical_path(raw, false).unwrap();
            let wire = once.wire.clone().unwrap_or_else(|| raw.to_owned());
            let twice = canonical_path(&wire, false).unwrap();
            assert_eq!(twice.path, once.path, "{raw}");
            assert_eq!(twice.wire, None, "{raw}: the wire form is canonical");
        }
    }
}
