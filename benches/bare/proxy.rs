//! The smallest pingora proxy: a `ProxyHttp` with `upstream_peer` only, built
//! with the same pingora version and features as rempart. The load benchmark
//! (`benches/load/run.sh`) measures it beside rempart so that pingora's own
//! floor is known: what rempart costs above this is rempart's.
//!
//! It shares two server settings with rempart, so that the difference is the
//! per-request work and not a tuning: no work stealing between threads, and
//! an upstream keep-alive pool of 256 connections.
//!
//! With `refuse` it also answers GPTBot and ClaudeBot itself, a 403 written
//! on the kept-alive connection as rempart writes its own answers (the same
//! four headers, one small body): pingora's floor for a refusal.
//!
//!     bare-pingora LISTEN UPSTREAM THREADS [refuse]
//!     bare-pingora 127.0.0.1:18085 127.0.0.1:18080 1

use std::net::SocketAddr;

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;

/// Forwards every request to one origin, over plain HTTP (and, when
/// `refuse`, refuses two crawlers).
struct Bare {
    upstream: SocketAddr,
    refuse: bool,
}

const REFUSED: &[u8] = b"<!doctype html><title>403 Forbidden</title><h1>403 Forbidden</h1>\n";

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) -> Self::CTX {}

    async fn request_filter(&self, session: &mut Session, _ctx: &mut ()) -> Result<bool> {
        if !self.refuse {
            return Ok(false);
        }
        let ua = session
            .req_header()
            .headers
            .get(http::header::USER_AGENT)
            .map_or(&b""[..], |v| v.as_bytes());
        let crawler = [&b"GPTBot"[..], b"ClaudeBot"]
            .iter()
            .any(|t| memchr::memmem::find(ua, t).is_some());
        if !crawler {
            return Ok(false);
        }
        let mut resp = ResponseHeader::build_no_case(403, Some(4))?;
        resp.insert_header(http::header::CONTENT_TYPE, "text/html; charset=utf-8")?;
        resp.insert_header(http::header::CONTENT_LENGTH, REFUSED.len())?;
        resp.insert_header(http::header::CACHE_CONTROL, "no-store")?;
        resp.insert_header(http::header::VARY, "accept, accept-language")?;
        session.write_response_header(Box::new(resp), false).await?;
        session
            .write_response_body(Some(bytes::Bytes::from_static(REFUSED)), true)
            .await?;
        Ok(true)
    }

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (listen, upstream, threads, refuse) = match args.as_slice() {
        [_, l, u, t] => (l, u, t, false),
        [_, l, u, t, r] if r == "refuse" => (l, u, t, true),
        _ => anyhow::bail!("usage: bare-pingora LISTEN UPSTREAM THREADS [refuse]"),
    };
    let upstream: SocketAddr = upstream.parse()?;
    let threads: usize = threads.parse()?;
    let tmp = std::env::temp_dir();
    let port = listen.rsplit(':').next().unwrap_or("0");
    let mut conf = ServerConf {
        threads,
        work_stealing: false,
        pid_file: tmp
            .join(format!("bare-pingora-{port}.pid"))
            .to_string_lossy()
            .into_owned(),
        upgrade_sock: tmp
            .join(format!("bare-pingora-{port}.sock"))
            .to_string_lossy()
            .into_owned(),
        ..ServerConf::default()
    };
    conf.upstream_keepalive_pool_size = 256;
    let mut server = Server::new_with_opt_and_conf(Opt::default(), conf);
    server.bootstrap();
    let mut proxy = http_proxy_service(&server.configuration, Bare { upstream, refuse });
    proxy.add_tcp(listen);
    server.add_service(proxy);
    server.run_forever()
}
