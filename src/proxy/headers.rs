//! What the origin is told and what the client is told on top of the
//! origin's answer: the request rewritten to the canonical target with the
//! client's address, and the opt-out headers on every proxied response.

use std::io::Write;
use std::net::IpAddr;

use pingora::http::{RequestHeader, ResponseHeader};
use pingora::{Error, Result};

/// The header that tells the origin which licensee a request comes from.
pub const LICENSEE_HEADER: &str = "x-rempart-licensee";

/// What the origin needs to know about a request that was decided.
#[derive(Debug, Clone, Default)]
pub struct Forward {
    /// The canonical target, when it differs from the client's.
    pub target: Option<String>,
    /// The host of an absolute-form target, sent as `Host`.
    pub host: Option<String>,
    /// The licensee whose credential let the request through.
    pub licensee: Option<String>,
}

fn internal(what: &'static str) -> impl FnOnce(http::Error) -> Box<Error> {
    move |e| Error::because(pingora::ErrorType::InternalError, what, e)
}

/// Rewrites the request for the origin: the canonical target, the client
/// hop in `X-Forwarded-For`, the licensee header (only rempart sets it), and
/// a `Host` when the client sent none (HTTP/1.0).
pub fn rewrite_request(
    req: &mut RequestHeader,
    peer: IpAddr,
    forward: &Forward,
    default_host: &http::HeaderValue,
) -> Result<()> {
    if let Some(target) = &forward.target {
        let uri: http::Uri = target
            .parse()
            .map_err(|e: http::uri::InvalidUri| internal("canonical target")(e.into()))?;
        req.set_uri(uri);
    }
    if let Some(host) = &forward.host {
        req.insert_header(http::header::HOST, host.as_str())?;
    }
    // Append the socket peer to X-Forwarded-For, as every proxy hop does,
    // formatting into a stack buffer: one allocation, for the header value.
    let mut buf = [0u8; 1024];
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    let written = match req.headers.get("x-forwarded-for") {
        Some(prev) if prev.len() < 900 => cursor
            .write_all(prev.as_bytes())
            .and_then(|()| write!(cursor, ", {peer}")),
        // An absurdly long chain from the client is replaced, not extended.
        _ => write!(cursor, "{peer}"),
    };
    written.map_err(|e| Error::because(pingora::ErrorType::InternalError, "x-forwarded-for", e))?;
    let len = cursor.position() as usize;
    let value = http::HeaderValue::from_bytes(&buf[..len])
        .map_err(|e| internal("x-forwarded-for")(e.into()))?;
    req.insert_header("x-forwarded-for", value)?;
    req.remove_header(LICENSEE_HEADER);
    if let Some(l) = &forward.licensee {
        req.insert_header(LICENSEE_HEADER, l.as_str())?;
    }
    if req.headers.get(http::header::HOST).is_none() {
        req.insert_header(http::header::HOST, default_host.clone())?;
    }
    Ok(())
}

/// Adds the reservation's opt-out headers to a proxied response. The config
/// is the one source of truth: TDMRep and AIPREF values replace the origin's,
/// `noai` joins the origin's own X-Robots-Tag, and the licence `Link` is
/// added unless the origin already sent it.
pub fn add_optout_headers(
    resp: &mut ResponseHeader,
    r: &crate::optout::reservation::Reservation,
    loc: usize,
) -> Result<()> {
    let Some(l) = r.locations.get(loc) else {
        return Ok(());
    };
    let h = &l.headers;
    resp.insert_header("tdm-reservation", h.tdm_reservation.clone())?;
    if l.tdm_reserved {
        resp.insert_header("tdm-policy", h.tdm_policy.clone())?;
    }
    if let Some(cu) = &h.content_usage {
        resp.insert_header("content-usage", cu.clone())?;
    }
    if h.noai {
        let existing: Vec<&[u8]> = resp
            .headers
            .get_all("x-robots-tag")
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        let has_noai = existing.iter().any(|v| {
            v.split(|&b| b == b',' || b == b':')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"noai"))
        });
        if existing.is_empty() {
            resp.insert_header(
                "x-robots-tag",
                http::HeaderValue::from_static("noai, noimageai"),
            )?;
        } else if !has_noai {
            let mut joined = existing.join(&b", "[..]);
            joined.extend_from_slice(b", noai, noimageai");
            let value = http::HeaderValue::from_bytes(&joined).map_err(|e| {
                Error::because(pingora::ErrorType::InternalError, "x-robots-tag", e)
            })?;
            resp.insert_header("x-robots-tag", value)?;
        }
    }
    let link_present = resp.headers.get_all(http::header::LINK).iter().any(|v| {
        v.as_bytes()
            .windows(r.license_url.len())
            .any(|w| w == r.license_url.as_bytes())
    });
    if !link_present {
        resp.append_header(http::header::LINK, r.link.clone())?;
    }
    Ok(())
}

