//! Hot reload: parse, validate and compile a new snapshot beside the live
//! one, and swap it in whole; a bad config is refused with its file, line and
//! key, and the old snapshot keeps serving.
//!
//! Triggers: SIGHUP, `POST /reload` on the admin listener, and a change to the
//! config file or any data file it names (polled every second, debounced).
//! Polling rather than inotify: it sees Kubernetes ConfigMap updates (an
//! atomic symlink swap) and network file systems alike, and costs a few
//! `stat` calls a second.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::config::{parse_upstreams, Config};
use crate::metrics::metrics;
use crate::optout::published::Published;
use crate::snapshot::{CompileOptions, SharedSnapshot, Snapshot};

/// What a reload needs besides the file: the command-line overrides and the
/// demo origin's address, which stay as they were at start.
pub struct Reloader {
    config_path: PathBuf,
    upstream_override: Vec<String>,
    state_dir: Option<PathBuf>,
    demo_origin: Option<SocketAddr>,
    listen: SocketAddr,
    admin: SocketAddr,
    shared: SharedSnapshot,
    published: Arc<Published>,
    /// The TLS listener's certificate, swapped with the config.
    certs: Option<Arc<crate::ops::tls::CertStore>>,
    /// The last config that compiled (its data files are watched).
    current: Mutex<Config>,
    /// One reload at a time.
    running: Mutex<()>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("config", &self.config_path)
            .finish_non_exhaustive()
    }
}

/// The outcome of a reload, for the admin answer and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new snapshot is live.
    Loaded { hash: String },
    /// The config compiled to the snapshot already live.
    Unchanged { hash: String },
}

/// The short form of a config hash used in metrics and logs.
pub fn short_hash(hash: &str) -> &str {
    hash.get(..16).unwrap_or(hash)
}

/// Archives what a snapshot publishes in the ledger (new versions only: the
/// archive is keyed by hash), at start and on every reload.
pub fn archive_published(published: &Published, config: &Config, snap: &Snapshot) {
    published.robots(&snap.pages.robots_txt.body);
    if let Some(t) = &snap.pages.tdmrep_json {
        published.archive_once("tdmrep.json", &t.body);
    }
    if let Some(clause) = &snap.pages.clause {
        for lang in crate::model::Lang::ALL {
            for format in crate::respond::clause::Format::ALL {
                let name = format!("clause.{}.{}", lang.as_str(), format.extension());
                published.archive_once(&name, &clause.get(lang, format).body);
            }
        }
    }
    if let Some(section) = config.section_text("reservation") {
        published.archive_once("reservation", section.as_bytes());
    }
}

/// Publishes `rempart_config_info{hash}` for the live snapshot.
pub fn publish_info(hash: &str) {
    let m = metrics();
    m.config_info.reset();
    m.config_info.with_label_values(&[short_hash(hash)]).set(1);
    m.config_last_reload_success.set(1);
}

impl Reloader {
    pub fn new(
        config: Config,
        upstream_override: Vec<String>,
        state_dir: Option<PathBuf>,
        demo_origin: Option<SocketAddr>,
        shared: SharedSnapshot,
        published: Arc<Published>,
        certs: Option<Arc<crate::ops::tls::CertStore>>,
    ) -> Self {
        Self {
            config_path: config.path.clone(),
            upstream_override,
            state_dir,
            demo_origin,
            listen: config.listen,
            admin: config.admin,
            shared,
            published,
            certs,
            current: Mutex::new(config),
            running: Mutex::new(()),
        }
    }

    /// Loads and compiles the config file again and swaps it in.
    pub fn reload(&self, trigger: &str) -> Result<Outcome, String> {
        let _one = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let m = metrics();
        match self.compile() {
            Ok((config, snap)) => {
                let hash = snap.hash.clone();
                if hash == self.shared.load().hash {
                    m.config_reloads.with_label_values(&["unchanged"]).inc();
                    m.config_last_reload_success.set(1);
                    tracing::info!(trigger, hash = short_hash(&hash), "config unchanged");
                    return Ok(Outcome::Unchanged { hash });
                }
                snap.publish_gauges();
                archive_published(&self.published, &config, &snap);
                if let (Some(store), Some(pair)) = (&self.certs, &snap.tls_cert) {
                    store.swap(pair.clone());
                }
                publish_info(&hash);
                self.shared.store(Arc::new(snap));
                *self.current.lock().unwrap_or_else(|p| p.into_inner()) = config;
                m.config_reloads.with_label_values(&["ok"]).inc();
                tracing::info!(trigger, hash = short_hash(&hash), "config reloaded");
                Ok(Outcome::Loaded { hash })
            }
            Err(e) => {
                m.config_reloads.with_label_values(&["error"]).inc();
                m.config_last_reload_success.set(0);
                tracing::error!(trigger, error = %e, "config reload refused; the previous configuration keeps serving");
                Err(e)
            }
        }
    }

    fn compile(&self) -> Result<(Config, Snapshot), String> {
        let mut config = Config::load(&self.config_path).map_err(|e| e.to_string())?;
        if let Some(dir) = &self.state_dir {
            config.relocate_state(dir);
        }
        // Listeners are bound once: their addresses change on restart only.
        config.listen = self.listen;
        config.admin = self.admin;
        if !self.upstream_override.is_empty() {
            config.upstream = parse_upstreams(&self.upstream_override)
                .map_err(|(_, m)| format!("--upstream: {m}"))?;
        }
        let snap = Snapshot::compile(
            &config,
            &CompileOptions {
                demo_origin: self.demo_origin,
                offline: false,
            },
        )
        .map_err(|e| e.to_string())?;
        Ok((config, snap))
    }

    /// The override file of the config in force (the console's controls
    /// write it).
    pub fn overrides_path(&self) -> PathBuf {
        let config = self.current.lock().unwrap_or_else(|p| p.into_inner());
        config.resolve(&config.raw.admin.overrides_file)
    }

    /// The hash of the snapshot in force.
    pub fn live_hash(&self) -> String {
        self.shared.load().hash.clone()
    }

    /// What the snapshot publishes, and the evidence ledger.
    pub fn published(&self) -> &Published {
        &self.published
    }

    /// Every file whose change triggers a reload: the config, the override
    /// file, the catalogue
    /// files, the range files (shipped and refreshed), the network data, the
    /// templates.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let config = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let raw = &config.raw;
        let mut files = vec![
            config.path.clone(),
            config.resolve(&raw.admin.overrides_file),
        ];
        files.extend(raw.catalog.agents.iter().map(|p| config.resolve(p)));
        files.extend(
            raw.catalog
                .operator_domains
                .iter()
                .map(|p| config.resolve(p)),
        );
        files.extend(crate::snapshot::referrers_file(&config));
        if let Some(t) = &raw.tls {
            files.push(config.resolve(&t.cert_file));
            files.push(config.resolve(&t.key_file));
        }
        if let Some(n) = crate::snapshot::network_files(&config) {
            files.extend([n.ranges, n.names, n.hosting]);
        }
        for dir in [
            config.resolve(&raw.catalog.ranges_dir),
            config.resolve(&raw.ranges.state_dir),
            config.resolve(&raw.responses.templates_dir),
        ] {
            if let Ok(entries) = std::fs::read_dir(&dir) {
                files.extend(entries.filter_map(|e| e.ok().map(|e| e.path())));
            }
        }
        files.sort();
        files
    }
}

/// A fingerprint of a set of files: paths, sizes and modification times.
fn fingerprint(files: &[PathBuf]) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    files
        .iter()
        .map(|p| {
            // `metadata` follows symlinks: a ConfigMap swap changes the target.
            let meta = std::fs::metadata(p).ok();
            (
                p.clone(),
                meta.as_ref().map_or(0, |m| m.len()),
                meta.and_then(|m| m.modified().ok()),
            )
        })
        .collect()
}

/// Reloads on SIGHUP and when a watched file changes.
pub struct ReloadTriggers {
    pub reloader: Arc<Reloader>,
    pub watch: bool,
    /// How long files must stay unchanged before a reload (editors save in steps).
    pub debounce: Duration,
}

impl ReloadTriggers {
    async fn reload(&self, trigger: &'static str) {
        let r = self.reloader.clone();
        let _ = tokio::task::spawn_blocking(move || r.reload(trigger)).await;
    }
}

#[async_trait]
impl BackgroundService for ReloadTriggers {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        // Installing the handler also stops SIGHUP from ending the process.
        let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP");
                None
            }
        };
        let mut seen = fingerprint(&self.reloader.watched_files());
        let mut changed_at: Option<std::time::Instant> = None;
        let mut tick = tokio::time::interval(
            Duration::from_secs(1).min(self.debounce.max(Duration::from_millis(100))),
        );
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                    self.reload("sighup").await;
                    seen = fingerprint(&self.reloader.watched_files());
                }
                _ = tick.tick(), if self.watch => {
                    let now = fingerprint(&self.reloader.watched_files());
                    if now != seen {
                        seen = now;
                        changed_at = Some(std::time::Instant::now());
                    } else if changed_at.is_some_and(|t| t.elapsed() >= self.debounce) {
                        changed_at = None;
                        self.reload("file-change").await;
                        seen = fingerprint(&self.reloader.watched_files());
                    }
                }
            }
        }
    }
}
