//! The canonical request: read once from what the client sent, and the only
//! form of it that later stages, the evidence record and the origin see.
//!
//! [`Request::read`] takes the parsed request head and the connection's
//! facts, finds the client address behind trusted proxies ([`client`]), makes
//! the request-target canonical ([`target`]) and refuses what has no single
//! reading (a missing or repeated `Host`, a repeated `User-Agent`, a target
//! that cannot be made canonical). Nothing here copies for an ordinary
//! request: the fields borrow from the head.

pub mod client;
pub mod cookie;
pub mod fingerprint;
mod id;
pub mod target;

use std::borrow::Cow;
use std::net::IpAddr;

pub use client::{canonical, parse_forwarded_ip, AddrSource, TrustedProxies};
pub use id::RequestId;
pub use target::{canonical_path, Target, TargetError};

/// Header names looked up on every request or every signed, priced or
/// forwarded one: parsed once, not at each lookup.
pub mod names {
    use http::HeaderName;
    pub const SIGNATURE_INPUT: HeaderName = HeaderName::from_static("signature-input");
    pub const SIGNATURE: HeaderName = HeaderName::from_static("signature");
    pub const SIGNATURE_AGENT: HeaderName = HeaderName::from_static("signature-agent");
    pub const CRAWLER_EXACT_PRICE: HeaderName = HeaderName::from_static("crawler-exact-price");
    pub const CRAWLER_MAX_PRICE: HeaderName = HeaderName::from_static("crawler-max-price");
    pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
    pub const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
    pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
    pub const SEC_CH_UA: HeaderName = HeaderName::from_static("sec-ch-ua");
    pub const SEC_FETCH_MODE: HeaderName = HeaderName::from_static("sec-fetch-mode");
}

/// What the connection and the parser hand over.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    pub method: &'a http::Method,
    pub version: http::Version,
    pub uri: &'a http::Uri,
    /// The request-target's bytes as they would be forwarded, when the parser
    /// keeps them apart from `uri` (pingora keeps absolute-form and non-UTF-8
    /// targets verbatim); `None` when `uri` is the target as written.
    pub raw_target: Option<&'a [u8]>,
    pub headers: &'a http::HeaderMap,
    /// The TCP peer (or the client a PROXY-protocol balancer named).
    pub peer: IpAddr,
    /// TLS terminated by rempart itself.
    pub tls: bool,
    /// Wall-clock time of the request, in milliseconds since the epoch.
    pub now_ms: u64,
    /// Rebuilt from a log line (`rempart classify`): its header set is not
    /// the client's, so header signals are not read from it.
    pub replayed: bool,
}

impl<'a> Received<'a> {
    /// A request head built outside the proxy (`classify`, tests,
    /// benchmarks, fuzzing): the URI is the target as written, plain TCP
    /// from `peer`.
    pub fn of(head: &'a http::request::Parts, peer: IpAddr, now_ms: u64) -> Self {
        Self {
            method: &head.method,
            version: head.version,
            uri: &head.uri,
            raw_target: None,
            headers: &head.headers,
            peer,
            tls: false,
            now_ms,
            replayed: false,
        }
    }
}

/// How rempart reads request-targets (from `[server]`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    /// The origin ignores case in paths: decide on, and forward, lower case.
    pub fold_case: bool,
    /// Header blocks above this many bytes are refused (431); 0: no limit.
    pub max_header_bytes: usize,
}

/// A request with no single reading: answered 400, never forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    Target(TargetError),
    /// HTTP/1.1 without `Host` (RFC 9112, section 3.2).
    MissingHost,
    /// A header that must appear once appeared more often.
    Repeated(&'static str),
    /// The header block is larger than `server.max_header_bytes`: 431.
    HeadersTooLarge,
}

impl Malformed {
    /// Bounded label for `rempart_bad_requests_total{reason}`.
    pub fn label(self) -> &'static str {
        match self {
            Malformed::Target(t) => t.label(),
            Malformed::MissingHost => "missing-host",
            Malformed::Repeated("host") => "repeated-host",
            Malformed::Repeated(_) => "repeated-user-agent",
            Malformed::HeadersTooLarge => "headers-too-large",
        }
    }

    /// The sentence of the 400 page.
    pub fn message(self) -> &'static str {
        match self {
            Malformed::Target(t) => t.message(),
            Malformed::MissingHost => "HTTP/1.1 requires a Host header",
            Malformed::Repeated("host") => "more than one Host header",
            Malformed::Repeated(_) => "more than one User-Agent header",
            Malformed::HeadersTooLarge => "the request header block is too large",
        }
    }

    /// The status it is answered with.
    pub fn status(self) -> u16 {
        match self {
            Malformed::HeadersTooLarge => 431,
            _ => 400,
        }
    }
}

/// One request, canonical.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: &'a http::Method,
    pub version: http::Version,
    /// The target as the client wrote it: what a message signature covers.
    pub uri: &'a http::Uri,
    pub headers: &'a http::HeaderMap,
    pub peer: IpAddr,
    /// The peer is a configured proxy, so its forwarding headers count.
    pub peer_trusted: bool,
    pub client_ip: IpAddr,
    pub addr_source: AddrSource,
    /// HTTPS at rempart, or at the trusted proxy in front of it.
    pub secure: bool,
    /// Host without port or trailing dot, as sent (compare case-insensitively).
    pub host: Option<&'a str>,
    /// HTTP/1 absolute-form: the target's authority, which the host was read
    /// from and which the origin is sent as `Host` (the `Host` header is not).
    pub authority: Option<&'a str>,
    /// The canonical path.
    pub target: Target<'a>,
    /// User-agent bytes, possibly not UTF-8, possibly empty.
    pub user_agent: &'a [u8],
    /// The `Authorization` header, if any (a licence credential, perhaps).
    pub authorization: Option<&'a [u8]>,
    /// A `Signature-Input` header is present: the request may be signed.
    pub signed: bool,
    /// The challenge's pass cookie, as sent (checked by the decision).
    pub pass_cookie: Option<&'a [u8]>,
    /// The first `Referer`, as sent: which AI product, if any, sent a visitor.
    pub referer: Option<&'a [u8]>,
    /// `Accept`, `Accept-Language` and the price bids.
    pub negotiation: Negotiation<'a>,
    /// The first `Sec-Fetch-Mode` and `Sec-Fetch-Dest`: whether a browser
    /// says the request is a navigation.
    pub fetch: FetchMetadata<'a>,
    /// What the client's HTTP stack looks like, whatever its address.
    pub fingerprint: fingerprint::Fingerprint,
    pub now_ms: u64,
    pub replayed: bool,
}

impl<'a> Request<'a> {
    /// Reads a request head, or says why it has no single reading.
    pub fn read(
        r: Received<'a>,
        trusted: &TrustedProxies,
        opts: ReadOptions,
    ) -> Result<Self, Malformed> {
        let headers = r.headers;
        let seen = Seen::scan(headers)?;
        let size = seen.bytes + r.uri.path_and_query().map_or(0, |p| p.as_str().len());
        if opts.max_header_bytes > 0 && size > opts.max_header_bytes {
            return Err(Malformed::HeadersTooLarge);
        }
        let (user_agent, host_header) = (seen.user_agent, seen.host);
        let form = target_form(&r)?;
        let host = match (form, host_header) {
            (Form::Absolute(authority), _) => Some(authority),
            (Form::Origin, None) => r.uri.authority().map(|a| a.as_str()),
            (Form::Origin, Some(h)) => std::str::from_utf8(h).ok(),
        }
        .map(strip_port)
        .filter(|h| !h.is_empty());
        if r.version == http::Version::HTTP_11 && host_header.is_none() && host.is_none() {
            return Err(Malformed::MissingHost);
        }
        let target = canonical_path(r.uri.path(), opts.fold_case).map_err(Malformed::Target)?;
        let peer = canonical(r.peer);
        let peer_trusted = trusted.is_trusted(peer);
        let (client_ip, addr_source) = if peer_trusted {
            trusted.client_ip(
                peer,
                headers
                    .get_all(names::X_FORWARDED_FOR)
                    .iter()
                    .map(|v| v.as_bytes()),
                headers.get(names::X_REAL_IP).map(|v| v.as_bytes()),
            )
        } else {
            (peer, AddrSource::Peer)
        };
        // Browsers send client hints only to HTTPS origins.
        let secure = r.tls
            || (peer_trusted
                && headers
                    .get(names::X_FORWARDED_PROTO)
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https")));
        Ok(Self {
            method: r.method,
            version: r.version,
            uri: r.uri,
            headers,
            peer,
            peer_trusted,
            client_ip,
            addr_source,
            secure,
            host,
            authority: match form {
                Form::Absolute(a) => Some(a),
                Form::Origin => None,
            },
            target,
            user_agent: user_agent.unwrap_or_default(),
            authorization: seen.authorization,
            signed: seen.signed,
            fingerprint: seen.shape.finish(
                r.version,
                user_agent.unwrap_or_default(),
                seen.negotiation.accept_language,
            ),
            pass_cookie: seen.pass_cookie,
            referer: seen.referer,
            negotiation: seen.negotiation,
            fetch: seen.fetch,
            now_ms: r.now_ms,
            replayed: r.replayed,
        })
    }

    /// The canonical path.
    pub fn path(&self) -> &str {
        &self.target.path
    }

    /// The request-target to send upstream when it differs from the
    /// client's: the canonical path and the client's query, in origin-form.
    pub fn upstream_target(&self) -> Option<String> {
        if self.target.wire.is_none() && self.authority.is_none() {
            return None;
        }
        let path = self.target.wire.as_deref().unwrap_or(self.uri.path());
        Some(match self.uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        })
    }

    /// The decided path as an owned string (for records kept after the request).
    pub fn path_owned(&self) -> String {
        match &self.target.path {
            Cow::Borrowed(p) => (*p).to_owned(),
            Cow::Owned(p) => p.clone(),
        }
    }
}

/// How the request-target was written.
#[derive(Debug, Clone, Copy)]
enum Form<'a> {
    /// `/path?query`.
    Origin,
    /// `http://authority/path`: decided on this authority.
    Absolute(&'a str),
}

/// Reads the form of the target from the bytes that would be forwarded, so
/// that what is decided on and what is sent cannot differ.
fn target_form<'a>(r: &Received<'a>) -> Result<Form<'a>, Malformed> {
    let not_origin = Malformed::Target(TargetError::NotOriginForm);
    let Some(raw) = r.raw_target else {
        // The URI is the target as written.
        return match (r.uri.scheme(), r.uri.authority()) {
            (Some(_), Some(a)) if r.version < http::Version::HTTP_2 => {
                Ok(Form::Absolute(a.as_str()))
            }
            _ => Ok(Form::Origin),
        };
    };
    if raw.first() == Some(&b'/') {
        let parsed = r
            .uri
            .path_and_query()
            .map_or(&b"/"[..], |pq| pq.as_str().as_bytes());
        // The parser kept other bytes than the URI shows: not UTF-8.
        return if raw == parsed {
            Ok(Form::Origin)
        } else {
            Err(Malformed::Target(TargetError::InvalidUtf8))
        };
    }
    let text = std::str::from_utf8(raw).map_err(|_| Malformed::Target(TargetError::InvalidUtf8))?;
    let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(not_origin);
    }
    let uri: http::Uri = text.parse().map_err(|_| not_origin)?;
    let authority = uri.authority().ok_or(not_origin)?;
    if authority.as_str().contains('@') || uri.path() != r.uri.path() {
        return Err(not_origin);
    }
    // The authority's text, borrowed from the raw target.
    let start = text.find("://").map_or(0, |i| i + 3);
    let end = start + authority.as_str().len();
    text.get(start..end).map(Form::Absolute).ok_or(not_origin)
}

/// What one pass over the header fields finds: the few every decision reads,
/// whether a header that must appear once appears more often, and the size.
struct Seen<'h> {
    user_agent: Option<&'h [u8]>,
    host: Option<&'h [u8]>,
    authorization: Option<&'h [u8]>,
    signed: bool,
    pass_cookie: Option<&'h [u8]>,
    referer: Option<&'h [u8]>,
    negotiation: Negotiation<'h>,
    fetch: FetchMetadata<'h>,
    shape: fingerprint::Shape<'h>,
    bytes: usize,
}

/// The fetch metadata a browser sends: what the request is for.
#[derive(Debug, Clone, Copy, Default)]
pub struct FetchMetadata<'a> {
    pub mode: Option<&'a [u8]>,
    pub dest: Option<&'a [u8]>,
}

/// The headers a refusal, an offer or a priced crawl reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Negotiation<'a> {
    pub accept: &'a [u8],
    pub accept_language: &'a [u8],
    pub exact_price: Option<&'a [u8]>,
    pub max_price: Option<&'a [u8]>,
}

impl<'h> Seen<'h> {
    /// One pass, instead of a hashed lookup per header: a request has few
    /// fields, and the standard names compare as small integers.
    fn scan(headers: &'h http::HeaderMap) -> Result<Self, Malformed> {
        use fingerprint::Ordered;
        use http::header::{
            ACCEPT, ACCEPT_ENCODING, ACCEPT_LANGUAGE, AUTHORIZATION, CONNECTION, COOKIE, HOST,
            REFERER, USER_AGENT,
        };
        let mut seen = Seen {
            user_agent: None,
            host: None,
            authorization: None,
            signed: false,
            pass_cookie: None,
            referer: None,
            negotiation: Negotiation::default(),
            fetch: FetchMetadata::default(),
            shape: fingerprint::Shape::default(),
            bytes: 0,
        };
        let first = |slot: &mut &'h [u8], value: &'h [u8]| {
            if slot.is_empty() {
                *slot = value;
            }
        };
        for (k, v) in headers {
            let value = v.as_bytes();
            seen.bytes += k.as_str().len() + value.len() + 4;
            let once = |slot: &mut Option<&'h [u8]>, label| match slot.replace(value) {
                Some(_) => Err(Malformed::Repeated(label)),
                None => Ok(()),
            };
            if *k == USER_AGENT {
                once(&mut seen.user_agent, "user-agent")?;
                seen.shape.saw(Ordered::UserAgent);
            } else if *k == HOST {
                once(&mut seen.host, "host")?;
            } else if *k == AUTHORIZATION {
                seen.authorization.get_or_insert(value);
            } else if *k == ACCEPT {
                first(&mut seen.negotiation.accept, value);
                seen.shape.saw(Ordered::Accept);
            } else if *k == ACCEPT_LANGUAGE {
                first(&mut seen.negotiation.accept_language, value);
                seen.shape.saw(Ordered::AcceptLanguage);
            } else if *k == ACCEPT_ENCODING {
                first(&mut seen.shape.accept_encoding, value);
                seen.shape.saw(Ordered::AcceptEncoding);
            } else if *k == CONNECTION {
                seen.shape.saw(Ordered::Connection);
            } else if k.as_str().starts_with("sec-") {
                let name = k.as_str();
                seen.shape.client_hints |= name.starts_with("sec-ch-ua");
                if let Some(field) = name.strip_prefix("sec-fetch-") {
                    seen.shape.fetch_metadata = true;
                    match field {
                        "mode" => _ = seen.fetch.mode.get_or_insert(value),
                        "dest" => _ = seen.fetch.dest.get_or_insert(value),
                        _ => {}
                    }
                }
            } else if *k == COOKIE && seen.pass_cookie.is_none() {
                // HTTP/2 may split cookies over several fields.
                seen.pass_cookie = cookie::find(value, cookie::PASS_COOKIE.as_bytes());
            } else if *k == REFERER {
                seen.referer.get_or_insert(value);
            } else if *k == names::SIGNATURE_INPUT {
                seen.signed = true;
            } else if *k == names::CRAWLER_MAX_PRICE {
                seen.negotiation.max_price.get_or_insert(value);
            } else if *k == names::CRAWLER_EXACT_PRICE {
                seen.negotiation.exact_price.get_or_insert(value);
            }
        }
        Ok(seen)
    }
}

/// `example.com:8080` → `example.com`, `[::1]:80` → `[::1]`, `example.com.` → `example.com`.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    // `memrchr` rather than `rsplit_once`: std's reverse char search costs
    // more than the rest of this function, on every request.
    let host = match memchr::memrchr(b':', host.as_bytes()) {
        Some(i) if host.as_bytes()[i + 1..].iter().all(u8::is_ascii_digit) => &host[..i],
        _ => host,
    };
    host.strip_suffix('.').unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn read<'a>(req: &'a http::request::Parts, peer: &str) -> Result<Request<'a>, Malformed> {
        Request::read(
            Received::of(req, ip(peer), 0),
            &TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]),
            ReadOptions::default(),
        )
    }

    fn parts(uri: &str, headers: &[(&str, &[u8])]) -> http::request::Parts {
        let mut b = http::Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn a_request_read_once() {
        let p = parts(
            "/%66ilms/?q=1",
            &[
                ("host", b"Example.COM:8080"),
                ("user-agent", b"GPTBot/1.2 \xff"),
            ],
        );
        let r = read(&p, "192.0.2.1").unwrap();
        assert_eq!(r.host, Some("Example.COM"));
        assert_eq!(r.path(), "/films/");
        assert_eq!(r.user_agent, b"GPTBot/1.2 \xff");
        assert_eq!(r.client_ip, ip("192.0.2.1"));
        assert_eq!(r.upstream_target().as_deref(), Some("/films/?q=1"));
        let plain = parts("/films/a?x", &[("host", b"a")]);
        assert_eq!(read(&plain, "192.0.2.1").unwrap().upstream_target(), None);
    }

    #[test]
    fn absolute_form_is_decided_on_its_own_host() {
        let p = parts("http://films.example/x", &[("host", b"other.example")]);
        let r = read(&p, "192.0.2.1").unwrap();
        assert_eq!(r.host, Some("films.example"));
        assert_eq!(r.upstream_target().as_deref(), Some("/x"));
    }

    #[test]
    fn what_has_no_single_reading() {
        let two_ua = parts(
            "/",
            &[("host", b"a"), ("user-agent", b"A"), ("user-agent", b"B")],
        );
        assert_eq!(
            read(&two_ua, "192.0.2.1").unwrap_err(),
            Malformed::Repeated("user-agent")
        );
        let two_hosts = parts("/", &[("host", b"a"), ("host", b"b")]);
        assert_eq!(
            read(&two_hosts, "192.0.2.1").unwrap_err(),
            Malformed::Repeated("host")
        );
        let no_host = parts("/", &[]);
        assert_eq!(
            read(&no_host, "192.0.2.1").unwrap_err(),
            Malformed::MissingHost
        );
        let bad = parts("/a%2fb", &[("host", b"a")]);
        assert_eq!(
            read(&bad, "192.0.2.1").unwrap_err(),
            Malformed::Target(TargetError::EncodedSeparator)
        );
    }

    #[test]
    fn forwarding_headers_count_from_trusted_peers_only() {
        let p = parts(
            "/",
            &[
                ("host", b"a"),
                ("x-forwarded-for", b"66.249.66.1"),
                ("x-forwarded-proto", b"https"),
            ],
        );
        let direct = read(&p, "192.0.2.1").unwrap();
        assert_eq!((direct.client_ip, direct.secure), (ip("192.0.2.1"), false));
        let behind = read(&p, "10.0.0.1").unwrap();
        assert_eq!((behind.client_ip, behind.secure), (ip("66.249.66.1"), true));
    }
}
