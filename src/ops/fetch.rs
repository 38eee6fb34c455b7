//! One HTTP(S) GET with pingora's connector, for the background fetchers
//! (Web Bot Auth key directories, operator range lists): bounded in time and
//! size, never on the request path.

use std::time::Duration;

use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::prelude::HttpPeer;

/// Fetches `url` and returns its body when the status is 200.
pub async fn get(
    connector: &Connector,
    url: &str,
    accept: &str,
    max_bytes: usize,
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err("not an http(s) URL".into()),
    };
    let host = uri.host().ok_or("no host")?.to_owned();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let addr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or("resolves to nothing")?;
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
