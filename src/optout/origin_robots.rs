//! The origin's own robots.txt, fetched in the background and kept with its
//! age, so that serving robots.txt never waits on the origin.
//!
//! Every `ttl` the fetcher asks the origin for `/robots.txt` (through
//! pingora's HTTP connector, so TLS upstreams work too). A 200 in
//! `text/plain` replaces the copy (a 200 in HTML is a site answering every
//! path with its app, and counts as none); a 404 or 410 means the origin has none; any other answer, or no
//! answer, keeps the last good copy for at most `max_stale`, after which the
//! generated file is served alone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use async_trait::async_trait;
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::prelude::HttpPeer;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::snapshot::SharedSnapshot;

/// Largest robots.txt accepted (Google reads 500 KiB).
pub const MAX_ROBOTS_BYTES: usize = 512 * 1024;

/// A copy of the origin's robots.txt.
#[derive(Debug)]
pub struct Fetched {
    pub text: String,
    pub at: Instant,
}

/// Shared between the fetcher and the proxy.
#[derive(Debug, Default)]
pub struct OriginRobots {
    copy: ArcSwapOption<Fetched>,
}

impl OriginRobots {
    /// The current copy, if the origin has one.
    pub fn current(&self) -> Option<Arc<Fetched>> {
        self.copy.load_full()
    }
}

/// Why a fetch gave no new copy.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("origin unreachable: {0}")]
    Connect(String),
    #[error("origin answered {0}")]
    Status(u16),
    #[error("robots.txt larger than {MAX_ROBOTS_BYTES} bytes")]
    TooLarge,
}

/// The background task.
pub struct RobotsFetcher {
    pub snapshot: SharedSnapshot,
    pub store: Arc<OriginRobots>,
    pub ttl: Duration,
    pub max_stale: Duration,
    connector: Connector,
}

impl RobotsFetcher {
    pub fn new(
        snapshot: SharedSnapshot,
        store: Arc<OriginRobots>,
        ttl: Duration,
        max_stale: Duration,
    ) -> Self {
        Self {
            snapshot,
            store,
            ttl,
            max_stale,
            connector: Connector::new(None),
        }
    }

    /// One fetch: `Ok(Some(text))`, `Ok(None)` for "the origin has none".
    async fn fetch(&self) -> Result<Option<String>, FetchError> {
        let snap = self.snapshot.load_full();
        let u = &snap.upstream;
        let (origin, addr) = u
            .primary()
            .ok_or_else(|| FetchError::Connect("no origin".into()))?;
        let sni = if origin.tls {
            origin.sni.clone()
        } else {
            String::new()
        };
        let mut peer = HttpPeer::new(addr, origin.tls, sni);
        peer.options.connection_timeout = Some(u.connect_timeout);
        peer.options.read_timeout = Some(u.read_timeout);
        let (mut session, _) = self
            .connector
            .get_http_session(&peer)
            .await
            .map_err(|e| FetchError::Connect(e.to_string()))?;
        let mut req = RequestHeader::build("GET", b"/robots.txt", Some(3))
            .map_err(|e| FetchError::Connect(e.to_string()))?;
        let host = snap
            .reservation
            .as_ref()
            .and_then(|r| r.base_url.split("://").nth(1).map(str::to_owned))
            .unwrap_or_else(|| {
                origin
                    .host_header
                    .to_str()
                    .unwrap_or("localhost")
                    .to_owned()
            });
        let io = |e: Box<pingora::Error>| FetchError::Connect(e.to_string());
        req.insert_header("host", host).map_err(io)?;
        req.insert_header(
            "user-agent",
            concat!("rempart/", env!("CARGO_PKG_VERSION"), " (robots.txt merge)"),
        )
        .map_err(io)?;
        session
            .write_request_header(Box::new(req))
            .await
            .map_err(io)?;
        session.finish_request_body().await.map_err(io)?;
        session.read_response_header().await.map_err(io)?;
        let (status, plain) = session.response_header().map_or((0, false), |r| {
            let plain = r
                .headers
                .get(http::header::CONTENT_TYPE)
                .is_none_or(|v| v.as_bytes().to_ascii_lowercase().starts_with(b"text/plain"));
            (r.status.as_u16(), plain)
        });
        match status {
            // Many sites answer every path with their HTML app: that is not a robots.txt.
            200 if !plain => return Ok(None),
            200 => {}
            404 | 410 => return Ok(None),
            other => return Err(FetchError::Status(other)),
        }
        let mut body = Vec::new();
        while let Some(chunk) = session.read_response_body().await.map_err(io)? {
            if body.len() + chunk.len() > MAX_ROBOTS_BYTES {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        self.connector
            .release_http_session(session, &peer, None)
            .await;
        Ok(Some(String::from_utf8_lossy(&body).into_owned()))
    }

    /// Fetches once and updates the store; returns what happened, for logs and tests.
    pub async fn refresh(&self) -> Result<bool, FetchError> {
        let m = crate::metrics::metrics();
        match self.fetch().await {
            Ok(Some(text)) => {
                self.store.copy.store(Some(Arc::new(Fetched {
                    text,
                    at: Instant::now(),
                })));
                m.origin_robots_fetches.with_label_values(&["ok"]).inc();
                Ok(true)
            }
            Ok(None) => {
                self.store.copy.store(None);
                m.origin_robots_fetches.with_label_values(&["none"]).inc();
                Ok(false)
            }
            Err(e) => {
                m.origin_robots_fetches.with_label_values(&["error"]).inc();
                if self
                    .store
                    .current()
                    .is_some_and(|c| c.at.elapsed() > self.max_stale)
                {
                    self.store.copy.store(None);
                }
                Err(e)
            }
        }
    }
}

#[async_trait]
impl BackgroundService for RobotsFetcher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            if let Err(e) = self.refresh().await {
                tracing::warn!(error = %e, "could not fetch the origin's robots.txt; serving the last good copy or the generated file");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.ttl) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
