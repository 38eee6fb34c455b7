//! `[server]` and `[admin]` as written: the two listeners, the origins and
//! how `server.upstream` and `--upstream` are read.

use std::net::SocketAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;

/// How `X-Forwarded-For` reaches the origin (`server.forwarded_for`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedFor {
    /// The list received, then the peer (nginx's `$proxy_add_x_forwarded_for`).
    #[default]
    Append,
    /// Only the client rempart decided on.
    Replace,
}

/// The proxy listener and its upstream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Where clients connect.
    pub listen: String,
    /// The origin: `http://host:port`, `https://host:port`, or `builtin:demo`
    /// for the demo catalogue site started inside rempart; or a list of
    /// origins, balanced.
    pub upstream: UpstreamUrls,
    /// Worker threads of the proxy (one runtime, no work stealing).
    pub threads: usize,
    /// Peers whose `X-Forwarded-For` / `X-Real-IP` are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Downstream write buffer; 16 KiB keeps header and body of a page in one write.
    pub write_buffer_bytes: usize,
    pub upstream_connect_timeout_ms: u64,
    pub upstream_read_timeout_ms: u64,
    /// Idle upstream connections are kept this long for reuse.
    pub upstream_idle_timeout_ms: u64,
    /// Pid file and graceful-upgrade socket (defaults: per listen port, in the temp dir).
    pub pid_file: Option<PathBuf>,
    pub upgrade_sock: Option<PathBuf>,
    /// Seconds a stopping process keeps serving (SIGTERM).
    pub grace_period_seconds: u64,
    /// Directory of the built-in demo site, for `upstream = "builtin:demo"`.
    pub demo_root: PathBuf,
    /// One JSON-able log line per request (target `rempart::access`) with
    /// the decision, at info level.
    pub access_log: bool,
    /// Where the access log goes: a file (appended to; reopened on SIGUSR1),
    /// or stdout when unset.
    pub access_log_file: Option<PathBuf>,
    /// A second plain-HTTP address for load balancers that send a PROXY
    /// protocol header (v1 or v2) first.
    pub proxy_protocol_listen: Option<SocketAddr>,
    /// The load balancers allowed on `proxy_protocol_listen`.
    pub proxy_protocol_from: Vec<IpNet>,
    /// The origin ignores case in paths (IIS, some object stores): rempart
    /// then decides on, and forwards, the path in lower case.
    pub case_insensitive_paths: bool,
    /// `append` (the list received, then the peer, as nginx does) or
    /// `replace` (only the client rempart decided on).
    pub forwarded_for: ForwardedFor,
    /// A request's header block must arrive within this time of its first
    /// byte (of the connection's start, for the first request).
    pub header_timeout_ms: u64,
    /// An idle keep-alive connection is closed after this long.
    pub keepalive_timeout_seconds: u64,
    /// Header blocks larger than this are answered 431; twice this closes
    /// the connection while it is still sending.
    pub max_header_bytes: usize,
    /// Memory held by all connections still sending their header block.
    pub header_memory_mb: usize,
    /// Concurrent client connections, in total and per client address
    /// (trusted proxies are not capped per address).
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    /// An origin address that refused or timed out a connection is left out
    /// of the balance for this long (passive health, as nginx's
    /// `fail_timeout`).
    pub upstream_fail_timeout_seconds: u64,
    /// Every this many milliseconds, each origin address is checked with a
    /// TCP connection (0: off; passive health only).
    pub upstream_health_check_ms: u64,
    /// Name servers for origin names (`"10.0.0.10:53"`); empty: the system's.
    pub upstream_nameservers: Vec<SocketAddr>,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            upstream: UpstreamUrls::One("builtin:demo".into()),
            threads: 2,
            trusted_proxies: Vec::new(),
            write_buffer_bytes: 16 * 1024,
            upstream_connect_timeout_ms: 2_000,
            upstream_read_timeout_ms: 30_000,
            upstream_idle_timeout_ms: 60_000,
            pid_file: None,
            upgrade_sock: None,
            grace_period_seconds: 5,
            demo_root: "demo-site".into(),
            access_log: false,
            access_log_file: None,
            proxy_protocol_listen: None,
            proxy_protocol_from: Vec::new(),
            case_insensitive_paths: false,
            forwarded_for: ForwardedFor::Append,
            header_timeout_ms: 10_000,
            keepalive_timeout_seconds: 60,
            max_header_bytes: 32 * 1024,
            header_memory_mb: 64,
            max_connections: 16_384,
            max_connections_per_client: 256,
            upstream_fail_timeout_seconds: 10,
            upstream_health_check_ms: 0,
            upstream_nameservers: Vec::new(),
        }
    }
}

/// The admin listener (metrics, health).
/// The admin listener's address when the config names none: loopback.
pub const DEFAULT_ADMIN: &str = "127.0.0.1:9090";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSection {
    /// Loopback by default: metrics are not for the world.
    pub listen: String,
    /// A file holding the bearer token that endpoints changing state
    /// (`POST /reload`) require. Without it, anyone who reaches the admin
    /// listener can reload.
    pub token_file: Option<PathBuf>,
    /// Host names (besides IP literals and `localhost`) that requests
    /// changing state may name in `Host`: a page rebinding its own name to
    /// the admin address is refused.
    pub allowed_hosts: Vec<String>,
    /// The override file the console's controls write (agents allowed or
    /// blocked, rules put in log-only), read with the config on every
    /// load; a missing file is no overrides. Relative to the config's
    /// directory; under `--state-dir`, `overrides.toml` there.
    pub overrides_file: PathBuf,
    /// What `/readyz` means: `self` (this proxy can serve: a config is
    /// loaded and the listeners are up) or `origin` (and the origin accepts
    /// a connection). `self` by default, so that an origin blip does not
    /// take every replica out of its load balancer at once.
    pub readiness: Readiness,
}

/// What `/readyz` answers for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Readiness {
    #[default]
    #[serde(rename = "self")]
    Proxy,
    Origin,
}

impl Default for AdminSection {
    fn default() -> Self {
        Self {
            listen: DEFAULT_ADMIN.into(),
            token_file: None,
            allowed_hosts: Vec::new(),
            overrides_file: "state/overrides.toml".into(),
            readiness: Readiness::Proxy,
        }
    }
}

/// `server.upstream` as written: one URL, or a list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum UpstreamUrls {
    One(String),
    Many(Vec<String>),
}

impl UpstreamUrls {
    pub fn urls(&self) -> &[String] {
        match self {
            UpstreamUrls::One(u) => std::slice::from_ref(u),
            UpstreamUrls::Many(v) => v,
        }
    }
}

/// Parses the origins of `server.upstream` or of `--upstream`: at least one,
/// `builtin:demo` only alone, no origin twice. The error says which entry.
pub fn parse_upstreams(urls: &[String]) -> Result<Vec<UpstreamSpec>, (Option<usize>, String)> {
    if urls.is_empty() {
        return Err((None, "name at least one origin".into()));
    }
    let mut out: Vec<UpstreamSpec> = Vec::with_capacity(urls.len());
    for (i, u) in urls.iter().enumerate() {
        let spec = parse_upstream(u).map_err(|m| (Some(i), m))?;
        if spec == UpstreamSpec::Demo && urls.len() > 1 {
            return Err((
                Some(i),
                "builtin:demo cannot be balanced with other origins".into(),
            ));
        }
        if out.contains(&spec) {
            return Err((Some(i), format!("{u:?} is named twice")));
        }
        out.push(spec);
    }
    Ok(out)
}

/// Where the origin is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamSpec {
    /// The built-in demo site.
    Demo,
    Url {
        tls: bool,
        /// `host:port` as written, resolved when the snapshot is compiled.
        authority: String,
        host: String,
    },
}

pub(crate) fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not an address:port such as 127.0.0.1:8080"))
}

/// Parses `http://host[:port]`, `https://host[:port]` or `builtin:demo`.
pub fn parse_upstream(s: &str) -> Result<UpstreamSpec, String> {
    if s == "builtin:demo" {
        return Ok(UpstreamSpec::Demo);
    }
    let uri: http::Uri = s.parse().map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => {
            return Err(format!(
                "{s:?}: use http://host:port, https://host:port or builtin:demo"
            ))
        }
    };
    if uri.path() != "/" && !uri.path().is_empty() {
        return Err(format!("{s:?}: an upstream has no path"));
    }
    let host = uri
        .host()
        .ok_or_else(|| format!("{s:?} has no host"))?
        .to_owned();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let authority = if bare.contains(':') {
        format!("[{bare}]:{port}")
    } else {
        format!("{bare}:{port}")
    };
    Ok(UpstreamSpec::Url {
        tls,
        authority,
        host: bare,
    })
}
