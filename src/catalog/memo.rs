//! A small table of what recent user agents were found to be.
//!
//! Most traffic comes from a few hundred distinct user agents (each browser
//! release sends one string), and what a user agent says on its own (which
//! catalogue agent it names, which bot it declares itself to be, whether it
//! reads as a browser) depends on its bytes and the snapshot's catalogue
//! only. So the answer is remembered: a keyed hash of the bytes picks a slot,
//! and a slot holds the hash's other bits beside a 16-bit answer in one
//! atomic word, so that a read never sees half an entry and the request path
//! never locks. What the answer means is the caller's business
//! ([`crate::identify`]); the table only gives back what it was told.
//!
//! The hash is keyed per table (SipHash with random keys), so that nobody can
//! choose user agents that collide with a crawler's entry; the tag keeps 48
//! bits of it, so an accidental collision is a one in 2^48 event per lookup.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

/// Slots (a power of two): 64 KiB.
const SLOTS: usize = 8192;
/// Longer user agents are always worked out afresh: hostile ones should not
/// evict the browsers' entries.
const MAX_LEN: usize = 512;
/// The low bits of a slot hold the answer plus one (0: an empty slot).
const ANSWER_BITS: u32 = 17;
const ANSWER_MASK: u64 = (1 << ANSWER_BITS) - 1;

/// Remembered answers, one table per snapshot's catalogue.
pub struct UaMemo {
    slots: Box<[AtomicU64]>,
    keys: std::hash::RandomState,
}

impl UaMemo {
    pub fn new() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            keys: std::hash::RandomState::new(),
        }
    }

    /// The answer for `ua`: remembered, or `work_out`'s (then remembered).
    pub fn answer(&self, ua: &[u8], work_out: impl FnOnce() -> u16) -> u16 {
        if ua.len() > MAX_LEN {
            return work_out();
        }
        let (slot, tag) = self.locate(ua);
        let Some(cell) = self.slots.get(slot) else {
            return work_out();
        };
        let word = cell.load(Ordering::Relaxed);
        if word & !ANSWER_MASK == tag && word & ANSWER_MASK != 0 {
            return ((word & ANSWER_MASK) - 1) as u16;
        }
        let answer = work_out();
        cell.store(tag | (u64::from(answer) + 1), Ordering::Relaxed);
        answer
    }

    /// The slot of a user agent and the tag its slot must hold.
    fn locate(&self, ua: &[u8]) -> (usize, u64) {
        let h = self.keys.hash_one(ua);
        ((h as usize) & (SLOTS - 1), h & !ANSWER_MASK)
    }
}

impl Default for UaMemo {
    fn default() -> Self {
        Self::new()
    }
}

/// A clone (a new snapshot's catalogue) starts empty: it is only a cache.
impl Clone for UaMemo {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for UaMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UaMemo")
            .field("slots", &self.slots.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn an_answer_is_worked_out_once_then_given_back() {
        let memo = UaMemo::new();
        let calls = Cell::new(0);
        let work = |v: u16| {
            calls.set(calls.get() + 1);
            v
        };
        assert_eq!(memo.answer(b"Mozilla/5.0 (X11)", || work(7)), 7);
        assert_eq!(memo.answer(b"Mozilla/5.0 (X11)", || work(9)), 7);
        assert_eq!(calls.get(), 1);
        // Every 16-bit value survives, 0 and the largest included.
        for (ua, v) in [(&b"a"[..], 0u16), (b"b", u16::MAX), (b"", 3)] {
            assert_eq!(memo.answer(ua, || v), v);
            assert_eq!(memo.answer(ua, || v ^ 1), v);
        }
        // A long user agent is never remembered.
        let long = vec![b'x'; MAX_LEN + 1];
        assert_eq!(memo.answer(&long, || 1), 1);
        assert_eq!(memo.answer(&long, || 2), 2);
        // A clone starts empty.
        let c = memo.clone();
        assert_eq!(c.answer(b"Mozilla/5.0 (X11)", || 8), 8);
    }

    #[test]
    fn many_user_agents_never_mix_answers() {
        let memo = UaMemo::new();
        let uas: Vec<Vec<u8>> = (0..50_000u32)
            .map(|i| format!("agent {i}").into_bytes())
            .collect();
        for round in 0..2 {
            for (i, ua) in uas.iter().enumerate() {
                let want = (i % 60_000) as u16;
                assert_eq!(memo.answer(ua, || want), want, "round {round}");
            }
        }
    }
}
