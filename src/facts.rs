//! Request facts: everything later stages need, extracted once per request.
//!
//! Nothing here allocates for an ordinary request: the facts borrow from the
//! request header, and the path is only copied when it needs normalising
//! (percent-escapes, dot segments, doubled slashes), so that `/%66ilms/` cannot
//! slip past a rule on `/films/`.

use std::borrow::Cow;
use std::net::IpAddr;

use ipnet::IpNet;

/// The networks whose `X-Forwarded-For` / `X-Real-IP` headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

/// Where the client address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrSource {
    /// The TCP peer itself (no trusted proxy in front).
    Peer,
    /// `X-Forwarded-For`, after skipping trusted hops from the right.
    ForwardedFor,
    /// `X-Real-IP` from a trusted peer.
    RealIp,
}

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self { nets }
    }

    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// The client address: the socket peer, unless the peer is a trusted
    /// proxy, in which case the right-most untrusted `X-Forwarded-For` entry
    /// (several headers read as one list, in order), else `X-Real-IP`.
    ///
    /// An entry that is not an address stops the walk at the last trusted hop,
    /// so junk injected by a client can never become "the client".
    pub fn client_ip<'h>(
        &self,
        peer: IpAddr,
        forwarded_for: impl DoubleEndedIterator<Item = &'h [u8]>,
        real_ip: Option<&[u8]>,
    ) -> (IpAddr, AddrSource) {
        let peer = canonical(peer);
        if !self.is_trusted(peer) {
            return (peer, AddrSource::Peer);
        }
        let mut current = peer;
        let mut saw_forwarded = false;
        for header in forwarded_for.rev() {
            for entry in header.rsplit(|&b| b == b',') {
                saw_forwarded = true;
                let Some(ip) = parse_forwarded_ip(entry) else {
                    return (current, AddrSource::ForwardedFor);
                };
                current = ip;
                if !self.is_trusted(ip) {
                    return (ip, AddrSource::ForwardedFor);
                }
            }
        }
        if saw_forwarded {
            return (current, AddrSource::ForwardedFor);
        }
        match real_ip.and_then(parse_forwarded_ip) {
            Some(ip) => (ip, AddrSource::RealIp),
            None => (peer, AddrSource::Peer),
        }
    }
}

/// IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is the IPv4 address it carries.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Parses one forwarded entry: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:80`.
pub fn parse_forwarded_ip(raw: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(raw).ok()?.trim();
    if s.len() > 64 {
        return None;
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = s.strip_prefix('[') {
        let inner = &rest[..rest.find(']')?];
        return inner.parse::<IpAddr>().ok().map(canonical);
    }
    let (host, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// What the rest of the pipeline knows about a request.
#[derive(Debug, Clone)]
pub struct RequestFacts<'a> {
    pub client_ip: IpAddr,
    pub addr_source: AddrSource,
    pub method: &'a str,
    /// Host without port, as sent (compare case-insensitively).
    pub host: Option<&'a str>,
    /// Normalised path (no query).
    pub path: Cow<'a, str>,
    /// User agent bytes, possibly not UTF-8, possibly empty.
    pub user_agent: &'a [u8],
}

impl<'a> RequestFacts<'a> {
    /// Extracts the facts from a parsed request header.
    pub fn from_request(
        req: &'a http::request::Parts,
        peer: IpAddr,
        trusted: &TrustedProxies,
    ) -> Self {
        Self::from_parts(&req.method, &req.uri, &req.headers, peer, trusted)
    }

    /// Same, from the pieces of a request (pingora's `RequestHeader` derefs to these).
    pub fn from_parts(
        method: &'a http::Method,
        uri: &'a http::Uri,
        headers: &'a http::HeaderMap,
        peer: IpAddr,
        trusted: &TrustedProxies,
    ) -> Self {
        // Standard header names hash by their enum, faster than a string.
        let header =
            |name: http::header::HeaderName| headers.get(name).map_or(&b""[..], |v| v.as_bytes());
        let (client_ip, addr_source) = if trusted.is_empty() {
            (canonical(peer), AddrSource::Peer)
        } else {
            trusted.client_ip(
                peer,
                headers
                    .get_all("x-forwarded-for")
                    .iter()
                    .map(|v| v.as_bytes()),
                headers.get("x-real-ip").map(|v| v.as_bytes()),
            )
        };
        let host = headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| uri.authority().map(|a| a.as_str()))
            .map(strip_port)
            .filter(|h| !h.is_empty());
        Self {
            client_ip,
            addr_source,
            method: method.as_str(),
            host,
            path: normalize_path(uri.path()),
            user_agent: header(http::header::USER_AGENT),
        }
    }
}

/// `example.com:8080` → `example.com`, `[::1]:80` → `[::1]`.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// True when `Accept` ranks `application/json` above `text/html`.
pub fn prefers_json(accept: &[u8]) -> bool {
    let Ok(accept) = std::str::from_utf8(accept) else {
        return false;
    };
    let mut json = 0.0f32;
    let mut html = 0.0f32;
    for item in accept.split(',').take(32) {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if media.eq_ignore_ascii_case("application/json")
            || media.to_ascii_lowercase().ends_with("+json")
        {
            json = json.max(q);
        } else if media.eq_ignore_ascii_case("text/html")
            || media == "*/*"
            || media.eq_ignore_ascii_case("text/*")
        {
            html = html.max(q * if media == "*/*" { 0.99 } else { 1.0 });
        }
    }
    json > 0.0 && json >= html
}

/// Decodes percent-escapes, resolves `.` and `..` segments and folds repeated
/// slashes, copying only when the path needs it. A path whose escapes do not
/// decode to UTF-8 is kept as sent.
pub fn normalize_path(raw: &str) -> Cow<'_, str> {
    let needs =
        raw.contains('%') || raw.contains("//") || raw.contains("/.") || !raw.starts_with('/');
    if !needs {
        return Cow::Borrowed(raw);
    }
    let decoded = match percent_encoding::percent_decode_str(raw).decode_utf8() {
        Ok(d) => d,
        Err(_) => return Cow::Borrowed(raw),
    };
    let mut segments: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len() + 1);
    for seg in &segments {
        out.push('/');
        out.push_str(seg);
    }
    if out.is_empty() || (decoded.ends_with('/') && !out.ends_with('/')) {
        out.push('/');
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn trusted() -> TrustedProxies {
        TrustedProxies::new(vec![
            "10.0.0.0/8".parse().unwrap(),
            "::1/128".parse().unwrap(),
        ])
    }

    fn xff<'a>(values: &'a [&'a str]) -> impl DoubleEndedIterator<Item = &'a [u8]> {
        values.iter().map(|v| v.as_bytes())
    }

    #[test]
    fn untrusted_peer_headers_are_ignored() {
        let (addr, src) = trusted().client_ip(
            ip("203.0.113.9"),
            xff(&["66.249.66.1"]),
            Some(b"66.249.66.1"),
        );
        assert_eq!((addr, src), (ip("203.0.113.9"), AddrSource::Peer));
    }

    #[test]
    fn rightmost_untrusted_entry_wins() {
        let t = trusted();
        let (addr, _) = t.client_ip(
            ip("10.0.0.1"),
            xff(&["1.1.1.1, 198.51.100.7, 10.0.0.2"]),
            None,
        );
        assert_eq!(addr, ip("198.51.100.7"));
        // Several headers read as one list.
        let (addr, _) = t.client_ip(
            ip("10.0.0.1"),
            xff(&["1.1.1.1", "198.51.100.8:4711", "10.9.9.9"]),
            None,
        );
        assert_eq!(addr, ip("198.51.100.8"));
        let (addr, _) = t.client_ip(ip("::1"), xff(&["[2001:db8::5]:443"]), None);
        assert_eq!(addr, ip("2001:db8::5"));
        // All hops trusted: the farthest one.
        let (addr, _) = t.client_ip(ip("10.0.0.1"), xff(&["10.1.1.1, 10.2.2.2"]), None);
        assert_eq!(addr, ip("10.1.1.1"));
    }

    #[test]
    fn junk_stops_at_the_last_trusted_hop() {
        let (addr, _) = trusted().client_ip(ip("10.0.0.1"), xff(&["66.249.66.1, not-an-ip"]), None);
        assert_eq!(addr, ip("10.0.0.1"));
        let (addr, _) = trusted().client_ip(ip("10.0.0.1"), xff(&[""]), None);
        assert_eq!(addr, ip("10.0.0.1"));
    }

    #[test]
    fn real_ip_only_without_forwarded_for() {
        let (addr, src) = trusted().client_ip(ip("10.0.0.1"), xff(&[]), Some(b"192.0.2.4"));
        assert_eq!((addr, src), (ip("192.0.2.4"), AddrSource::RealIp));
    }

    #[test]
    fn mapped_addresses_are_canonical() {
        let (addr, _) =
            trusted().client_ip(ip("::ffff:10.0.0.1"), xff(&["::ffff:192.0.2.1"]), None);
        assert_eq!(addr, ip("192.0.2.1"));
    }

    #[test]
    fn paths_are_normalised_only_when_needed() {
        assert!(matches!(
            normalize_path("/films/a"),
            Cow::Borrowed("/films/a")
        ));
        assert_eq!(normalize_path("/%66ilms/a"), "/films/a");
        assert_eq!(normalize_path("//films/./x/../a/"), "/films/a/");
        assert_eq!(normalize_path("/../../etc"), "/etc");
        assert_eq!(normalize_path("/%ff"), "/%ff");
        assert_eq!(normalize_path("*"), "/*");
    }

    #[test]
    fn facts_from_a_request() {
        let req = http::Request::builder()
            .uri("/%66ilms/?q=1")
            .header("host", "Example.COM:8080")
            .header("user-agent", &b"GPTBot/1.2 \xff"[..])
            .body(())
            .unwrap();
        let (parts, _) = req.into_parts();
        let f = RequestFacts::from_request(&parts, ip("192.0.2.1"), &TrustedProxies::default());
        assert_eq!(f.host, Some("Example.COM"));
        assert_eq!(f.path, "/films/");
        assert_eq!(f.user_agent, b"GPTBot/1.2 \xff");
        assert_eq!(f.client_ip, ip("192.0.2.1"));
    }

    #[test]
    fn accept_negotiation() {
        assert!(prefers_json(b"application/json"));
        assert!(!prefers_json(b"text/html,application/xhtml+xml,*/*;q=0.8"));
        assert!(prefers_json(b"application/json, */*;q=0.5"));
        assert!(!prefers_json(b"text/html, application/json;q=0.5"));
        assert!(!prefers_json(b""));
        assert!(!prefers_json(b"\xff\xfe"));
    }
}
