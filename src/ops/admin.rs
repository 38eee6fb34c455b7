//! The admin listener: `/metrics` (Prometheus text format, the default
//! registry shared with pingora), `/healthz` (alive), `/readyz` (a config is
//! loaded and the upstream accepts connections) and `POST /reload`. It binds
//! to loopback unless the config says otherwise: whoever reaches it can
//! reload the config.

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use prometheus::{Encoder, TextEncoder};

use std::sync::Arc;
use std::time::Duration;

use crate::ops::reload::{short_hash, Outcome, Reloader};
use crate::snapshot::SharedSnapshot;

/// The admin HTTP application.
pub struct AdminApp {
    pub snapshot: SharedSnapshot,
    pub reloader: Option<Arc<Reloader>>,
}

impl AdminApp {
    async fn ready(&self) -> Response<Vec<u8>> {
        let addr = self.snapshot.load().upstream.addr;
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
        match (path.as_str(), post) {
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
            ("/healthz", _) => text(StatusCode::OK, "text/plain", b"ok\n".to_vec()),
            _ => text(StatusCode::NOT_FOUND, "text/plain", b"not found\n".to_vec()),
        }
    }
}
