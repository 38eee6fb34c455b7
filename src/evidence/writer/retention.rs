//! Retention: whole closed ledger files removed, oldest first, past an age
//! or while the ledger is over a size, each named first in a `pruned`
//! record of the live chain so that `rempart evidence verify` can tell a
//! documented pruning from files that went missing. Off unless configured:
//! the ledger is evidence, and should be archived off the machine first.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::{ledger_files, read_lines, Queued, Writer};
use crate::evidence::record::{Body, Line, PrunedFile};
use crate::metrics::metrics;

/// What a removed file held, read before it is removed.
fn describe(path: &Path) -> std::io::Result<PrunedFile> {
    let bytes = std::fs::read(path)?;
    let (lines, _) = read_lines(path)?;
    let seq = |l: &Vec<u8>| serde_json::from_slice::<Line>(l).ok().map(|l| l.seq);
    Ok(PrunedFile {
        file: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        bytes: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(&bytes)),
        first_seq: lines.first().and_then(seq),
        last_seq: lines.last().and_then(seq),
        last_hash: lines.last().map(|l| hex::encode(Sha256::digest(l))),
    })
}

/// Closed files to remove, oldest first: a run from the oldest, each past
/// the age limit or needed to bring the ledger under the size limit. The
/// file being written is never one of them.
fn choose(files: &[(PathBuf, u64, SystemTime)], age: Duration, max: u64) -> (usize, String) {
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    let now = SystemTime::now();
    let mut n = 0;
    let mut reason = String::new();
    for (_, len, modified) in files {
        let old = !age.is_zero()
            && now
                .duration_since(*modified)
                .is_ok_and(|elapsed| elapsed > age);
        let over = max > 0 && total > max;
        if !old && !over {
            break;
        }
        if reason.is_empty() {
            reason = if old {
                format!("retention: older than {} s", age.as_secs())
            } else {
                format!("retention: ledger above {max} bytes")
            };
        }
        total = total.saturating_sub(*len);
        n += 1;
    }
    (n, reason)
}

impl Writer {
    /// Removes what retention allows: once at start (a restart applies a new
    /// setting at once), then at most once per `prune_interval`.
    pub(super) fn prune(&mut self) {
        let o = &self.opts;
        if (o.retention_age.is_zero() && o.retention_bytes == 0)
            || self
                .last_prune
                .is_some_and(|t| t.elapsed() < o.prune_interval)
        {
            return;
        }
        self.last_prune = Some(std::time::Instant::now());
        let current = self.file.as_ref().map(|f| f.path.clone());
        let mut live_len = 0;
        let mut closed = Vec::new();
        for p in ledger_files(&self.opts.dir).unwrap_or_default() {
            let Ok(m) = std::fs::metadata(&p) else {
                continue;
            };
            if Some(&p) == current.as_ref() {
                live_len = m.len();
                continue;
            }
            let modified = m.modified().unwrap_or_else(|_| SystemTime::now());
            closed.push((p, m.len(), modified));
        }
        let max = self.opts.retention_bytes.saturating_sub(live_len).max(1);
        let max = if self.opts.retention_bytes == 0 {
            0
        } else {
            max
        };
        let (n, reason) = choose(&closed, self.opts.retention_age, max);
        if n == 0 {
            return;
        }
        let mut files = Vec::new();
        for (p, _, _) in &closed[..n] {
            match describe(p) {
                Ok(d) => files.push((p.clone(), d)),
                Err(e) => {
                    tracing::warn!(file = %p.display(), error = %e, "evidence: cannot read a file to prune; keeping it");
                    break;
                }
            }
        }
        self.remove_recorded(files, reason);
    }

    /// Writes the `pruned` record, forces it to disk, and only then removes
    /// the files it names: a failed write removes nothing.
    fn remove_recorded(&mut self, files: Vec<(PathBuf, PrunedFile)>, reason: String) {
        if files.is_empty() {
            return;
        }
        self.queue.push_back(Queued::Body(Body::Pruned {
            reason,
            files: files.iter().map(|(_, d)| d.clone()).collect(),
        }));
        self.write_batch();
        let is_pruned = |q: &Queued| matches!(q, Queued::Body(Body::Pruned { .. }));
        if self.queue.iter().any(is_pruned) {
            // Not written (full disk): remove nothing, and drop the record so
            // that the chain never names a file that is still there.
            self.queue.retain(|b| !is_pruned(b));
            return;
        }
        if !self.sync() {
            // The record is written but maybe not durable: keep the files;
            // a later pruning names them again.
            tracing::warn!("evidence: the pruned record is not on disk; keeping the files");
            return;
        }
        for (p, d) in files {
            match std::fs::remove_file(&p) {
                Ok(()) => {
                    self.used = self.used.saturating_sub(d.bytes);
                    metrics().evidence_bytes.set(self.used as i64);
                    metrics().evidence_pruned_files.inc();
                    tracing::info!(file = %d.file, bytes = d.bytes, sha256 = %d.sha256, "evidence: pruned a ledger file (retention)");
                }
                Err(e) => {
                    tracing::warn!(file = %p.display(), error = %e, "evidence: cannot remove a pruned file");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::evidence::verify::verify;
    use crate::evidence::{Evidence, LedgerOptions, PublishedRecord};

    /// Every whole line of the ledger; files removed meanwhile are skipped.
    fn lines(dir: &Path) -> Vec<serde_json::Value> {
        ledger_files(dir)
            .unwrap_or_default()
            .iter()
            .filter_map(|f| read_lines(f).ok())
            .flat_map(|(l, _)| l)
            .filter_map(|l| serde_json::from_slice(&l).ok())
            .collect()
    }

    fn published(i: usize) -> Body {
        Body::Published(PublishedRecord {
            document: "robots.txt".into(),
            sha256: format!("{i:064x}"),
            content: "x".repeat(200),
        })
    }

    fn opts(dir: &Path) -> LedgerOptions {
        LedgerOptions {
            max_file_bytes: 2_000,
            prune_interval: Duration::from_millis(50),
            ..LedgerOptions::new(dir.to_path_buf())
        }
    }

    /// Waits until `f` holds, then stops the writer, so that the files no
    /// longer change while they are checked.
    fn settle(ev: Evidence, dir: &Path, f: impl Fn(&[serde_json::Value]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f(&lines(dir)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(ev);
        std::thread::sleep(Duration::from_millis(200));
    }

    fn pruned_names(all: &[serde_json::Value]) -> Vec<String> {
        all.iter()
            .filter(|r| r["type"] == "pruned")
            .flat_map(|r| r["files"].as_array().cloned().unwrap_or_default())
            .filter_map(|f| f["file"].as_str().map(str::to_owned))
            .collect()
    }

    #[test]
    fn over_the_size_limit_the_oldest_files_go_and_verify_names_the_pruning() {
        let dir = tempfile::tempdir().unwrap();
        let before = metrics().evidence_pruned_files.get();
        let ev = Evidence::start(LedgerOptions {
            retention_bytes: 6_000,
            ..opts(dir.path())
        })
        .unwrap();
        for i in 0..60 {
            ev.record(published(i));
        }
        let total = |d: &Path| -> u64 {
            ledger_files(d)
                .unwrap()
                .iter()
                .filter_map(|f| std::fs::metadata(f).ok())
                .map(|m| m.len())
                .sum()
        };
        settle(ev, dir.path(), |l| {
            l.iter().filter(|r| r["type"] == "published").count() >= 10
                && l.iter().any(|r| r["seq"].as_u64() == Some(60))
                && total(dir.path()) <= 6_000
        });
        let all = lines(dir.path());
        let names = pruned_names(&all);
        assert!(!names.is_empty(), "{all:#?}");
        for n in &names {
            assert!(!dir.path().join(n).exists(), "{n} named as pruned but kept");
        }
        assert!(names.contains(&"ledger-000000000000.jsonl".to_owned()));
        assert!(total(dir.path()) <= 6_000, "{}", total(dir.path()));
        assert!(metrics().evidence_pruned_files.get() >= before + names.len() as u64);
        let v = verify(dir.path()).unwrap();
        assert!(v.is_intact(), "{:?}", v.broken);
        let note = v.pruned.expect("the pruning is reported");
        assert!(note.contains("removed by retention"), "{note}");
    }

    #[test]
    fn closed_files_past_the_age_go_but_never_the_one_being_written() {
        let dir = tempfile::tempdir().unwrap();
        let ev = Evidence::start(LedgerOptions {
            retention_age: Duration::from_millis(300),
            ..opts(dir.path())
        })
        .unwrap();
        for i in 0..30 {
            ev.record(published(i));
        }
        settle(ev, dir.path(), |l| {
            l.iter().any(|r| r["type"] == "pruned") && ledger_files(dir.path()).unwrap().len() == 1
        });
        let files = ledger_files(dir.path()).unwrap();
        assert_eq!(files.len(), 1, "only the live file is left: {files:?}");
        let all = lines(dir.path());
        let pruned: Vec<_> = all.iter().filter(|r| r["type"] == "pruned").collect();
        assert!(!pruned.is_empty());
        let f = &pruned[0]["files"][0];
        assert_eq!(f["first_seq"], 0);
        assert_eq!(f["sha256"].as_str().map(str::len), Some(64));
        assert!(f["bytes"].as_u64().is_some_and(|b| b > 0));
        assert!(pruned[0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("older than"));
        let v = verify(dir.path()).unwrap();
        assert!(v.is_intact(), "{:?}", v.broken);
        assert!(v.pruned.is_some());
    }

    #[test]
    fn a_file_removed_by_hand_still_breaks_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        // Without retention: the oldest file removed by hand.
        let ev = Evidence::start(opts(dir.path())).unwrap();
        for i in 0..30 {
            ev.record(published(i));
        }
        settle(ev, dir.path(), |l| l.len() == 31);
        let files = ledger_files(dir.path()).unwrap();
        assert!(files.len() > 2, "{files:?}");
        assert!(verify(dir.path()).unwrap().is_intact());
        std::fs::remove_file(&files[0]).unwrap();
        let v = verify(dir.path()).unwrap();
        let b = v
            .broken
            .expect("a missing file without a record is a break");
        assert!(b.message.contains("does not start the chain"), "{b}");
        assert!(v.pruned.is_none());
    }

    #[test]
    fn after_a_pruning_a_further_file_removed_by_hand_breaks_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let ev = Evidence::start(LedgerOptions {
            retention_bytes: 8_000,
            ..opts(dir.path())
        })
        .unwrap();
        for i in 0..60 {
            ev.record(published(i));
        }
        settle(ev, dir.path(), |l| {
            l.iter().any(|r| r["type"] == "pruned")
                && l.iter().any(|r| r["seq"].as_u64() == Some(60))
        });
        assert!(verify(dir.path()).unwrap().is_intact());
        let files = ledger_files(dir.path()).unwrap();
        assert!(files.len() >= 2, "{files:?}");
        std::fs::remove_file(&files[0]).unwrap();
        let v = verify(dir.path()).unwrap();
        assert!(
            v.broken.is_some(),
            "an undocumented removal passed: {:?}",
            v.pruned
        );
    }

    #[test]
    fn on_a_full_disk_nothing_is_removed_until_the_record_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let ev = Evidence::start(opts(dir.path())).unwrap();
        for i in 0..30 {
            ev.record(published(i));
        }
        settle(ev, dir.path(), |l| l.len() == 31);
        let files = ledger_files(dir.path()).unwrap();
        // A restart with retention, on a disk that refuses every write.
        let ev = Evidence::start(LedgerOptions {
            retention_bytes: 4_000,
            ..opts(dir.path())
        })
        .unwrap();
        ev.set_fault(true);
        std::thread::sleep(Duration::from_millis(500));
        assert!(files.iter().all(|f| f.exists()), "nothing removed");
        assert!(!lines(dir.path()).iter().any(|r| r["type"] == "pruned"));
        // Space returns: the record first, then the removal.
        ev.set_fault(false);
        settle(ev, dir.path(), |l| {
            l.iter().any(|r| r["type"] == "pruned") && !files[0].exists()
        });
        assert!(!files[0].exists());
        let v = verify(dir.path()).unwrap();
        assert!(v.is_intact(), "{:?}", v.broken);
        assert!(v.pruned.is_some());
    }

    #[test]
    fn only_a_run_from_the_oldest_is_chosen() {
        let now = SystemTime::now();
        let old = now - Duration::from_secs(100);
        let f = |n: &str, len, t| (PathBuf::from(n), len, t);
        let files = [f("a", 10, old), f("b", 10, now), f("c", 10, old)];
        // By age: stops at the first file young enough ("c" is kept too).
        assert_eq!(choose(&files, Duration::from_secs(50), 0).0, 1);
        // By size: as many as needed to be at or under the limit.
        assert_eq!(choose(&files, Duration::ZERO, 15).0, 2);
        assert_eq!(choose(&files, Duration::ZERO, 30).0, 0);
        // Off: nothing.
        assert_eq!(choose(&files, Duration::ZERO, 0).0, 0);
    }
}
