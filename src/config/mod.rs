//! Configuration as written (TOML, serde), and its validation.
//!
//! [`Config::load`] reads and checks one file; [`crate::snapshot`] then
//! compiles it, with the catalogue, ranges and templates it names, into the
//! immutable snapshot the proxy serves from. Unknown keys are errors, and every
//! error names the file, line and key.

pub mod challenge;
pub mod error;
pub mod listeners;
pub mod located;
pub mod network;
pub mod operations;
pub mod overrides;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use error::{ConfigError, Located};
use listeners::parse_addr;
pub use listeners::{
    parse_upstream, parse_upstreams, AdminSection, ForwardedFor, Readiness, ServerSection,
    UpstreamSpec, UpstreamUrls, DEFAULT_ADMIN,
};
pub use operations::{EvidenceSection, RangesSection, RdnsSection, ReloadSection, TlsSection};

use crate::decide::policy::RuleSpec;
use crate::model::Lang;

/// Who holds the rights, as shown on the offer.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RightsHolder {
    pub name: String,
    pub contact: String,
    pub terms_url: String,
    /// Where the offer page is served (always reachable).
    #[serde(default = "default_offer_path")]
    pub offer_path: String,
}

fn default_offer_path() -> String {
    "/ai-licensing".into()
}

/// The whole config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub admin: AdminSection,
    #[serde(default)]
    pub catalog: CatalogSection,
    pub rights_holder: RightsHolder,
    #[serde(default)]
    pub responses: ResponsesSection,
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
    /// The TDM reservation every opt-out signal is generated from.
    #[serde(default)]
    pub reservation: Option<crate::optout::reservation::ReservationSpec>,
    /// Crawlers licensed by the rights holder.
    #[serde(default)]
    pub licensees: Vec<crate::licensing::licence::LicenseeSpec>,
    #[serde(default)]
    pub robots: RobotsSection,
    #[serde(default)]
    pub licensing: LicensingSection,
    /// Behaviour signals and score.
    #[serde(default)]
    pub behaviour: crate::behaviour::BehaviourSpec,
    #[serde(default)]
    pub evidence: EvidenceSection,
    #[serde(default)]
    pub ranges: RangesSection,
    #[serde(default)]
    pub reload: ReloadSection,
    /// Reverse-DNS verification.
    #[serde(default)]
    pub rdns: RdnsSection,
    /// TLS termination (a second listener).
    #[serde(default)]
    pub tls: Option<TlsSection>,
    #[serde(default)]
    pub web_bot_auth: WebBotAuthSection,
    /// The client address's AS and hosting networks.
    #[serde(default)]
    pub network: network::NetworkSection,
    /// The browser challenge (`challenge` rules).
    #[serde(default)]
    pub challenge: challenge::ChallengeSection,
    /// What the exported metrics are labelled with.
    #[serde(default)]
    pub metrics: MetricsSection,
}

/// What the exported metrics are labelled with.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Label `rempart_http_responses_total` with the request's host: one of
    /// `hosts`, or `other`. Read at start (a label set is fixed once
    /// exported); `hosts` itself is read again on reload.
    pub host_label: bool,
    /// The hosts counted under their own name (others are `other`), so
    /// that a client's `Host` header cannot grow the series.
    pub hosts: Vec<String>,
}

/// Web Bot Auth key directories.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebBotAuthSection {
    /// Hosts whose key directories may be fetched over plain HTTP (for
    /// tests on loopback). Every other directory must be an https:// origin.
    pub allow_http_hosts: Vec<String>,
}

/// Where licensed traffic is metered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LicensingSection {
    /// Directory of the metering files (`metering-YYYY-MM-DD.jsonl`).
    pub metering_dir: PathBuf,
    /// Operators (catalogue `operator` names) whose signature-verified
    /// agents may be charged under pay per crawl without a licence.
    pub billable_operators: Vec<String>,
    /// Metering files of days older than this are removed (0: never; they
    /// are what licensees are invoiced from).
    pub metering_retention_days: u64,
}

impl Default for LicensingSection {
    fn default() -> Self {
        Self {
            metering_dir: "state/metering".into(),
            billable_operators: Vec::new(),
            metering_retention_days: 0,
        }
    }
}

/// How robots.txt is served.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RobotsSection {
    /// Merge rempart's AI group and signals into the origin's own robots.txt.
    pub merge_origin: bool,
    /// How often the origin's robots.txt is fetched again.
    pub origin_ttl_seconds: u64,
    /// How long the last good copy is served while the origin fails.
    pub origin_max_stale_seconds: u64,
}

impl Default for RobotsSection {
    fn default() -> Self {
        Self {
            merge_origin: true,
            origin_ttl_seconds: 300,
            origin_max_stale_seconds: 86_400,
        }
    }
}

/// Where the agent catalogue and range files are.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogSection {
    /// Catalogue files, later ones overriding earlier ones by agent name.
    pub agents: Vec<PathBuf>,
    /// Directory of operator range files (`*.json`).
    pub ranges_dir: PathBuf,
    /// AI operators' domains: a user agent that names one, and no catalogue
    /// agent, is that operator's unknown bot (`identify/selfdeclared.rs`).
    pub operator_domains: Option<PathBuf>,
    /// AI products that refer visitors (`identify/referrer.rs`). Unset: the
    /// shipped `agents/ai-referrers.toml` when it exists beside the config.
    pub ai_referrers: Option<PathBuf>,
}

impl Default for CatalogSection {
    fn default() -> Self {
        Self {
            agents: vec!["agents/ai-robots.toml".into(), "agents/curated.toml".into()],
            ranges_dir: "ipranges".into(),
            operator_domains: None,
            ai_referrers: None,
        }
    }
}

/// How refusals look.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResponsesSection {
    /// Status of the licensing offer: 402 (Payment Required) or 403.
    pub offer_status: u16,
    /// Page language when `Accept-Language` names neither French nor English.
    pub default_language: Lang,
    pub templates_dir: PathBuf,
}

impl Default for ResponsesSection {
    fn default() -> Self {
        Self {
            offer_status: 402,
            default_language: Lang::En,
            templates_dir: "templates".into(),
        }
    }
}

/// A loaded, validated config file.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub text: String,
    pub raw: RawConfig,
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    /// The origins, in the order written (at least one).
    pub upstream: Vec<UpstreamSpec>,
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = error::read(path)?;
        Self::parse(path, text)
    }

    /// Parses and validates config text (`path` is for messages and relative paths).
    pub fn parse(path: &Path, text: String) -> Result<Self, ConfigError> {
        let raw: RawConfig = located::parse_toml(path, &text)?;
        let at = |key: &str, msg: String| ConfigError::from(located::at_key(path, &text, key, msg));
        let listen = parse_addr(&raw.server.listen).map_err(|m| at("server.listen", m))?;
        let admin = parse_addr(&raw.admin.listen).map_err(|m| at("admin.listen", m))?;
        let upstream = parse_upstreams(raw.server.upstream.urls()).map_err(|(i, m)| match i {
            Some(i) if matches!(raw.server.upstream, UpstreamUrls::Many(_)) => {
                at(&format!("server.upstream[{i}]"), m)
            }
            _ => at("server.upstream", m),
        })?;
        if !(1..=64).contains(&raw.server.threads) {
            return Err(at("server.threads", "must be between 1 and 64".into()));
        }
        if !(0..=1 << 20).contains(&raw.server.write_buffer_bytes) {
            return Err(at(
                "server.write_buffer_bytes",
                "must be at most 1 MiB".into(),
            ));
        }
        if !matches!(raw.responses.offer_status, 402 | 403) {
            return Err(at(
                "responses.offer_status",
                format!(
                    "{} is not allowed: use 402 or 403",
                    raw.responses.offer_status
                ),
            ));
        }
        if !raw.rights_holder.offer_path.starts_with('/') {
            return Err(at("rights_holder.offer_path", "must start with '/'".into()));
        }
        if let Some(r) = &raw.reservation {
            if r.clause_path == raw.rights_holder.offer_path {
                return Err(at(
                    "reservation.clause_path",
                    format!("{:?} is already the offer page's path", r.clause_path),
                ));
            }
        }
        if raw.robots.origin_ttl_seconds == 0 {
            return Err(at("robots.origin_ttl_seconds", "must be at least 1".into()));
        }
        raw.challenge.validate().map_err(|(key, m)| at(key, m))?;
        raw.evidence.validate().map_err(|(key, m)| at(key, m))?;
        if raw.licensing.metering_retention_days > 36_500 {
            return Err(at(
                "licensing.metering_retention_days",
                "must be 0 (off) or at most 36500".into(),
            ));
        }
        for (i, h) in raw.metrics.hosts.iter().enumerate() {
            let h = h.trim();
            if h.is_empty() || h.contains(['/', ' ', '*', ':']) || h.eq_ignore_ascii_case("other") {
                return Err(at(
                    &format!("metrics.hosts[{i}]"),
                    format!("{h:?} is not a host name (no port, no wildcard, not \"other\")"),
                ));
            }
        }
        if raw.metrics.host_label && raw.metrics.hosts.is_empty() {
            return Err(at(
                "metrics.host_label",
                "name the hosts to count in metrics.hosts (any other is \"other\")".into(),
            ));
        }
        if raw.catalog.agents.is_empty() {
            return Err(at(
                "catalog.agents",
                "name at least one catalogue file".into(),
            ));
        }
        Ok(Self {
            path: path.to_owned(),
            text,
            raw,
            listen,
            admin,
            upstream,
        })
    }

    /// Resolves a path written in the config relative to the config's directory.
    /// Puts every file rempart writes under `dir` (`rempart run --state-dir`):
    /// the evidence ledger and its address key, the challenge key, metering, refreshed range
    /// lists, and the pid file and upgrade socket unless set.
    pub fn relocate_state(&mut self, dir: &Path) {
        let raw = &mut self.raw;
        raw.evidence.dir = dir.join("evidence");
        raw.evidence.ip_key_file = dir.join("evidence-ip-key");
        raw.challenge.key_file = dir.join("challenge-key");
        raw.licensing.metering_dir = dir.join("metering");
        raw.ranges.state_dir = dir.join("ipranges");
        raw.admin.overrides_file = dir.join("overrides.toml");
        raw.server
            .pid_file
            .get_or_insert_with(|| dir.join("rempart.pid"));
        raw.server
            .upgrade_sock
            .get_or_insert_with(|| dir.join("rempart.sock"));
    }

    /// The text of one top-level section as written (`[reservation]` and its
    /// sub-tables), for archiving what was published.
    pub fn section_text(&self, key: &str) -> Option<String> {
        let doc: toml_edit::DocumentMut = self.text.parse().ok()?;
        let item = doc.get(key)?;
        let mut out = toml_edit::DocumentMut::new();
        out.insert(key, item.clone());
        Some(out.to_string())
    }

    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.path.parent().unwrap_or(Path::new(".")).join(p)
        }
    }

    /// An error located at `key` in this config file.
    pub fn error_at(&self, key: &str, message: impl Into<String>) -> ConfigError {
        located::at_key(&self.path, &self.text, key, message).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "[rights_holder]\nname='n'\ncontact='c'\nterms_url='https://t'\n";

    #[test]
    fn defaults_are_safe() {
        let c = Config::parse(Path::new("r.toml"), MINIMAL.into()).unwrap();
        assert!(c.admin.ip().is_loopback());
        assert!(c.listen.ip().is_loopback());
        assert!(c.raw.server.trusted_proxies.is_empty());
        assert_eq!(c.raw.responses.offer_status, 402);
        assert_eq!(c.upstream, vec![UpstreamSpec::Demo]);
    }

    #[test]
    fn semantic_errors_name_line_and_key() {
        let text = format!("{MINIMAL}\n[responses]\noffer_status = 200\n");
        let err = Config::parse(Path::new("r.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("r.toml:7:16: key `responses.offer_status`"),
            "{err}"
        );
        let text = format!("[server]\nupstream = 'ftp://x'\n{MINIMAL}");
        let err = Config::parse(Path::new("r.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("r.toml:2:12: key `server.upstream`"),
            "{err}"
        );
        let text = format!("[server]\ntrusted_proxies = ['10.0.0.0/33']\n{MINIMAL}");
        let err = Config::parse(Path::new("r.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(":2:") && err.contains("server.trusted_proxies"),
            "{err}"
        );
    }

    /// Retention is off unless configured, and a setting that would remove
    /// every file as soon as it closes is refused with file, line and key.
    #[test]
    fn retention_is_off_by_default_and_checked() {
        let c = Config::parse(Path::new("r.toml"), MINIMAL.into()).unwrap();
        assert_eq!(c.raw.evidence.retention_days, 0);
        assert_eq!(c.raw.evidence.retention_bytes, 0);
        assert_eq!(c.raw.licensing.metering_retention_days, 0);
        let ok = format!(
            "{MINIMAL}\n[evidence]\nretention_days = 90\nretention_bytes = 1073741824\n\
             [licensing]\nmetering_retention_days = 400\n"
        );
        assert!(Config::parse(Path::new("r.toml"), ok).is_ok());
        let text = format!("{MINIMAL}\n[evidence]\nmax_file_kb = 1024\nretention_bytes = 1000\n");
        let err = Config::parse(Path::new("r.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("r.toml:8:") && err.contains("evidence.retention_bytes"),
            "{err}"
        );
        let text = format!("{MINIMAL}\n[evidence]\nmax_bytes = 10000000\nretention_bytes = 20000000\nmax_file_kb = 1\n");
        let err = Config::parse(Path::new("r.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("evidence.max_bytes"), "{err}");
        let text = format!("{MINIMAL}\n[licensing]\nmetering_retention_days = 100000\n");
        let err = Config::parse(Path::new("r.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("r.toml:7:") && err.contains("licensing.metering_retention_days"),
            "{err}"
        );
    }

    /// Content Signals' `use` and the RSL licence server are checked like
    /// every other key: file, line and key in the message.
    #[test]
    fn content_use_and_licence_server_errors_name_line_and_key() {
        let reservation = "[reservation]\nbase_url = 'https://www.example.com'\n[[reservation.location]]\npath = '/*'\ntdm_reserved = true\n";
        let text = format!("{MINIMAL}{reservation}use = 'everything'\n");
        let err = Config::parse(Path::new("r.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("r.toml:10:"), "{err}");
        assert!(err.contains("use") && err.contains("reference"), "{err}");
        let ok = format!("{MINIMAL}{reservation}use = 'reference'\n");
        assert!(Config::parse(Path::new("r.toml"), ok).is_ok());
        let text = format!(
            "{MINIMAL}[reservation]\nbase_url = 'https://www.example.com'\nlicense_server = 'http://l.example'\n[[reservation.location]]\npath = '/*'\ntdm_reserved = true\n"
        );
        // Parsed, then compiled as the snapshot does, with the same locator.
        let c = Config::parse(Path::new("r.toml"), text).unwrap();
        let spec = c.raw.reservation.as_ref().unwrap();
        let e = crate::optout::reservation::Reservation::compile(spec).unwrap_err();
        let err = c
            .error_at(&format!("reservation.{}", e.key), e.message)
            .to_string();
        assert!(
            err.starts_with("r.toml:7:") && err.contains("reservation.license_server"),
            "{err}"
        );
    }

    #[test]
    fn upstream_forms() {
        assert_eq!(
            parse_upstream("http://origin.internal:8081").unwrap(),
            UpstreamSpec::Url {
                tls: false,
                authority: "origin.internal:8081".into(),
                host: "origin.internal".into()
            }
        );
        assert_eq!(
            parse_upstream("https://[::1]").unwrap(),
            UpstreamSpec::Url {
                tls: true,
                authority: "[::1]:443".into(),
                host: "::1".into()
            }
        );
        assert!(parse_upstream("http://x/path").is_err());
        assert!(parse_upstream("origin:80").is_err());
    }
}
