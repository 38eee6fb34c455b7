//! The hidden honeypot link, added before `</body>` of uncompressed HTML
//! pages by a streaming body filter. A page with a known length keeps one
//! (grown by the link), so it is not sent chunked.

use bytes::Bytes;
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

/// Finds `</body>` (any case) in an HTML chunk: where the hidden link goes.
fn body_close(chunk: &[u8]) -> Option<usize> {
    const TAG: &[u8] = b"</body";
    memchr::memmem::rfind_iter(chunk, b"</").find(|&at| {
        chunk.len() >= at + TAG.len() && chunk[at..at + TAG.len()].eq_ignore_ascii_case(TAG)
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
}
