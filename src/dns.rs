//! The resolver of origin names: the system's (`/etc/resolv.conf`), or the
//! name servers `server.upstream_nameservers` names (a cluster's DNS, a
//! split-horizon server, a test's), asked alike at load and in the
//! background, so that both see the same answers.

use std::net::SocketAddr;

use hickory_resolver::config::{
    NameServerConfig, NameServerConfigGroup, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::TokioResolver;

/// A resolver asking `nameservers`, or the system's when there are none.
pub fn resolver(nameservers: &[SocketAddr]) -> Result<TokioResolver, String> {
    if nameservers.is_empty() {
        return TokioResolver::builder_tokio()
            .map(|b| b.build())
            .map_err(|e| format!("no system resolver configuration: {e}"));
    }
    let group: NameServerConfigGroup = nameservers
        .iter()
        .map(|a| NameServerConfig::new(*a, Protocol::Udp))
        .collect::<Vec<_>>()
        .into();
    let mut builder = TokioResolver::builder_with_config(
        ResolverConfig::from_parts(None, vec![], group),
        TokioConnectionProvider::default(),
    );
    let mut o = ResolverOpts::default();
    // The named servers answer alone: /etc/hosts is the system's view.
    o.use_hosts_file = ResolveHosts::Never;
    o.attempts = 2;
    *builder.options_mut() = o;
    Ok(builder.build())
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
        let r = resolver(nameservers)?;
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
