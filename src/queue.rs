//! The queue from the request path to a writer thread (the ledger, metering,
//! the access log): bounded, never waiting, and holding only the memory of
//! what it holds.
//!
//! A `sync_channel` would do none of the last two. It allocates and touches
//! every slot when it is made (metering's 65,536 records were 7.5 MiB of
//! resident memory before the first request), and when full its sender wants
//! the very slot the receiver is taking and spins, without yielding, until
//! the receiver is done with it. A writer runs at a lower priority on a core
//! it may share with the proxy, so a writer preempted in the middle of a take
//! would hold a proxy thread spinning until the scheduler let the writer back
//! on.
//!
//! So the channel is the standard library's unbounded one (a list of blocks
//! of 31 slots, allocated as it fills and freed as it drains; a sender never
//! waits for the receiver), and the bound is a count kept beside it: past
//! `limit` a value is refused before the channel is touched.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

/// Why a value was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `limit` values are waiting.
    Full,
    /// The writer has stopped.
    Stopped,
}

/// The request side: it never waits.
#[derive(Debug)]
pub struct Sender<T> {
    tx: mpsc::Sender<T>,
    waiting: Arc<AtomicUsize>,
    limit: usize,
}

// Derived `Clone` would ask `T: Clone`, which a sender does not need.
impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            waiting: self.waiting.clone(),
            limit: self.limit,
        }
    }
}

/// The writer's side: each value taken leaves the count.
#[derive(Debug)]
pub struct Receiver<T> {
    rx: mpsc::Receiver<T>,
    waiting: Arc<AtomicUsize>,
}

/// A queue of at most `limit` values (at least one).
pub fn bounded<T>(limit: usize) -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = mpsc::channel();
    let waiting = Arc::new(AtomicUsize::new(0));
    (
        Sender {
            tx,
            waiting: waiting.clone(),
            limit: limit.max(1),
        },
        Receiver { rx, waiting },
    )
}

impl<T> Sender<T> {
    /// Queues `value`, or says why not (the value is then dropped).
    pub fn try_send(&self, value: T) -> Result<(), Refused> {
        // Counted first: of the senders racing for the last places, only
        // those that found the count below the limit go on, so the channel
        // never holds more than `limit` values.
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.limit {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Full);
        }
        if self.tx.send(value).is_err() {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Stopped);
        }
        Ok(())
    }

    /// Values waiting for the writer.
    pub fn len(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// No value is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Receiver<T> {
    /// The next value, if one is waiting.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.rx.try_recv().inspect(|_| self.left())
    }

    /// The next value, waiting up to `timeout` for one.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.rx.recv_timeout(timeout).inspect(|_| self.left())
    }

    /// After the take, so that the count never admits more than are held.
    fn left(&self) {
        self.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_the_limit_refuses_past_it_and_frees_a_place_per_take() {
        let (tx, rx) = bounded(3);
        for n in 0..3u64 {
            assert_eq!(tx.try_send(n), Ok(()), "value {n} refused below the limit");
        }
        assert_eq!(tx.try_send(9), Err(Refused::Full));
        assert_eq!(tx.len(), 3);

        assert_eq!(rx.try_recv(), Ok(0));
        assert_eq!(tx.len(), 2);
        assert_eq!(
            tx.try_send(3),
            Ok(()),
            "the place freed by a take was not offered"
        );
        assert_eq!(tx.try_send(4), Err(Refused::Full));

        assert_eq!(rx.recv_timeout(Duration::from_millis(10)), Ok(1));
        let order: Vec<u64> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(order, [2, 3]);
        assert!(tx.is_empty());
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(1)),
            Err(RecvTimeoutError::Timeout)
        );
    }

    #[test]
    fn a_limit_of_zero_is_one_and_a_stopped_writer_refuses() {
        let (tx, rx) = bounded(0);
        assert_eq!(tx.try_send(0u8), Ok(()));
        assert_eq!(tx.try_send(1), Err(Refused::Full));
        drop(rx);
        let (tx, rx) = bounded(4);
        drop(rx);
        assert_eq!(tx.try_send(7u8), Err(Refused::Stopped));
        // A refused value leaves no place taken.
        assert!(tx.is_empty());
    }

    #[test]
    fn racing_senders_never_queue_more_than_the_limit() {
        let (tx, rx) = bounded(64);
        let accepted: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let tx = tx.clone();
                    s.spawn(move || (0..1000u32).filter(|&n| tx.try_send(n).is_ok()).count())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(accepted, 64);
        assert_eq!(std::iter::from_fn(|| rx.try_recv().ok()).count(), 64);
    }

    #[test]
    fn a_queue_holds_no_memory_for_the_places_it_does_not_use() {
        // A limit far above what is queued: the bound is a count, not slots,
        // so making the queue allocates nothing per place.
        let (tx, rx) = bounded::<[u8; 4096]>(1 << 40);
        assert_eq!(tx.try_send([1; 4096]), Ok(()));
        assert_eq!(rx.try_recv().map(|v| v[0]), Ok(1));
    }
}
