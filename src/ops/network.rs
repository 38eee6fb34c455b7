//! `rempart network import` and `rempart network lookup`: the network data
//! regenerated from the package's files, and looked up as the proxy would.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;

use crate::identify::network::import::{self, NAMES_FILE, RANGES_FILE};
use crate::identify::network::{load_hosting, NetworkTable};

/// Imports the package's CSV files into `out`; returns the report to print
/// (counts, and each output's SHA-256 for PROVENANCE).
pub fn import_files(inputs: &[PathBuf], out: &Path) -> anyhow::Result<String> {
    let mut texts = Vec::with_capacity(inputs.len());
    for p in inputs {
        let text = std::fs::read(p).with_context(|| format!("{}: cannot read", p.display()))?;
        texts.push((p.as_path(), text));
    }
    let borrowed: Vec<(&Path, &[u8])> = texts.iter().map(|(p, t)| (*p, t.as_slice())).collect();
    let imported = import::import(&borrowed)?;
    import::write(out, &imported).with_context(|| format!("{}: cannot write", out.display()))?;
    let mut report = format!(
        "{} IPv4 and {} IPv6 ranges, {} AS names written to {}\n",
        imported.ranges_v4,
        imported.ranges_v6,
        imported.names,
        out.display()
    );
    let _ = writeln!(
        report,
        "content-sha256 {RANGES_FILE} {}",
        imported.ranges_sha256()
    );
    let _ = writeln!(
        report,
        "content-sha256 {NAMES_FILE} {}",
        imported.names_sha256()
    );
    // The hosting list beside the data: every entry should name an AS the data knows.
    let hosting = out.join("hosting-asns.csv");
    if hosting.exists() {
        let names: std::collections::BTreeSet<u32> = imported
            .names_text
            .lines()
            .filter_map(|l| l.split(',').next()?.parse().ok())
            .collect();
        for h in load_hosting(&hosting)? {
            if !names.contains(&h.asn) {
                let _ = writeln!(
                    report,
                    "warning: hosting AS{} ({}) is not in the data",
                    h.asn, h.operator
                );
            }
        }
    }
    Ok(report)
}

/// Looks addresses up in the config's network table, with the load time.
pub fn lookup(config: &Path, ips: &[IpAddr]) -> anyhow::Result<String> {
    let config = crate::config::Config::load(config)?;
    let files = crate::snapshot::network_files(&config)
        .context("[network] is not enabled in this config")?;
    let started = Instant::now();
    let table = NetworkTable::load(&files)?;
    let (v4, v6, hosting) = table.sizes();
    let mut out = format!(
        "{v4} IPv4 and {v6} IPv6 ranges, {hosting} hosting ASNs, {:.1} MiB, loaded in {} ms\n",
        table.heap_bytes() as f64 / f64::from(1 << 20),
        started.elapsed().as_millis()
    );
    for ip in ips {
        let facts = table.lookup(*ip);
        let _ = match facts.asn {
            Some(asn) => writeln!(
                out,
                "{ip} AS{asn} {:?} hosting={}",
                table.as_name(asn.get()).unwrap_or(""),
                facts.hosting
            ),
            None => writeln!(out, "{ip} no AS"),
        };
    }
    Ok(out)
}
