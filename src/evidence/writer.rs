//! The ledger writer: a thread of its own, fed through a bounded queue.
//!
//! The request path only moves a request's [`Pending`] record (handles and
//! the fields it kept) onto the queue with `try_send`. The thread names the
//! client (the pseudonym), serialises each line straight from what it was
//! handed (no intermediate record of owned strings), chains records (seq,
//! prev hash), writes them in batches, flushes each
//! batch to the kernel (so a killed process loses nothing it was handed
//! before the last batch), and fsyncs on an interval (so a power cut loses at
//! most that interval). A full queue is counted and written into the ledger
//! as a `gap` record. A failed write (full disk) is rolled back to the last
//! whole line, counted, and retried; the proxy never waits for it.
//!
//! Nobody can fill the disk through it: one client's request records are
//! capped per minute (the rest become one `limited` record), and past the
//! disk budget (`evidence.max_bytes`) request records are counted instead of
//! written, with a `gap` record saying so. Nothing already written is
//! removed unless retention is configured, and then only whole closed files,
//! oldest first, after a `pruned` record names them, so that
//! `rempart evidence verify` still passes.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::TryRecvError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

mod files;
mod limits;
mod queue;
mod retention;
mod tally;

use super::build::Pending;
use super::record::{Body, GENESIS};
pub use crate::day::rfc3339;
use crate::metrics::metrics;
use files::{last_record, Tail};
pub use files::{ledger_files, read_lines, FileLines};
use limits::{ledger_bytes, Limits, BUDGET_RESERVE};
use queue::Queued;
use queue::{Entry, TAKE};

/// How often the writer takes what the queue holds.
const BATCH_TICK: Duration = Duration::from_millis(25);

/// How the ledger is written.
#[derive(Debug, Clone)]
pub struct LedgerOptions {
    pub dir: PathBuf,
    /// Records waiting for the writer; beyond this they become a gap.
    pub queue: usize,
    /// A file is closed and a new one started past this size...
    pub max_file_bytes: u64,
    /// ...or when the UTC day changes.
    pub rotate_daily: bool,
    pub fsync_interval: Duration,
    /// The whole ledger's disk budget; past it request records are counted,
    /// not written. 0: no budget.
    pub max_bytes: u64,
    /// Request records kept per client per minute; the rest are counted in
    /// one `limited` record. 0: no cap.
    pub per_client_minute: u32,
    /// The length of that "minute" (tests shorten it).
    pub limit_window: Duration,
    /// How often referred visits and allowed AI crawls are written as one
    /// `tally` record.
    pub tally_interval: Duration,
    /// Closed files older than this are removed (a `pruned` record first).
    /// Zero: never.
    pub retention_age: Duration,
    /// Oldest closed files are removed while the ledger is above this size.
    /// 0: never.
    pub retention_bytes: u64,
    /// How often retention is checked (tests shorten it).
    pub prune_interval: Duration,
}

impl LedgerOptions {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            queue: 16_384,
            max_file_bytes: 64 * 1024 * 1024,
            rotate_daily: true,
            fsync_interval: Duration::from_secs(1),
            max_bytes: 0,
            per_client_minute: 0,
            limit_window: Duration::from_secs(60),
            tally_interval: Duration::from_secs(60),
            retention_age: Duration::ZERO,
            retention_bytes: 0,
            prune_interval: Duration::from_secs(60),
        }
    }
}

/// The request side of the ledger.
#[derive(Debug, Clone)]
pub struct Evidence {
    tx: crate::queue::Sender<Entry>,
    dropped: Arc<AtomicU64>,
    /// Test hook: every write fails as if the disk were full.
    fault: Arc<AtomicBool>,
    /// Referred visits and allowed AI crawls, counted until the next `tally`.
    tally: tally::Shared,
}

impl Evidence {
    /// Opens (or creates) the ledger in `opts.dir` and starts the writer.
    pub fn start(opts: LedgerOptions) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&opts.dir).map_err(|e| {
            anyhow::anyhow!(
                "{}: cannot create the evidence directory: {e}",
                opts.dir.display()
            )
        })?;
        let (tx, rx) = crate::queue::bounded(opts.queue);
        let dropped = Arc::new(AtomicU64::new(0));
        let fault = Arc::new(AtomicBool::new(false));
        // One writer per ledger: during a graceful upgrade the old process
        // keeps writing while it drains, so the new one waits for its lock
        // (records queue meanwhile) and then continues the chain.
        let lock_path = opts.dir.join(".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| {
                anyhow::anyhow!("{}: cannot open the ledger lock: {e}", lock_path.display())
            })?;
        // Free: the ledger's tail is read now, so that a damaged ledger stops
        // the start with a clear message.
        let tail_now = match lock.try_lock() {
            Ok(()) => Some(last_record(&opts.dir)?),
            Err(_) => None,
        };
        let (dropped_w, fault_w) = (dropped.clone(), fault.clone());
        let tally = tally::Shared::default();
        let tally_w = tally.clone();
        std::thread::Builder::new()
            .name("rempart-evidence".into())
            .spawn(move || {
                let Some(tail) = tail_now.or_else(|| wait_for_ledger(&lock, &opts.dir)) else {
                    return;
                };
                let used = ledger_bytes(&opts.dir);
                let mut writer = Writer {
                    used,
                    limits: Limits::default(),
                    opts,
                    seq: tail.as_ref().map_or(0, |t| t.seq + 1),
                    prev: tail
                        .as_ref()
                        .map_or_else(|| GENESIS.to_owned(), |t| t.hash.clone()),
                    file: None,
                    dropped: dropped_w,
                    fault: fault_w,
                    queue: std::collections::VecDeque::new(),
                    last_sync: Instant::now(),
                    unsynced: false,
                    tally: tally_w,
                    interval: tally::Interval::now(),
                    last_prune: None,
                };
                writer.queue.push_back(Queued::Body(Body::Start {
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    torn_tail: tail.and_then(|t| t.torn),
                }));
                writer.run(rx);
                drop(lock);
            })?;
        Ok(Self {
            tx,
            dropped,
            fault,
            tally,
        })
    }

    /// Counts a browser visit that `operator`'s AI product referred.
    pub fn referred(&self, operator: &str) {
        tally::add(&self.tally, operator, |c| &mut c.referred);
    }

    /// Counts an AI crawler page of `operator` that was let through (and so
    /// has no request record).
    pub fn crawled_allowed(&self, operator: &str) {
        tally::add(&self.tally, operator, |c| &mut c.crawled_allowed);
    }

    /// Hands a record to the writer; never waits.
    pub fn record(&self, body: Body) {
        self.send(Entry::Body(body));
    }

    /// Hands a request's record to the writer, to be built there; never waits.
    pub fn request(&self, pending: Box<Pending>) {
        self.send(Entry::Request(pending));
    }

    fn send(&self, entry: Entry) {
        if self.tx.try_send(entry).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            metrics().evidence_dropped.inc();
        }
    }

    /// Test hook: make every write fail (as on a full disk) or succeed again.
    #[doc(hidden)]
    pub fn set_fault(&self, on: bool) {
        self.fault.store(on, Ordering::Relaxed);
    }
}

struct OpenFile {
    /// Never removed by retention while it is written.
    path: PathBuf,
    file: File,
    len: u64,
    day: i64,
}

struct Writer {
    /// Bytes of the whole ledger.
    used: u64,
    limits: Limits,
    opts: LedgerOptions,
    seq: u64,
    prev: String,
    file: Option<OpenFile>,
    dropped: Arc<AtomicU64>,
    fault: Arc<AtomicBool>,
    /// Records received and not yet written.
    queue: std::collections::VecDeque<Queued>,
    last_sync: Instant,
    unsynced: bool,
    /// The request side's counts, and when their interval started.
    tally: tally::Shared,
    interval: tally::Interval,
    /// When retention was last checked (never: at the first batch).
    last_prune: Option<Instant>,
}

/// The ledger's tail once the process that holds its lock has let go: what
/// a new process continues during a graceful upgrade. `None` (logged) when
/// the lock or the ledger cannot be read: nothing is written then.
fn wait_for_ledger(lock: &File, dir: &Path) -> Option<Option<Tail>> {
    tracing::info!("evidence: another process holds the ledger; waiting for it to finish");
    if let Err(e) = lock.lock() {
        tracing::error!(error = %e, "evidence: cannot lock the ledger; not writing");
        return None;
    }
    match last_record(dir) {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::error!(error = %e, "evidence: cannot continue the ledger; not writing");
            None
        }
    }
}

fn utc_day(now: time::OffsetDateTime) -> i64 {
    now.unix_timestamp().div_euclid(86_400)
}

/// The writer runs below the request path's priority (nice 10): where it
/// shares a core with a proxy thread, its batches (building, serialising,
/// hashing, writing a few hundred records) wait for the requests instead of
/// delaying them. Under full load it still gets about a tenth of a busy core;
/// if it falls behind, the bounded queue turns the excess into a counted
/// `gap` record, as on a slow disk.
///
/// It also asks for the shortest time slice the scheduler grants (0.1 ms,
/// `sched_runtime` of `SCHED_OTHER`, Linux 6.12 and later, ignored before).
/// That alone does not bound how long it holds a shared core: a kernel with
/// a 250 Hz tick and no high-resolution tick ends a slice only at the next
/// tick, so a writer with work runs up to 4 ms at a stretch, and that was the
/// refusal flood's p99. What bounds it is [`Writer::run`] giving the core up
/// after each chunk of [`TAKE`] records.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        const NICE: i32 = 10;
        const SLICE_NS: u64 = 100_000;
        // SAFETY: plain system calls on the calling thread; `attr` lives
        // across the call and its size is given.
        let rc = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::pid_t;
            let mut attr: libc::sched_attr = std::mem::zeroed();
            attr.size = std::mem::size_of::<libc::sched_attr>() as u32;
            attr.sched_policy = libc::SCHED_OTHER as u32;
            attr.sched_nice = NICE;
            attr.sched_runtime = SLICE_NS;
            let set = libc::syscall(
                libc::SYS_sched_setattr,
                tid,
                &attr as *const libc::sched_attr,
                0u32,
            );
            if set == 0 {
                0
            } else {
                libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, NICE)
            }
        };
        if rc != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "evidence: writer priority unchanged");
        }
    }
}

impl Writer {
    fn run(mut self, rx: crate::queue::Receiver<Entry>) {
        lower_priority();
        let mut more = false;
        loop {
            // Polled, not woken: a wake-up per record costs the proxy a
            // context switch per refusal; a batch every tick costs one.
            // Taken and written a chunk at a time while the queue has more.
            // With more waiting, the core is given up between chunks: a
            // proxy thread on it waits for one chunk (about a quarter of a
            // millisecond), not for the scheduler's next tick.
            if more {
                std::thread::yield_now();
            } else {
                std::thread::sleep(BATCH_TICK);
            }
            let mut closed = false;
            let mut taken = 0;
            while taken < TAKE {
                match rx.try_recv() {
                    Ok(entry) => {
                        taken += 1;
                        let queued = match entry {
                            Entry::Body(b) => Queued::Body(b),
                            Entry::Request(p) => match p.client() {
                                Some(client) => Queued::Request(p, client),
                                None => continue,
                            },
                        };
                        if self.admit(&queued) {
                            self.queue.push_back(queued);
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            self.roll_window();
            self.roll_tally(closed);
            if closed {
                self.close_minute();
                self.write_batch();
                self.sync();
                return;
            }
            // Bodies waiting beyond the queue size while writes fail become a gap.
            let cap = self.opts.queue.max(1);
            if self.queue.len() > cap {
                let over = (self.queue.len() - cap) as u64;
                self.queue.truncate(cap);
                self.dropped.fetch_add(over, Ordering::Relaxed);
                metrics().evidence_dropped.inc_by(over);
            }
            self.write_batch();
            // More waiting, and the disk took this chunk: on without a
            // pause. While writes fail the records wait here instead; the
            // queue then fills and its overflow becomes the gap.
            more = taken == TAKE && self.queue.is_empty();
            self.prune();
            if self.unsynced && self.last_sync.elapsed() >= self.opts.fsync_interval {
                self.sync();
            }
        }
    }

    /// Forces written records to disk; false when that failed (retention
    /// then removes nothing, since its record may not survive a power cut).
    fn sync(&mut self) -> bool {
        let mut ok = true;
        if let Some(f) = &self.file {
            if let Err(e) = f.file.sync_data() {
                metrics()
                    .evidence_errors
                    .with_label_values(&["fsync"])
                    .inc();
                tracing::warn!(error = %e, "evidence: fsync failed");
                ok = false;
            }
        }
        self.last_sync = Instant::now();
        self.unsynced = false;
        ok
    }

    fn write_batch(&mut self) {
        self.shed_over_budget();
        let missing = self.dropped.swap(0, Ordering::Relaxed);
        if missing > 0 {
            // One gap record for a run of losses, however long the disk stays full.
            match self.queue.front_mut() {
                Some(Queued::Body(Body::Gap { missing: m, .. })) => *m += missing,
                _ => self.queue.push_front(Queued::Body(Body::Gap {
                    missing,
                    reason: "queue full".into(),
                })),
            }
        }
        let mut written = 0u64;
        while !self.queue.is_empty() {
            let now = time::OffsetDateTime::now_utc();
            if let Err(e) = self.rotate_if_needed(now) {
                self.write_failed(&e);
                break;
            }
            let mut room = self
                .file
                .as_ref()
                .map_or(0, |f| self.opts.max_file_bytes.saturating_sub(f.len));
            if self.opts.max_bytes > 0 {
                let budget = self.opts.max_bytes + BUDGET_RESERVE;
                room = room.min(budget.saturating_sub(self.used));
                if room == 0 {
                    // Past the reserve too: only what was already queued waits.
                    break;
                }
            }
            // Chain a run of records into one buffer: one write per batch.
            let ts = rfc3339(now);
            let mut buf = Vec::with_capacity(64 * 1024);
            let (mut seq, mut prev, mut n) = (self.seq, self.prev.clone(), 0usize);
            let mut unserialisable = None;
            let mut text = Vec::with_capacity(2048);
            for (i, queued) in self.queue.iter().take(1024).enumerate() {
                text.clear();
                if let Err(e) = queued.write_line(&mut text, seq, &ts, &prev) {
                    unserialisable = Some((i, e));
                    break;
                }
                if n > 0 && (buf.len() + text.len() + 1) as u64 > room {
                    break;
                }
                prev = hex::encode(Sha256::digest(&text));
                buf.extend_from_slice(&text);
                buf.push(b'\n');
                seq += 1;
                n += 1;
            }
            if n > 0 {
                match self.append(&buf) {
                    Ok(()) => {
                        self.queue.drain(..n);
                        self.seq = seq;
                        self.prev = prev;
                        written += n as u64;
                        self.shed_over_budget();
                    }
                    Err(e) => {
                        self.write_failed(&e);
                        break;
                    }
                }
            }
            if let Some((_, e)) = unserialisable.filter(|(i, _)| *i == n) {
                // Cannot happen for these types; never stall the chain over it.
                tracing::error!(error = %e, "evidence: record not serialisable; dropped");
                self.queue.pop_front();
            }
        }
        if written > 0 {
            metrics().evidence_records.inc_by(written);
            self.unsynced = true;
        }
    }

    fn write_failed(&self, e: &std::io::Error) {
        metrics()
            .evidence_errors
            .with_label_values(&["write"])
            .inc();
        tracing::warn!(error = %e, pending = self.queue.len(), "evidence: write failed; will retry");
    }

    /// Starts a new file at start, past the size limit, or on a new UTC day.
    fn rotate_if_needed(&mut self, now: time::OffsetDateTime) -> std::io::Result<()> {
        let day = utc_day(now);
        let rotate = match &self.file {
            None => true,
            Some(f) => {
                (f.len > 0 && f.len >= self.opts.max_file_bytes)
                    || (self.opts.rotate_daily && f.day != day)
            }
        };
        if !rotate {
            return Ok(());
        }
        if self.file.is_some() {
            self.sync();
        }
        let path = self.opts.dir.join(format!("ledger-{:012}.jsonl", self.seq));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let len = file.metadata()?.len();
        self.file = Some(OpenFile {
            path,
            file,
            len,
            day,
        });
        Ok(())
    }

    /// Appends whole lines; on failure the file is cut back to its last whole line.
    fn append(&mut self, text: &[u8]) -> std::io::Result<()> {
        let Some(f) = self.file.as_mut() else {
            return Err(std::io::Error::other("no ledger file"));
        };
        let result = if self.fault.load(Ordering::Relaxed) {
            Err(std::io::Error::from_raw_os_error(28)) // ENOSPC
        } else {
            f.file.write_all(text).and_then(|()| f.file.flush())
        };
        match result {
            Ok(()) => {
                f.len += text.len() as u64;
                self.used += text.len() as u64;
                metrics().evidence_bytes.set(self.used as i64);
                Ok(())
            }
            Err(e) => {
                // A partial line would break the chain: cut it off.
                let _ = f.file.set_len(f.len);
                let _ = f.file.seek(SeekFrom::End(0));
                Err(e)
            }
        }
    }
}
