//! Page counts shared across replicas through Redis.
//!
//! The request path never waits for Redis: it queues its increments (a
//! bounded channel, `try_send`), and a flusher thread sends them every
//! `flush_ms` as one pipeline of `INCRBY` + `EXPIRE` per key, then writes the
//! totals Redis returns back into the local tracker. A replica thus sees
//! the combined count of a client one flush late at most. When Redis is
//! unreachable the batch is dropped (local counts still apply, so each replica
//! falls back to what it sees itself), the failure is counted, and the
//! flusher reconnects on its next round.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::tracker::{RateKind, SharedIncrement, Tracker};
use crate::metrics::metrics;

/// Increments waiting for the flusher; beyond this they are dropped (and counted).
const QUEUE: usize = 65_536;

/// The request side of the shared store.
#[derive(Debug, Clone)]
pub struct SharedStore {
    tx: mpsc::Sender<SharedIncrement>,
}

impl SharedStore {
    /// Starts the flusher thread for `url`.
    pub fn start(
        url: &str,
        flush: Duration,
        window: Duration,
        tracker: Arc<Tracker>,
    ) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)
            .map_err(|e| anyhow::anyhow!("behaviour.redis_url {url:?}: {e}"))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let ttl = (window.as_secs() * 2).max(2);
        std::thread::Builder::new()
            .name("rempart-shared-state".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "shared state: no runtime; local state only");
                        return;
                    }
                };
                rt.block_on(flush_loop(client, rx, flush, ttl, tracker));
            })?;
        Ok(Self { tx })
    }

    /// Queues one increment; never waits.
    pub fn send(&self, inc: SharedIncrement) {
        if self.tx.try_send(inc).is_err() {
            metrics()
                .behaviour_store_errors
                .with_label_values(&["queue-full"])
                .inc();
        }
    }
}

struct Pending {
    kind: RateKind,
    local_key: u64,
    window: u32,
    count: u32,
}

async fn flush_loop(
    client: redis::Client,
    mut rx: mpsc::Receiver<SharedIncrement>,
    every: Duration,
    ttl: u64,
    tracker: Arc<Tracker>,
) {
    let m = metrics();
    let mut conn: Option<redis::aio::MultiplexedConnection> = None;
    let mut batch: HashMap<String, Pending> = HashMap::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            inc = rx.recv() => match inc {
                Some(inc) => {
                    batch
                        .entry(inc.shared_key)
                        .or_insert(Pending { kind: inc.kind, local_key: inc.local_key, window: inc.window, count: 0 })
                        .count += 1;
                }
                None => return,
            },
            _ = tick.tick() => {
                if batch.is_empty() {
                    continue;
                }
                if conn.is_none() {
                    match tokio::time::timeout(Duration::from_secs(1), client.get_multiplexed_async_connection()).await {
                        Ok(Ok(c)) => {
                            if m.behaviour_store_up.get() == 0 {
                                tracing::info!("shared state: connected to Redis");
                            }
                            conn = Some(c);
                        }
                        Ok(Err(e)) => fail(&mut batch, "connect", &e.to_string()),
                        Err(_) => fail(&mut batch, "connect", "timed out"),
                    }
                }
                let Some(c) = conn.as_mut() else { continue };
                let entries: Vec<(String, Pending)> = batch.drain().collect();
                let mut pipe = redis::pipe();
                for (key, p) in &entries {
                    pipe.cmd("INCRBY").arg(key).arg(p.count);
                    pipe.cmd("EXPIRE").arg(key).arg(ttl).ignore();
                }
                match tokio::time::timeout(Duration::from_secs(1), pipe.query_async::<Vec<i64>>(c)).await {
                    Ok(Ok(totals)) => {
                        m.behaviour_store_up.set(1);
                        m.behaviour_store_flushes.inc();
                        for ((_, p), total) in entries.iter().zip(totals) {
                            let total = u32::try_from(total.max(0)).unwrap_or(u32::MAX);
                            tracker.apply_shared(p.kind, p.local_key, p.window, total, p.count);
                        }
                    }
                    Ok(Err(e)) => {
                        conn = None;
                        fail(&mut batch, "write", &e.to_string());
                    }
                    Err(_) => {
                        conn = None;
                        fail(&mut batch, "write", "timed out");
                    }
                }
            }
        }
    }
}

/// Drops a batch that could not be sent: local counts already hold it.
fn fail(batch: &mut HashMap<String, Pending>, what: &'static str, error: &str) {
    let m = metrics();
    if m.behaviour_store_up.get() != 0 {
        tracing::warn!(
            error,
            "shared state: Redis unreachable; each replica counts alone until it returns"
        );
    }
    m.behaviour_store_up.set(0);
    m.behaviour_store_errors.with_label_values(&[what]).inc();
    batch.clear();
}
