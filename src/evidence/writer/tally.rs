//! What the ledger counts instead of recording one by one: browser visits
//! referred by an AI product, and AI crawler pages let through (neither is
//! a refusal, so neither has a request record). The request side adds to a
//! small shared table (one short lock, keys bounded by the referrers file
//! and the catalogue's operators); the writer turns it into one `tally`
//! record per interval that saw anything, so the ledger says visits
//! referred and pages taken per operator and period at a bounded cost.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{rfc3339, Queued, Writer};
use crate::evidence::record::Body;

/// Counts of the current interval, by operator.
#[derive(Debug, Default)]
pub struct Counts {
    pub referred: BTreeMap<String, u64>,
    pub crawled_allowed: BTreeMap<String, u64>,
}

/// The shared table (the request side's handle is in `Evidence`).
pub type Shared = Arc<Mutex<Counts>>;

/// Adds one to `operator` in the map `pick` chooses.
pub fn add(shared: &Shared, operator: &str, pick: fn(&mut Counts) -> &mut BTreeMap<String, u64>) {
    let mut counts = shared.lock().unwrap_or_else(|p| p.into_inner());
    let map = pick(&mut counts);
    match map.get_mut(operator) {
        Some(n) => *n += 1,
        None => {
            map.insert(operator.to_owned(), 1);
        }
    }
}

/// When the current interval started (wall clock and monotonic).
pub(super) struct Interval {
    pub wall: time::OffsetDateTime,
    pub at: Instant,
}

impl Interval {
    pub fn now() -> Self {
        Self {
            wall: time::OffsetDateTime::now_utc(),
            at: Instant::now(),
        }
    }
}

impl Writer {
    /// Closes the interval when it is over (or `force`, at shutdown): one
    /// `tally` record if anything was counted.
    pub(super) fn roll_tally(&mut self, force: bool) {
        if !force && self.interval.at.elapsed() < self.opts.tally_interval {
            return;
        }
        let counts = std::mem::take(&mut *self.tally.lock().unwrap_or_else(|p| p.into_inner()));
        let end = Interval::now();
        if !counts.referred.is_empty() || !counts.crawled_allowed.is_empty() {
            self.queue.push_back(Queued::Body(Body::Tally {
                period_start: rfc3339(self.interval.wall),
                period_end: rfc3339(end.wall),
                referred: counts.referred,
                crawled_allowed: counts.crawled_allowed,
            }));
        }
        self.interval = end;
    }
}
