//! The `rempart` command line.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use rempart::classify::{classify, parse_line, Replay, Sample, Summary};
use rempart::config::Config;
use rempart::ops::server::{run, RunOptions};
use rempart::snapshot::Snapshot;

mod args;

use args::*;

fn init_logging(json: bool) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::new(log_directives(
        std::env::var("RUST_LOG").ok().as_deref(),
    ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The log filter: `RUST_LOG` as given, on top of `info` unless it sets a
/// level of its own (a bare `warn`, `debug` …), so that naming one target
/// (`RUST_LOG=rempart::access=debug`) never hides the warnings of the rest.
fn log_directives(env: Option<&str>) -> String {
    match env.map(str::trim).filter(|e| !e.is_empty()) {
        None => "info".to_owned(),
        Some(e)
            if e.split(',').any(|d| {
                ["off", "error", "warn", "info", "debug", "trace"]
                    .iter()
                    .any(|l| d.trim().eq_ignore_ascii_case(l))
            }) =>
        {
            e.to_owned()
        }
        Some(e) => format!("info,{e}"),
    }
}

fn offline_snapshot(config: &std::path::Path) -> anyhow::Result<Snapshot> {
    Ok(Snapshot::load_offline(config)?)
}

/// The replay state for `classify`: reverse DNS looked up on the spot when
/// the config turns it on, as the proxy would verify once its cache is warm.
fn replay_for(snap: &Snapshot, config: &std::path::Path) -> anyhow::Result<Replay> {
    let replay = Replay::new(snap);
    let cfg = rempart::config::Config::load(config)?;
    if !cfg.raw.rdns.enabled {
        return Ok(replay);
    }
    let rdns = rempart::identify::rdns::BlockingRdns::new((&cfg.raw.rdns).into())?;
    Ok(replay.with_rdns(rdns))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rempart: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run {
            config,
            listen,
            upstream,
            admin,
            upgrade,
            evidence_dir,
            state_dir,
        } => run(RunOptions {
            config,
            listen,
            upstream,
            admin,
            upgrade,
            print_demo_guide: false,
            evidence_dir,
            state_dir,
            no_range_refresh: false,
        })
        .map(|()| ExitCode::SUCCESS),
        Command::Demo {
            config,
            listen,
            admin,
        } => run(RunOptions {
            config,
            listen: Some(listen),
            upstream: vec!["builtin:demo".into()],
            admin: Some(admin),
            upgrade: false,
            print_demo_guide: true,
            evidence_dir: None,
            state_dir: None,
            no_range_refresh: true,
        })
        .map(|()| ExitCode::SUCCESS),
        Command::Check {
            config,
            offline,
            state_dir,
        } => check_command(&config, offline, state_dir.as_deref()),
        Command::Classify {
            config,
            ua,
            ip,
            path,
            host,
            client_from,
        } => classify_command(&config, ua, ip, path, host, client_from),
        Command::Health { admin } => health(admin),
        Command::Reload { config, admin } => reload_command(&config, admin),
        Command::Catalog { command } => catalog_command(command),
        Command::Licences { command } => licences_command(command),
        Command::Ranges { command } => ranges_command(command),
        Command::Evidence { command } => evidence_command(command),
        Command::Network { command } => network_command(command),
        Command::Optout { command } => optout_command(command),
    }
}

/// `rempart check`: the config and everything it names, then each origin
/// resolved as `rempart run` will (unless `--offline`).
fn check_command(
    config: &std::path::Path,
    offline: bool,
    state_dir: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    let compiled = Config::load(config).and_then(|mut c| {
        if let Some(dir) = state_dir {
            c.relocate_state(dir);
        }
        Snapshot::compile(
            &c,
            &rempart::snapshot::CompileOptions {
                demo_origin: None,
                offline: true,
            },
        )
    });
    match compiled {
        Ok(snap) => {
            if !offline {
                let loaded = Config::load(config)?;
                match rempart::snapshot::resolve_origins(&loaded) {
                    Ok(origins) => {
                        for (url, addrs) in origins {
                            let shown: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
                            println!(
                                "origin {url}: {}",
                                if shown.is_empty() {
                                    "built in".to_owned()
                                } else {
                                    shown.join(", ")
                                }
                            );
                        }
                    }
                    Err(e) => {
                        eprintln!("{e:#}");
                        return Ok(ExitCode::FAILURE);
                    }
                }
            }
            println!(
                "{}: ok ({} agents, {} tokens, {} range files with {} prefixes, {} rules)",
                config.display(),
                snap.catalogue.agents().len(),
                snap.catalogue.token_count(),
                snap.ranges.sources().len(),
                snap.ranges.prefix_count(),
                snap.policy.len()
            );
            print_overrides(&snap);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e:#}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The override file's entries, in force or expired, as `check` lists them.
fn print_overrides(snap: &Snapshot) {
    let o = &snap.overrides;
    if o.file.overrides.is_empty() {
        return;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    println!("overrides ({}):", o.path.display());
    for e in &o.file.overrides {
        let until = e.until_unix.map_or_else(
            || "until removed".to_owned(),
            |u| format!("until {}", rempart::ops::controls::utc(u)),
        );
        let state = if e.expired(now) {
            "expired"
        } else {
            "in force"
        };
        let set = match (e.set_unix, &e.set_by) {
            (Some(t), Some(by)) => format!(", set {} by {by}", rempart::ops::controls::utc(t)),
            (Some(t), None) => format!(", set {}", rempart::ops::controls::utc(t)),
            (None, Some(by)) => format!(", set by {by}"),
            (None, None) => String::new(),
        };
        println!("  {} {until} ({state}{set})", e.describe());
    }
}

/// `rempart classify`: one request from the arguments, or a log on stdin,
/// through the decision, with behaviour carried across the lines.
fn classify_command(
    config: &std::path::Path,
    ua: Option<String>,
    ip: Option<std::net::IpAddr>,
    path: String,
    host: Option<String>,
    client_from: rempart::classify::ClientFrom,
) -> anyhow::Result<ExitCode> {
    let snap = offline_snapshot(config)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if let Some(ua) = ua {
        let sample = Sample {
            ua,
            ip: ip.map(|ip| ip.to_string()),
            path: Some(path),
            host,
            ..Sample::default()
        };
        let mut replay = replay_for(&snap, config)?;
        serde_json::to_writer(&mut out, &classify(&snap, &sample, &mut replay))?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut summary = Summary::default();
    // Behaviour state carries across the lines, as in the proxy.
    let mut replay = replay_for(&snap, config)?;
    for line in std::io::stdin().lock().lines() {
        let line = line.context("reading stdin")?;
        if line.trim().is_empty() {
            continue;
        }
        let Some(sample) = parse_line(&line, client_from) else {
            summary.unparsed += 1;
            if summary.unparsed <= 3 {
                eprintln!("line not understood: {}", shorten(&line));
            }
            continue;
        };
        let verdict = classify(&snap, &sample, &mut replay);
        *summary.by_action.entry(verdict.action).or_default() += 1;
        serde_json::to_writer(&mut out, &verdict)?;
        writeln!(out)?;
    }
    eprintln!("{}", summary.render());
    Ok(ExitCode::SUCCESS)
}

/// A log line as shown in an error: its first 120 characters.
fn shorten(line: &str) -> String {
    match line.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_owned(),
    }
}

/// `rempart health`: the admin listener's `/healthz`, for container health checks.
fn health(admin: std::net::SocketAddr) -> anyhow::Result<ExitCode> {
    use rempart::ops::admin_client::request;
    let answer = request(
        admin,
        "GET",
        "/healthz",
        None,
        std::time::Duration::from_secs(2),
    )?;
    if answer.status == 200 {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{admin}: {} {}", answer.status, answer.body.trim());
        Ok(ExitCode::FAILURE)
    }
}

/// `rempart reload`: `POST /reload` to the running proxy, with the admin
/// token when the config names one; the proxy's refusal (file, line, key)
/// is printed and the exit status is 1, so that `systemctl reload` fails.
fn reload_command(
    config: &std::path::Path,
    admin: Option<std::net::SocketAddr>,
) -> anyhow::Result<ExitCode> {
    use rempart::ops::admin_client::{admin_of, request};
    let (mut addr, token) = admin_of(config)?;
    if let Some(a) = admin {
        addr = a;
    }
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    // A reload compiles the whole catalogue: give it time.
    let answer = request(
        addr,
        "POST",
        "/reload",
        token.as_deref(),
        std::time::Duration::from_secs(60),
    )?;
    if answer.status == 200 {
        println!("{}", answer.body.trim());
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("reload refused ({}): {}", answer.status, answer.body.trim());
        Ok(ExitCode::FAILURE)
    }
}

fn licences_command(command: LicencesCommand) -> anyhow::Result<ExitCode> {
    match command {
        LicencesCommand::HashToken => {
            let mut token = String::new();
            std::io::stdin()
                .read_line(&mut token)
                .context("reading the token from stdin")?;
            let token = token.trim_end_matches(['\r', '\n']);
            if token.is_empty() {
                anyhow::bail!("no token on stdin");
            }
            println!("{}", rempart::licensing::licence::hash_token(token));
            Ok(ExitCode::SUCCESS)
        }
        LicencesCommand::Report {
            config,
            dir,
            since,
            until,
            format,
        } => {
            if until.is_some_and(|u| u < since) {
                eprintln!(
                    "error: --until {} is before --since {since}",
                    until.map_or_else(String::new, |u| u.to_string())
                );
                return Ok(ExitCode::from(2));
            }
            let dir = match dir {
                Some(d) => d,
                None => {
                    let config = Config::load(&config)?;
                    config.resolve(&config.raw.licensing.metering_dir)
                }
            };
            let until = until.map(|u| u.to_string());
            let rows =
                rempart::licensing::metering::report(&dir, &since.to_string(), until.as_deref())?;
            match format {
                ReportFormat::Csv => print!("{}", rempart::licensing::metering::to_csv(&rows)),
                ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn ranges_command(command: RangesCommand) -> anyhow::Result<ExitCode> {
    match command {
        RangesCommand::Refresh { config, state_dir } => {
            use rempart::ops::refresh::{read_sources, refresh_all, Dirs, Outcome};
            let mut config = Config::load(&config)?;
            if let Some(d) = &state_dir {
                config.relocate_state(d);
            }
            let r = &config.raw.ranges;
            let sources = read_sources(&config.resolve(&r.sources)).map_err(anyhow::Error::msg)?;
            let dirs = Dirs {
                shipped: config.resolve(&config.raw.catalog.ranges_dir),
                state: config.resolve(&r.state_dir),
                max_shrink_percent: r.max_shrink_percent,
            };
            let timeout = std::time::Duration::from_secs(r.timeout_seconds.max(1));
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let results = rt.block_on(async {
                let connector = pingora::connectors::http::Connector::new(None);
                refresh_all(&connector, &sources, &dirs, timeout, &r.allow_private_hosts).await
            });
            let mut failed = 0;
            for (s, o) in &results {
                match o {
                    Outcome::Updated { before, after } => {
                        println!("{}: updated ({before} -> {after} prefixes)", s.file)
                    }
                    Outcome::Unchanged { prefixes } => {
                        println!("{}: unchanged ({prefixes} prefixes)", s.file)
                    }
                    Outcome::Failed { stage, error } => {
                        failed += 1;
                        println!("{}: kept the previous list ({stage}: {error})", s.file)
                    }
                }
            }
            println!(
                "{} of {} lists refreshed into {}",
                results.len() - failed,
                results.len(),
                dirs.state.display()
            );
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

fn evidence_command(command: EvidenceCommand) -> anyhow::Result<ExitCode> {
    match command {
        EvidenceCommand::Verify { dir } => {
            let v = rempart::evidence::verify::verify(&dir)?;
            for w in &v.warnings {
                println!("note: {w}");
            }
            if let Some(p) = &v.pruned {
                println!("note: {p}");
            }
            match (&v.broken, &v.first, &v.last) {
                (Some(b), _, _) => {
                    println!("BROKEN at {b}");
                    println!("{} records verified before the break", v.records);
                    Ok(ExitCode::FAILURE)
                }
                (None, Some((a, ta)), Some((z, tz))) => {
                    println!(
                        "intact: {} records in {} files, seq {a} ({ta}) to {z} ({tz})",
                        v.records, v.files
                    );
                    Ok(ExitCode::SUCCESS)
                }
                _ => {
                    println!("intact: no records");
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        EvidenceCommand::Report {
            dir,
            since,
            until,
            format,
            output,
        } => {
            use rempart::evidence::report;
            let r = report::build(&dir, since, until)?;
            let text = report::render(&r, format)?;
            match output {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("{}: cannot write", path.display()))?,
                None => print!("{text}"),
            }
            if !r.intact {
                eprintln!("warning: {}", r.integrity);
            }
            Ok(ExitCode::SUCCESS)
        }
        EvidenceCommand::Pseudonym { config, ip } => {
            let config = Config::load(&config)?;
            let path = config.resolve(&config.raw.evidence.ip_key_file);
            if !path.exists() {
                anyhow::bail!(
                    "{}: no address key (created when the proxy first starts)",
                    path.display()
                );
            }
            let key = rempart::evidence::pseudonym::PseudonymKey::load_or_create(&path)?;
            println!("{}", key.pseudonym(ip));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `rempart optout clause`: the clause as the proxy serves it, from the
/// same snapshot, so that what is printed is what is published.
fn optout_command(command: OptoutCommand) -> anyhow::Result<ExitCode> {
    let OptoutCommand::Clause {
        config,
        lang,
        format,
    } = command;
    let snap = offline_snapshot(&config)?;
    let clause = snap.pages.clause.as_ref().with_context(|| {
        format!(
            "{}: no [reservation] section, so no clause to state",
            config.display()
        )
    })?;
    let page = clause.get(lang.into(), format);
    std::io::stdout().write_all(&page.body)?;
    Ok(ExitCode::SUCCESS)
}

fn network_command(command: NetworkCommand) -> anyhow::Result<ExitCode> {
    match command {
        NetworkCommand::Import { files, output } => {
            print!("{}", rempart::ops::network::import_files(&files, &output)?);
            Ok(ExitCode::SUCCESS)
        }
        NetworkCommand::Lookup { config, ips } => {
            print!("{}", rempart::ops::network::lookup(&config, &ips)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn catalog_command(command: CatalogCommand) -> anyhow::Result<ExitCode> {
    use rempart::catalog::refresh;
    let report = match command {
        CatalogCommand::Import {
            source,
            path,
            config,
            output,
            provenance,
        } => refresh::write(&refresh::import(
            &source, &path, &config, output, provenance,
        )?)?,
        CatalogCommand::ImportAiRobots {
            path,
            output,
            source,
        } => {
            let provenance = source.or_else(|| {
                path.file_name()
                    .map(|n| format!("ai.robots.txt robots.json ({})", n.to_string_lossy()))
            });
            let config = PathBuf::from("config/rempart.toml");
            refresh::write(&refresh::import(
                "ai-robots",
                &path,
                &config,
                Some(output),
                provenance,
            )?)?
        }
        CatalogCommand::Diff {
            source,
            path,
            config,
            against,
            provenance,
        } => refresh::diff(&refresh::import(
            &source, &path, &config, against, provenance,
        )?)?,
    };
    print!("{report}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::log_directives;

    #[test]
    fn naming_one_target_keeps_the_others_at_info() {
        assert_eq!(log_directives(None), "info");
        assert_eq!(
            log_directives(Some("rempart::access=debug")),
            "info,rempart::access=debug"
        );
        assert_eq!(
            log_directives(Some("warn,rempart=debug")),
            "warn,rempart=debug"
        );
        assert_eq!(log_directives(Some("DEBUG")), "DEBUG");
        assert_eq!(log_directives(Some("rempart")), "info,rempart");
    }
}
