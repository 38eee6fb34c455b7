//! The client address: the TCP peer, or, behind a configured proxy, the
//! right-most untrusted `X-Forwarded-For` entry. Forwarding headers from any
//! other peer are never believed.

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
}
