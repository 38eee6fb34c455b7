//! The access log: one flat JSON object per request, written by a thread of
//! its own to stdout or a file, reopened on SIGUSR1 (logrotate's
//! `postrotate`). The request path only formats the line and hands it over
//! a bounded queue; a full queue drops the line and counts it, never
//! blocking a request on a slow disk.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use serde::Serialize;

use crate::queue::{Receiver, Refused, Sender};

/// Lines waiting for the writer; past this, lines are dropped and counted.
const QUEUE: usize = 16_384;

/// One request, as the access log writes it.
#[derive(Debug, Serialize)]
pub struct Line<'a> {
    pub ts: String,
    pub request_id: &'a str,
    pub client: String,
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub status: u16,
    pub bytes: u64,
    pub duration_ms: f64,
    pub ua: &'a str,
    pub referer: &'a str,
    pub protocol: &'static str,
    pub action: &'static str,
    pub rule: &'a str,
    pub agent: &'a str,
    pub verification: &'static str,
}

/// Where the lines go.
#[derive(Debug, Clone)]
pub enum Target {
    Stdout,
    File(PathBuf),
}

/// The sending side, held by the proxy.
#[derive(Debug, Clone)]
pub struct AccessLog {
    tx: Sender<String>,
    reopen: Arc<AtomicBool>,
}

impl AccessLog {
    /// Opens the target (a file is created if needed, and appended to) and
    /// starts the writer thread.
    pub fn start(target: Target) -> anyhow::Result<AccessLog> {
        let out = open(&target)?;
        let (tx, rx) = crate::queue::bounded(QUEUE);
        let reopen = Arc::new(AtomicBool::new(false));
        let flag = reopen.clone();
        std::thread::Builder::new()
            .name("rempart-access-log".into())
            .spawn(move || write_loop(rx, out, target, flag))?;
        Ok(AccessLog { tx, reopen })
    }

    /// Queues one line.
    pub fn write(&self, line: &Line<'_>) {
        let Ok(mut text) = serde_json::to_string(line) else {
            return;
        };
        text.push('\n');
        if let Err(Refused::Full) = self.tx.try_send(text) {
            crate::metrics::metrics().access_log_dropped.inc();
        }
    }

    /// The SIGUSR1 listener that asks the writer to reopen its file.
    pub fn reopener(&self) -> Reopen {
        Reopen(self.reopen.clone())
    }
}

fn open(target: &Target) -> anyhow::Result<Box<dyn Write + Send>> {
    Ok(match target {
        Target::Stdout => Box::new(std::io::stdout()),
        Target::File(path) => Box::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| {
                    anyhow::anyhow!("{}: cannot open the access log: {e}", path.display())
                })?,
        ),
    })
}

fn write_loop(
    rx: Receiver<String>,
    out: Box<dyn Write + Send>,
    target: Target,
    reopen: Arc<AtomicBool>,
) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    loop {
        let next = rx.recv_timeout(Duration::from_millis(200));
        // A rotation asked for lands before the next line is written.
        if reopen.swap(false, Ordering::Relaxed) {
            let _ = out.flush();
            match open(&target) {
                Ok(fresh) => {
                    out = std::io::BufWriter::with_capacity(64 * 1024, fresh);
                    tracing::info!("access log reopened");
                }
                Err(e) => {
                    tracing::error!(error = %e, "access log not reopened; writing on to the old file")
                }
            }
        }
        match next {
            Ok(line) => {
                let _ = out.write_all(line.as_bytes());
                // Write what is queued, then flush once.
                while let Ok(more) = rx.try_recv() {
                    let _ = out.write_all(more.as_bytes());
                }
                let _ = out.flush();
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                let _ = out.flush();
                return;
            }
        }
    }
}

/// Sets the reopen flag on SIGUSR1.
pub struct Reopen(Arc<AtomicBool>);

#[async_trait]
impl BackgroundService for Reopen {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut usr1) = signal(SignalKind::user_defined1()) else {
            tracing::warn!("SIGUSR1 cannot be caught: the access log will not be reopened");
            return;
        };
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = usr1.recv() => self.0.store(true, Ordering::Relaxed),
            }
        }
    }
}
