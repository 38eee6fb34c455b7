//! The sections of the written config that run rempart rather than decide:
//! reverse DNS, TLS, range refresh, reload triggers, the evidence ledger.

use std::net::SocketAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;

/// `[rdns]`: forward-confirmed reverse DNS for agents with `rdns` suffixes
/// and no published ranges.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RdnsSection {
    pub enabled: bool,
    /// `ip:port` of the resolvers to ask; empty: the system's.
    pub nameservers: Vec<SocketAddr>,
    pub max_in_flight: usize,
    pub max_ttl_seconds: u64,
    pub negative_ttl_seconds: u64,
    pub timeout_ms: u64,
    pub cache_entries: usize,
}

impl Default for RdnsSection {
    fn default() -> Self {
        Self {
            enabled: true,
            nameservers: Vec::new(),
            max_in_flight: 64,
            max_ttl_seconds: 3_600,
            negative_ttl_seconds: 300,
            timeout_ms: 2_000,
            cache_entries: 65_536,
        }
    }
}

/// `[tls]`: an HTTPS listener beside the plain one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    pub listen: String,
    /// PEM certificate chain and private key; reloaded with the config.
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// Offer HTTP/2 by ALPN (HTTP/1.1 stays available).
    #[serde(default = "yes")]
    pub http2: bool,
    /// Load balancers that send a PROXY protocol (v1 or v2) header first.
    #[serde(default)]
    pub proxy_protocol_from: Vec<IpNet>,
}

fn yes() -> bool {
    true
}

/// Live refresh of the operators' range lists.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RangesSection {
    /// Fetch the lists on a schedule.
    pub refresh: bool,
    /// `SOURCES.tsv`: each range file and its vendor URL.
    pub sources: PathBuf,
    /// Where fetched lists are kept; a copy here replaces the shipped file.
    pub state_dir: PathBuf,
    pub interval_seconds: u64,
    /// A random delay up to this much before each round.
    pub jitter_seconds: u64,
    /// A new list with more than this share fewer prefixes is refused.
    pub max_shrink_percent: u8,
    pub timeout_seconds: u64,
    /// Hosts of `SOURCES.tsv` URLs that may resolve to loopback or private
    /// addresses (an internal mirror; tests). Every other fetch goes only
    /// to public addresses.
    pub allow_private_hosts: Vec<String>,
}

impl Default for RangesSection {
    fn default() -> Self {
        Self {
            refresh: true,
            sources: "ipranges/SOURCES.tsv".into(),
            state_dir: "state/ipranges".into(),
            interval_seconds: 86_400,
            jitter_seconds: 3_600,
            max_shrink_percent: 50,
            timeout_seconds: 30,
            allow_private_hosts: Vec::new(),
        }
    }
}

/// Hot reload triggers besides SIGHUP and `POST /reload`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReloadSection {
    /// Reload when the config file or a data file it names changes.
    pub watch: bool,
    /// How long files must stay unchanged before the reload.
    pub debounce_ms: u64,
}

impl Default for ReloadSection {
    fn default() -> Self {
        Self {
            watch: true,
            debounce_ms: 1_000,
        }
    }
}

/// The evidence ledger.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvidenceSection {
    pub enabled: bool,
    /// Directory of the ledger files (`ledger-*.jsonl`) and the address key.
    pub dir: PathBuf,
    /// A file is closed and the next one started past this size.
    pub max_file_kb: u64,
    /// Start a new file every UTC day, too.
    pub rotate_daily: bool,
    /// Records waiting for the writer before a gap is recorded.
    pub queue: usize,
    pub fsync_interval_ms: u64,
    /// The key of the address pseudonyms (created on first start). Kept out
    /// of the ledger directory, so that handing the ledger over does not hand
    /// over the key.
    pub ip_key_file: PathBuf,
    /// Disk budget of the whole ledger; past it request records are counted,
    /// not written (0: none).
    pub max_bytes: u64,
    /// Request records kept per client and minute; the rest are counted in
    /// one `limited` record (0: no cap).
    pub max_records_per_client_minute: u32,
    /// Seconds between `tally` records (referred visits, allowed AI crawls).
    pub tally_interval_s: u64,
    /// Closed ledger files older than this many days are removed, each named
    /// first in a `pruned` record (0: never; the ledger is evidence).
    pub retention_days: u64,
    /// Oldest closed ledger files are removed while the ledger is above this
    /// many bytes (0: never).
    pub retention_bytes: u64,
}

impl EvidenceSection {
    /// Retention that would remove every file as soon as it is closed, or
    /// never act before the disk budget stops the writing, is a mistake.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let file = self.max_file_kb.max(1).saturating_mul(1024);
        if self.retention_bytes > 0 && self.retention_bytes < file.saturating_mul(2) {
            return Err((
                "evidence.retention_bytes",
                format!(
                    "must be 0 (off) or at least two files (2 × max_file_kb = {} bytes)",
                    file * 2
                ),
            ));
        }
        if self.retention_bytes > 0 && self.max_bytes > 0 && self.retention_bytes > self.max_bytes {
            return Err((
                "evidence.retention_bytes",
                "must not exceed evidence.max_bytes: the budget would stop the writing first"
                    .into(),
            ));
        }
        if self.retention_days > 36_500 {
            return Err((
                "evidence.retention_days",
                "must be 0 (off) or at most 36500".into(),
            ));
        }
        Ok(())
    }
}

impl Default for EvidenceSection {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: "state/evidence".into(),
            max_file_kb: 65_536,
            rotate_daily: true,
            queue: 16_384,
            fsync_interval_ms: 1_000,
            ip_key_file: "state/evidence-ip-key".into(),
            max_bytes: 4 << 30,
            max_records_per_client_minute: 120,
            tally_interval_s: 60,
            retention_days: 0,
            retention_bytes: 0,
        }
    }
}
