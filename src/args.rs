//! The `rempart` command line's arguments (clap), apart from what each
//! command does (`main.rs`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub const DEFAULT_CONFIG: &str = "config/rempart.toml";

/// rempart: an edge reverse proxy that makes a rights holder's AI opt-out stick.
#[derive(Parser)]
#[command(version, about)]
pub struct Cli {
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the proxy.
    Run {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Listen address (overrides server.listen).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Origin URL (overrides server.upstream); repeat it for several origins.
        #[arg(long)]
        upstream: Vec<String>,
        /// Admin address for /metrics and /healthz (overrides admin.listen).
        #[arg(long)]
        admin: Option<SocketAddr>,
        /// Take over the listening sockets of a running instance (graceful upgrade).
        #[arg(long, short)]
        upgrade: bool,
        /// Evidence ledger directory (overrides evidence.dir).
        #[arg(long)]
        evidence_dir: Option<PathBuf>,
        /// Put everything rempart writes under this directory (ledger,
        /// address key, metering, refreshed ranges, pid file, upgrade socket).
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Run the shipped config in front of the built-in demo site on 127.0.0.1:8080.
    Demo {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[arg(long, default_value = "127.0.0.1:9090")]
        admin: SocketAddr,
    },
    /// Validate a config and everything it names; exit 0 if good, 1 if not.
    Check {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Do not resolve the origins (a machine without the origin's DNS).
        #[arg(long)]
        offline: bool,
        /// The state directory `rempart run --state-dir` is given: its
        /// override file is the one checked and listed.
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Print the verdict for a request, or for every line of stdin (JSON lines or combined logs).
    Classify {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// User agent to classify (without it, requests are read from stdin).
        #[arg(long)]
        ua: Option<String>,
        /// Client address (default 0.0.0.0, which no operator publishes).
        #[arg(long)]
        ip: Option<std::net::IpAddr>,
        /// The request target (path and query), as the client sent it.
        #[arg(long, default_value = "/", value_parser = request_target)]
        path: String,
        #[arg(long)]
        host: Option<String>,
        /// Where a log line's client is: its first field (`peer`, for a log
        /// written at the edge), or the last address of its X-Forwarded-For
        /// field (`xff`: the one a CDN in front appended).
        #[arg(long, value_enum, default_value = "peer")]
        client_from: rempart::classify::ClientFrom,
    },
    /// Maintain the agent catalogue.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Licence credentials.
    Licences {
        #[command(subcommand)]
        command: LicencesCommand,
    },
    /// Check and summarise the evidence ledger.
    Evidence {
        #[command(subcommand)]
        command: EvidenceCommand,
    },
    /// The operators' published range lists.
    Ranges {
        #[command(subcommand)]
        command: RangesCommand,
    },
    /// The IP-to-ASN data and the hosting-network list (`[network]`).
    Network {
        #[command(subcommand)]
        command: NetworkCommand,
    },
    /// Ask the running proxy to reload its config; exit 1 with its error when it refuses.
    Reload {
        /// The config whose `[admin]` names the listener and its token.
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The admin listener, when it is not the config's (`run --admin`).
        #[arg(long)]
        admin: Option<SocketAddr>,
    },
    /// The opt-out in words, for the site's terms of use.
    Optout {
        #[command(subcommand)]
        command: OptoutCommand,
    },
    /// Exit 0 if the admin listener answers /healthz (for container health checks).
    Health {
        #[arg(long, default_value = "127.0.0.1:9090")]
        admin: SocketAddr,
    },
}

#[derive(Subcommand)]
pub enum OptoutCommand {
    /// Print the clause that reserves text and data mining, generated from
    /// the reservation and the rights holder (as served at
    /// `reservation.clause_path`).
    Clause {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long, value_enum)]
        lang: LangArg,
        #[arg(long, value_enum)]
        format: rempart::respond::clause::Format,
    },
}

/// A language of rempart's pages, on the command line.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum LangArg {
    Fr,
    En,
}

impl From<LangArg> for rempart::model::Lang {
    fn from(l: LangArg) -> Self {
        match l {
            LangArg::Fr => Self::Fr,
            LangArg::En => Self::En,
        }
    }
}

#[derive(Subcommand)]
pub enum NetworkCommand {
    /// Regenerate the shipped data from the @ip-location-db/asn CSV files
    /// (asn-ipv4.csv, asn-ipv6.csv), offline and deterministically.
    Import {
        files: Vec<PathBuf>,
        #[arg(long, short, default_value = "config/network")]
        output: PathBuf,
    },
    /// Print the AS of addresses, as the proxy sees them, and the load time.
    Lookup {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        ips: Vec<std::net::IpAddr>,
    },
}

#[derive(Subcommand)]
pub enum RangesCommand {
    /// Fetch every list from its vendor once, validate it, and keep the good
    /// ones in the state directory (a running proxy picks them up).
    Refresh {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Overrides the state directory as `run --state-dir` does.
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum EvidenceCommand {
    /// Check the whole hash chain; exit 0 if intact, 1 at the first break.
    Verify {
        /// The ledger directory.
        dir: PathBuf,
    },
    /// Summarise by operator and agent (HTML with charts, CSV or JSON).
    Report {
        /// The ledger directory.
        dir: PathBuf,
        /// From this date (2026-11-01) or time (RFC 3339), UTC.
        #[arg(long, value_parser = from_bound)]
        since: Option<time::OffsetDateTime>,
        /// To this date (inclusive) or time.
        #[arg(long, value_parser = until_bound)]
        until: Option<time::OffsetDateTime>,
        #[arg(long, value_enum, default_value = "html")]
        format: rempart::evidence::report::Format,
        /// Write to this file instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Print the pseudonym an address has in the ledger (needs the address key).
    Pseudonym {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        ip: std::net::IpAddr,
    },
}

#[derive(Subcommand)]
pub enum LicencesCommand {
    /// Print the SHA-256 to put in `token_sha256` for a token read from stdin
    /// (not from the command line, so that it stays out of shell history).
    HashToken,
    /// Requests, bytes and charges per licensee, day and path class, for invoicing.
    Report {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Metering directory (default: licensing.metering_dir of the config).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// First day, YYYY-MM-DD (UTC).
        #[arg(long)]
        since: rempart::day::Day,
        /// Last day, inclusive.
        #[arg(long)]
        until: Option<rempart::day::Day>,
        #[arg(long, value_enum, default_value = "csv")]
        format: ReportFormat,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ReportFormat {
    Csv,
    Json,
}

#[derive(Subcommand)]
pub enum CatalogCommand {
    /// Regenerate one list's part of the catalogue (config/agents/<source>.toml).
    Import {
        /// The list: ai-robots, crawler-user-agents, device-detector or ai-crawler-index.
        #[arg(long)]
        source: String,
        /// The list's file (robots.json, crawler-user-agents.json, bots.yml, data.json).
        path: PathBuf,
        /// The configuration whose `catalog.agents` the list is merged into.
        #[arg(long, default_value = "config/rempart.toml")]
        config: PathBuf,
        /// Output catalogue file (default: agents/<source>.toml beside the configuration).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Provenance recorded in each entry (default: the list and file name).
        #[arg(long)]
        provenance: Option<String>,
    },
    /// Show what importing a list would add, remove or change in its generated file.
    Diff {
        #[arg(long)]
        source: String,
        path: PathBuf,
        #[arg(long, default_value = "config/rempart.toml")]
        config: PathBuf,
        /// The generated file to compare with (default: agents/<source>.toml beside the configuration).
        #[arg(long)]
        against: Option<PathBuf>,
        #[arg(long)]
        provenance: Option<String>,
    },
    /// Same as `import --source ai-robots` (kept for existing scripts).
    ImportAiRobots {
        /// Path to robots.json.
        path: PathBuf,
        /// Output catalogue file.
        #[arg(long, short, default_value = "config/agents/ai-robots.toml")]
        output: PathBuf,
        /// Provenance recorded in each entry (default: the file name).
        #[arg(long)]
        source: Option<String>,
    },
}

/// `--since` of the evidence report: a date's start, or an RFC 3339 time.
fn from_bound(s: &str) -> anyhow::Result<time::OffsetDateTime> {
    rempart::evidence::report::parse_bound(s, false)
}

/// `--until` of the evidence report: a date's end, or an RFC 3339 time.
fn until_bound(s: &str) -> anyhow::Result<time::OffsetDateTime> {
    rempart::evidence::report::parse_bound(s, true)
}

/// A request target as a log writes it: origin form, `/` first.
fn request_target(s: &str) -> Result<String, String> {
    if s.starts_with('/') {
        Ok(s.to_owned())
    } else {
        Err(format!("{s:?} is not a request target: it starts with '/'"))
    }
}
