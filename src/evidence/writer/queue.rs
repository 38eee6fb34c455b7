//! What the writer's queue carries and what waits for the disk.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;

use super::Pending;
use crate::evidence::record::{Body, ClientId, LineRef};

/// The most entries taken off the queue before they are written and the core
/// is given up: the records built and waiting for the disk stay few (memory),
/// and a proxy thread sharing the core waits for one chunk at most (128
/// records, about 0.25 ms; in the refusal flood, 64 kept 15 % fewer records
/// for no lower p99, 1,024 held the core until the scheduler's tick).
pub(super) const TAKE: usize = 128;

/// The request side of the queue: it never waits, and it never touches the
/// slot the writer is reading.
///
/// The channel alone would do neither when full: its sender then wants the
/// very slot the receiver is taking, and spins (without yielding) until the
/// receiver has finished with it. The writer runs at a lower priority on a
/// core it may share with the proxy, so a writer preempted in the middle of a
/// take would hold that proxy thread spinning until the scheduler let the
/// writer back on. So the entries are counted beside the channel: past
/// `limit` an entry is refused before the channel is touched, and the
/// channel has room for one more than the limit, so a sender always finds a
/// free slot.
#[derive(Debug, Clone)]
pub(super) struct Sender {
    tx: SyncSender<Entry>,
    waiting: Arc<AtomicUsize>,
    limit: usize,
}

/// The writer's side: each entry taken leaves the count.
pub(super) struct Taker {
    rx: Receiver<Entry>,
    waiting: Arc<AtomicUsize>,
}

/// A queue of at most `limit` entries (at least one).
pub(super) fn bounded(limit: usize) -> (Sender, Taker) {
    let limit = limit.max(1);
    let (tx, rx) = mpsc::sync_channel(limit + 1);
    let waiting = Arc::new(AtomicUsize::new(0));
    (
        Sender {
            tx,
            waiting: waiting.clone(),
            limit,
        },
        Taker { rx, waiting },
    )
}

impl Sender {
    /// Queues `entry`; false (the entry dropped) when the queue is full or
    /// the writer has stopped.
    #[must_use]
    pub(super) fn try_send(&self, entry: Entry) -> bool {
        // Counted first: of the senders racing for the last places, only
        // those that found the count below the limit go on, so the channel
        // never holds more than `limit` entries.
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.limit {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        if self.tx.try_send(entry).is_err() {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }
}

impl Taker {
    /// The next entry, if one is waiting.
    pub(super) fn try_recv(&self) -> Result<Entry, TryRecvError> {
        let entry = self.rx.try_recv()?;
        // After the take, so that the slot just read is never offered to a
        // sender while it is still being read.
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        Ok(entry)
    }
}

/// What the queue carries: a request's record still to be written out, or
/// any other record, built.
#[derive(Debug)]
pub(super) enum Entry {
    Request(Box<Pending>),
    Body(Body),
}

/// What waits for the disk: a record, or a request handed over unbuilt with
/// its client named (the per-client cap needed the name).
#[derive(Debug)]
pub(super) enum Queued {
    Body(Body),
    Request(Box<Pending>, ClientId),
}

impl From<Body> for Queued {
    fn from(b: Body) -> Self {
        Queued::Body(b)
    }
}

impl Queued {
    /// A request's record, either way it came.
    pub(super) fn is_request(&self) -> bool {
        matches!(self, Queued::Request(..) | Queued::Body(Body::Request(_)))
    }

    /// Appends the line's JSON to `out`.
    pub(super) fn write_line(
        &self,
        out: &mut Vec<u8>,
        seq: u64,
        ts: &str,
        prev: &str,
    ) -> serde_json::Result<()> {
        match self {
            Queued::Body(body) => serde_json::to_writer(
                out,
                &LineRef {
                    seq,
                    ts,
                    prev,
                    body,
                },
            ),
            Queued::Request(p, client) => p.write_line(out, seq, ts, prev, client),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u64) -> Entry {
        Entry::Body(Body::Gap {
            missing: n,
            reason: "test".into(),
        })
    }

    fn missing(e: Entry) -> u64 {
        match e {
            Entry::Body(Body::Gap { missing, .. }) => missing,
            other => panic!("unexpected entry {other:?}"),
        }
    }

    #[test]
    fn holds_the_limit_refuses_past_it_and_frees_a_place_per_take() {
        let (tx, rx) = bounded(3);
        for n in 0..3 {
            assert!(tx.try_send(entry(n)), "entry {n} refused below the limit");
        }
        // Past the limit the entry is refused at once, though the channel
        // itself would have room for one more.
        assert!(!tx.try_send(entry(9)), "a fourth entry was queued");
        assert_eq!(tx.waiting.load(Ordering::Acquire), 3);

        assert_eq!(missing(rx.try_recv().unwrap()), 0);
        assert_eq!(tx.waiting.load(Ordering::Acquire), 2);
        assert!(
            tx.try_send(entry(3)),
            "the place freed by a take was not offered"
        );
        assert!(!tx.try_send(entry(4)));

        let order: Vec<u64> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(missing)
            .collect();
        assert_eq!(order, [1, 2, 3]);
        assert_eq!(tx.waiting.load(Ordering::Acquire), 0);
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    }

    #[test]
    fn a_limit_of_zero_is_one_and_a_stopped_writer_refuses() {
        let (tx, rx) = bounded(0);
        assert!(tx.try_send(entry(0)));
        assert!(!tx.try_send(entry(1)));
        drop(rx);
        let (tx, rx) = bounded(4);
        drop(rx);
        assert!(!tx.try_send(entry(7)), "queued to no writer");
        // A refused entry leaves no place taken.
        assert_eq!(tx.waiting.load(Ordering::Acquire), 0);
    }

    #[test]
    fn racing_senders_never_queue_more_than_the_limit() {
        let (tx, rx) = bounded(64);
        let accepted: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let tx = tx.clone();
                    s.spawn(move || (0..1000).filter(|&n| tx.try_send(entry(n))).count())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(accepted, 64);
        assert_eq!(std::iter::from_fn(|| rx.try_recv().ok()).count(), 64);
    }
}
