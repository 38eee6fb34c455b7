//! The pingora glue: each phase reads what pingora hands it, calls one
//! pipeline stage and writes or counts the result. Nothing here decides.
//!
//! - `request_filter`: the canonical request → [`decide`] → count → answer,
//!   or on to the origin;
//! - `upstream_peer`: the origin from the snapshot;
//! - `upstream_request_filter`: the canonical target and who the client is;
//! - `response_filter` / `response_body_filter`: the opt-out headers,
//!   `crawler-charged`, the honeypot link;
//! - `fail_to_connect` / `fail_to_proxy`: upstream errors, 502 page;
//! - `logging`: metering, the evidence record, the access log.

mod count;
mod ctx;
pub mod headers;
mod honeypot;
pub mod origins;
mod write;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, Result};

use crate::behaviour::shared::SharedStore;
use crate::behaviour::Tracker;
use crate::decide::{decide_read, Answer, Extra, State};
use crate::evidence::build::Pending;
use crate::evidence::pseudonym::PseudonymKey;
use crate::evidence::Evidence;
use crate::identify::rdns::{Rdns, ReverseDns};
use crate::identify::webbotauth::KeyDirectories;
use crate::licensing::metering::Meter;
use crate::metrics::metrics;
use crate::optout::origin_robots::OriginRobots;
use crate::optout::published::Published;
use crate::request::{Received, Request, RequestId};
use crate::snapshot::SharedSnapshot;

pub use ctx::RequestCtx;
pub use headers::LICENSEE_HEADER;

/// The proxy service.
pub struct RempartProxy {
    snapshot: SharedSnapshot,
    /// The origin's robots.txt, when merging is on.
    origin_robots: Option<Arc<OriginRobots>>,
    /// Metering of licensed and charged requests.
    meter: Option<Arc<Meter>>,
    /// Web Bot Auth key directories, cached.
    directories: Arc<KeyDirectories>,
    /// Per-client behaviour state; survives reloads.
    tracker: Arc<Tracker>,
    /// The shared (Redis) behaviour store, when configured.
    shared: Option<SharedStore>,
    /// The robots.txt versions served.
    published: Arc<Published>,
    /// The evidence ledger, and the key for address pseudonyms.
    evidence: Option<(Evidence, Arc<PseudonymKey>)>,
    /// Reverse-DNS verification, when enabled.
    rdns: Option<Arc<Rdns>>,
    /// Real clients of connections relayed from the PROXY protocol listener.
    relayed: Option<crate::ops::proxy_protocol::Relayed>,
    /// The origins' addresses and their health.
    origins: Arc<origins::Pool>,
    /// The access log's writer, when `server.access_log` was on at start.
    access_log: Option<crate::ops::access_log::AccessLog>,
    /// Request ids: a per-process prefix and a counter.
    id_prefix: u32,
    next_id: AtomicU64,
}

/// What the proxy is built from, besides the snapshot.
#[derive(Default)]
pub struct ProxyParts {
    pub origin_robots: Option<Arc<OriginRobots>>,
    pub meter: Option<Arc<Meter>>,
    pub tracker: Option<Arc<Tracker>>,
    pub shared: Option<SharedStore>,
    pub published: Option<Arc<Published>>,
    pub evidence: Option<(Evidence, Arc<PseudonymKey>)>,
    pub rdns: Option<Arc<Rdns>>,
    pub relayed: Option<crate::ops::proxy_protocol::Relayed>,
    /// The origin pool the resolver keeps current (a fresh one if none).
    pub origins: Option<Arc<origins::Pool>>,
    pub access_log: Option<crate::ops::access_log::AccessLog>,
}

impl RempartProxy {
    pub fn new(snapshot: SharedSnapshot, parts: ProxyParts) -> Self {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() ^ d.as_secs() as u32);
        let tracker = parts
            .tracker
            .unwrap_or_else(|| Arc::new(Tracker::for_settings(&snapshot.load().behaviour)));
        let origin_pool = parts
            .origins
            .unwrap_or_else(|| origins::Pool::new(&snapshot.load()));
        Self {
            snapshot,
            origin_robots: parts.origin_robots,
            meter: parts.meter,
            directories: Arc::new(KeyDirectories::default()),
            tracker,
            shared: parts.shared,
            published: parts
                .published
                .unwrap_or_else(|| Arc::new(Published::new(None))),
            evidence: parts.evidence,
            rdns: parts.rdns,
            relayed: parts.relayed,
            origins: origin_pool,
            access_log: parts.access_log,
            id_prefix: nanos ^ std::process::id().rotate_left(16),
            next_id: AtomicU64::new(1),
        }
    }

    /// The state handles the decision reads and updates.
    fn state(&self) -> State<'_> {
        State {
            tracker: &self.tracker,
            published: &self.published,
            directories: &self.directories,
            rdns: self.rdns.as_ref().map(|r| r as &dyn ReverseDns),
            origin_robots: self.origin_robots.as_deref(),
            shared: self.shared.as_ref(),
        }
    }

    /// The TCP peer, or for a connection from the PROXY relay (loopback),
    /// the client its balancer named.
    fn peer_ip(&self, session: &Session) -> IpAddr {
        let Some(addr) = session.client_addr().and_then(|a| a.as_inet()) else {
            return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        };
        if let (Some(relayed), true) = (&self.relayed, addr.ip().is_loopback()) {
            if let Some(client) = relayed.get(addr) {
                return client.ip();
            }
        }
        addr.ip()
    }
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[async_trait]
impl ProxyHttp for RempartProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> Self::CTX {
        RequestCtx::default()
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Self::CTX) -> Result<bool> {
        let snap = self.snapshot.load_full();
        let started = Instant::now();
        ctx.started = Some(started);
        let received = Received {
            method: &session.req_header().method,
            version: session.req_header().version,
            uri: &session.req_header().uri,
            raw_target: Some(session.req_header().raw_path()),
            headers: &session.req_header().headers,
            peer: self.peer_ip(session),
            tls: session.digest().is_some_and(|d| d.ssl_digest.is_some()),
            now_ms: now_millis(),
            replayed: false,
        };
        let read = Request::read(received, &snap.trusted, snap.read);
        let outcome = decide_read(&snap, &self.state(), &read);
        metrics()
            .decision_seconds
            .observe(started.elapsed().as_secs_f64());
        ctx.keep(&snap, &read, &outcome);
        drop(read);
        count::outcome(&snap, &outcome);
        let answered = match &outcome.answer {
            Answer::Upstream => false,
            Answer::Respond {
                status,
                page,
                extra,
            } => {
                write::page(session, *status, page, extra).await?;
                true
            }
        };
        ctx.outcome = Some(outcome);
        ctx.snapshot = Some(snap);
        Ok(answered)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut Self::CTX,
    ) -> Result<Box<HttpPeer>> {
        let snap = ctx
            .snapshot
            .clone()
            .unwrap_or_else(|| self.snapshot.load_full());
        let u = &snap.upstream;
        let (table, entry) = self.origins.pick(&snap).ok_or_else(|| {
            Error::explain(pingora::ErrorType::ConnectNoRoute, "no origin address")
        })?;
        let (addr, origin) = table
            .entries
            .get(entry)
            .and_then(|e| Some((e.addr, u.origins.get(e.origin)?)))
            .ok_or_else(|| Error::explain(pingora::ErrorType::ConnectNoRoute, "no origin"))?;
        // Plain HTTP needs no SNI: an empty String does not allocate.
        let sni = if origin.tls {
            origin.sni.clone()
        } else {
            String::new()
        };
        let mut peer = HttpPeer::new(addr, origin.tls, sni);
        ctx.origin = Some((table, entry));
        ctx.tries += 1;
        peer.options.connection_timeout = Some(u.connect_timeout);
        peer.options.read_timeout = Some(u.read_timeout);
        peer.options.idle_timeout = Some(u.idle_timeout);
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        let snap = ctx
            .snapshot
            .clone()
            .unwrap_or_else(|| self.snapshot.load_full());
        let peer = self.peer_ip(session);
        ctx.upstream_sent = Some(Instant::now());
        // The Host for a client that sent none: the chosen origin's.
        let origin = ctx
            .origin
            .as_ref()
            .and_then(|(t, i)| t.entries.get(*i))
            .and_then(|e| snap.upstream.origins.get(e.origin))
            .or_else(|| snap.upstream.origins.first());
        let Some(origin) = origin else {
            return Err(Error::explain(
                pingora::ErrorType::ConnectNoRoute,
                "no origin",
            ));
        };
        headers::rewrite_request(
            upstream_request,
            peer,
            &ctx.forward,
            snap.forwarded_for,
            &origin.host_header,
        )
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        if let Some(sent) = ctx.upstream_sent {
            crate::metrics::http().upstream(sent.elapsed());
        }
        let (Some(snap), Some(o)) = (&ctx.snapshot, &ctx.outcome) else {
            return Ok(());
        };
        if let Some(c) = o.charge {
            let value =
                http::HeaderValue::from_str(&crate::licensing::payment::format_price(c.micros))
                    .map_err(|e| {
                        Error::because(pingora::ErrorType::InternalError, "crawler-charged", e)
                    })?;
            upstream_response.insert_header("crawler-charged", value)?;
        }
        if let (Some(loc), Some(r)) = (o.location, &snap.reservation) {
            headers::add_optout_headers(upstream_response, r, loc)?;
        }
        // Licensed and paying crawlers get the content as delivered.
        let link = snap
            .behaviour
            .honeypot_link
            .as_ref()
            .filter(|_| snap.behaviour.enabled && o.licensee.is_none() && o.charge.is_none());
        if let Some(link) = link {
            let method = &session.req_header().method;
            ctx.inject_link = honeypot::prepare(upstream_response, method, link)?;
        }
        Ok(())
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Self::CTX,
    ) -> Result<Option<std::time::Duration>> {
        if !ctx.inject_link {
            return Ok(None);
        }
        let link = ctx
            .snapshot
            .as_ref()
            .and_then(|s| s.behaviour.honeypot_link.as_ref());
        match link {
            Some(link) if honeypot::inject(body, end_of_stream, link) => {
                ctx.inject_link = false;
                metrics().honeypot_links.inc();
            }
            Some(_) => {}
            None => ctx.inject_link = false,
        }
        Ok(None)
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Self::CTX,
        mut e: Box<Error>,
    ) -> Box<Error> {
        metrics()
            .upstream_errors
            .with_label_values(&["connect"])
            .inc();
        if let (Some((table, entry)), Some(snap)) = (&ctx.origin, &ctx.snapshot) {
            origins::Pool::failed(table, *entry, &snap.upstream);
            // Another address may answer: nothing was sent yet.
            if ctx.tries < table.entries.len() {
                e.set_retry(true);
            }
        }
        e
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut Self::CTX,
    ) -> FailToProxy
    where
        Self::CTX: Send + Sync,
    {
        let code = match e.esource() {
            pingora::ErrorSource::Upstream => 502,
            pingora::ErrorSource::Downstream => match e.etype() {
                pingora::ErrorType::WriteError
                | pingora::ErrorType::ReadError
                | pingora::ErrorType::ConnectionClosed => 0,
                _ => 400,
            },
            _ => match e.etype() {
                pingora::ErrorType::HTTPStatus(code) => *code,
                pingora::ErrorType::ConnectTimedout
                | pingora::ErrorType::ConnectRefused
                | pingora::ErrorType::ConnectError
                | pingora::ErrorType::ConnectNoRoute => 502,
                _ => 500,
            },
        };
        if code == 502 {
            metrics()
                .upstream_errors
                .with_label_values(&["proxy"])
                .inc();
        }
        if code > 0 && session.response_written().is_none() {
            let snap = ctx
                .snapshot
                .clone()
                .unwrap_or_else(|| self.snapshot.load_full());
            let written = if code == 502 {
                write::page(session, 502, &snap.pages.bad_gateway, &Extra::none()).await
            } else {
                session.respond_error(code).await
            };
            if let Err(err) = written {
                tracing::debug!(error = %err, "could not write the error response");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut Self::CTX) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let bytes = session.body_bytes_sent() as u64;
        ctx.meter(self.meter.as_deref(), status, bytes);
        let live;
        let by_host = match &ctx.snapshot {
            Some(snap) => &snap.responses_by_host,
            None => {
                live = self.snapshot.load();
                &live.responses_by_host
            }
        };
        // A request not read counts as `other`.
        let host_slot = ctx.host_slot.unwrap_or_else(|| by_host.slot(None));
        crate::metrics::http().count(
            status,
            ctx.outcome.as_ref().map(|o| o.action),
            bytes,
            ctx.started.map(|t| t.elapsed()),
            Some((by_host, host_slot)),
        );
        let (Some(snap), Some(o)) = (&ctx.snapshot, &ctx.outcome) else {
            return;
        };
        if let (false, Some((ledger, _))) = (o.evidence, &self.evidence) {
            count::ledger(snap, o, ledger);
        }
        let log = self.access_log.as_ref().filter(|_| snap.access_log);
        let record = o.evidence.then_some(self.evidence.as_ref()).flatten();
        let id = (record.is_some() || log.is_some()).then(|| RequestId {
            prefix: self.id_prefix,
            seq: self.next_id.fetch_add(1, Ordering::Relaxed),
        });
        if let Some(log) = log {
            let id = id.map(|i| i.to_string()).unwrap_or_default();
            ctx.access_log(log, session, status, &id);
        }
        if let (Some((ledger, key)), Some(id)) = (record, id) {
            // Moved, not built: the record's strings and the pseudonym are
            // the writer thread's work. `logging` is the last phase.
            if let Some(outcome) = ctx.outcome.take() {
                let robots = outcome
                    .conduct
                    .robots
                    .and_then(|(_, v)| self.published.get(v));
                ledger.request(Box::new(Pending {
                    snapshot: Arc::clone(snap),
                    outcome: outcome.into(),
                    kept: std::mem::take(&mut ctx.kept),
                    robots,
                    key: Arc::clone(key),
                    request_id: id,
                    status,
                }));
            }
        }
    }
}
