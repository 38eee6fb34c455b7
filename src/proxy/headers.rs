//! What the origin is told and what the client is told on top of the
//! origin's answer: the request rewritten to the canonical target with the
//! client's address, and the opt-out headers on every proxied response.

use std::io::Write;
use std::net::IpAddr;

use pingora::http::{RequestHeader, ResponseHeader};
use pingora::{Error, Result};

pub use crate::config::ForwardedFor;

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
    /// The client the decision was made for.
    pub client: Option<IpAddr>,
    /// HTTPS at rempart or at the trusted proxy in front.
    pub secure: bool,
    /// The peer is a configured proxy: its forwarding headers stay.
    pub peer_trusted: bool,
}

fn internal(what: &'static str) -> impl FnOnce(http::Error) -> Box<Error> {
    move |e| Error::because(pingora::ErrorType::InternalError, what, e)
}

/// Forwarding headers only a trusted proxy may send; from anyone else they
/// are removed, and rempart sets its own.
const FORWARDING: [&str; 5] = [
    "x-real-ip",
    "true-client-ip",
    "forwarded",
    "x-forwarded-host",
    "x-forwarded-proto",
];

/// True for `X-Rempart-*` in any spelling an origin would read as such:
/// CGI and WSGI servers turn `_` into `-` (`HTTP_X_REMPART_LICENSEE`).
fn is_rempart_header(name: &str) -> bool {
    const PREFIX: &[u8] = b"x-rempart-";
    let n = name.as_bytes();
    n.len() >= PREFIX.len()
        && n.iter()
            .zip(PREFIX)
            .all(|(&a, &b)| a.to_ascii_lowercase() == b || (a == b'_' && b == b'-'))
}

/// Rewrites the request for the origin: the canonical target; only
/// rempart's own `X-Rempart-*` headers; forwarding headers from trusted
/// proxies only, then rempart's own `X-Forwarded-For` (every header the
/// client sent read as one list, then the peer), `X-Real-IP` and
/// `X-Forwarded-Proto` for the client it decided on; and a `Host` when the
/// client sent none (HTTP/1.0).
pub fn rewrite_request(
    req: &mut RequestHeader,
    peer: IpAddr,
    forward: &Forward,
    mode: ForwardedFor,
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
    // One pass to see whether anything must go (usually nothing does).
    let (mut foreign, mut forwarding) = (false, false);
    for k in req.headers.keys() {
        let n = k.as_str();
        foreign |= is_rempart_header(n);
        forwarding |= !forward.peer_trusted && FORWARDING.contains(&n);
    }
    if foreign {
        let names: Vec<http::HeaderName> = req
            .headers
            .keys()
            .filter(|k| is_rempart_header(k.as_str()))
            .cloned()
            .collect();
        for name in names {
            req.remove_header(&name);
        }
    }
    if forwarding {
        for name in FORWARDING {
            req.remove_header(name);
        }
    }
    let value = forwarded_for(req, peer, forward.client, mode)?;
    req.insert_header("x-forwarded-for", value)?;
    if let Some(client) = forward.client {
        let mut buf = [0u8; 64];
        req.insert_header("x-real-ip", format_ip(&mut buf, client)?)?;
    }
    let proto = if forward.secure { "https" } else { "http" };
    req.insert_header("x-forwarded-proto", http::HeaderValue::from_static(proto))?;
    if let Some(l) = &forward.licensee {
        req.insert_header(LICENSEE_HEADER, l.as_str())?;
    }
    if req.headers.get(http::header::HOST).is_none() {
        req.insert_header(http::header::HOST, default_host.clone())?;
    }
    Ok(())
}

fn format_ip(buf: &mut [u8; 64], ip: IpAddr) -> Result<http::HeaderValue> {
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    write_ip(&mut cursor, ip)
        .map_err(|e| Error::because(pingora::ErrorType::InternalError, "x-real-ip", e))?;
    let len = cursor.position() as usize;
    http::HeaderValue::from_bytes(&buf[..len]).map_err(|e| internal("x-real-ip")(e.into()))
}

/// Writes an address as `Display` does; IPv4 digit by digit, since the
/// formatting machinery costs more than the rest of the header rewrite.
fn write_ip(out: &mut impl Write, ip: IpAddr) -> std::io::Result<()> {
    let IpAddr::V4(v4) = ip else {
        return write!(out, "{ip}");
    };
    let mut text = [0u8; 15];
    let mut len = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text[len] = b'.';
            len += 1;
        }
        let digits = [octet / 100, octet / 10 % 10, octet % 10];
        let skip = if octet >= 100 {
            0
        } else if octet >= 10 {
            1
        } else {
            2
        };
        for d in &digits[skip..] {
            text[len] = b'0' + d;
            len += 1;
        }
    }
    out.write_all(&text[..len])
}

/// `X-Forwarded-For` for the origin, formatted into a stack buffer: one
/// allocation, for the header value. Several headers are one list, as the
/// decision read them; an absurdly long chain is replaced, not extended.
fn forwarded_for(
    req: &RequestHeader,
    peer: IpAddr,
    client: Option<IpAddr>,
    mode: ForwardedFor,
) -> Result<http::HeaderValue> {
    let mut buf = [0u8; 1024];
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    let err = |e| Error::because(pingora::ErrorType::InternalError, "x-forwarded-for", e);
    match mode {
        ForwardedFor::Replace => write_ip(&mut cursor, client.unwrap_or(peer)).map_err(err)?,
        ForwardedFor::Append => {
            let values = req.headers.get_all("x-forwarded-for");
            let total: usize = values.iter().map(|v| v.len() + 2).sum();
            if total < 900 {
                for v in values.iter() {
                    cursor.write_all(v.as_bytes()).map_err(err)?;
                    cursor.write_all(b", ").map_err(err)?;
                }
            }
            write_ip(&mut cursor, peer).map_err(err)?;
        }
    }
    let len = cursor.position() as usize;
    http::HeaderValue::from_bytes(&buf[..len]).map_err(|e| internal("x-forwarded-for")(e.into()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rempart_headers_in_every_spelling() {
        for n in [
            "x-rempart-licensee",
            "X_Rempart_Licensee",
            "x_rempart-anything",
            "X-REMPART-X",
        ] {
            assert!(is_rempart_header(n), "{n}");
        }
        for n in ["x-rempart", "x-forwarded-for", "rempart-x"] {
            assert!(!is_rempart_header(n), "{n}");
        }
    }

    fn request(headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("GET", b"/", None).unwrap();
        for (k, v) in headers {
            r.append_header(k.to_string(), *v).unwrap();
        }
        r
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        let mut addrs: Vec<IpAddr> = [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.9.100",
            "192.0.2.1",
            "1.22.103.4",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        addrs.extend((0..=255u8).map(|o| IpAddr::from([o, 255 - o, o / 2, 9])));
        addrs.push("2001:db8::1".parse().unwrap());
        addrs.push("::ffff:192.0.2.1".parse().unwrap());
        for ip in addrs {
            let mut out = Vec::new();
            write_ip(&mut out, ip).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), ip.to_string());
        }
    }

    #[test]
    fn forged_forwarding_headers_are_replaced() {
        let mut r = request(&[
            ("x-real-ip", "66.249.66.1"),
            ("true-client-ip", "66.249.66.1"),
            ("forwarded", "for=66.249.66.1"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "2.2.2.2"),
            ("x_rempart_licensee", "acme"),
        ]);
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        let f = Forward {
            client: Some(peer),
            ..Forward::default()
        };
        let host = http::HeaderValue::from_static("origin");
        rewrite_request(&mut r, peer, &f, ForwardedFor::Append, &host).unwrap();
        let get = |n: &str| {
            r.headers
                .get_all(n)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("x-forwarded-for"), ["1.1.1.1, 2.2.2.2, 203.0.113.9"]);
        assert_eq!(get("x-real-ip"), ["203.0.113.9"]);
        assert_eq!(get("x-forwarded-proto"), ["http"]);
        assert!(get("true-client-ip").is_empty() && get("forwarded").is_empty());
        assert!(get("x_rempart_licensee").is_empty());
        let mut r = request(&[("x-forwarded-for", "1.1.1.1")]);
        rewrite_request(&mut r, peer, &f, ForwardedFor::Replace, &host).unwrap();
        assert_eq!(r.headers.get("x-forwarded-for").unwrap(), "203.0.113.9");
    }

    /// Web Bot Auth's headers are the crawler's, not forwarding headers: the
    /// origin gets them exactly as sent, from a trusted proxy or not, so that
    /// it can verify the signature itself.
    #[test]
    fn signature_headers_pass_unchanged() {
        let sent = [
            ("signature-agent", r#"sig1="https://agent.example""#),
            (
                "signature-input",
                r#"sig1=("@authority" "signature-agent";key="sig1");keyid="k";tag="web-bot-auth""#,
            ),
            ("signature", "sig1=:AAAA:"),
        ];
        let mut r = request(&sent);
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        let host = http::HeaderValue::from_static("origin");
        rewrite_request(
            &mut r,
            peer,
            &Forward::default(),
            ForwardedFor::Append,
            &host,
        )
        .unwrap();
        for (name, value) in sent {
            assert_eq!(r.headers.get(name).unwrap(), value, "{name}");
        }
    }
}
