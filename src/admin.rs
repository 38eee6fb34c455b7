//! The admin listener: `/metrics` (Prometheus text format, the default
//! registry shared with pingora) and `/healthz`. It binds to loopback unless
//! the config says otherwise.

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use prometheus::{Encoder, TextEncoder};

/// The admin HTTP application.
pub struct AdminApp;

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
        let path = session.req_header().uri.path();
        match path {
            "/metrics" => {
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
            "/healthz" => text(StatusCode::OK, "text/plain", b"ok\n".to_vec()),
            _ => text(StatusCode::NOT_FOUND, "text/plain", b"not found\n".to_vec()),
        }
    }
}
