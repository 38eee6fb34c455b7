//! Connection limits in front of pingora's HTTP/1 server: a deadline for
//! each request's header block, a keep-alive idle timeout, a bound on the
//! bytes a header block may take, a memory budget for all connections still
//! sending headers, and caps on concurrent connections per client address
//! and in total.
//!
//! pingora times each read on its own (a header line every 20 s keeps a
//! connection forever) and buffers header blocks up to 1 MiB, so rempart
//! wraps each accepted connection ([`GuardedApp`]) and its stream
//! ([`GuardedStream`]): the stream watches the bytes pingora reads (no copy,
//! no buffering of its own) and fails the read once a deadline or a bound is
//! passed; pingora then closes the connection. HTTP/2 connections pass
//! through untouched (pingora's own idle timeout applies to them).

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::tls::{SslDigest, TlsRef};
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream,
    TimingDigest, UniqueID, UniqueIDType, ALPN,
};
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::metrics::metrics;
use crate::request::TrustedProxies;

/// The limits, from `[server]`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// From the first byte of a request (or the connection's start) to the
    /// end of its header block.
    pub header_timeout: Duration,
    /// From the end of a response to the first byte of the next request.
    pub idle_timeout: Duration,
    /// Bytes of one header block beyond which the connection is closed
    /// (the 431 page is for blocks between `max_header_bytes` and this).
    pub header_hard_limit: usize,
    /// Bytes held by every connection still sending its header block.
    pub pending_header_budget: usize,
    pub max_connections: usize,
    pub max_connections_per_client: usize,
}

/// Connections open, in total and per client address.
#[derive(Debug, Default)]
pub struct Counts {
    total: AtomicUsize,
    /// Sharded by address, so that accepts on several threads rarely meet.
    per_client: [Mutex<HashMap<IpAddr, usize>>; 16],
    /// Header bytes read and not yet ended by a blank line, all connections.
    pending_header_bytes: AtomicUsize,
}

impl Counts {
    fn shard(&self, ip: IpAddr) -> &Mutex<HashMap<IpAddr, usize>> {
        let h = match ip {
            IpAddr::V4(v4) => u32::from(v4) as usize,
            IpAddr::V6(v6) => (u128::from(v6) >> 64) as usize ^ u128::from(v6) as usize,
        };
        &self.per_client[h % self.per_client.len()]
    }
}

/// One admitted connection; dropping it gives its place back.
struct Permit {
    counts: Arc<Counts>,
    client: Option<IpAddr>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.counts.total.fetch_sub(1, Ordering::AcqRel);
        if let Some(ip) = self.client {
            if let Ok(mut m) = self.counts.shard(ip).lock() {
                if let Some(n) = m.get_mut(&ip) {
                    *n -= 1;
                    if *n == 0 {
                        m.remove(&ip);
                    }
                }
            }
        }
    }
}

/// pingora's HTTP application, behind the connection limits.
pub struct GuardedApp<A> {
    pub inner: Arc<A>,
    pub limits: Limits,
    pub counts: Arc<Counts>,
    /// Peers whose connections carry many clients (the CDN, the PROXY
    /// relay on loopback): not capped per address.
    pub exempt: TrustedProxies,
    pub exempt_loopback: bool,
}

impl<A> GuardedApp<A> {
    fn admit(&self, peer: Option<IpAddr>) -> Option<Permit> {
        let c = &self.counts;
        if c.total.fetch_add(1, Ordering::AcqRel) >= self.limits.max_connections {
            c.total.fetch_sub(1, Ordering::AcqRel);
            metrics()
                .connections_refused
                .with_label_values(&["total"])
                .inc();
            return None;
        }
        let mut permit = Permit {
            counts: c.clone(),
            client: None,
        };
        let capped = peer.filter(|ip| {
            !(self.exempt.is_trusted(*ip) || (self.exempt_loopback && ip.is_loopback()))
        });
        if let Some(ip) = capped {
            let Ok(mut m) = c.shard(ip).lock() else {
                return Some(permit);
            };
            let n = m.entry(ip).or_insert(0);
            if *n >= self.limits.max_connections_per_client {
                metrics()
                    .connections_refused
                    .with_label_values(&["client"])
                    .inc();
                return None;
            }
            *n += 1;
            permit.client = Some(ip);
        }
        Some(permit)
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for GuardedApp<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let peer = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr().and_then(|a| a.as_inet().map(|i| i.ip())))
            .map(crate::request::canonical);
        let _permit = self.admit(peer)?;
        let h2 = matches!(stream.selected_alpn_proto(), Some(ALPN::H2));
        let stream: Stream = Box::new(GuardedStream::new(
            stream,
            &self.limits,
            self.counts.clone(),
            !h2,
        ));
        let mut next = self.inner.process_new(stream, shutdown).await;
        // Keep the permit for the whole connection (pingora loops over
        // keep-alive requests inside `process_new`).
        while let Some(s) = next {
            next = self.inner.process_new(s, shutdown).await;
        }
        None
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await;
    }
}

/// Where a connection is in its request cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a header block (since the connection opened or the first byte).
    Header,
    /// The header block ended; a body may follow, then a response.
    Body,
    /// A response was written; waiting for the next request's first byte.
    Idle,
    /// HTTP/2, or a protocol switch: not watched.
    Off,
}

/// A client connection whose reads are watched for the limits.
pub struct GuardedStream {
    inner: Stream,
    phase: Phase,
    /// Bytes of the current header block, and the last three bytes seen
    /// (a blank line can straddle reads).
    header_bytes: usize,
    tail: [u8; 3],
    /// When the current phase must end; the timer below is armed to it only
    /// when a read has to wait (most reads find their bytes ready).
    deadline_at: Instant,
    deadline: Pin<Box<Sleep>>,
    header_timeout: Duration,
    idle_timeout: Duration,
    hard_limit: usize,
    budget: usize,
    counts: Arc<Counts>,
}

impl std::fmt::Debug for GuardedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedStream")
            .field("phase", &self.phase)
            .field("inner", &self.inner)
            .finish()
    }
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

impl GuardedStream {
    fn new(inner: Stream, limits: &Limits, counts: Arc<Counts>, watch: bool) -> Self {
        let at = Instant::now() + limits.header_timeout;
        Self {
            inner,
            phase: if watch { Phase::Header } else { Phase::Off },
            header_bytes: 0,
            tail: [0; 3],
            deadline_at: at,
            deadline: Box::pin(tokio::time::sleep_until(at)),
            header_timeout: limits.header_timeout,
            idle_timeout: limits.idle_timeout,
            hard_limit: limits.header_hard_limit,
            budget: limits.pending_header_budget,
            counts,
        }
    }

    fn release_pending(&mut self) {
        if self.phase == Phase::Header && self.header_bytes > 0 {
            self.counts
                .pending_header_bytes
                .fetch_sub(self.header_bytes, Ordering::AcqRel);
        }
        self.header_bytes = 0;
    }

    /// Accounts for bytes pingora just read; `Err` to close the connection.
    fn observe(&mut self, data: &[u8]) -> std::io::Result<()> {
        if self.phase == Phase::Idle && !data.is_empty() {
            self.phase = Phase::Header;
            self.tail = [0; 3];
            self.deadline_at = Instant::now() + self.header_timeout;
        }
        if self.phase != Phase::Header || data.is_empty() {
            return Ok(());
        }
        if self.header_bytes == 0 && data.starts_with(H2_PREFACE) {
            self.phase = Phase::Off;
            return Ok(());
        }
        // Where the blank line ends (LF, optional CR, LF), if in this chunk.
        let byte_before = |tail: &[u8; 3], i: usize, back: usize| -> u8 {
            if i >= back {
                data[i - back]
            } else {
                tail[3 + i - back]
            }
        };
        let end = memchr::memchr_iter(b'\n', data)
            .find(|&i| {
                let p1 = byte_before(&self.tail, i, 1);
                p1 == b'\n' || (p1 == b'\r' && byte_before(&self.tail, i, 2) == b'\n')
            })
            .map(|i| i + 1);
        let n = data.len();
        self.tail = match n {
            0 => self.tail,
            1 => [self.tail[1], self.tail[2], data[0]],
            2 => [self.tail[2], data[0], data[1]],
            _ => [data[n - 3], data[n - 2], data[n - 1]],
        };
        let taken = end.unwrap_or(data.len());
        let total = self
            .counts
            .pending_header_bytes
            .fetch_add(taken, Ordering::AcqRel)
            + taken;
        self.header_bytes += taken;
        if end.is_some() {
            self.release_pending();
            self.phase = Phase::Body;
            return Ok(());
        }
        if self.header_bytes > self.hard_limit {
            metrics()
                .connections_refused
                .with_label_values(&["header-size"])
                .inc();
            return Err(std::io::Error::other("request header block too large"));
        }
        if total > self.budget {
            metrics()
                .connections_refused
                .with_label_values(&["header-memory"])
                .inc();
            return Err(std::io::Error::other(
                "too much memory held by unfinished header blocks",
            ));
        }
        Ok(())
    }
}

impl GuardedStream {
    fn timed_out(&self) -> std::io::Error {
        let reason = if self.phase == Phase::Header {
            "header-timeout"
        } else {
            "idle-timeout"
        };
        metrics()
            .connections_refused
            .with_label_values(&[reason])
            .inc();
        std::io::Error::new(std::io::ErrorKind::TimedOut, reason)
    }
}

impl Drop for GuardedStream {
    fn drop(&mut self) {
        self.release_pending();
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let watched = matches!(this.phase, Phase::Header | Phase::Idle);
        if watched && Instant::now() >= this.deadline_at {
            return Poll::Ready(Err(this.timed_out()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            // The bytes are only looked at, never copied.
            Poll::Ready(Ok(())) => Poll::Ready(this.observe(&buf.filled()[before..])),
            Poll::Pending if watched => {
                // Waiting: the timer wakes this read at the deadline.
                if this.deadline.deadline() != this.deadline_at {
                    let at = this.deadline_at;
                    this.deadline.as_mut().reset(at);
                }
                match this.deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(this.timed_out())),
                    Poll::Pending => Poll::Pending,
                }
            }
            other => other,
        }
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.phase == Phase::Body {
            // A response is on its way: the next read starts the next request.
            this.phase = Phase::Idle;
            this.deadline_at = Instant::now() + this.idle_timeout;
        }
        Pin::new(&mut this.inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for GuardedStream {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await;
    }
}

impl UniqueID for GuardedStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for GuardedStream {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }
    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }
    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for GuardedStream {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }
    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }
    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for GuardedStream {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }
    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest);
    }
}

impl GetSocketDigest for GuardedStream {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }
    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest);
    }
}

#[async_trait]
impl Peek for GuardedStream {
    async fn try_peek(&mut self, buf: &mut [u8]) -> std::io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}
