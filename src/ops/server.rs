//! Assembles the pingora server: the proxy, the admin listener and, for the
//! demo configuration, the built-in origin, each as its own service.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::prelude::Opt;
use pingora::server::configuration::ServerConf;
use pingora::server::Server;
use pingora::services::background::background_service;
use pingora::services::listening::Service;

use crate::behaviour::shared::SharedStore;
use crate::behaviour::{Store, Tracker};
use crate::config::{parse_upstreams, Config, UpstreamSpec};
use crate::evidence::pseudonym::PseudonymKey;
use crate::evidence::{Evidence, LedgerOptions};
use crate::licensing::metering::Meter;
use crate::ops::admin::AdminApp;
use crate::ops::demo::DemoSite;
use crate::ops::refresh::{read_sources, Dirs, RangeRefresher};
use crate::ops::reload::{archive_published, publish_info, ReloadTriggers, Reloader};
use crate::optout::origin_robots::{OriginRobots, RobotsFetcher};
use crate::optout::published::Published;
use crate::proxy::{ProxyParts, RempartProxy};
use crate::snapshot::{CompileOptions, Snapshot};

/// What `rempart run` and `rempart demo` were asked to do.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub config: PathBuf,
    pub listen: Option<SocketAddr>,
    /// Origins replacing `server.upstream` (`--upstream`, repeatable).
    pub upstream: Vec<String>,
    pub admin: Option<SocketAddr>,
    /// Take the listening sockets over from a running instance (graceful upgrade).
    pub upgrade: bool,
    /// Print a short guide with curl commands once the listeners are set up.
    pub print_demo_guide: bool,
    /// The evidence ledger directory, overriding `evidence.dir`.
    pub evidence_dir: Option<PathBuf>,
    /// One directory for everything rempart writes (see `Config::relocate_state`).
    pub state_dir: Option<PathBuf>,
    /// Leave the range lists as shipped (the demo needs no network).
    pub no_range_refresh: bool,
}

/// A config with command-line overrides applied, and its compiled snapshot.
pub struct Prepared {
    pub config: Config,
    pub snapshot: Snapshot,
    pub demo: Option<(SocketAddr, DemoSite)>,
}

/// Loads the config, applies overrides, starts nothing.
pub fn prepare(opts: &RunOptions) -> anyhow::Result<Prepared> {
    let mut config = Config::load(&opts.config)?;
    if let Some(dir) = &opts.state_dir {
        config.relocate_state(dir);
    }
    if let Some(listen) = opts.listen {
        config.listen = listen;
    }
    if let Some(admin) = opts.admin {
        config.admin = admin;
    }
    if !opts.upstream.is_empty() {
        config.upstream =
            parse_upstreams(&opts.upstream).map_err(|(_, m)| anyhow::anyhow!("--upstream: {m}"))?;
    }
    // Before anything registers the metrics: the label set is fixed then.
    if !crate::metrics::http::label_hosts(config.raw.metrics.host_label) {
        anyhow::bail!("metrics.host_label cannot change once the metrics are registered");
    }
    let demo = if config.upstream == [UpstreamSpec::Demo] {
        let root = config.resolve(&config.raw.server.demo_root);
        let site = DemoSite::load(&root)?;
        // A free loopback port for the demo origin.
        let probe = TcpListener::bind("127.0.0.1:0")
            .context("no free loopback port for the demo origin")?;
        let addr = probe.local_addr()?;
        drop(probe);
        Some((addr, site))
    } else {
        None
    };
    let snapshot = Snapshot::compile(
        &config,
        &CompileOptions {
            demo_origin: demo.as_ref().map(|(a, _)| *a),
            offline: false,
        },
    )?;
    Ok(Prepared {
        config,
        snapshot,
        demo,
    })
}

/// Runs until a signal stops the process.
pub fn run(opts: RunOptions) -> anyhow::Result<()> {
    let Prepared {
        config,
        snapshot,
        demo,
    } = prepare(&opts)?;
    crate::metrics::Metrics::touch();
    snapshot.publish_gauges();
    let agents = snapshot.catalogue.agents().len();
    let prefixes = snapshot.ranges.prefix_count();
    let shared = Arc::new(ArcSwap::from_pointee(snapshot));

    let mut server = bootstrap(&config, &opts)?;
    let meter = start_meter(&config)?;
    let origin_robots = origin_robots(&config, &shared, &mut server);
    let snap = shared.load_full();
    let (tracker, shared_store) = behaviour_state(&snap)?;
    let evidence = start_evidence(&config, &opts)?;
    let rdns = rdns(&config);
    let published = Arc::new(Published::new(evidence.as_ref().map(|(e, _)| e.clone())));
    // What is published at start goes into the ledger, so that one can prove
    // what was served when.
    archive_published(&published, &config, &snap);
    publish_info(&snap.hash);
    let certs = snap
        .tls_cert
        .clone()
        .map(|pair| Arc::new(crate::ops::tls::CertStore::new(pair)));
    drop(snap);
    let reloader = Arc::new(Reloader::new(
        config.clone(),
        opts.upstream.clone(),
        opts.state_dir.clone(),
        demo.as_ref().map(|(a, _)| *a),
        shared.clone(),
        published.clone(),
        certs.clone(),
    ));
    add_background(
        &mut server,
        "rempart reload",
        ReloadTriggers {
            reloader: reloader.clone(),
            watch: config.raw.reload.watch,
            debounce: Duration::from_millis(config.raw.reload.debounce_ms),
        },
    );
    range_refresh(&config, &opts, &reloader, &mut server);
    let relayed = proxy_protocol_relay(&config, &mut server);
    let access_log = access_log(&config, &mut server)?;
    let origins = crate::proxy::origins::Pool::new(&shared.load());
    add_background(
        &mut server,
        "rempart origin resolver",
        crate::ops::resolve::OriginResolver {
            snapshot: shared.clone(),
            pool: origins.clone(),
        },
    );
    let proxy = RempartProxy::new(
        shared.clone(),
        ProxyParts {
            origin_robots,
            meter: Some(meter),
            tracker: Some(tracker),
            shared: shared_store,
            published: Some(published),
            evidence,
            rdns,
            relayed,
            origins: Some(origins.clone()),
            access_log,
        },
    );
    let proxy = proxy_service(&config, &server, proxy, certs.as_ref())?;
    server.add_service(proxy);
    name_own_listeners(&config);
    let admin = admin_service(&config, shared, reloader, origins)?;
    server.add_service(admin);
    if let Some((addr, site)) = demo {
        server.add_service(demo_origin(addr, site));
    }
    tracing::info!(
        listen = %config.listen,
        admin = %config.admin,
        config = %config.path.display(),
        agents,
        prefixes,
        "rempart starting"
    );
    if opts.print_demo_guide {
        print_guide(config.listen, config.admin);
    }
    server.run_forever()
}

/// The behaviour stage's per-client state, and its link to the shared store
/// (Redis) when `behaviour.store = "redis"`.
fn behaviour_state(snap: &Snapshot) -> anyhow::Result<(Arc<Tracker>, Option<SharedStore>)> {
    let b = &snap.behaviour;
    if !(b.enabled && b.store == Store::Redis) {
        return Ok((Arc::new(Tracker::for_settings(b)), None));
    }
    let tracker = Arc::new(Tracker::with_shared_store(b));
    let shared = SharedStore::start(
        &b.redis_url,
        Duration::from_millis(b.flush_ms),
        Duration::from_millis(b.window_ms),
        tracker.clone(),
    )?;
    Ok((tracker, Some(shared)))
}

/// The built-in demo origin, on the loopback port `prepare` found free.
fn demo_origin(addr: SocketAddr, site: DemoSite) -> Service<DemoSite> {
    let mut origin = Service::new("rempart demo origin".to_owned(), site);
    origin.add_tcp(&addr.to_string());
    origin.threads = Some(1);
    tracing::info!(%addr, "built-in demo origin");
    origin
}

/// Adds a background service on one thread of its own.
fn add_background<S>(server: &mut Server, name: &str, task: S)
where
    S: pingora::services::background::BackgroundService + Send + Sync + 'static,
{
    let mut service = background_service(name, task);
    service.threads = Some(1);
    server.add_service(service);
}

/// The pingora server, bootstrapped (in upgrade mode, once the old process
/// has handed its sockets over), with the service that writes the pid file.
fn bootstrap(config: &Config, opts: &RunOptions) -> anyhow::Result<Server> {
    let s = &config.raw.server;
    let port = config.listen.port();
    let tmp = std::env::temp_dir();
    let mut conf = ServerConf {
        threads: s.threads,
        work_stealing: false,
        pid_file: s
            .pid_file
            .clone()
            .unwrap_or_else(|| tmp.join(format!("rempart-{port}.pid")))
            .to_string_lossy()
            .into_owned(),
        upgrade_sock: s
            .upgrade_sock
            .clone()
            .unwrap_or_else(|| tmp.join(format!("rempart-{port}.sock")))
            .to_string_lossy()
            .into_owned(),
        grace_period_seconds: Some(s.grace_period_seconds),
        graceful_shutdown_timeout_seconds: Some(s.grace_period_seconds.max(1)),
        ..ServerConf::default()
    };
    conf.upstream_keepalive_pool_size = 256;
    let opt = Opt {
        upgrade: opts.upgrade,
        ..Opt::default()
    };
    let pid_path = PathBuf::from(&conf.pid_file);
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    // In upgrade mode this returns once the old process has handed over its
    // sockets: only then may the pid file name this process.
    server.bootstrap();
    add_background(
        &mut server,
        "rempart pid file",
        crate::ops::pidfile::PidFile::write(&pid_path)?,
    );
    Ok(server)
}

fn start_meter(config: &Config) -> anyhow::Result<Arc<Meter>> {
    let dir = config.resolve(&config.raw.licensing.metering_dir);
    let meter = Meter::start(dir.clone(), config.raw.licensing.metering_retention_days)
        .with_context(|| format!("{}: cannot start the metering writer", dir.display()))?;
    Ok(Arc::new(meter))
}

/// The origin's own robots.txt, fetched in the background to be merged with
/// rempart's, when `robots.merge_origin` is on.
fn origin_robots(
    config: &Config,
    shared: &Arc<ArcSwap<Snapshot>>,
    server: &mut Server,
) -> Option<Arc<OriginRobots>> {
    let robots = &config.raw.robots;
    if !robots.merge_origin {
        return None;
    }
    let store = Arc::new(OriginRobots::default());
    let fetcher = RobotsFetcher::new(
        shared.clone(),
        store.clone(),
        Duration::from_secs(robots.origin_ttl_seconds),
        Duration::from_secs(robots.origin_max_stale_seconds),
    );
    add_background(server, "rempart origin robots.txt", fetcher);
    Some(store)
}

/// The evidence ledger's writer and the key of its address pseudonyms, when
/// `evidence.enabled`.
fn start_evidence(
    config: &Config,
    opts: &RunOptions,
) -> anyhow::Result<Option<(Evidence, Arc<PseudonymKey>)>> {
    let ev = &config.raw.evidence;
    if !ev.enabled {
        return Ok(None);
    }
    let dir = opts
        .evidence_dir
        .clone()
        .unwrap_or_else(|| config.resolve(&ev.dir));
    let ledger = Evidence::start(LedgerOptions {
        dir: dir.clone(),
        queue: ev.queue,
        max_file_bytes: ev.max_file_kb.max(1) * 1024,
        rotate_daily: ev.rotate_daily,
        fsync_interval: Duration::from_millis(ev.fsync_interval_ms.max(1)),
        max_bytes: ev.max_bytes,
        per_client_minute: ev.max_records_per_client_minute,
        limit_window: Duration::from_secs(60),
        tally_interval: Duration::from_secs(ev.tally_interval_s.max(1)),
        retention_age: Duration::from_secs(ev.retention_days.saturating_mul(86_400)),
        retention_bytes: ev.retention_bytes,
        prune_interval: Duration::from_secs(60),
    })
    .with_context(|| format!("{}: cannot start the evidence ledger", dir.display()))?;
    let key = PseudonymKey::load_or_create(&config.resolve(&ev.ip_key_file))?;
    crate::metrics::metrics()
        .evidence_max_bytes
        .set(ev.max_bytes as i64);
    tracing::info!(dir = %dir.display(), max_bytes = ev.max_bytes, "evidence ledger");
    Ok(Some((ledger, Arc::new(key))))
}

/// The reverse-DNS verifier, when `rdns.enabled`; off (logged) when the
/// resolver cannot be set up.
fn rdns(config: &Config) -> Option<Arc<crate::identify::rdns::Rdns>> {
    let rd = &config.raw.rdns;
    if !rd.enabled {
        return None;
    }
    match crate::identify::rdns::Rdns::new(rd.into()) {
        Ok(r) => Some(Arc::new(r)),
        Err(e) => {
            tracing::warn!(error = %e, "reverse-DNS verification is off");
            None
        }
    }
}

/// The daily refresh of the operators' range lists, when `ranges.refresh`
/// is on and not turned off on the command line (the demo).
fn range_refresh(
    config: &Config,
    opts: &RunOptions,
    reloader: &Arc<Reloader>,
    server: &mut Server,
) {
    let rr = &config.raw.ranges;
    if !rr.refresh || opts.no_range_refresh {
        return;
    }
    let sources = match read_sources(&config.resolve(&rr.sources)) {
        Ok(sources) => sources,
        Err(e) => {
            tracing::warn!(error = %e, "range lists will not be refreshed");
            return;
        }
    };
    let refresher = RangeRefresher {
        reloader: reloader.clone(),
        sources,
        dirs: Dirs {
            shipped: config.resolve(&config.raw.catalog.ranges_dir),
            state: config.resolve(&rr.state_dir),
            max_shrink_percent: rr.max_shrink_percent,
        },
        interval: Duration::from_secs(rr.interval_seconds.max(1)),
        jitter: Duration::from_secs(rr.jitter_seconds),
        timeout: Duration::from_secs(rr.timeout_seconds.max(1)),
        private_ok: rr.allow_private_hosts.clone(),
        first_delay: Duration::ZERO,
    };
    add_background(server, "rempart range refresh", refresher);
}

/// The PROXY-protocol relay in front of the plain listener, when
/// `server.proxy_protocol_listen` is set, and the table through which it
/// tells the proxy each connection's real client.
fn proxy_protocol_relay(
    config: &Config,
    server: &mut Server,
) -> Option<crate::ops::proxy_protocol::Relayed> {
    let listen = config.raw.server.proxy_protocol_listen?;
    let relayed: crate::ops::proxy_protocol::Relayed =
        Arc::new(quick_cache::sync::Cache::new(65_536));
    let mut target = config.listen;
    if target.ip().is_unspecified() {
        target.set_ip(if target.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let relay = crate::ops::proxy_protocol::Relay {
        listen,
        target,
        from: config.raw.server.proxy_protocol_from.clone(),
        relayed: relayed.clone(),
    };
    add_background(server, "rempart PROXY protocol", relay);
    Some(relayed)
}

/// The proxy's service: pingora's HTTP proxy around rempart, behind the
/// connection guard (header deadlines, connection caps), on the plain
/// listener and, when configured, the TLS one.
fn proxy_service(
    config: &Config,
    server: &Server,
    proxy: RempartProxy,
    certs: Option<&Arc<crate::ops::tls::CertStore>>,
) -> anyhow::Result<Service<crate::ops::guard::GuardedApp<pingora::proxy::HttpProxy<RempartProxy>>>>
{
    let s = &config.raw.server;
    let mut app = pingora::proxy::http_proxy(&server.configuration, proxy);
    let mut options = pingora::apps::HttpServerOptions::default();
    options.h2_idle_timeout = Some(Duration::from_secs(s.keepalive_timeout_seconds.max(1)));
    app.server_options = Some(options);
    let guarded = crate::ops::guard::GuardedApp {
        inner: Arc::new(app),
        limits: crate::ops::guard::Limits {
            header_timeout: Duration::from_millis(s.header_timeout_ms.max(1)),
            idle_timeout: Duration::from_secs(s.keepalive_timeout_seconds.max(1)),
            header_hard_limit: s.max_header_bytes.saturating_mul(2).max(4096),
            pending_header_budget: s.header_memory_mb.max(1) << 20,
            max_connections: s.max_connections.max(1),
            max_connections_per_client: s.max_connections_per_client.max(1),
        },
        counts: Arc::default(),
        exempt: crate::request::TrustedProxies::new(s.trusted_proxies.clone()),
        exempt_loopback: s.proxy_protocol_listen.is_some(),
    };
    let mut service = Service::new("rempart proxy".to_owned(), guarded);
    let buffers = || L4BufferSettings::default().write(s.write_buffer_bytes);
    service.add_listener(ListenerConfig::tcp(config.listen.to_string()).l4_buffer(buffers()));
    if let (Some(t), Some(store)) = (&config.raw.tls, certs) {
        let mut tls = pingora::listeners::tls::TlsSettings::intermediate("", "")?;
        tls.set_cert_resolver(store.clone());
        if t.http2 {
            tls.enable_h2();
        }
        service.add_listener(
            ListenerConfig::tcp(t.listen.clone())
                .tls(tls)
                .l4_buffer(buffers()),
        );
        if !t.proxy_protocol_from.is_empty() {
            service.endpoints().set_pre_tls_callback(Arc::new(
                crate::ops::proxy_protocol::ProxyProtocol {
                    from: t.proxy_protocol_from.clone(),
                },
            ));
        }
        tracing::info!(listen = %t.listen, http2 = t.http2, "TLS listener");
    }
    Ok(service)
}

/// Tells the fetcher of remote keys and lists which addresses are rempart's
/// own listeners, never to be fetched from.
fn name_own_listeners(config: &Config) {
    let mut own = vec![config.listen, config.admin];
    own.extend(config.raw.server.proxy_protocol_listen);
    if let Some(t) = &config.raw.tls {
        own.extend(t.listen.parse::<SocketAddr>().ok());
    }
    crate::ops::fetch::set_own_listeners(own);
}

/// The admin listener: metrics, health, readiness, reload and the console.
fn admin_service(
    config: &Config,
    shared: Arc<ArcSwap<Snapshot>>,
    reloader: Arc<Reloader>,
    origins: Arc<crate::proxy::origins::Pool>,
) -> anyhow::Result<Service<AdminApp>> {
    let guard =
        crate::ops::admin::AdminGuard::from_config(&config.raw.admin, |p| config.resolve(p))?;
    if !config.admin.ip().is_loopback() && !guard.has_token() {
        tracing::warn!(
            admin = %config.admin,
            "the admin listener is reachable beyond loopback without admin.token_file: anyone who reaches it can reload the config"
        );
    }
    let mut admin = Service::new(
        "rempart admin".to_owned(),
        AdminApp {
            snapshot: shared,
            reloader: Some(reloader),
            guard,
            readiness: config.raw.admin.readiness,
            origins: Some(origins),
            console: crate::ops::console::Console::new(),
        },
    );
    admin.add_tcp(&config.admin.to_string());
    admin.threads = Some(1);
    Ok(admin)
}

/// The access log's writer and its SIGUSR1 reopener, when
/// `server.access_log` is on at start.
fn access_log(
    config: &Config,
    server: &mut Server,
) -> anyhow::Result<Option<crate::ops::access_log::AccessLog>> {
    use crate::ops::access_log::{AccessLog, Target};
    let s = &config.raw.server;
    if !s.access_log {
        return Ok(None);
    }
    let target = match &s.access_log_file {
        Some(path) => Target::File(config.resolve(path)),
        None => Target::Stdout,
    };
    let log = AccessLog::start(target)?;
    add_background(server, "rempart access log reopen", log.reopener());
    Ok(Some(log))
}

fn print_guide(listen: SocketAddr, admin: SocketAddr) {
    let base = format!("http://{listen}");
    println!(
        "\nrempart demo: a film catalogue behind rempart on {base}\n\n\
         A viewer in a browser gets the site (open {base}/ in yours, or send a browser's headers):\n  \
         curl -i {base}/ -A 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36' -H 'Accept: text/html' -H 'Accept-Language: fr'\n\
         A script with a browser's user agent and a script's headers gets the challenge, which a browser passes by itself:\n  \
         curl -i {base}/ -A 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36'\n\
         An AI crawler gets the licensing offer (402), in French or as JSON:\n  \
         curl -i {base}/films/la-traversee -A 'Mozilla/5.0 (compatible; GPTBot/1.2; +https://openai.com/gptbot)' -H 'Accept-Language: fr'\n  \
         curl -s {base}/films/la-traversee -A 'GPTBot/1.2' -H 'Accept: application/json'\n\
         A search engine claiming to be Googlebot from the wrong address is blocked (403):\n  \
         curl -i {base}/ -A 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)'\n\
         The opt-out, machine-readable:\n  \
         curl -s {base}/robots.txt | head -20\n\
         What rempart counted:\n  \
         curl -s http://{admin}/metrics | grep rempart_requests_total\n\
         What the policy says without sending a request:\n  \
         cargo run --release -- classify --ua 'GPTBot/1.2' --ip 132.196.86.1\n"
    );
}
