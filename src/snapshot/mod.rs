//! The compiled, immutable configuration the proxy serves from.
//!
//! Everything that costs something to build (the token automaton, the range
//! table, rule globs, rendered pages, resolved upstream) is built here, once,
//! and shared behind an `Arc`. The proxy loads the current snapshot once per
//! request and never locks or compiles; a reload builds a new snapshot beside
//! the old and swaps the pointer.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};

use crate::behaviour::Settings as BehaviourSettings;
use crate::catalog::Catalogue;
use crate::config::overrides::Overrides;
use crate::config::{Config, ConfigError};
use crate::decide::policy::Policy;
use crate::identify::network::{NetworkFiles, NetworkTable};
use crate::identify::ranges::{RangeSource, RangeTable};
use crate::identify::referrer::{Referrer, Referrers};
use crate::identify::webbotauth::Bindings;
use crate::licensing::licence::Licensees;
use crate::metrics::AgentCounters;
use crate::model::Lang;
use crate::optout::reservation::Reservation;
use crate::request::{ReadOptions, TrustedProxies};
use crate::respond::pages::{render_pages, Pages};

mod upstream;

use upstream::resolve_upstream;
pub use upstream::{resolve_origins, Origin, Upstream};

/// One compiled configuration.
pub struct Snapshot {
    pub config_path: PathBuf,
    /// SHA-256 of the config text and of every data file it names (hex; the
    /// first 16 characters are shown in `rempart_config_info`).
    pub hash: String,
    pub trusted: TrustedProxies,
    /// How request-targets are read.
    pub read: ReadOptions,
    /// How `X-Forwarded-For` reaches the origin.
    pub forwarded_for: crate::config::ForwardedFor,
    /// Which key directories may verify whom (Web Bot Auth).
    pub bindings: Bindings,
    /// Operators whose signature-verified agents can be billed per crawl.
    pub billable_operators: Vec<String>,
    pub ranges: RangeTable,
    /// The client address's AS and hosting networks (empty when off).
    pub network: Arc<NetworkTable>,
    pub catalogue: Catalogue,
    /// AI products that refer visitors, and their referral counters.
    pub referrers: Referrals,
    pub policy: Policy,
    pub pages: Pages,
    pub offer_status: u16,
    pub default_lang: Lang,
    pub offer_path: String,
    pub upstream: Upstream,
    pub agent_counters: AgentCounters,
    /// The TDM reservation, when configured.
    pub reservation: Option<Reservation>,
    pub licensees: Licensees,
    /// Behaviour limits, weights, path classes and honeypot.
    pub behaviour: BehaviourSettings,
    /// Log one line per request (target `rempart::access`).
    pub access_log: bool,
    /// The browser challenge: its key, lifetimes and difficulty.
    pub challenge: crate::challenge::Settings,
    /// The TLS certificate and key, checked (and swapped in on reload).
    pub tls_cert: Option<Arc<pingora::tls::sign::CertifiedKey>>,
    /// The override file compiled into `policy` (listed by `rempart check`
    /// and the console, expired entries included).
    pub overrides: Overrides,
    /// `rempart_http_responses_total` by host, when `metrics.host_label` is on.
    pub responses_by_host: crate::metrics::http::ByHost,
}

/// Options decided outside the config file.
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    /// Address of the running built-in demo origin, for `upstream = "builtin:demo"`.
    pub demo_origin: Option<SocketAddr>,
    /// Skip resolving the upstream (for `check` and `classify`, which send nothing).
    pub offline: bool,
}

/// The live snapshot, swapped atomically on reload.
pub type SharedSnapshot = Arc<ArcSwap<Snapshot>>;

impl Snapshot {
    /// Builds a snapshot from a validated config and the files it names.
    pub fn compile(config: &Config, opts: &CompileOptions) -> Result<Self, ConfigError> {
        let raw = &config.raw;
        let ranges_dir = config.resolve(&raw.catalog.ranges_dir);
        let state_dir = config.resolve(&raw.ranges.state_dir);
        let ranges = RangeTable::new(RangeSource::load_dir_overlay(&ranges_dir, &state_dir)?);
        let (catalogue, agent_files) = load_catalogue(config, &ranges)?;
        let referrers_file = referrers_file(config);
        let referrers = Referrals::new(match &referrers_file {
            Some(path) => Referrers::load(path)?,
            None => Referrers::default(),
        });
        let (policy, overrides) = compile_policy(config, &catalogue)?;
        let licensees = Licensees::compile(&raw.licensees, &catalogue).map_err(|e| {
            config.error_at(&format!("licensees[{}].{}", e.index, e.field), e.message)
        })?;
        let reservation = raw
            .reservation
            .as_ref()
            .map(Reservation::compile)
            .transpose()
            .map_err(|e| config.error_at(&format!("reservation.{}", e.key), e.message))?;
        let behaviour = BehaviourSettings::compile(&raw.behaviour)
            .map_err(|e| config.error_at(&format!("behaviour.{}", e.key), e.message))?;
        let templates = config.resolve(&raw.responses.templates_dir);
        let pages = compile_pages(
            config,
            &templates,
            &catalogue,
            reservation.as_ref(),
            &behaviour,
        )?;
        let tls_cert = load_tls(config)?;
        let challenge = crate::challenge::Settings::compile(
            &raw.challenge,
            &config.resolve(&raw.challenge.key_file),
            !opts.offline,
        )
        .map_err(|e| config.error_at("challenge.key_file", e.to_string()))?;
        let bindings = compile_bindings(config, &catalogue)?;
        let upstream = resolve_upstream(config, opts)?;
        let network_files = network_files(config);
        let network = match &network_files {
            Some(files) => NetworkTable::load_shared(files)?,
            None => Arc::new(NetworkTable::empty()),
        };
        let hashed = data_files(
            config,
            agent_files,
            referrers_file,
            network_files.as_ref(),
            &overrides.path,
        );
        let hash = content_hash(config, &hashed, &ranges, &templates);
        // One slot more than agents: the bots that declare themselves unlisted.
        let agent_counters = AgentCounters::new(catalogue.agents().len() + 1);
        Ok(Self {
            config_path: config.path.clone(),
            hash,
            trusted: TrustedProxies::new(raw.server.trusted_proxies.clone()),
            read: ReadOptions {
                fold_case: raw.server.case_insensitive_paths,
                max_header_bytes: raw.server.max_header_bytes,
            },
            forwarded_for: raw.server.forwarded_for,
            bindings,
            billable_operators: raw.licensing.billable_operators.clone(),
            ranges,
            network,
            catalogue,
            referrers,
            policy,
            pages,
            offer_status: raw.responses.offer_status,
            default_lang: raw.responses.default_language,
            offer_path: raw.rights_holder.offer_path.clone(),
            upstream,
            agent_counters,
            reservation,
            licensees,
            behaviour,
            access_log: raw.server.access_log,
            challenge,
            tls_cert,
            overrides,
            responses_by_host: crate::metrics::http::ByHost::new(&raw.metrics),
        })
    }

    /// Loads and compiles a config file for commands that send nothing
    /// (`check`, `classify`, benchmarks): the upstream is not resolved.
    pub fn load_offline(path: &std::path::Path) -> Result<Self, ConfigError> {
        let config = Config::load(path)?;
        Self::compile(
            &config,
            &CompileOptions {
                demo_origin: None,
                offline: true,
            },
        )
    }

    /// Publishes the sizes of this snapshot in the metrics.
    pub fn publish_gauges(&self) {
        let m = crate::metrics::metrics();
        m.catalog_agents.set(self.catalogue.agents().len() as i64);
        m.catalog_tokens.set(self.catalogue.token_count() as i64);
        m.policy_rules.set(self.policy.len() as i64);
        let (v4, v6, _) = self.network.sizes();
        m.network_ranges.set((v4 + v6) as i64);
        m.ipranges_prefixes.reset();
        for s in self.ranges.sources() {
            m.ipranges_prefixes
                .with_label_values(&[s.name.as_str()])
                .set(s.prefixes.len() as i64);
        }
        // Every log-only rule's would-be action, at zero.
        for (rule, action) in self.policy.shadow_rules() {
            m.log_only.with_label_values(&[rule, action.as_str()]);
        }
        // Every licensee's series exist from the start, at zero.
        for l in self.licensees.iter() {
            let id = [l.id.as_str()];
            m.licensed_requests.with_label_values(&id);
            m.licensed_bytes.with_label_values(&id);
            m.crawler_charges.with_label_values(&id);
            m.crawler_charged_euros.with_label_values(&id);
        }
        self.publish_ages();
    }

    /// `rempart_ipranges_age_seconds`: how old each list in force is (from
    /// its file's modification time). Called on every scrape.
    pub fn publish_ages(&self) {
        let m = crate::metrics::metrics();
        let now = std::time::SystemTime::now();
        for s in self.ranges.sources() {
            if let Some(t) = s.modified {
                let age = now.duration_since(t).map_or(0.0, |d| d.as_secs_f64());
                m.ipranges_age
                    .with_label_values(&[s.name.as_str()])
                    .set(age);
            }
        }
    }
}

/// The network data files, when `[network]` is enabled.
pub fn network_files(config: &Config) -> Option<NetworkFiles> {
    let n = &config.raw.network;
    n.enabled.then(|| NetworkFiles {
        ranges: config.resolve(&n.ranges_file),
        names: config.resolve(&n.names_file),
        hosting: config.resolve(&n.hosting_file),
    })
}

/// The referrers file: the configured one, else the shipped one when it is
/// beside the config.
pub fn referrers_file(config: &Config) -> Option<PathBuf> {
    match &config.raw.catalog.ai_referrers {
        Some(p) => Some(config.resolve(p)),
        None => Some(config.resolve(std::path::Path::new("agents/ai-referrers.toml")))
            .filter(|p| p.is_file()),
    }
}

/// The compiled referrers and one `rempart_ai_referrals_total` handle per
/// operator, resolved once: every operator's series exists from the start
/// (at zero), and a referred visit costs one atomic add.
pub struct Referrals {
    pub referrers: Referrers,
    counters: Vec<prometheus::IntCounter>,
}

impl Referrals {
    fn new(referrers: Referrers) -> Self {
        let family = &crate::metrics::metrics().ai_referrals;
        let counters = referrers
            .operators()
            .iter()
            .map(|op| family.with_label_values(&[op.as_str()]))
            .collect();
        Self {
            referrers,
            counters,
        }
    }

    /// Counts one referred visit.
    pub fn count(&self, r: Referrer) {
        if let Some(c) = self.counters.get(usize::from(r.0)) {
            c.inc();
        }
    }
}

/// The key directories bound to catalogue agents and to licensees.
fn compile_bindings(config: &Config, catalogue: &Catalogue) -> Result<Bindings, ConfigError> {
    let mut b = Bindings::new(&config.raw.web_bot_auth.allow_http_hosts);
    for (i, agent) in catalogue.agents().iter().enumerate() {
        for url in &agent.signature_agents {
            b.bind_agent(url, crate::catalog::AgentId(i as u32))
                .map_err(|e| {
                    ConfigError::Catalog(crate::catalog::CatalogError::Entry {
                        path: agent.file.clone(),
                        agent: agent.name.clone(),
                        message: format!("signature_agents: {e}"),
                    })
                })?;
        }
    }
    for (i, l) in config.raw.licensees.iter().enumerate() {
        for (j, url) in l.key_directories.iter().enumerate() {
            b.bind_licensee(url, i)
                .map_err(|e| config.error_at(&format!("licensees[{i}].key_directories[{j}]"), e))?;
        }
    }
    Ok(b)
}

/// What is live, as one hash: the config text, the catalogue files and TLS
/// files (`files`), the range lists in force (shipped or refreshed) and the
/// templates. A reload
/// that changes any of them changes the hash.
fn content_hash(
    config: &Config,
    files: &[PathBuf],
    ranges: &RangeTable,
    templates: &std::path::Path,
) -> String {
    let mut h = Sha256::new();
    h.update(config.text.as_bytes());
    for f in files {
        h.update(f.to_string_lossy().as_bytes());
        h.update(std::fs::read(f).unwrap_or_default());
    }
    for s in ranges.sources() {
        h.update(s.name.as_bytes());
        for p in &s.prefixes {
            h.update(p.to_string().as_bytes());
        }
    }
    if let Ok(entries) = std::fs::read_dir(templates) {
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            h.update(p.to_string_lossy().as_bytes());
            h.update(std::fs::read(&p).unwrap_or_default());
        }
    }
    hex::encode(h.finalize())
}

/// Every page rempart answers with, rendered once from the templates.
fn compile_pages(
    config: &Config,
    templates: &Path,
    catalogue: &Catalogue,
    reservation: Option<&Reservation>,
    behaviour: &BehaviourSettings,
) -> Result<Pages, ConfigError> {
    let raw = &config.raw;
    render_pages(
        templates,
        &raw.rights_holder,
        raw.responses.offer_status,
        catalogue,
        reservation,
        behaviour.honeypot.as_deref().filter(|_| behaviour.enabled),
    )
    .map_err(|e| ConfigError::Template {
        path: e.path,
        message: e.message,
    })
}

/// The catalogue from its agent files, with the operators' self-declared
/// domains when the config names them; and the agent files, for the hash.
fn load_catalogue(
    config: &Config,
    ranges: &RangeTable,
) -> Result<(Catalogue, Vec<PathBuf>), ConfigError> {
    let raw = &config.raw;
    let agent_files: Vec<PathBuf> = raw
        .catalog
        .agents
        .iter()
        .map(|p| config.resolve(p))
        .collect();
    let mut catalogue = Catalogue::load(&agent_files, ranges)?;
    if let Some(path) = &raw.catalog.operator_domains {
        let rule = crate::identify::selfdeclared::SelfDeclared::load(&config.resolve(path))?;
        catalogue = catalogue.with_self_declared(rule);
    }
    Ok((catalogue, agent_files))
}

/// Every file besides the config that the snapshot was compiled from: a
/// change to any of them is a new configuration hash.
fn data_files(
    config: &Config,
    agent_files: Vec<PathBuf>,
    referrers_file: Option<PathBuf>,
    network_files: Option<&NetworkFiles>,
    overrides: &Path,
) -> Vec<PathBuf> {
    let raw = &config.raw;
    let mut files = agent_files;
    files.extend(
        raw.catalog
            .operator_domains
            .iter()
            .map(|p| config.resolve(p)),
    );
    files.extend(referrers_file);
    if let Some(f) = network_files {
        files.extend([f.ranges.clone(), f.names.clone(), f.hosting.clone()]);
    }
    if let Some(t) = &raw.tls {
        files.extend([config.resolve(&t.cert_file), config.resolve(&t.key_file)]);
    }
    files.push(overrides.to_path_buf());
    files
}

/// The written rules, then the operator's overrides as the policy's first
/// rules; an error names the rule's key in the file it came from.
fn compile_policy(
    config: &Config,
    catalogue: &Catalogue,
) -> Result<(Policy, Overrides), ConfigError> {
    let key = |prefix: &str, e: &crate::decide::policy::RuleError| {
        if e.field.is_empty() {
            format!("{prefix}[{}]", e.rule)
        } else {
            format!("{prefix}[{}].{}", e.rule, e.field)
        }
    };
    let policy = Policy::compile(&config.raw.rules, catalogue)
        .map_err(|e| config.error_at(&key("rules", &e), e.message))?;
    let overrides = Overrides::load(&config.resolve(&config.raw.admin.overrides_file))?;
    let policy = policy
        .with_overrides(
            &overrides.file.overrides,
            catalogue,
            std::time::SystemTime::now(),
        )
        .map_err(|e| overrides.error_at(&key("override", &e), e.message))?;
    Ok((policy, overrides))
}

/// The TLS certificate and key, when `[tls]` is set.
fn load_tls(config: &Config) -> Result<Option<Arc<pingora::tls::sign::CertifiedKey>>, ConfigError> {
    let Some(t) = &config.raw.tls else {
        return Ok(None);
    };
    let (cert, key) = (config.resolve(&t.cert_file), config.resolve(&t.key_file));
    crate::ops::tls::load(&cert, &key).map(Some).map_err(|e| {
        config.error_at(
            "tls.cert_file",
            format!("{} / {}: {e}", cert.display(), key.display()),
        )
    })
}
