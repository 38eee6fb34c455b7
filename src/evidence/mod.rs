//! Evidence: an append-only, hash-chained ledger of what crawlers did, and
//! the tools that check and summarise it.
//!
//! - [`record`]: the line format;
//! - [`writer`]: the writer thread (bounded queue, batches, fsync interval,
//!   gaps, disk-full recovery);
//! - [`verify`]: the chain check;
//! - [`report`]: summaries for people (HTML, CSV, JSON);
//! - [`pseudonym`]: the keyed hash that replaces personal addresses.

pub mod pseudonym;
pub mod record;
pub mod report;
pub mod verify;
pub mod writer;

pub use record::{Body, ClientId, PublishedRecord, RequestRecord};
pub use writer::{Evidence, LedgerOptions};
