//! PROXY protocol (v1 and v2) from configured load balancers. The header
//! names the real client, which then stands in for the TCP peer everywhere
//! (facts, verification, behaviour, evidence).
//!
//! - On the TLS listener, the header is read before the handshake (pingora's
//!   pre-TLS hook) and rewrites the connection's peer address.
//! - For plain HTTP, pingora has no such hook, so a small relay listens on
//!   `server.proxy_protocol_listen`, reads the header, and forwards the bytes
//!   to the plain listener over loopback; the proxy looks the real client up
//!   by the relay connection's full local address (address and port), so a
//!   local process connecting from the same port on another loopback address
//!   inherits nothing.
//!
//! Only configured peers are read: from them the header is required (a
//! connection without one is dropped); from anyone else nothing is parsed
//! (the relay refuses them), so a client cannot forge its address.

use std::sync::Arc;

use async_trait::async_trait;
use ipnet::IpNet;
use pingora::listeners::PreTlsProcess;
use pingora::protocols::l4::socket::SocketAddr;
use pingora::protocols::l4::stream::Stream;
use pingora::protocols::{GetSocketDigest, SocketDigest};
use pingora::{Error, ErrorType, Result};
use ppp::{v1, v2, HeaderResult, PartialResult};
use tokio::io::AsyncReadExt;

/// The largest header: v1 is at most 107 bytes, v2 has a 16-byte head and
/// its stated length (TLVs included).
const MAX_HEADER: usize = 16 + 4096;

/// Reads the PROXY header of connections from the configured balancers.
pub struct ProxyProtocol {
    pub from: Vec<IpNet>,
}

fn drop_conn(why: String) -> Box<Error> {
    Error::explain(ErrorType::ConnectionClosed, why)
}

/// A parsed header: how many bytes it took, and the client it names
/// (`None` for `UNKNOWN`/`LOCAL`: the balancer's own connection).
pub type Parsed = (usize, Option<std::net::SocketAddr>);

fn inet(ip: impl Into<std::net::IpAddr>, port: u16) -> Option<std::net::SocketAddr> {
    Some(std::net::SocketAddr::new(ip.into(), port))
}

/// Parses a PROXY header at the start of `buf`: `Ok(None)` if more bytes
/// are needed, `Err(())` when it is not one (nothing more to say: the
/// connection is dropped).
#[allow(clippy::result_unit_err)]
pub fn parse(buf: &[u8]) -> std::result::Result<Option<Parsed>, ()> {
    match HeaderResult::parse(buf) {
        HeaderResult::V1(Ok(h)) => {
            let src = match h.addresses {
                v1::Addresses::Tcp4(a) => inet(a.source_address, a.source_port),
                v1::Addresses::Tcp6(a) => inet(a.source_address, a.source_port),
                v1::Addresses::Unknown => None,
            };
            Ok(Some((h.header.len(), src)))
        }
        HeaderResult::V2(Ok(h)) => {
            let src = match h.addresses {
                v2::Addresses::IPv4(a) => inet(a.source_address, a.source_port),
                v2::Addresses::IPv6(a) => inet(a.source_address, a.source_port),
                _ => None,
            };
            Ok(Some((h.len(), src)))
        }
        r if r.is_incomplete() && buf.len() < MAX_HEADER => Ok(None),
        _ => Err(()),
    }
}

/// Reads a PROXY header from `read` into `buf`.
async fn read_header<R: tokio::io::AsyncRead + Unpin>(
    read: &mut R,
    buf: &mut Vec<u8>,
) -> std::result::Result<Parsed, String> {
    let mut chunk = [0u8; 512];
    loop {
        let n = read.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed before its PROXY header".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        match parse(buf) {
            Ok(Some(p)) => return Ok(p),
            Ok(None) => continue,
            Err(()) => return Err("no valid PROXY header".into()),
        }
    }
}

#[async_trait]
impl PreTlsProcess for ProxyProtocol {
    async fn process(&self, stream: &mut Stream) -> Result<()> {
        let peer = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr().and_then(|a| a.as_inet().map(|i| i.ip())));
        let Some(peer) = peer else { return Ok(()) };
        if !self.from.iter().any(|n| n.contains(&peer)) {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(256);
        let (consumed, source) = read_header(stream, &mut buf)
            .await
            .map_err(|e| drop_conn(format!("PROXY header from {peer}: {e}")))?;
        // What came after the header is the TLS handshake: give it back.
        if consumed < buf.len() {
            stream.rewind(&buf[consumed..]);
        }
        if let Some(src) = source {
            let digest = SocketDigest::from_raw_fd(std::os::fd::AsRawFd::as_raw_fd(stream));
            let _ = digest.peer_addr.set(Some(SocketAddr::Inet(src)));
            stream.set_socket_digest(digest);
        }
        Ok(())
    }
}

/// Client addresses of relayed connections, by the relay connection's local
/// address and port (what the plain listener sees as the peer).
pub type Relayed = Arc<quick_cache::sync::Cache<std::net::SocketAddr, std::net::SocketAddr>>;

/// The plain-HTTP PROXY relay.
pub struct Relay {
    pub listen: std::net::SocketAddr,
    /// The plain listener of this process, on loopback.
    pub target: std::net::SocketAddr,
    pub from: Vec<IpNet>,
    pub relayed: Relayed,
}

impl Relay {
    fn bind(&self) -> std::io::Result<tokio::net::TcpListener> {
        let socket = if self.listen.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        // A graceful upgrade runs two processes for a while: both bind.
        socket.set_reuseport(true)?;
        socket.bind(self.listen)?;
        socket.listen(1024)
    }
}

async fn relay_one(
    mut client: tokio::net::TcpStream,
    target: std::net::SocketAddr,
    relayed: Relayed,
) -> std::result::Result<(), String> {
    let mut buf = Vec::with_capacity(256);
    let (consumed, source) = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        read_header(&mut client, &mut buf),
    )
    .await
    .map_err(|_| "no PROXY header within 5 s".to_owned())??;
    let mut upstream = tokio::net::TcpStream::connect(target)
        .await
        .map_err(|e| format!("{target}: {e}"))?;
    let _ = upstream.set_nodelay(true);
    let _ = client.set_nodelay(true);
    let local = upstream.local_addr().map_err(|e| e.to_string())?;
    if let Some(src) = source {
        relayed.insert(local, src);
    }
    let result = async {
        tokio::io::AsyncWriteExt::write_all(&mut upstream, &buf[consumed..]).await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await
    }
    .await;
    relayed.remove(&local);
    result.map(|_| ()).map_err(|e| e.to_string())
}

#[async_trait]
impl pingora::services::background::BackgroundService for Relay {
    async fn start(&self, mut shutdown: pingora::server::ShutdownWatch) {
        let listener = match self.bind() {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(listen = %self.listen, error = %e, "PROXY protocol listener not started");
                return;
            }
        };
        tracing::info!(listen = %self.listen, "PROXY protocol listener");
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                accepted = listener.accept() => {
                    let Ok((client, peer)) = accepted else { continue };
                    if !self.from.iter().any(|n| n.contains(&peer.ip())) {
                        tracing::debug!(%peer, "PROXY connection from a peer not in proxy_protocol_from; closed");
                        continue;
                    }
                    let (target, relayed) = (self.target, self.relayed.clone());
                    tokio::spawn(async move {
                        if let Err(e) = relay_one(client, target, relayed).await {
                            tracing::debug!(%peer, error = %e, "PROXY connection dropped");
                        }
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_v1_and_v2() {
        let v1 = b"PROXY TCP4 132.196.86.1 10.0.0.1 40000 80\r\nGET / HTTP/1.1\r\n";
        let (n, src) = parse(v1).unwrap().unwrap();
        assert_eq!(&v1[n..n + 3], b"GET");
        assert_eq!(src.unwrap().to_string(), "132.196.86.1:40000");
        assert_eq!(parse(b"PROXY TCP4 132.196.86.1 10.0.0.1 4000"), Ok(None));
        assert!(parse(b"GET / HTTP/1.1\r\n\r\n").is_err());
        let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
        v2.extend_from_slice(&[
            0x21, 0x11, 0, 12, 203, 0, 113, 5, 10, 0, 0, 1, 0x9c, 0x40, 0, 80,
        ]);
        let (n, src) = parse(&v2).unwrap().unwrap();
        assert_eq!(n, v2.len());
        assert_eq!(src.unwrap().to_string(), "203.0.113.5:40000");
        assert_eq!(parse(b"PROXY UNKNOWN\r\n"), Ok(Some((15, None))));
    }
}
