//! One HTTP(S) GET with pingora's connector, for the background fetchers
//! (Web Bot Auth key directories, operator range lists): bounded in time and
//! size, no redirects followed, never on the request path, and never to a
//! loopback, private, link-local or unspecified address unless the config
//! names that host. The address is checked after DNS resolution, and the
//! connection goes to the address that was checked, so a name that resolves
//! elsewhere the second time cannot redirect it.

use std::net::IpAddr;
use std::time::Duration;

use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::prelude::HttpPeer;

/// rempart's own listeners (set once at start): a fetch never goes there
/// unless the config names the host.
static OWN_LISTENERS: std::sync::OnceLock<Vec<std::net::SocketAddr>> = std::sync::OnceLock::new();

/// Records the addresses rempart listens on.
pub fn set_own_listeners(addrs: Vec<std::net::SocketAddr>) {
    let _ = OWN_LISTENERS.set(addrs);
}

/// True when `addr` is one of rempart's own listeners.
fn is_own_listener(addr: std::net::SocketAddr) -> bool {
    OWN_LISTENERS.get().is_some_and(|own| {
        own.iter()
            .any(|l| l.port() == addr.port() && (l.ip() == addr.ip() || l.ip().is_unspecified()))
    })
}

/// True for addresses a fetch may reach without the config naming the host:
/// not loopback, private, shared (CGNAT), link-local, unspecified,
/// multicast, broadcast, documentation, or IPv6 unique-local.
pub fn is_public(ip: IpAddr) -> bool {
    match crate::request::canonical(ip) {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19)))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

/// Fetches `url` and returns its body when the status is 200. Hosts in
/// `private_ok` may resolve to addresses that are not public (tests, or an
/// internal mirror the operator names).
pub async fn get(
    connector: &Connector,
    url: &str,
    accept: &str,
    max_bytes: usize,
    timeout: Duration,
    private_ok: &[String],
) -> Result<Vec<u8>, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err("not an http(s) URL".into()),
    };
    let host = uri.host().ok_or("no host")?.to_owned();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let addr = *addrs.first().ok_or("resolves to nothing")?;
    let named = private_ok.iter().any(|h| h.eq_ignore_ascii_case(&host));
    if !named {
        if let Some(own) = addrs.iter().find(|a| is_own_listener(**a)) {
            return Err(format!(
                "{host} resolves to {own}, one of rempart's own listeners"
            ));
        }
        if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
            return Err(format!(
                "{host} resolves to {} (not a public address; name the host in the config to allow it)",
                bad.ip()
            ));
        }
    }
    let mut peer = HttpPeer::new(addr, tls, if tls { host.clone() } else { String::new() });
    peer.options.connection_timeout = Some(timeout.min(Duration::from_secs(5)));
    peer.options.read_timeout = Some(timeout);
    let (mut session, _) = connector
        .get_http_session(&peer)
        .await
        .map_err(|e| e.to_string())?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut req =
        RequestHeader::build("GET", path.as_bytes(), Some(4)).map_err(|e| e.to_string())?;
    req.insert_header(
        "host",
        uri.authority().map_or(host.as_str(), |a| a.as_str()),
    )
    .map_err(|e| e.to_string())?;
    req.insert_header("accept", accept)
        .map_err(|e| e.to_string())?;
    req.insert_header("user-agent", concat!("rempart/", env!("CARGO_PKG_VERSION")))
        .map_err(|e| e.to_string())?;
    session
        .write_request_header(Box::new(req))
        .await
        .map_err(|e| e.to_string())?;
    session
        .finish_request_body()
        .await
        .map_err(|e| e.to_string())?;
    session
        .read_response_header()
        .await
        .map_err(|e| e.to_string())?;
    let status = session.response_header().map_or(0, |r| r.status.as_u16());
    if status != 200 {
        return Err(format!("answered {status}"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = session
        .read_response_body()
        .await
        .map_err(|e| e.to_string())?
    {
        if body.len() + chunk.len() > max_bytes {
            return Err(format!("larger than {max_bytes} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_listeners_are_never_fetched() {
        set_own_listeners(vec![
            "0.0.0.0:8080".parse().unwrap(),
            "203.0.113.5:9090".parse().unwrap(),
        ]);
        assert!(is_own_listener("198.51.100.7:8080".parse().unwrap()));
        assert!(is_own_listener("203.0.113.5:9090".parse().unwrap()));
        assert!(!is_own_listener("203.0.113.6:9090".parse().unwrap()));
        assert!(!is_own_listener("198.51.100.7:443".parse().unwrap()));
    }

    #[test]
    fn only_public_addresses_are_fetched_unless_named() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "132.196.86.1", "2a00:1450::1"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
