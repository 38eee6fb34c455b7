//! PROXY protocol (v1 and v2) from configured load balancers, on the TLS
//! listener: the header arrives before the TLS handshake and names the real
//! client, which then stands in for the TCP peer everywhere (facts,
//! verification, behaviour, evidence).
//!
//! Only peers in `tls.proxy_protocol_from` are read: from them the header is
//! required (a connection without one is dropped); from anyone else nothing is
//! parsed, so a client cannot forge its address.

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
        let mut chunk = [0u8; 512];
        let (consumed, source) = loop {
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| drop_conn(format!("PROXY header from {peer}: {e}")))?;
            if n == 0 {
                return Err(drop_conn(format!("{peer} closed before its PROXY header")));
            }
            buf.extend_from_slice(&chunk[..n]);
            match HeaderResult::parse(&buf) {
                HeaderResult::V1(Ok(h)) => {
                    let src = match h.addresses {
                        v1::Addresses::Tcp4(a) => Some(std::net::SocketAddr::from((
                            a.source_address,
                            a.source_port,
                        ))),
                        v1::Addresses::Tcp6(a) => Some(std::net::SocketAddr::from((
                            a.source_address,
                            a.source_port,
                        ))),
                        v1::Addresses::Unknown => None,
                    };
                    break (h.header.len(), src);
                }
                HeaderResult::V2(Ok(h)) => {
                    let src = match h.addresses {
                        v2::Addresses::IPv4(a) => Some(std::net::SocketAddr::from((
                            a.source_address,
                            a.source_port,
                        ))),
                        v2::Addresses::IPv6(a) => Some(std::net::SocketAddr::from((
                            a.source_address,
                            a.source_port,
                        ))),
                        _ => None,
                    };
                    break (h.len(), src);
                }
                r if r.is_incomplete() && buf.len() < MAX_HEADER => continue,
                _ => return Err(drop_conn(format!("{peer} sent no valid PROXY header"))),
            }
        };
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
