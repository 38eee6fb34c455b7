//! What the writer's queue ([`crate::queue`]) carries and what waits for the
//! disk.

use super::Pending;
use crate::evidence::record::{Body, ClientId, LineRef};

/// The most entries taken off the queue before they are written and the core
/// is given up: the records built and waiting for the disk stay few (memory),
/// and a proxy thread sharing the core waits for one chunk at most (128
/// records, about 0.25 ms; in the refusal flood, 64 kept 15 % fewer records
/// for no lower p99, 1,024 held the core until the scheduler's tick).
pub(super) const TAKE: usize = 128;

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
