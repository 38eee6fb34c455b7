//! The smallest pingora proxy: a `ProxyHttp` with `upstream_peer` only, built
//! with the same pingora version and features as rempart. The load benchmark
//! (`benches/load/run.sh`) measures it beside rempart so that pingora's own
//! floor is known: what rempart costs above this is rempart's.
//!
//! It shares two server settings with rempart, so that the difference is the
//! per-request work and not a tuning: no work stealing between threads, and
//! an upstream keep-alive pool of 256 connections.
//!
//!     bare-pingora LISTEN UPSTREAM THREADS
//!     bare-pingora 127.0.0.1:18085 127.0.0.1:18080 1

use std::net::SocketAddr;

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;

/// Forwards every request to one origin, over plain HTTP.
struct Bare {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) -> Self::CTX {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, listen, upstream, threads] = args.as_slice() else {
        anyhow::bail!("usage: bare-pingora LISTEN UPSTREAM THREADS");
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
    let mut proxy = http_proxy_service(&server.configuration, Bare { upstream });
    proxy.add_tcp(listen);
    server.add_service(proxy);
    server.run_forever()
}
