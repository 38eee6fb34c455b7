//! `rempart evidence verify`: walks the whole chain and reports the first break.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::record::{Body, Line, GENESIS};
use super::writer::{ledger_files, read_lines};

/// Where the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

/// The outcome of a verification.
#[derive(Debug, Default)]
pub struct Verification {
    pub files: usize,
    pub records: u64,
    pub first: Option<(u64, String)>,
    pub last: Option<(u64, String)>,
    /// Torn last lines (a crash while writing) that the chain goes around.
    pub warnings: Vec<String>,
    pub broken: Option<Break>,
    /// The chain starts after files removed by retention, as a `pruned`
    /// record in the remaining files documents.
    pub pruned: Option<String>,
}

impl Verification {
    pub fn is_intact(&self) -> bool {
        self.broken.is_none()
    }
}

/// Verifies every ledger file in `dir`, in order.
pub fn verify(dir: &Path) -> anyhow::Result<Verification> {
    let files = ledger_files(dir)
        .map_err(|e| anyhow::anyhow!("{}: cannot list the ledger: {e}", dir.display()))?;
    if files.is_empty() {
        anyhow::bail!("{}: no ledger files (ledger-*.jsonl)", dir.display());
    }
    let mut v = Verification {
        files: files.len(),
        ..Verification::default()
    };
    let mut prev: Option<String> = None;
    let mut expected_seq: Option<u64> = None;
    // A torn tail is only harmless if the next record links to the line before it.
    let mut pending_torn: Option<(PathBuf, usize, usize)> = None;
    // A first record that does not start the chain, until a `pruned` record
    // shows what came before it.
    let mut headless: Option<(Break, u64, String)> = None;
    let mut pruned: Vec<Pruning> = Vec::new();
    for path in &files {
        let (lines, torn) = read_lines(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
        for (i, bytes) in lines.iter().enumerate() {
            let at = |message: String| Break {
                file: path.clone(),
                line: i + 1,
                message,
            };
            let line: Line = match serde_json::from_slice(bytes) {
                Ok(l) => l,
                Err(e) => {
                    v.broken = Some(at(format!("not a ledger record: {e}")));
                    return Ok(v);
                }
            };
            if prev.is_none() && line.prev != GENESIS {
                headless = Some((
                    at(mismatch(None, None, line.seq)),
                    line.seq,
                    line.prev.clone(),
                ));
            } else if line.prev != prev.as_deref().unwrap_or(GENESIS) {
                let message = mismatch(pending_torn.as_ref(), expected_seq, line.seq);
                v.broken = Some(at(message));
                return Ok(v);
            }
            if let Some(s) = expected_seq {
                if line.seq != s {
                    v.broken = Some(at(format!("seq {} where {} was expected", line.seq, s)));
                    return Ok(v);
                }
            }
            if let Some(t) = pending_torn.take() {
                v.warnings.push(torn_note(
                    &t,
                    "(crash); the chain continues from the line before it",
                ));
            }
            pruned.extend(prunings(&line));
            prev = Some(hex::encode(Sha256::digest(bytes)));
            expected_seq = Some(line.seq + 1);
            if v.first.is_none() {
                v.first = Some((line.seq, line.ts.clone()));
            }
            v.last = Some((line.seq, line.ts));
            v.records += 1;
        }
        if let Some(t) = torn {
            pending_torn = Some((path.clone(), lines.len() + 1, t.len()));
        }
    }
    if let Some(t) = pending_torn {
        v.warnings.push(torn_note(&t, "(crash, or a cut file)"));
    }
    if let Some((b, seq, prev)) = headless {
        match documented(&pruned, seq, &prev) {
            Some(note) => v.pruned = Some(note),
            None => v.broken = Some(b),
        }
    }
    Ok(v)
}

/// The note for a torn last line at `file:line` (`bytes` long).
fn torn_note((f, n, bytes): &(PathBuf, usize, usize), why: &str) -> String {
    format!(
        "{}:{}: torn last line ({bytes} bytes): the writer stopped mid-line {why}",
        f.display(),
        n
    )
}

/// The files a `pruned` record names (none for any other record).
fn prunings(line: &Line) -> Vec<Pruning> {
    let Body::Pruned { files, .. } = &line.body else {
        return Vec::new();
    };
    files
        .iter()
        .map(|f| Pruning {
            file: f.file.clone(),
            last_seq: f.last_seq,
            last_hash: f.last_hash.clone(),
            at: (line.seq, line.ts.clone()),
        })
        .collect()
}

/// Why a record whose `prev` is not the previous line's hash breaks the
/// chain: a cut file (a torn tail before it), removed records (a seq gap),
/// or an edited previous record.
fn mismatch(torn: Option<&(PathBuf, usize, usize)>, expected_seq: Option<u64>, seq: u64) -> String {
    match (torn, expected_seq) {
        (Some((f, n, bytes)), _) => format!(
            "does not follow the last whole line before the cut at {}:{} ({bytes} bytes): \
             that file was truncated, or records were removed",
            f.display(),
            n
        ),
        (None, Some(s)) if seq > s => format!(
            "seq {} follows {}: {} record(s) removed before this line",
            seq,
            s - 1,
            seq - s
        ),
        (None, None) => "the ledger's first record does not start the chain: \
                         earlier files were removed"
            .to_owned(),
        _ => "does not follow the previous record (its hash differs): \
              the previous record was edited"
            .to_owned(),
    }
}

/// A file named in a `pruned` record, and that record's seq and time.
struct Pruning {
    file: String,
    last_seq: Option<u64>,
    last_hash: Option<String>,
    at: (u64, String),
}

/// The note for a chain that starts at `seq` after `prev`, if a `pruned`
/// record names the removed file whose last line is that `prev`: the chain
/// then starts after a documented pruning, not after files that went
/// missing. Files are pruned oldest first, and the record is written into
/// a newer file, so the record about the last removed file remains.
fn documented(pruned: &[Pruning], seq: u64, prev: &str) -> Option<String> {
    let p = pruned.iter().find(|p| {
        p.last_hash.as_deref() == Some(prev)
            && p.last_seq.and_then(|s| s.checked_add(1)) == Some(seq)
    })?;
    Some(format!(
        "the chain starts at seq {seq}, after files removed by retention, up to {} \
         (documented by the pruned record at seq {}, {})",
        p.file, p.at.0, p.at.1
    ))
}
