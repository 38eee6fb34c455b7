//! The origins a snapshot sends to, resolved when it is compiled: an origin
//! that resolves to nothing is a config error naming its key, not a 502
//! later.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::CompileOptions;
use crate::config::{Config, ConfigError, UpstreamSpec};

/// The origin, resolved.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The origins, in the order written (at least one).
    pub origins: Vec<Origin>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub idle_timeout: Duration,
    /// How long an address that failed is left out of the balance.
    pub fail_timeout: Duration,
    /// Active TCP checks of every address (none: passive health only).
    pub health_check: Option<Duration>,
    /// Name servers for origin names (empty: the system's).
    pub nameservers: Vec<SocketAddr>,
}

/// One origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Its addresses as resolved when the snapshot was compiled; the
    /// proxy's origin pool re-resolves `name` in the background.
    pub addrs: Vec<SocketAddr>,
    /// The host name to re-resolve (none for an address or the demo).
    pub name: Option<String>,
    pub port: u16,
    pub tls: bool,
    /// SNI and certificate name for TLS upstreams.
    pub sni: String,
    /// Host header sent when the client sent none (HTTP/1.0).
    pub host_header: http::HeaderValue,
}

impl Upstream {
    /// The first origin's first address: the one `/readyz` (in its origin
    /// mode) and the origin robots.txt fetch use.
    pub fn primary(&self) -> Option<(&Origin, SocketAddr)> {
        let o = self.origins.first()?;
        Some((o, *o.addrs.first()?))
    }
}

/// Resolves every origin as `rempart run` would, for `rempart check`: each
/// URL as written with its addresses (`builtin:demo` has none before it
/// runs), or the error naming the origin's key.
pub fn resolve_origins(config: &Config) -> Result<Vec<(String, Vec<SocketAddr>)>, ConfigError> {
    let opts = CompileOptions {
        demo_origin: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        offline: false,
    };
    let upstream = resolve_upstream(config, &opts)?;
    let urls = config.raw.server.upstream.urls().iter().cloned();
    Ok(urls
        .zip(upstream.origins)
        .map(|(url, o)| {
            let addrs = if o.addrs.iter().all(|a| a.port() == 0) {
                Vec::new()
            } else {
                o.addrs
            };
            (url, addrs)
        })
        .collect())
}

pub(super) fn resolve_upstream(
    config: &Config,
    opts: &CompileOptions,
) -> Result<Upstream, ConfigError> {
    let s = &config.raw.server;
    let key = |i: usize| match (&s.upstream, config.upstream.len()) {
        (crate::config::UpstreamUrls::Many(_), _) => format!("server.upstream[{i}]"),
        _ => "server.upstream".to_owned(),
    };
    let mut origins = Vec::with_capacity(config.upstream.len());
    for (i, spec) in config.upstream.iter().enumerate() {
        origins.push(resolve_origin(config, opts, spec, &key(i))?);
    }
    Ok(Upstream {
        origins,
        connect_timeout: Duration::from_millis(s.upstream_connect_timeout_ms),
        read_timeout: Duration::from_millis(s.upstream_read_timeout_ms),
        idle_timeout: Duration::from_millis(s.upstream_idle_timeout_ms),
        fail_timeout: Duration::from_secs(s.upstream_fail_timeout_seconds.max(1)),
        health_check: (s.upstream_health_check_ms > 0)
            .then(|| Duration::from_millis(s.upstream_health_check_ms)),
        nameservers: s.upstream_nameservers.clone(),
    })
}

/// One origin, resolved now: an origin that resolves to nothing is a config
/// error (`rempart check` and every reload say so), not a 502 later.
fn resolve_origin(
    config: &Config,
    opts: &CompileOptions,
    spec: &UpstreamSpec,
    key: &str,
) -> Result<Origin, ConfigError> {
    let (addrs, name, tls, sni) = match spec {
        _ if opts.offline => (
            vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            None,
            false,
            "localhost".to_owned(),
        ),
        UpstreamSpec::Demo => {
            let addr = opts.demo_origin.ok_or_else(|| {
                config.error_at(
                    key,
                    "builtin:demo is only available to `rempart run` and `rempart demo`",
                )
            })?;
            (vec![addr], None, false, "localhost".to_owned())
        }
        UpstreamSpec::Url {
            tls,
            authority,
            host,
        } => {
            let servers = &config.raw.server.upstream_nameservers;
            let named = host.parse::<std::net::IpAddr>().is_err() && !servers.is_empty();
            let addrs: Vec<SocketAddr> = if named {
                let port = authority
                    .rsplit_once(':')
                    .and_then(|(_, p)| p.parse().ok())
                    .unwrap_or(if *tls { 443 } else { 80 });
                crate::dns::lookup_blocking(servers, host, port)
                    .map_err(|e| config.error_at(key, e))?
            } else {
                authority
                    .to_socket_addrs()
                    .map_err(|e| config.error_at(key, format!("cannot resolve {authority}: {e}")))?
                    .collect()
            };
            if addrs.is_empty() {
                return Err(config.error_at(key, format!("{authority} resolves to nothing")));
            }
            let name = host
                .parse::<std::net::IpAddr>()
                .is_err()
                .then(|| host.clone());
            (addrs, name, *tls, host.clone())
        }
    };
    let host_header = http::HeaderValue::from_str(&sni)
        .map_err(|_| config.error_at(key, "the host is not a valid Host header"))?;
    let port = addrs.first().map_or(0, SocketAddr::port);
    Ok(Origin {
        addrs,
        name,
        port,
        tls,
        sni,
        host_header,
    })
}
