//! The pingora glue: each proxy phase hands its job to a pipeline stage and
//! does nothing else.
//!
//! - `request_filter`: facts → identity → decision; answers refusals and
//!   rempart's own documents itself, with keep-alive;
//! - `upstream_peer`: the origin from the snapshot;
//! - `upstream_request_filter`: tells the origin who the client is;
//! - `fail_to_connect` / `fail_to_proxy`: count upstream errors and answer 502.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, Result};

use std::sync::atomic::{AtomicU64, Ordering};

use crate::behaviour::shared::SharedStore;
use crate::behaviour::signals::header_signals;
use crate::behaviour::{Assessment, Tracker};
use crate::conduct::{assess, RequestSide};
use crate::evidence::pseudonym::PseudonymKey;
use crate::evidence::record::{signal_names, ReservationInForce, RobotsFetch, Shadow};
use crate::evidence::writer::rfc3339;
use crate::evidence::{Body, ClientId, Evidence, RequestRecord};
use crate::facts::{prefers_json, RequestFacts};
use crate::identify::Identity;
use crate::licence::Credential;
use crate::metering::{now_secs, path_class, Meter, MeterRecord};
use crate::metrics::metrics;
use crate::model::Action;
use crate::model::{IdentityKind, Verification};
use crate::origin_robots::OriginRobots;
use crate::payment::{bid, format_price, settle, Settlement};
use crate::published::{Published, RobotsVersion};
use crate::respond::{choose_lang, Page};
use crate::snapshot::{SharedSnapshot, Snapshot, Verdict};
use crate::webbotauth::{KeyDirectories, Signature};

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
    evidence: Option<(Evidence, PseudonymKey)>,
    /// Reverse-DNS verification, when enabled.
    rdns: Option<Arc<crate::rdns::Rdns>>,
    /// Real clients of connections relayed from the PROXY protocol listener.
    relayed: Option<crate::proxy_protocol::Relayed>,
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
    pub evidence: Option<(Evidence, PseudonymKey)>,
    pub rdns: Option<Arc<crate::rdns::Rdns>>,
    pub relayed: Option<crate::proxy_protocol::Relayed>,
}

impl RempartProxy {
    pub fn new(snapshot: SharedSnapshot, parts: ProxyParts) -> Self {
        let max = snapshot.load().behaviour.max_clients;
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() ^ d.as_secs() as u32);
        Self {
            snapshot,
            origin_robots: parts.origin_robots,
            meter: parts.meter,
            directories: Arc::new(KeyDirectories::default()),
            tracker: parts.tracker.unwrap_or_else(|| Arc::new(Tracker::new(max))),
            shared: parts.shared,
            published: parts
                .published
                .unwrap_or_else(|| Arc::new(Published::new(None))),
            evidence: parts.evidence,
            rdns: parts.rdns,
            relayed: parts.relayed,
            id_prefix: nanos ^ std::process::id().rotate_left(16),
            next_id: AtomicU64::new(1),
        }
    }

    /// The robots.txt to serve now: the origin's merged with rempart's parts
    /// (merged per request: robots.txt is fetched rarely, and the merge
    /// depends on both the origin's copy and this snapshot), or rempart's own.
    fn robots_page(&self, snap: &Snapshot) -> Page {
        let pages = &snap.pages;
        match self.origin_robots.as_ref().and_then(|o| o.current()) {
            Some(copy) => Page {
                content_type: pages.robots_txt.content_type,
                body: Bytes::from(pages.robots.merged(&copy.text)),
            },
            None => pages.robots_txt.clone(),
        }
    }

    /// Counts the request in the client's behaviour and returns its signals.
    #[allow(clippy::too_many_arguments)]
    fn observe(
        &self,
        snap: &Snapshot,
        req: &RequestHeader,
        facts: &RequestFacts<'_>,
        identity: &Identity,
        robots_served: Option<&RobotsVersion>,
        builtin: bool,
        peer_trusted: bool,
        secure_transport: bool,
    ) -> Assessment {
        if !snap.behaviour.enabled {
            return Assessment::default();
        }
        // Browsers send client hints only to HTTPS origins: HTTPS here, or
        // at the trusted proxy in front.
        let secure = secure_transport
            || (peer_trusted
                && req
                    .headers
                    .get("x-forwarded-proto")
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https")));
        let side = RequestSide {
            header_signals: header_signals(&req.headers, req.version, facts.user_agent, secure),
            robots_served,
            builtin,
            now_ms: now_millis(),
        };
        let mut send = self.shared.as_ref().map(|store| move |inc| store.send(inc));
        let sink = send
            .as_mut()
            .map(|f| f as &mut dyn FnMut(crate::behaviour::tracker::SharedIncrement));
        let a = assess(
            snap,
            &self.tracker,
            &self.published,
            facts,
            identity,
            side,
            sink,
        );
        let counters = &metrics().signal_counters;
        for sig in a.signals.iter() {
            if let Some(c) = counters.get(sig as usize) {
                c.inc();
            }
        }
        a
    }

    /// Writes the evidence record of a request, if it is one to keep.
    fn record_evidence(&self, session: &Session, ctx: &RequestCtx, verdict: &Verdict) {
        let (Some((ledger, key)), Some(snap), Some(ip)) =
            (&self.evidence, &ctx.snapshot, ctx.client_ip)
        else {
            return;
        };
        let req = session.req_header();
        let id = &verdict.identity;
        let agent = id.agent.map(|a| snap.catalogue.agent(a));
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let reservation = snap.reservation.as_ref().and_then(|r| {
            let host = ctx.host.as_deref();
            let loc = r
                .lookup(host, req.uri.path())
                .and_then(|i| r.locations.get(i))?;
            let mut served = vec!["robots.txt".to_owned()];
            if loc.tdm_reserved {
                served.push("tdmrep.json".into());
            }
            if r.headers_enabled {
                served.push("response headers".into());
            }
            served.push("license.xml".into());
            Some(ReservationInForce {
                location: loc.pattern.clone(),
                tdm_reserved: loc.tdm_reserved,
                signals_served: served,
                content_usage: loc
                    .headers
                    .content_usage
                    .as_ref()
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            })
        });
        let robots = ctx.conduct.robots.map(|(at, version)| RobotsFetch {
            fetched_at: time::OffsetDateTime::from_unix_timestamp(i64::from(at))
                .map(rfc3339)
                .unwrap_or_default(),
            sha256: self.published.get(version).map_or_else(
                || "unknown (no longer kept)".to_owned(),
                |v| v.sha256.clone(),
            ),
        });
        let record = RequestRecord {
            request_id: format!(
                "{:08x}-{:x}",
                self.id_prefix,
                self.next_id.fetch_add(1, Ordering::Relaxed)
            ),
            client: if id.operator_sources.is_empty() {
                ClientId::Pseudonym(key.pseudonym(ip))
            } else {
                ClientId::Ip(ip.to_string())
            },
            user_agent: req
                .headers
                .get(http::header::USER_AGENT)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default(),
            agent: agent.map(|a| a.name.clone()),
            operator: agent.map(|a| a.operator.clone()),
            purpose: id.purpose.map(|p| p.as_str().to_owned()),
            identity: id.kind.as_str().to_owned(),
            verification: id.verification.as_str().to_owned(),
            verified_by: id.method.as_str().to_owned(),
            method: req.method.as_str().to_owned(),
            host: ctx.host.clone(),
            path: req.uri.path().to_owned(),
            decision: ctx.applied.as_str().to_owned(),
            status,
            rule: snap.policy.rule_name(verdict.decision.rule).to_owned(),
            log_only: verdict.decision.shadow.map(|(rule, would)| Shadow {
                rule: snap.policy.rule_name(Some(rule)).to_owned(),
                would: would.as_str().to_owned(),
            }),
            score: ctx.conduct.score,
            signals: signal_names(ctx.conduct.signals),
            reservation,
            robots_txt: robots,
        };
        ledger.record(Body::Request(Box::new(record)));
    }
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Finds `</body>` (any case) in an HTML chunk: where the hidden link goes.
fn body_close(chunk: &[u8]) -> Option<usize> {
    const TAG: &[u8] = b"</body";
    let finder = memchr::memmem::rfind_iter(chunk, b"</");
    for at in finder {
        if chunk.len() >= at + TAG.len() && chunk[at..at + TAG.len()].eq_ignore_ascii_case(TAG) {
            return Some(at);
        }
    }
    None
}

/// Per-request state carried between phases.
#[derive(Default)]
pub struct RequestCtx {
    /// The client's behaviour signals and score.
    conduct: Assessment,
    /// What rempart did, and whether that goes into the evidence ledger.
    applied: Action,
    evidence: bool,
    host: Option<String>,
    /// Add the hidden honeypot link to this HTML response.
    inject_link: bool,
    snapshot: Option<Arc<Snapshot>>,
    verdict: Option<Verdict>,
    client_ip: Option<IpAddr>,
    /// The reservation location in force for this path.
    location: Option<usize>,
    /// The licensee whose credential let this request through.
    licensee: Option<usize>,
    /// Micro-euros charged under pay per crawl, and the licensee who pays.
    charged: Option<u64>,
    payer: Option<usize>,
}

/// The header that tells the origin which licensee a request comes from.
pub const LICENSEE_HEADER: &str = "x-rempart-licensee";

/// Documents rempart serves itself, ahead of policy, so that they stay
/// reachable whatever the rules say.
#[derive(Clone, Copy)]
enum Builtin {
    RobotsTxt,
    OfferPage,
    TdmRep,
    TdmPolicy,
    License,
}

impl Builtin {
    fn name(self) -> &'static str {
        match self {
            Builtin::RobotsTxt => "robots.txt",
            Builtin::OfferPage => "offer",
            Builtin::TdmRep => "tdmrep.json",
            Builtin::TdmPolicy => "tdm-policy",
            Builtin::License => "license.xml",
        }
    }
}

fn builtin(snap: &Snapshot, method: &http::Method, path: &str) -> Option<Builtin> {
    use crate::reservation::{LICENSE_PATH, POLICY_PATH, TDMREP_PATH};
    if method != http::Method::GET && method != http::Method::HEAD {
        return None;
    }
    let reserved = snap.reservation.is_some();
    match path {
        "/robots.txt" => Some(Builtin::RobotsTxt),
        p if p == snap.offer_path => Some(Builtin::OfferPage),
        TDMREP_PATH if reserved => Some(Builtin::TdmRep),
        POLICY_PATH if reserved => Some(Builtin::TdmPolicy),
        LICENSE_PATH if reserved => Some(Builtin::License),
        _ => None,
    }
}

/// Adds the reservation's opt-out headers to a proxied response. The config
/// is the one source of truth: TDMRep and AIPREF values replace the origin's,
/// `noai` joins the origin's own X-Robots-Tag, and the licence `Link` is
/// added unless the origin already sent it.
fn add_optout_headers(
    resp: &mut ResponseHeader,
    r: &crate::reservation::Reservation,
    loc: usize,
) -> Result<()> {
    let Some(l) = r.locations.get(loc) else {
        return Ok(());
    };
    let h = &l.headers;
    resp.insert_header("tdm-reservation", h.tdm_reservation.clone())?;
    if l.tdm_reserved {
        resp.insert_header("tdm-policy", h.tdm_policy.clone())?;
    }
    if let Some(cu) = &h.content_usage {
        resp.insert_header("content-usage", cu.clone())?;
    }
    if h.noai {
        let existing: Vec<&[u8]> = resp
            .headers
            .get_all("x-robots-tag")
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        let has_noai = existing.iter().any(|v| {
            v.split(|&b| b == b',' || b == b':')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"noai"))
        });
        if existing.is_empty() {
            resp.insert_header(
                "x-robots-tag",
                http::HeaderValue::from_static("noai, noimageai"),
            )?;
        } else if !has_noai {
            let mut joined = existing.join(&b", "[..]);
            joined.extend_from_slice(b", noai, noimageai");
            let value = http::HeaderValue::from_bytes(&joined).map_err(|e| {
                Error::because(pingora::ErrorType::InternalError, "x-robots-tag", e)
            })?;
            resp.insert_header("x-robots-tag", value)?;
        }
    }
    let link_present = resp.headers.get_all(http::header::LINK).iter().any(|v| {
        v.as_bytes()
            .windows(r.license_url.len())
            .any(|w| w == r.license_url.as_bytes())
    });
    if !link_present {
        resp.append_header(http::header::LINK, r.link.clone())?;
    }
    Ok(())
}

/// Writes a whole response from rempart itself, keeping the connection open
/// (unlike `respond_error`, which closes it).
async fn write_page(session: &mut Session, status: u16, page: &Page) -> Result<()> {
    write_page_with(session, status, page, &[]).await
}

/// [`write_page`] with one more header.
async fn write_page_with(
    session: &mut Session,
    status: u16,
    page: &Page,
    extra: &[(&'static str, http::HeaderValue)],
) -> Result<()> {
    let head_only = session.req_header().method == http::Method::HEAD;
    // No case map and static values: the header costs one map, not one
    // allocation per field.
    let mut resp = ResponseHeader::build_no_case(status, Some(5))?;
    resp.insert_header(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(page.content_type),
    )?;
    resp.insert_header(http::header::CONTENT_LENGTH, page.body.len())?;
    resp.insert_header(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    )?;
    resp.insert_header(
        http::header::VARY,
        http::HeaderValue::from_static("accept, accept-language"),
    )?;
    for (name, value) in extra {
        resp.insert_header(*name, value.clone())?;
    }
    session
        .write_response_header(Box::new(resp), head_only)
        .await?;
    if !head_only {
        session
            .write_response_body(Some(page.body.clone()), true)
            .await?;
    }
    Ok(())
}

/// HTTP/1.1 requires a Host header (RFC 9112, section 3.2); HTTP/2 carries
/// `:authority` in the URI instead.
fn missing_host(req: &RequestHeader) -> bool {
    req.version == http::Version::HTTP_11
        && req.headers.get(http::header::HOST).is_none()
        && req.uri.authority().is_none()
}

static NOT_FOUND: Page = Page {
    content_type: "text/plain; charset=utf-8",
    body: Bytes::from_static(b"404 Not Found\n"),
};

static BAD_REQUEST_SIGNATURE: Page = Page {
    content_type: "text/plain; charset=utf-8",
    body: Bytes::from_static(b"400 Bad Request: oversized or repeated Signature headers.\n"),
};

static RATE_LIMITED: Page = Page {
    content_type: "text/plain; charset=utf-8",
    body: Bytes::from_static(
        b"429 Too Many Requests: this client is requesting pages faster than a person reads them. \
          Slow down, and read /robots.txt: text and data mining of this site is reserved.\n",
    ),
};

static QUOTA_EXCEEDED: Page = Page {
    content_type: "text/plain; charset=utf-8",
    body: Bytes::from_static(
        b"429 Too Many Requests: the daily quota of this licence is used up.\n",
    ),
};

/// A protocol error, not a page of the rights holder: plain text.
static BAD_REQUEST_NO_HOST: Page = Page {
    content_type: "text/plain; charset=utf-8",
    body: Bytes::from_static(b"400 Bad Request: HTTP/1.1 requires a Host header.\n"),
};

impl RempartProxy {
    /// The TCP peer, or for a connection from the PROXY relay (loopback),
    /// the client its balancer named.
    fn peer_ip(&self, session: &Session) -> IpAddr {
        let Some(addr) = session.client_addr().and_then(|a| a.as_inet()) else {
            return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        };
        if let (Some(relayed), true) = (&self.relayed, addr.ip().is_loopback()) {
            if let Some(client) = relayed.get(&addr.port()) {
                return client.ip();
            }
        }
        addr.ip()
    }
}

#[async_trait]
impl ProxyHttp for RempartProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> Self::CTX {
        RequestCtx::default()
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Self::CTX) -> Result<bool> {
        let snap = self.snapshot.load_full();
        let m = metrics();
        if missing_host(session.req_header()) {
            m.bad_requests.with_label_values(&["missing-host"]).inc();
            write_page(session, 400, &BAD_REQUEST_NO_HOST).await?;
            return Ok(true);
        }
        // Only rempart says who is licensed: a client cannot forge it.
        session.req_header_mut().remove_header(LICENSEE_HEADER);
        let started = Instant::now();
        let peer = self.peer_ip(session);
        let req: &RequestHeader = session.req_header();
        // Web Bot Auth: only requests that carry a signature pay for its check.
        let authority = req
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri.authority().map(|a| a.as_str()))
            .unwrap_or("");
        let signature = self.directories.check(req, authority, false);
        if signature != Signature::Absent {
            m.web_bot_auth.with_label_values(&[signature.label()]).inc();
        }
        if signature == Signature::Hostile {
            m.bad_requests
                .with_label_values(&["signature-headers"])
                .inc();
            let hostile = http::HeaderValue::from_static("InvalidSignature");
            write_page_with(
                session,
                400,
                &BAD_REQUEST_SIGNATURE,
                &[("crawler-error", hostile)],
            )
            .await?;
            return Ok(true);
        }
        let secure = session.digest().is_some_and(|d| d.ssl_digest.is_some());
        let req: &RequestHeader = session.req_header();
        let facts =
            RequestFacts::from_parts(&req.method, &req.uri, &req.headers, peer, &snap.trusted);
        let signed = matches!(signature, Signature::Verified { .. });
        let mut identity = snap.identify(&facts, signed);
        // Operators that publish host names instead of ranges: checked by
        // reverse DNS, from the cache (a miss stays unverifiable and starts
        // a background lookup).
        if let (Some(rdns), Some(agent), Verification::Unverifiable) =
            (&self.rdns, identity.agent, identity.verification)
        {
            let suffixes = &snap.catalogue.agent(agent).rdns;
            if identity.kind == IdentityKind::Declared && !suffixes.is_empty() {
                identity.verification = rdns.check(facts.client_ip, suffixes);
                if identity.verification != Verification::Unverifiable {
                    identity.method = crate::identify::VerifyMethod::ReverseDns;
                }
            }
        }
        let doc = builtin(&snap, &req.method, &facts.path);
        // robots.txt is chosen before deciding: the client's behaviour state
        // remembers which version it was served.
        let robots_page = match doc {
            Some(Builtin::RobotsTxt) => Some(self.robots_page(&snap)),
            _ => None,
        };
        let robots_version = robots_page.as_ref().map(|p| self.published.robots(&p.body));
        let conduct = self.observe(
            &snap,
            req,
            &facts,
            &identity,
            robots_version.as_deref(),
            doc.is_some(),
            snap.trusted.is_trusted(peer),
            secure,
        );
        let verdict = snap.decide(&facts, identity, &conduct);
        m.decision_seconds.observe(started.elapsed().as_secs_f64());

        let credential = match (req.headers.get(http::header::AUTHORIZATION), &signature) {
            (Some(auth), _) => snap.licensees.check(
                Some(auth.as_bytes()),
                verdict.identity.agent,
                facts.host,
                &facts.path,
                SystemTime::now(),
            ),
            (None, Signature::Verified { keyid }) => snap.licensees.check_key(
                keyid,
                verdict.identity.agent,
                facts.host,
                &facts.path,
                SystemTime::now(),
            ),
            (None, _) => Credential::None,
        };
        let location = snap.reservation.as_ref().and_then(|r| {
            r.lookup(facts.host, &facts.path)
                .and_then(|i| r.locations.get(i).map(|l| (i, l)))
        });
        let price = location.and_then(|(_, l)| l.price_micros.zip(l.price_header.clone()));
        let authenticated = signed
            || matches!(
                credential,
                Credential::Licensed(_) | Credential::OutOfScope(_)
            );
        // Pay per crawl applies where the crawler would get the offer, or
        // holds a licence: a bid from anyone else changes nothing.
        let settlement = match (&doc, &price) {
            (None, Some((p, _))) if authenticated || verdict.decision.action == Action::Offer => {
                let h = |name: &str| req.headers.get(name).map(|v| v.as_bytes());
                settle(
                    *p,
                    bid(h("crawler-exact-price"), h("crawler-max-price")),
                    authenticated,
                )
            }
            _ => None,
        };
        let charged = match settlement {
            Some(Settlement::Charged(p)) => Some(p),
            _ => None,
        };
        let action = if doc.is_some()
            || matches!(credential, Credential::Licensed(_))
            || charged.is_some()
        {
            Action::Allow
        } else {
            verdict.decision.action
        };
        if let Some(p) = charged {
            ctx.charged = Some(p);
            let payer = match credential {
                Credential::Licensed(i) | Credential::OutOfScope(i) => Some(i),
                _ => None,
            };
            ctx.payer = payer;
            let payer = payer
                .and_then(|i| snap.licensees.get(i))
                .map_or("unknown", |l| l.id.as_str());
            m.crawler_charges.with_label_values(&[payer]).inc();
            m.crawler_charged_euros
                .with_label_values(&[payer])
                .inc_by(p as f64 / 1_000_000.0);
        }
        let over_quota = match credential {
            Credential::Licensed(i) if doc.is_none() => {
                !snap.licensees.take_quota(i, SystemTime::now())
            }
            _ => false,
        };
        if over_quota {
            m.licence_rejections.with_label_values(&["quota"]).inc();
            let secs = 86_400 - now_secs() % 86_400;
            let retry = http::HeaderValue::from(secs);
            write_page_with(session, 429, &QUOTA_EXCEEDED, &[("retry-after", retry)]).await?;
            return Ok(true);
        }
        if let Credential::Licensed(i) = credential {
            ctx.licensee = Some(i);
            if let Some(l) = snap.licensees.get(i) {
                l.count_request();
            }
        }
        let id = &verdict.identity;
        m.count_request(action, id.purpose, id.verification);
        if let Some(agent) = id.agent {
            let a = snap.catalogue.agent(agent);
            snap.agent_counters
                .inc(agent.0 as usize, &a.name, &a.operator, action);
        }
        if let Some((rule, would)) = verdict.decision.shadow {
            m.log_only
                .with_label_values(&[snap.policy.rule_name(Some(rule)), would.as_str()])
                .inc();
        }
        // Only refusals and rempart's own pages need the language and format.
        let negotiated = (doc.is_some()
            || action != Action::Allow
            || credential == Credential::Invalid
            || matches!(settlement, Some(Settlement::Refused { .. })))
        .then(|| {
            let header = |name| {
                req.headers
                    .get(name)
                    .map_or(&b""[..], |v: &http::HeaderValue| v.as_bytes())
            };
            (
                choose_lang(header(http::header::ACCEPT_LANGUAGE), snap.default_lang),
                prefers_json(header(http::header::ACCEPT)),
            )
        });
        let (lang, json) = negotiated.unwrap_or((snap.default_lang, false));
        let refused_payment = matches!(settlement, Some(Settlement::Refused { .. }));
        ctx.applied = match settlement {
            Some(Settlement::Refused { status: 402, .. }) => Action::Offer,
            Some(Settlement::Refused { .. }) => Action::Block,
            _ => action,
        };
        if matches!(ctx.applied, Action::Block | Action::Offer)
            && verdict.identity.kind == IdentityKind::Declared
            && verdict.identity.verification == Verification::Verified
        {
            self.tracker.note_refusal(conduct.client);
        }
        ctx.evidence = doc.is_none()
            && credential != Credential::Invalid
            && (action != Action::Allow || refused_payment || verdict.decision.shadow.is_some());
        if ctx.evidence {
            ctx.host = facts.host.map(str::to_owned);
        }
        ctx.conduct = conduct;
        ctx.client_ip = Some(facts.client_ip);
        ctx.verdict = Some(verdict);
        ctx.location = location
            .filter(|_| snap.reservation.as_ref().is_some_and(|r| r.headers_enabled))
            .map(|(i, _)| i);
        drop(facts);

        let answered = match doc {
            Some(d) => {
                m.served_documents.with_label_values(&[d.name()]).inc();
                let pages = &snap.pages;
                let page = match d {
                    Builtin::RobotsTxt => robots_page.as_ref().or(Some(&pages.robots_txt)),
                    Builtin::OfferPage if json => Some(&pages.offer_json),
                    Builtin::OfferPage => Some(pages.offer(lang)),
                    Builtin::TdmRep => pages.tdmrep_json.as_ref(),
                    Builtin::TdmPolicy => pages.tdm_policy.as_ref(),
                    Builtin::License => pages.license_xml.as_ref(),
                };
                match page {
                    Some(page) => write_page(session, 200, page).await?,
                    None => write_page(session, 404, &NOT_FOUND).await?,
                }
                true
            }
            None if credential == Credential::Invalid => {
                m.licence_rejections.with_label_values(&["invalid"]).inc();
                let page = if json {
                    &snap.pages.block_json
                } else {
                    snap.pages.block(lang)
                };
                let challenge = http::HeaderValue::from_static("License error=\"invalid_token\"");
                write_page_with(session, 401, page, &[("www-authenticate", challenge)]).await?;
                true
            }
            None => match (settlement, action) {
                (Some(Settlement::Refused { status, error }), _) => {
                    m.crawler_payment_errors.with_label_values(&[error]).inc();
                    let page = match (status == 402, json) {
                        (true, true) => &snap.pages.offer_json,
                        (true, false) => snap.pages.offer(lang),
                        (false, true) => &snap.pages.block_json,
                        (false, false) => snap.pages.block(lang),
                    };
                    let mut extra = vec![("crawler-error", http::HeaderValue::from_static(error))];
                    if let (402, Some((_, h))) = (status, &price) {
                        extra.push(("crawler-price", h.clone()));
                    }
                    write_page_with(session, status, page, &extra).await?;
                    true
                }
                (_, Action::Allow) => false,
                (_, Action::RateLimit) => {
                    write_page_with(
                        session,
                        429,
                        &RATE_LIMITED,
                        &[("retry-after", snap.behaviour.retry_after.clone())],
                    )
                    .await?;
                    true
                }
                (_, Action::Block) => {
                    let page = if json {
                        &snap.pages.block_json
                    } else {
                        snap.pages.block(lang)
                    };
                    write_page(session, 403, page).await?;
                    true
                }
                (_, Action::Offer) => {
                    let page = if json {
                        &snap.pages.offer_json
                    } else {
                        snap.pages.offer(lang)
                    };
                    match &price {
                        Some((_, h)) => {
                            write_page_with(
                                session,
                                snap.offer_status,
                                page,
                                &[("crawler-price", h.clone())],
                            )
                            .await?
                        }
                        None => write_page(session, snap.offer_status, page).await?,
                    }
                    true
                }
            },
        };
        ctx.snapshot = Some(snap);
        Ok(answered)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut Self::CTX,
    ) -> Result<Box<HttpPeer>> {
        let snap = match &ctx.snapshot {
            Some(s) => s.clone(),
            None => self.snapshot.load_full(),
        };
        let u = &snap.upstream;
        // Plain HTTP needs no SNI: an empty String does not allocate.
        let sni = if u.tls { u.sni.clone() } else { String::new() };
        let mut peer = HttpPeer::new(u.addr, u.tls, sni);
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
        // Append the socket peer to X-Forwarded-For, as every proxy hop does,
        // formatting into a stack buffer: one allocation, for the header value.
        let peer = self.peer_ip(session);
        let mut buf = [0u8; 1024];
        let mut cursor = std::io::Cursor::new(&mut buf[..]);
        let prev = upstream_request.headers.get("x-forwarded-for");
        let written = match prev {
            Some(prev) if prev.len() < 900 => cursor
                .write_all(prev.as_bytes())
                .and_then(|()| write!(cursor, ", {peer}")),
            // An absurdly long chain from the client is replaced, not extended.
            _ => write!(cursor, "{peer}"),
        };
        written
            .map_err(|e| Error::because(pingora::ErrorType::InternalError, "x-forwarded-for", e))?;
        let len = cursor.position() as usize;
        let value = http::HeaderValue::from_bytes(&buf[..len])
            .map_err(|e| Error::because(pingora::ErrorType::InternalError, "x-forwarded-for", e))?;
        upstream_request.insert_header("x-forwarded-for", value)?;
        upstream_request.remove_header(LICENSEE_HEADER);
        let licensee = ctx
            .licensee
            .zip(ctx.snapshot.as_ref())
            .and_then(|(i, s)| s.licensees.get(i));
        if let Some(l) = licensee {
            upstream_request.insert_header(LICENSEE_HEADER, l.id.as_str())?;
        }
        if upstream_request.headers.get(http::header::HOST).is_none() {
            let host = ctx
                .snapshot
                .as_ref()
                .map(|s| s.upstream.host_header.clone())
                .unwrap_or_else(|| http::HeaderValue::from_static("localhost"));
            upstream_request.insert_header(http::header::HOST, host)?;
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        if let Some(p) = ctx.charged {
            let value = http::HeaderValue::from_str(&format_price(p)).map_err(|e| {
                Error::because(pingora::ErrorType::InternalError, "crawler-charged", e)
            })?;
            upstream_response.insert_header("crawler-charged", value)?;
        }
        if let (Some(loc), Some(snap)) = (ctx.location, &ctx.snapshot) {
            if let Some(r) = &snap.reservation {
                add_optout_headers(upstream_response, r, loc)?;
            }
        }
        // The hidden honeypot link goes into uncompressed HTML pages only; any
        // other response passes through the body filter untouched.
        // Licensed and paying crawlers get the content as delivered.
        let link_on = ctx.licensee.is_none()
            && ctx.charged.is_none()
            && ctx
                .snapshot
                .as_ref()
                .is_some_and(|s| s.behaviour.enabled && s.behaviour.honeypot_link.is_some());
        if link_on
            && upstream_response.status == http::StatusCode::OK
            && session.req_header().method == http::Method::GET
            && upstream_response
                .headers
                .get(http::header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"text/html"))
            && upstream_response
                .headers
                .get(http::header::CONTENT_ENCODING)
                .is_none_or(|v| v.as_bytes().eq_ignore_ascii_case(b"identity"))
        {
            ctx.inject_link = true;
            // The link goes in exactly once (before `</body>`, or last), so a
            // known length stays known and the page is not sent chunked.
            let grown = upstream_response
                .headers
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<usize>().ok())
                .zip(
                    ctx.snapshot
                        .as_ref()
                        .and_then(|s| s.behaviour.honeypot_link.as_ref()),
                )
                .map(|(len, link)| len + link.len());
            match grown {
                Some(len) => upstream_response.insert_header(http::header::CONTENT_LENGTH, len)?,
                None => {
                    upstream_response.remove_header(&http::header::CONTENT_LENGTH);
                }
            }
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
        let Some(link) = ctx
            .snapshot
            .as_ref()
            .and_then(|s| s.behaviour.honeypot_link.clone())
        else {
            ctx.inject_link = false;
            return Ok(None);
        };
        // Before `</body>`, or last when none was seen by the end.
        let at = match (body.as_ref().and_then(|b| body_close(b)), end_of_stream) {
            (Some(at), _) => at,
            (None, true) => body.as_ref().map_or(0, Bytes::len),
            (None, false) => return Ok(None),
        };
        let chunk = body.take().unwrap_or_default();
        let mut v = Vec::with_capacity(chunk.len() + link.len());
        v.extend_from_slice(&chunk[..at]);
        v.extend_from_slice(&link);
        v.extend_from_slice(&chunk[at..]);
        *body = Some(Bytes::from(v));
        ctx.inject_link = false;
        metrics().honeypot_links.inc();
        Ok(None)
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        _ctx: &mut Self::CTX,
        e: Box<Error>,
    ) -> Box<Error> {
        metrics()
            .upstream_errors
            .with_label_values(&["connect"])
            .inc();
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
                write_page(session, 502, &snap.pages.bad_gateway).await
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

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Self::CTX) {
        let licensee = ctx
            .licensee
            .zip(ctx.snapshot.as_ref())
            .and_then(|(i, s)| s.licensees.get(i));
        let bytes = session.body_bytes_sent() as u64;
        if let Some(l) = licensee {
            l.count_bytes(bytes);
        }
        let payer = ctx
            .payer
            .zip(ctx.snapshot.as_ref())
            .and_then(|(i, s)| s.licensees.get(i));
        if let (Some(meter), true) = (&self.meter, licensee.is_some() || ctx.charged.is_some()) {
            let path = session.req_header().uri.path();
            meter.record(MeterRecord {
                ts: now_secs(),
                licensee: licensee
                    .or(payer)
                    .map_or_else(|| "unknown".to_owned(), |l| l.id.clone()),
                path_class: path_class(path).to_owned(),
                path: path.to_owned(),
                status: session.response_written().map_or(0, |r| r.status.as_u16()),
                bytes,
                charged_micros: ctx.charged,
            });
        }
        let Some(verdict) = ctx.verdict else { return };
        if ctx.evidence {
            self.record_evidence(session, ctx, &verdict);
        }
        let Some(snap) = ctx.snapshot.as_ref().filter(|s| s.access_log) else {
            return;
        };
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let req = session.req_header();
        let agent = verdict
            .identity
            .agent
            .map(|a| snap.catalogue.agent(a).name.as_str());
        tracing::info!(
            target: "rempart::access",
            client = %ctx.client_ip.map_or_else(String::new, |ip| ip.to_string()),
            method = %req.method,
            host = req.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or(""),
            path = %req.uri.path(),
            status,
            bytes = session.body_bytes_sent(),
            identity = verdict.identity.kind.as_str(),
            agent = agent.unwrap_or(""),
            verification = verdict.identity.verification.as_str(),
            action = ctx.applied.as_str(),
            rule = snap.policy.rule_name(verdict.decision.rule),
            score = ctx.conduct.score,
            signals = %ctx.conduct.signals.names().join(","),
            error = e.map(|e| e.to_string()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_is_required_for_http_1_1_only() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.set_version(http::Version::HTTP_11);
        assert!(missing_host(&req));
        req.insert_header("host", "example.com").unwrap();
        assert!(!missing_host(&req));
        let mut old = RequestHeader::build("GET", b"/", None).unwrap();
        old.set_version(http::Version::HTTP_10);
        assert!(!missing_host(&old));
        let mut h2 = RequestHeader::build("GET", b"/x", None).unwrap();
        h2.set_uri(http::Uri::from_static("https://example.com/x"));
        h2.set_version(http::Version::HTTP_11);
        assert!(!missing_host(&h2), ":authority counts as a host");
    }
}
