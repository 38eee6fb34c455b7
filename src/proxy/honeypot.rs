//! The hidden honeypot link, added before `</body>` of uncompressed HTML
//! pages by a streaming body filter. A page with a known length keeps one
//! (grown by the link), so it is not sent chunked.

use std::sync::LazyLock;

use bytes::Bytes;
use memchr::memmem::Finder;
use pingora::http::ResponseHeader;
use pingora::Result;

/// Whether this response gets the link, and the header changes it needs.
pub fn prepare(resp: &mut ResponseHeader, method: &http::Method, link: &[u8]) -> Result<bool> {
    let html = resp.status == http::StatusCode::OK
        && method == http::Method::GET
        && resp
            .headers
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/html"))
        && resp
            .headers
            .get(http::header::CONTENT_ENCODING)
            .is_none_or(|v| v.as_bytes().eq_ignore_ascii_case(b"identity"));
    if !html {
        return Ok(false);
    }
    let grown = resp
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
        .map(|len| len + link.len());
    match grown {
        Some(len) => resp.insert_header(http::header::CONTENT_LENGTH, len)?,
        None => {
            resp.remove_header(&http::header::CONTENT_LENGTH);
        }
    }
    Ok(true)
}

/// Adds the link to this chunk when it holds `</body>`, or at the end of the
/// stream. Returns true once the link is in.
pub fn inject(body: &mut Option<Bytes>, end_of_stream: bool, link: &[u8]) -> bool {
    let at = match (body.as_ref().and_then(|b| body_close(b)), end_of_stream) {
        (Some(at), _) => at,
        (None, true) => body.as_ref().map_or(0, Bytes::len),
        (None, false) => return false,
    };
    let chunk = body.take().unwrap_or_default();
    let mut v = Vec::with_capacity(chunk.len() + link.len());
    v.extend_from_slice(&chunk[..at]);
    v.extend_from_slice(link);
    v.extend_from_slice(&chunk[at..]);
    *body = Some(Bytes::from(v));
    true
}

/// How far from a chunk's end `</body>` is looked for in any case: a page
/// closes its body just before `</html>`, and a backward scan for `</` is
/// slow over a whole page of `</p>`.
const TAIL: usize = 256;

/// `</body` as written by nearly every page, found by SIMD searchers built
/// once.
static CLOSE_TAGS: LazyLock<[Finder<'static>; 2]> =
    LazyLock::new(|| [Finder::new(b"</body"), Finder::new(b"</BODY")]);

/// Finds the last `</body>` in an HTML chunk: where the hidden link goes.
/// Any case near the end of the chunk; elsewhere in the chunk, lower or
/// upper case (a mixed-case tag far from the end gets the link at the end
/// of the page instead, which browsers read as part of the body too).
fn body_close(chunk: &[u8]) -> Option<usize> {
    const TAG: &[u8] = b"</body";
    let from = chunk.len().saturating_sub(TAIL);
    let near_end = memchr::memmem::rfind_iter(&chunk[from..], b"</")
        .map(|at| from + at)
        .find(|&at| {
            chunk
                .get(at..at + TAG.len())
                .is_some_and(|t| t.eq_ignore_ascii_case(TAG))
        });
    near_end.or_else(|| {
        CLOSE_TAGS
            .iter()
            .filter_map(|f| f.find_iter(chunk).last())
            .max()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_goes_before_body_close_or_last() {
        let mut b = Some(Bytes::from_static(b"<p>x</BODY></html>"));
        assert!(inject(&mut b, false, b"<a>"));
        assert_eq!(b.unwrap(), Bytes::from_static(b"<p>x<a></BODY></html>"));
        let mut b = Some(Bytes::from_static(b"<p>x"));
        assert!(!inject(&mut b, false, b"<a>"));
        assert!(inject(&mut b, true, b"<a>"));
        assert_eq!(b.unwrap(), Bytes::from_static(b"<p>x<a>"));
    }

    #[test]
    fn the_last_body_close_is_found_far_from_the_end_too() {
        let mut page = b"<html><body>".to_vec();
        page.extend(b"<p>text</p>\n".repeat(100));
        page.extend(b"</body>");
        page.extend(b"<!-- trailer -->".repeat(40));
        page.extend(b"</html>");
        let at = page.windows(7).position(|w| w == b"</body>").unwrap();
        assert_eq!(body_close(&page), Some(at));
        let upper = page.to_ascii_uppercase();
        assert_eq!(body_close(&upper), Some(at));
        // A tag near the end in any case.
        assert_eq!(body_close(b"<p>x</Body></html>"), Some(4));
        // Two: the last one (a `</body>` quoted in a script comes first).
        let mut two = page.clone();
        two.extend(b"<p>late</p></body></html>");
        assert_eq!(body_close(&two), Some(two.len() - 14));
        assert_eq!(body_close(b"<p>no close</p>".repeat(50).as_slice()), None);
    }
}
