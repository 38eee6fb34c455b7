//! The admin listener: `/metrics` (Prometheus text format, the default
//! registry shared with pingora), `/healthz` (alive), `/readyz` (a config is
//! loaded and the upstream accepts connections), `POST /reload`, the
//! console (`/`, `/console.json`, see [`crate::ops::console`]) and its quick
//! controls (`POST /controls/…`, see [`crate::ops::controls`], which require
//! the token). It binds to loopback unless the config says otherwise:
//! whoever reaches it can reload the config.

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use prometheus::{Encoder, TextEncoder};
use sha2::Digest;

use std::sync::Arc;
use std::time::Duration;

use crate::ops::controls::{self, Answer, Control};
use crate::ops::reload::{short_hash, Outcome, Reloader};
use crate::snapshot::SharedSnapshot;

/// The admin HTTP application.
pub struct AdminApp {
    pub snapshot: SharedSnapshot,
    pub reloader: Option<Arc<Reloader>>,
    pub guard: AdminGuard,
    pub readiness: crate::config::Readiness,
    /// The origin pool, for `/readyz` in its origin mode.
    pub origins: Option<Arc<crate::proxy::origins::Pool>>,
    /// The console (`/` and `/console.json`).
    pub console: crate::ops::console::Console,
}

/// Who may change state through the admin listener: not another site (a
/// page the operator opens, directly or by DNS rebinding), and, when a token
/// is configured, only its holder.
#[derive(Default)]
pub struct AdminGuard {
    /// SHA-256 of the bearer token.
    token: Option<[u8; 32]>,
    allowed_hosts: Vec<String>,
}

impl AdminGuard {
    /// From `[admin]`: reads the token file (trimmed) if one is named.
    pub fn from_config(
        admin: &crate::config::AdminSection,
        resolve: impl Fn(&std::path::Path) -> std::path::PathBuf,
    ) -> anyhow::Result<Self> {
        let token = match &admin.token_file {
            Some(f) => {
                let path = resolve(f);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| anyhow::anyhow!("admin.token_file {}: {e}", path.display()))?;
                let token = text.trim();
                anyhow::ensure!(
                    !token.is_empty(),
                    "admin.token_file {} is empty",
                    path.display()
                );
                Some(sha2::Sha256::digest(token.as_bytes()).into())
            }
            None => None,
        };
        Ok(Self {
            token,
            allowed_hosts: admin
                .allowed_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
        })
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// Why a state-changing request is refused, if it is.
    pub fn refuse(&self, req: &http::request::Parts) -> Option<(StatusCode, &'static str)> {
        let h = |n: &str| req.headers.get(n).and_then(|v| v.to_str().ok());
        if h("sec-fetch-site").is_some_and(|s| !matches!(s, "same-origin" | "none")) {
            return Some((StatusCode::FORBIDDEN, "cross-site request refused\n"));
        }
        let host = h("host").unwrap_or("");
        let name = host.rsplit_once(':').map_or(host, |(n, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                n
            } else {
                host
            }
        });
        let name = name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let literal = name.parse::<std::net::IpAddr>().is_ok() || name == "localhost";
        if !literal && !self.allowed_hosts.contains(&name) {
            return Some((StatusCode::FORBIDDEN, "Host is not this admin listener\n"));
        }
        if let Some(origin) = h("origin") {
            let same = origin
                .split_once("://")
                .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host));
            if !same {
                return Some((StatusCode::FORBIDDEN, "cross-site request refused\n"));
            }
        }
        if let Some(expected) = &self.token {
            let given = h("authorization")
                .and_then(|a| a.strip_prefix("Bearer "))
                .map(|t| <[u8; 32]>::from(sha2::Sha256::digest(t.trim().as_bytes())));
            let ok = given
                .is_some_and(|g| bool::from(subtle::ConstantTimeEq::ct_eq(&g[..], &expected[..])));
            if !ok {
                return Some((StatusCode::UNAUTHORIZED, "a bearer token is required\n"));
            }
        }
        None
    }
}

impl AdminApp {
    async fn ready(&self) -> Response<Vec<u8>> {
        if self.readiness == crate::config::Readiness::Proxy {
            // The snapshot is loaded (the admin listener starts after it)
            // and the listeners are bound: this proxy can serve.
            return text(StatusCode::OK, "text/plain", b"ready\n".to_vec());
        }
        let snap = self.snapshot.load_full();
        let addr = match &self.origins {
            Some(pool) => pool
                .pick(&snap)
                .and_then(|(t, i)| t.entries.get(i).map(|e| e.addr)),
            None => snap.upstream.primary().map(|(_, a)| a),
        };
        let Some(addr) = addr else {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                b"not ready: no origin address\n".to_vec(),
            );
        };
        let probe =
            tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr))
                .await;
        match probe {
            Ok(Ok(_)) => text(StatusCode::OK, "text/plain", b"ready\n".to_vec()),
            Ok(Err(e)) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: upstream {addr} unreachable: {e}\n").into_bytes(),
            ),
            Err(_) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: upstream {addr} unreachable: no answer in 1 s\n").into_bytes(),
            ),
        }
    }

    async fn reload(&self) -> Response<Vec<u8>> {
        let Some(r) = self.reloader.clone() else {
            return text(
                StatusCode::NOT_FOUND,
                "text/plain",
                b"reload is not available\n".to_vec(),
            );
        };
        match tokio::task::spawn_blocking(move || r.reload("admin")).await {
            Ok(Ok(Outcome::Loaded { hash })) => text(
                StatusCode::OK,
                "text/plain",
                format!("loaded {}\n", short_hash(&hash)).into_bytes(),
            ),
            Ok(Ok(Outcome::Unchanged { hash })) => text(
                StatusCode::OK,
                "text/plain",
                format!("unchanged {}\n", short_hash(&hash)).into_bytes(),
            ),
            Ok(Err(e)) => text(
                StatusCode::BAD_REQUEST,
                "text/plain",
                format!("refused; the previous configuration keeps serving:\n{e}\n").into_bytes(),
            ),
            Err(e) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                format!("reload failed: {e}\n").into_bytes(),
            ),
        }
    }
}

impl AdminApp {
    /// `POST /controls/<control>`: checked here (the token is required,
    /// not only honoured), then applied off the runtime.
    async fn control(&self, session: &mut ServerSession, control: Control) -> Response<Vec<u8>> {
        let answer = self.control_answer(session, control).await;
        controls::count(control, &answer);
        // The answer, never the request's headers: the token is not logged.
        if answer.result == "ok" {
            tracing::info!(control = control.as_str(), message = %answer.message, "console control applied");
        } else {
            tracing::warn!(control = control.as_str(), result = answer.result, message = %answer.message, "console control refused");
        }
        text(
            answer.status,
            "text/plain; charset=utf-8",
            format!("{}\n", answer.message).into_bytes(),
        )
    }

    async fn control_answer(&self, session: &mut ServerSession, control: Control) -> Answer {
        if !self.guard.has_token() {
            return Answer::refused(StatusCode::FORBIDDEN, super::controls::NO_TOKEN);
        }
        if let Some((status, why)) = self.guard.refuse(session.req_header()) {
            return Answer::refused(status, why.trim_end());
        }
        let Some(reloader) = self.reloader.clone() else {
            return Answer::refused(StatusCode::NOT_FOUND, "controls are not available");
        };
        let json = session
            .req_header()
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
            });
        if !json {
            return Answer::refused(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the control as Content-Type: application/json",
            );
        }
        let mut bytes = Vec::new();
        loop {
            match session.read_request_body().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > controls::MAX_BODY {
                        return Answer::refused(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "the body is too large",
                        );
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    return Answer::refused(
                        StatusCode::BAD_REQUEST,
                        format!("cannot read the body: {e}"),
                    )
                }
            }
        }
        let body = match controls::parse_body(&bytes) {
            Ok(b) => b,
            Err(a) => return a,
        };
        match tokio::task::spawn_blocking(move || controls::apply(&reloader, control, &body)).await
        {
            Ok(a) => a,
            Err(e) => Answer::refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("control failed: {e}"),
            ),
        }
    }
}

fn text(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    let len = resp.body().len();
    resp.headers_mut()
        .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
    resp
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path().to_owned();
        let post = session.req_header().method == http::Method::POST;
        if let Some(control) = Control::from_path(&path) {
            if !post {
                return text(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "text/plain",
                    b"use POST with a JSON body\n".to_vec(),
                );
            }
            return self.control(session, control).await;
        }
        let refused = post
            .then(|| self.guard.refuse(session.req_header()))
            .flatten();
        match (path.as_str(), post) {
            (_, true) if refused.is_some() => {
                let (status, why) = refused.unwrap_or((StatusCode::FORBIDDEN, ""));
                text(status, "text/plain", why.as_bytes().to_vec())
            }
            ("/reload", true) => self.reload().await,
            ("/reload", false) => text(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                b"use POST /reload\n".to_vec(),
            ),
            ("/readyz", _) => self.ready().await,
            ("/metrics", _) => {
                self.snapshot.load().publish_ages();
                let encoder = TextEncoder::new();
                let mut body = Vec::with_capacity(16 * 1024);
                match encoder.encode(&prometheus::gather(), &mut body) {
                    Ok(()) => text(StatusCode::OK, encoder.format_type(), body),
                    Err(e) => text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "text/plain",
                        format!("cannot encode metrics: {e}\n").into_bytes(),
                    ),
                }
            }
            ("/", false) => self
                .console
                .page(&self.snapshot.load(), self.guard.has_token()),
            ("/console.json", false) => self
                .console
                .json(&self.snapshot.load(), self.guard.has_token()),
            ("/healthz", _) => text(StatusCode::OK, "text/plain", b"ok\n".to_vec()),
            _ => text(StatusCode::NOT_FOUND, "text/plain", b"not found\n".to_vec()),
        }
    }
}
