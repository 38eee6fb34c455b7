//! What a request carries from one pingora phase to the next: the snapshot
//! it was decided under, the outcome, and the little of the canonical
//! request that later phases need.

use std::sync::Arc;

use pingora::proxy::Session;

use super::headers::Forward;
use crate::decide::{Answer, Outcome, Payer};
use crate::evidence::build::Kept;
use crate::licensing::metering::{now_secs, path_class, Meter, MeterRecord};
use crate::request::{Malformed, Request};
use crate::snapshot::Snapshot;

/// Per-request state carried between phases.
#[derive(Default)]
pub struct RequestCtx {
    pub snapshot: Option<Arc<Snapshot>>,
    pub outcome: Option<Outcome>,
    /// The canonical request's facts, for metering, evidence and the log.
    pub kept: Kept,
    /// What the origin is told.
    pub forward: Forward,
    /// Add the hidden honeypot link to this HTML response.
    pub inject_link: bool,
    /// When rempart began on the request, and when it sent it to the origin.
    pub started: Option<std::time::Instant>,
    pub upstream_sent: Option<std::time::Instant>,
    /// The origin address this attempt went to, and how many were tried.
    pub origin: Option<(Arc<super::origins::Table>, usize)>,
    pub tries: usize,
    /// The request's host among `metrics.hosts` (see `metrics::http::ByHost`).
    pub host_slot: Option<usize>,
}

impl RequestCtx {
    /// Keeps what the later phases need of the canonical request; owned
    /// copies only where a record or a rewrite will use them.
    pub fn keep(&mut self, snap: &Snapshot, read: &Result<Request<'_>, Malformed>, o: &Outcome) {
        let Ok(req) = read else { return };
        if snap.responses_by_host.enabled() {
            self.host_slot = Some(snap.responses_by_host.slot(req.host));
        }
        let metered = o.licensee.is_some() || o.charge.is_some();
        if o.evidence || metered || snap.access_log {
            self.kept = Kept::new(req.method.as_str(), req.host, req.path(), req.user_agent);
        }
        self.kept.client_ip = Some(req.client_ip);
        self.kept.requested_ms = req.now_ms;
        if matches!(o.answer, Answer::Upstream) {
            self.forward.target = req.upstream_target();
            self.forward.host = req.authority.map(str::to_owned);
            self.forward.client = Some(req.client_ip);
            self.forward.secure = req.secure;
            self.forward.peer_trusted = req.peer_trusted;
            self.forward.licensee = o
                .licensee
                .and_then(|i| snap.licensees.get(i))
                .map(|l| l.id.clone());
        }
    }

    /// Meters licensed and charged requests, and counts licensed bytes.
    pub fn meter(&self, meter: Option<&Meter>, status: u16, bytes: u64) {
        let (Some(snap), Some(o)) = (&self.snapshot, &self.outcome) else {
            return;
        };
        let licensee = o.licensee.and_then(|i| snap.licensees.get(i));
        if let Some(l) = licensee {
            l.count_bytes(bytes);
        }
        let Some(meter) = meter.filter(|_| licensee.is_some() || o.charge.is_some()) else {
            return;
        };
        let payer = match o.charge.map(|c| c.payer) {
            _ if licensee.is_some() => licensee.map(|l| l.id.clone()),
            Some(Payer::Licensee(i)) => snap.licensees.get(i).map(|l| l.id.clone()),
            Some(Payer::Operator(a)) => Some(snap.catalogue.agent(a).operator.clone()),
            None => None,
        };
        meter.record(MeterRecord {
            ts: now_secs(),
            licensee: payer.unwrap_or_else(|| "unknown".to_owned()),
            path_class: path_class(self.kept.path()).to_owned(),
            path: self.kept.path().to_owned(),
            status,
            bytes,
            charged_micros: o.charge.map(|c| c.micros),
        });
    }

    /// One access-log line: what was asked, what was answered, and why.
    pub fn access_log(
        &self,
        log: &crate::ops::access_log::AccessLog,
        session: &Session,
        status: u16,
        request_id: &str,
    ) {
        let (Some(snap), Some(o)) = (&self.snapshot, &self.outcome) else {
            return;
        };
        let head = session.req_header();
        let header = |name: &str| {
            head.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        };
        let protocol = match head.version {
            http::Version::HTTP_10 => "HTTP/1.0",
            http::Version::HTTP_2 => "HTTP/2",
            _ => "HTTP/1.1",
        };
        let ts = crate::evidence::writer::rfc3339(time::OffsetDateTime::now_utc());
        log.write(&crate::ops::access_log::Line {
            ts,
            request_id,
            client: self
                .kept
                .client_ip
                .map_or_else(String::new, |ip| ip.to_string()),
            method: head.method.as_str(),
            host: self.kept.host().unwrap_or(""),
            path: self.kept.path(),
            query: head.uri.query().unwrap_or(""),
            status,
            bytes: session.body_bytes_sent() as u64,
            duration_ms: self
                .started
                .map_or(0.0, |t| (t.elapsed().as_secs_f64() * 1e6).round() / 1e3),
            ua: self.kept.user_agent(),
            referer: header("referer"),
            protocol,
            action: o.action.as_str(),
            rule: o.rule_name(snap),
            agent: o.identity.agent_name(&snap.catalogue).unwrap_or(""),
            verification: o.identity.verification.as_str(),
        });
    }
}
