//! The origin pool: every address of every origin, balanced round robin,
//! with passive health (an address that fails a connection is left out for
//! `server.upstream_fail_timeout_seconds`) and, when configured, active TCP
//! checks. Its addresses follow DNS: `ops::resolve` re-resolves origin names
//! in the background and swaps the table in whole. The table is built for
//! one snapshot; a reload that changes the origins gets a fresh table at
//! its first request, so that an address never outlives its origin.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;

use crate::snapshot::{Snapshot, Upstream};

/// One address of one origin.
#[derive(Debug)]
pub struct Entry {
    pub origin: usize,
    pub addr: SocketAddr,
    /// Until when (unix ms) the address is out of the balance; 0: in it.
    down_until_ms: AtomicU64,
}

/// The addresses in force, for one snapshot's origins.
#[derive(Debug)]
pub struct Table {
    /// The hash of the snapshot whose origins these are.
    pub snapshot: String,
    /// Each origin's addresses as last resolved (for the resolver to compare).
    pub resolved: Vec<Vec<SocketAddr>>,
    pub entries: Vec<Entry>,
}

/// The pool shared by the proxy's workers and the resolver.
#[derive(Debug)]
pub struct Pool {
    table: ArcSwap<Table>,
    next: AtomicUsize,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Table {
    /// A table of these addresses, keeping what is known of the health of
    /// addresses that stay.
    fn build(snapshot: &str, resolved: Vec<Vec<SocketAddr>>, old: Option<&Table>) -> Table {
        let mut entries = Vec::new();
        for (origin, addrs) in resolved.iter().enumerate() {
            for &addr in addrs {
                let down = old
                    .and_then(|t| {
                        t.entries
                            .iter()
                            .find(|e| e.origin == origin && e.addr == addr)
                    })
                    .map_or(0, |e| e.down_until_ms.load(Ordering::Relaxed));
                entries.push(Entry {
                    origin,
                    addr,
                    down_until_ms: AtomicU64::new(down),
                });
            }
        }
        Table {
            snapshot: snapshot.to_owned(),
            resolved,
            entries,
        }
    }

    fn of(snap: &Snapshot) -> Table {
        let resolved = snap
            .upstream
            .origins
            .iter()
            .map(|o| o.addrs.clone())
            .collect();
        Table::build(&snap.hash, resolved, None)
    }
}

impl Pool {
    pub fn new(snap: &Snapshot) -> Arc<Pool> {
        Arc::new(Pool {
            table: ArcSwap::from_pointee(Table::of(snap)),
            next: AtomicUsize::new(0),
        })
    }

    /// The table for this snapshot (a new one after a reload changed it).
    pub fn table(&self, snap: &Snapshot) -> Arc<Table> {
        let t = self.table.load_full();
        if t.snapshot == snap.hash {
            return t;
        }
        let fresh = Arc::new(Table::of(snap));
        self.table.store(fresh.clone());
        fresh
    }

    /// The next address to try: round robin over the addresses in the
    /// balance; when every one is out, the one that comes back first (an
    /// origin that is down for everyone is still tried, as nginx does).
    pub fn pick(&self, snap: &Snapshot) -> Option<(Arc<Table>, usize)> {
        let t = self.table(snap);
        let n = t.entries.len();
        if n == 0 {
            return None;
        }
        let now = now_ms();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let up = (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| t.entries[i].down_until_ms.load(Ordering::Relaxed) <= now);
        let i = up.unwrap_or_else(|| {
            (0..n)
                .min_by_key(|&i| t.entries[i].down_until_ms.load(Ordering::Relaxed))
                .unwrap_or(0)
        });
        Some((t, i))
    }

    /// An address failed a connection: out of the balance for a while.
    pub fn failed(table: &Table, entry: usize, upstream: &Upstream) {
        if let Some(e) = table.entries.get(entry) {
            let until = now_ms() + upstream.fail_timeout.as_millis() as u64;
            e.down_until_ms.store(until, Ordering::Relaxed);
        }
    }

    /// An address answered (an active check): back in the balance.
    pub fn recovered(table: &Table, entry: usize) {
        if let Some(e) = table.entries.get(entry) {
            e.down_until_ms.store(0, Ordering::Relaxed);
        }
    }

    /// The addresses of every origin as last resolved, and the snapshot
    /// they belong to.
    pub fn current(&self) -> Arc<Table> {
        self.table.load_full()
    }

    /// New answers for the current snapshot's origins (from the resolver).
    pub fn update(&self, snapshot: &str, resolved: Vec<Vec<SocketAddr>>) {
        let old = self.table.load_full();
        if old.snapshot != snapshot || old.resolved == resolved {
            return;
        }
        self.table
            .store(Arc::new(Table::build(snapshot, resolved, Some(&old))));
    }

    /// Addresses in and out of the balance, for `/readyz` and metrics.
    pub fn counts(&self) -> (usize, usize) {
        let t = self.table.load();
        let now = now_ms();
        let down = t
            .entries
            .iter()
            .filter(|e| e.down_until_ms.load(Ordering::Relaxed) > now)
            .count();
        (t.entries.len() - down, down)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(addrs: &[&str]) -> Table {
        let resolved = vec![addrs.iter().map(|a| a.parse().unwrap()).collect()];
        Table::build("h", resolved, None)
    }

    #[test]
    fn a_failed_address_is_skipped_and_its_health_survives_a_new_answer() {
        let pool = Pool {
            table: ArcSwap::from_pointee(table(&["10.0.0.1:80", "10.0.0.2:80"])),
            next: AtomicUsize::new(0),
        };
        let t = pool.current();
        let down = now_ms() + 60_000;
        t.entries[0].down_until_ms.store(down, Ordering::Relaxed);
        assert_eq!(pool.counts(), (1, 1));
        pool.update(
            "h",
            vec![vec![
                "10.0.0.1:80".parse().unwrap(),
                "10.0.0.3:80".parse().unwrap(),
            ]],
        );
        let t = pool.current();
        assert_eq!(t.entries.len(), 2);
        assert_eq!(
            t.entries[0].down_until_ms.load(Ordering::Relaxed),
            down,
            "kept"
        );
        assert_eq!(t.entries[1].down_until_ms.load(Ordering::Relaxed), 0, "new");
        pool.update("other snapshot", vec![vec![]]);
        assert_eq!(
            pool.current().entries.len(),
            2,
            "answers for another snapshot are ignored"
        );
    }
}
