//! What keeps the ledger from filling the disk: one client's request
//! records capped per minute (the rest become one `limited` record), and the
//! disk budget past which request records are counted, not written.

use std::hash::BuildHasher;
use std::path::Path;

use super::{ledger_files, rfc3339, Queued, Writer};
use crate::evidence::record::Body;
use crate::evidence::ClientId;
use crate::metrics::metrics;

/// Room kept past the budget for the records that say what was not
/// written (gaps, start records).
pub(super) const BUDGET_RESERVE: u64 = 64 * 1024;

/// Clients tracked per minute for the per-client cap (beyond, a new client
/// is not capped this minute: the cap bounds what one client writes, not
/// how many clients there are).
const MAX_TRACKED_CLIENTS: usize = 65_536;

/// The per-client cap of the current minute.
#[derive(Default)]
pub(super) struct Limits {
    minute: i64,
    /// Records kept this minute, per client. The key is a keyed hash of the
    /// client's name (random key per writer): a flood from 65,536 addresses
    /// fills the table, and 64-bit keys hold it in 2 MiB where the names took
    /// 8.6. Nobody can aim a name at another's count, and an accidental
    /// collision (two clients sharing one cap) is a one in 2^64 event.
    kept: std::collections::HashMap<u64, u32>,
    keys: std::hash::RandomState,
    /// Records not written this minute, per client.
    limited: std::collections::BTreeMap<String, u64>,
    /// Request records not written because of the disk budget, not yet in a gap.
    over_budget: u64,
    /// The budget was reached (logged once).
    budget_hit: bool,
    /// When the last budget gap was written (one a minute at most).
    budget_gap_minute: i64,
}

/// Bytes of every ledger file in `dir`.
pub(super) fn ledger_bytes(dir: &Path) -> u64 {
    ledger_files(dir)
        .unwrap_or_default()
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

impl Writer {
    /// Applies the per-client cap and the disk budget to a request record.
    pub(super) fn admit(&mut self, queued: &Queued) -> bool {
        let client = match queued {
            Queued::Request(_, client) => client,
            Queued::Body(Body::Request(r)) => &r.client,
            Queued::Body(_) => return true,
        };
        self.roll_window();
        if self.over_budget() {
            self.limits.over_budget += 1;
            metrics().evidence_dropped.inc();
            return false;
        }
        if self.opts.per_client_minute == 0 {
            return true;
        }
        let key = match client {
            ClientId::Ip(s) | ClientId::Pseudonym(s) => s,
        };
        let tracked = self.limits.kept.len();
        let hash = self.limits.keys.hash_one(key);
        match self.limits.kept.get_mut(&hash) {
            Some(n) if *n >= self.opts.per_client_minute => {
                *self.limits.limited.entry(key.clone()).or_default() += 1;
                metrics().evidence_limited.inc();
                false
            }
            Some(n) => {
                *n += 1;
                true
            }
            None if tracked < MAX_TRACKED_CLIENTS => {
                self.limits.kept.insert(hash, 1);
                true
            }
            None => true,
        }
    }

    /// True once the ledger reached its budget (logged and flagged once).
    fn over_budget(&mut self) -> bool {
        if self.opts.max_bytes == 0 || self.used < self.opts.max_bytes {
            return false;
        }
        if !self.limits.budget_hit {
            self.limits.budget_hit = true;
            metrics().evidence_budget_exhausted.set(1);
            tracing::error!(
                used = self.used,
                max_bytes = self.opts.max_bytes,
                dir = %self.opts.dir.display(),
                "evidence: the ledger reached evidence.max_bytes; request records are now counted, not written (move old ledger files off the machine, or raise the budget)"
            );
        }
        true
    }

    /// Past the budget, request records already queued are counted too.
    pub(super) fn shed_over_budget(&mut self) {
        if !self.over_budget() {
            return;
        }
        let before = self.queue.len();
        self.queue.retain(|q| !q.is_request());
        let shed = (before - self.queue.len()) as u64;
        if shed > 0 {
            self.limits.over_budget += shed;
            metrics().evidence_dropped.inc_by(shed);
        }
    }

    /// The current window, by the clock.
    fn window(&self) -> i64 {
        let secs = self.opts.limit_window.as_secs().max(1) as i64;
        time::OffsetDateTime::now_utc()
            .unix_timestamp()
            .div_euclid(secs)
    }

    /// Closes the window when the clock has left it.
    pub(super) fn roll_window(&mut self) {
        let w = self.window();
        if w != self.limits.minute {
            self.close_minute();
            self.limits.minute = w;
        }
    }

    /// Ends a window: one `limited` record per client that went over the cap.
    pub(super) fn close_minute(&mut self) {
        let secs = self.opts.limit_window.as_secs().max(1) as i64;
        let minute = self.limits.minute;
        self.limits.kept.clear();
        for (client, records) in std::mem::take(&mut self.limits.limited) {
            self.queue.push_back(Queued::Body(Body::Limited {
                client,
                minute_start: rfc3339(
                    time::OffsetDateTime::from_unix_timestamp(minute * secs)
                        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
                ),
                records,
            }));
        }
        if self.limits.over_budget > 0 && self.limits.budget_gap_minute != minute {
            self.limits.budget_gap_minute = minute;
            self.queue.push_back(Queued::Body(Body::Gap {
                missing: std::mem::take(&mut self.limits.over_budget),
                reason: "disk budget (evidence.max_bytes) reached".into(),
            }));
        }
    }
}
