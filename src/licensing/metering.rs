//! Per-licensee metering: one JSON line per licensed or charged request,
//! written off the hot path, and the report a collecting society invoices
//! from (`rempart licences report`).
//!
//! The proxy hands records to a bounded queue; a dedicated thread appends
//! them to one file per UTC day (`metering-YYYY-MM-DD.jsonl`) and flushes
//! every second. A full queue drops the record and counts it in
//! `rempart_metering_dropped_total`, so the proxy never waits on the disk.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Records waiting for the writer before new ones are dropped: a stalled
/// disk is survived for seconds at a licensed crawler's full speed. The
/// queue holds memory only for what waits ([`crate::queue`]).
const QUEUE: usize = 65_536;

/// One metered request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MeterRecord {
    /// Seconds since the epoch.
    pub ts: u64,
    pub licensee: String,
    pub path_class: String,
    pub path: String,
    pub status: u16,
    pub bytes: u64,
    /// Micro-euros charged under pay per crawl, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charged_micros: Option<u64>,
}

/// The kind of content a path serves, for invoicing by class.
pub fn path_class(path: &str) -> &'static str {
    let last = path.rsplit('/').next().unwrap_or("");
    let ext = last
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "" | "html" | "htm" => "page",
        "m3u8" | "mpd" => "media-manifest",
        "ts" | "m4s" | "mp4" | "m4v" | "m4a" | "aac" | "webm" => "media-segment",
        "jpg" | "jpeg" | "png" | "gif" | "webp" | "avif" | "svg" => "image",
        "css" | "js" | "mjs" | "woff" | "woff2" | "ttf" => "asset",
        "json" | "xml" => "data",
        _ => "other",
    }
}

/// The day (`YYYY-MM-DD`, UTC) of a timestamp.
pub fn day_of(ts: u64) -> String {
    crate::day::Day::of_unix(ts).to_string()
}

/// The sending side, held by the proxy.
pub struct Meter {
    tx: crate::queue::Sender<MeterRecord>,
}

impl Meter {
    /// Starts the writer thread for `dir` (created if missing). With
    /// `retention_days` above 0 it also removes, hourly, the files of days
    /// older than that (never today's, the one being written).
    pub fn start(dir: PathBuf, retention_days: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let (tx, rx) = crate::queue::bounded::<MeterRecord>(QUEUE);
        std::thread::Builder::new().name("rempart-metering".into()).spawn(move || {
            let mut open: Option<(String, BufWriter<std::fs::File>)> = None;
            let mut last_prune: Option<std::time::Instant> = None;
            loop {
                if retention_days > 0 && last_prune.is_none_or(|t| t.elapsed() >= PRUNE_INTERVAL) {
                    last_prune = Some(std::time::Instant::now());
                    prune(&dir, retention_days, now_secs());
                }
                match rx.recv_timeout(Duration::from_secs(1)) {
                    Ok(rec) => {
                        let day = day_of(rec.ts);
                        if open.as_ref().is_none_or(|(d, _)| *d != day) {
                            if let Some((_, mut w)) = open.take() {
                                let _ = w.flush();
                            }
                            let path = dir.join(format!("metering-{day}.jsonl"));
                            match OpenOptions::new().create(true).append(true).open(&path) {
                                Ok(f) => open = Some((day, BufWriter::new(f))),
                                Err(e) => {
                                    crate::metrics::metrics().metering_errors.inc();
                                    tracing::warn!(path = %path.display(), error = %e, "cannot open the metering file");
                                    continue;
                                }
                            }
                        }
                        if let Some((_, w)) = open.as_mut() {
                            let written = serde_json::to_writer(&mut *w, &rec).map_err(std::io::Error::from).and_then(|()| w.write_all(b"\n"));
                            if written.is_err() {
                                crate::metrics::metrics().metering_errors.inc();
                            }
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {
                        if let Some((_, w)) = open.as_mut() {
                            if w.flush().is_err() {
                                crate::metrics::metrics().metering_errors.inc();
                            }
                        }
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        if let Some((_, mut w)) = open.take() {
                            let _ = w.flush();
                        }
                        return;
                    }
                }
            }
        })?;
        Ok(Self { tx })
    }

    /// Queues a record; never blocks.
    pub fn record(&self, rec: MeterRecord) {
        if self.tx.try_send(rec).is_err() {
            crate::metrics::metrics().metering_dropped.inc();
        }
    }
}

/// How often metering retention is checked: files are per day, so an hour
/// is late by at most an hour.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3_600);

/// Removes the metering files of days that ended more than `retention_days`
/// before `now` (seconds since the epoch), one log line each; returns how
/// many were removed. Metering has no chain, so nothing else records it.
pub fn prune(dir: &Path, retention_days: u64, now: u64) -> usize {
    let cutoff = day_of(now.saturating_sub(retention_days.saturating_mul(86_400)));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let Some(day) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("metering-"))
            .and_then(|n| n.strip_suffix(".jsonl"))
        else {
            continue;
        };
        // Only names that are days: YYYY-MM-DD sorts as it reads.
        if day.len() != 10 || day.parse::<crate::day::Day>().is_err() || day >= cutoff.as_str() {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {
                removed += 1;
                crate::metrics::metrics().metering_pruned_files.inc();
                tracing::info!(file = %path.display(), retention_days, "metering: removed a file past retention");
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "metering: cannot remove a file past retention");
            }
        }
    }
    removed
}

/// Seconds since the epoch, now.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One line of the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReportRow {
    pub day: String,
    pub licensee: String,
    pub path_class: String,
    pub requests: u64,
    pub bytes: u64,
    pub charged_eur: f64,
}

/// Errors reading the metering directory.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a metering record: {source}")]
    Parse {
        path: PathBuf,
        line: usize,
        source: serde_json::Error,
    },
}

/// Aggregates the records of `dir` from `since` to `until` (inclusive days).
pub fn report(dir: &Path, since: &str, until: Option<&str>) -> Result<Vec<ReportRow>, ReportError> {
    let read = |path: &Path, source| ReportError::Read {
        path: path.to_owned(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| read(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("metering-") && n.ends_with(".jsonl"))
        })
        .collect();
    files.sort();
    let mut rows: BTreeMap<(String, String, String), (u64, u64, u64)> = BTreeMap::new();
    for path in files {
        let file = std::fs::File::open(&path).map_err(|e| read(&path, e))?;
        for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| read(&path, e))?;
            if line.trim().is_empty() {
                continue;
            }
            let rec: MeterRecord = match serde_json::from_str(&line) {
                Ok(r) => r,
                // A torn last line (crash mid-write) is not an invoice line.
                Err(_) if line.ends_with('}') => {
                    return Err(ReportError::Parse {
                        path,
                        line: n + 1,
                        source: serde_json::from_str::<MeterRecord>(&line).unwrap_err(),
                    });
                }
                Err(_) => continue,
            };
            let day = day_of(rec.ts);
            if day.as_str() < since || until.is_some_and(|u| day.as_str() > u) {
                continue;
            }
            let e = rows.entry((day, rec.licensee, rec.path_class)).or_default();
            e.0 += 1;
            e.1 += rec.bytes;
            e.2 += rec.charged_micros.unwrap_or(0);
        }
    }
    Ok(rows
        .into_iter()
        .map(
            |((day, licensee, path_class), (requests, bytes, micros))| ReportRow {
                day,
                licensee,
                path_class,
                requests,
                bytes,
                charged_eur: micros as f64 / 1_000_000.0,
            },
        )
        .collect())
}

/// The report as CSV.
pub fn to_csv(rows: &[ReportRow]) -> String {
    let mut out = String::from("day,licensee,path_class,requests,bytes,charged_eur\n");
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{},{:.6}\n",
            r.day, r.licensee, r.path_class, r.requests, r.bytes, r.charged_eur
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_classes() {
        assert_eq!(day_of(1_795_392_000), "2026-11-23");
        assert_eq!(path_class("/films/la-traversee"), "page");
        assert_eq!(path_class("/v/master.m3u8"), "media-manifest");
        assert_eq!(path_class("/v/seg-001.m4s"), "media-segment");
        assert_eq!(path_class("/img/poster.JPG"), "image");
        assert_eq!(path_class("/api/films.json"), "data");
    }

    #[test]
    fn written_records_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let meter = Meter::start(dir.path().to_owned(), 0).unwrap();
        let day1 = 1_795_392_000; // 2026-11-23
        for (ts, lic, path, bytes, charged) in [
            (day1 + 10, "acme", "/films/a", 100, None),
            (day1 + 20, "acme", "/films/b", 50, Some(10_000)),
            (day1 + 30, "acme", "/img/a.png", 7, None),
            (day1 + 86_400, "acme", "/films/a", 100, None),
            (day1 - 86_400, "acme", "/films/old", 1, None),
        ] {
            meter.record(MeterRecord {
                ts,
                licensee: lic.into(),
                path_class: path_class(path).into(),
                path: path.into(),
                status: 200,
                bytes,
                charged_micros: charged,
            });
        }
        drop(meter);
        // The writer flushes on disconnect.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let rows = loop {
            let rows = report(dir.path(), "2026-11-23", None).unwrap();
            if rows.iter().map(|r| r.requests).sum::<u64>() == 4
                || std::time::Instant::now() > deadline
            {
                break rows;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[1],
            ReportRow {
                day: "2026-11-23".into(),
                licensee: "acme".into(),
                path_class: "page".into(),
                requests: 2,
                bytes: 150,
                charged_eur: 0.01
            }
        );
        assert_eq!(rows[2].day, "2026-11-24");
        let only = report(dir.path(), "2026-11-23", Some("2026-11-23")).unwrap();
        assert_eq!(only.len(), 2);
        let csv = to_csv(&only);
        assert!(csv.starts_with("day,licensee,path_class,requests,bytes,charged_eur\n2026-11-23,acme,image,1,7,0.000000\n"), "{csv}");
    }

    #[test]
    fn a_torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("metering-2026-11-23.jsonl"),
            "{\"ts\":1795392010,\"licensee\":\"a\",\"path_class\":\"page\",\"path\":\"/\",\"status\":200,\"bytes\":1}\n{\"ts\":17953920",
        )
        .unwrap();
        let rows = report(dir.path(), "2026-01-01", None).unwrap();
        assert_eq!(rows.len(), 1);
    }

    #[test]
    fn files_past_retention_are_removed_and_today_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let now = 1_795_392_000 + 3_600; // 2026-11-23, 01:00
        for day in ["2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23"] {
            std::fs::write(dir.path().join(format!("metering-{day}.jsonl")), "").unwrap();
        }
        std::fs::write(dir.path().join("metering-notes.jsonl"), "").unwrap();
        std::fs::write(dir.path().join("other-2026-01-01.jsonl"), "").unwrap();
        let before = crate::metrics::metrics().metering_pruned_files.get();
        assert_eq!(prune(dir.path(), 2, now), 1);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "metering-2026-11-21.jsonl",
                "metering-2026-11-22.jsonl",
                "metering-2026-11-23.jsonl",
                "metering-notes.jsonl",
                "other-2026-01-01.jsonl"
            ]
        );
        assert!(crate::metrics::metrics().metering_pruned_files.get() > before);
        // A day goes once it ended more than the retention ago: with one
        // day, yesterday (ended an hour ago) and today stay.
        assert_eq!(prune(dir.path(), 1, now), 1);
        assert!(dir.path().join("metering-2026-11-22.jsonl").exists());
        assert!(dir.path().join("metering-2026-11-23.jsonl").exists());
    }

    #[test]
    fn the_writer_prunes_at_start_when_told() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("metering-2000-01-01.jsonl");
        std::fs::write(&old, "").unwrap();
        let meter = Meter::start(dir.path().to_owned(), 30).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while old.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!old.exists());
        drop(meter);
        // Off (0): nothing is removed.
        std::fs::write(&old, "").unwrap();
        let meter = Meter::start(dir.path().to_owned(), 0).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert!(old.exists());
        drop(meter);
    }
}
