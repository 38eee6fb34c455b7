//! DNS resolvers: the system's (`/etc/resolv.conf`) or named servers, for
//! reverse-DNS verification (`rdns.nameservers`) and for origin names
//! (`server.upstream_nameservers`: a cluster's DNS, a split-horizon server, a
//! test's), the latter asked alike at load and in the background, so that
//! both see the same answers.

use std::net::SocketAddr;

use hickory_resolver::config::{
    NameServerConfig, NameServerConfigGroup, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::TokioResolver;

/// A resolver asking `nameservers`, or the system's when there are none,
/// with its options tuned by the caller (reverse DNS and origin names want
/// different timeouts, caches and hosts-file use).
pub fn resolver(
    nameservers: &[SocketAddr],
    tune: impl FnOnce(&mut ResolverOpts),
) -> Result<TokioResolver, String> {
    let mut builder = if nameservers.is_empty() {
        TokioResolver::builder_tokio()
            .map_err(|e| format!("no system resolver configuration: {e}"))?
    } else {
        let group: NameServerConfigGroup = nameservers
            .iter()
            .map(|a| NameServerConfig::new(*a, Protocol::Udp))
            .collect::<Vec<_>>()
            .into();
        TokioResolver::builder_with_config(
            ResolverConfig::from_parts(None, vec![], group),
            TokioConnectionProvider::default(),
        )
    };
    tune(builder.options_mut());
    Ok(builder.build())
}

/// The resolver of origin names: when servers are named, they answer
/// alone (`/etc/hosts` is the system's view, not theirs).
pub fn origin_resolver(nameservers: &[SocketAddr]) -> Result<TokioResolver, String> {
    let named = !nameservers.is_empty();
    resolver(nameservers, |o| {
        if named {
            o.use_hosts_file = ResolveHosts::Never;
            o.attempts = 2;
        }
    })
}

/// Resolves `host` with the named servers, from synchronous code (config
/// loading runs on a thread of its own, never inside the proxy's runtime).
pub fn lookup_blocking(
    nameservers: &[SocketAddr],
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a resolver: {e}"))?;
    rt.block_on(async {
        let r = origin_resolver(nameservers)?;
        let answer = r
            .lookup_ip(host)
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?;
        let mut addrs: Vec<SocketAddr> =
            answer.iter().map(|ip| SocketAddr::new(ip, port)).collect();
        addrs.sort();
        Ok(addrs)
    })
}
