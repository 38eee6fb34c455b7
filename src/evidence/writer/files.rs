//! Reading the ledger's files: which they are, their lines, and where the
//! chain stands at start.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::evidence::record::Line;

/// The last whole record of a ledger directory.
pub(super) struct Tail {
    pub(super) seq: u64,
    pub(super) hash: String,
    pub(super) torn: Option<String>,
}

/// Ledger files in order (their names carry the first seq, zero-padded).
pub fn ledger_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("ledger-") && n.ends_with(".jsonl"))
        })
        .collect();
    files.sort();
    Ok(files)
}

pub(super) fn last_record(dir: &Path) -> anyhow::Result<Option<Tail>> {
    let files = ledger_files(dir)
        .map_err(|e| anyhow::anyhow!("{}: cannot list the ledger: {e}", dir.display()))?;
    for path in files.iter().rev() {
        let mut bytes = Vec::new();
        File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
        let mut torn = None;
        let mut body = &bytes[..];
        if !body.is_empty() && !body.ends_with(b"\n") {
            let cut = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            torn = Some(format!(
                "{}: {} bytes after the last whole line",
                path.file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default(),
                body.len() - cut
            ));
            body = &body[..cut];
        }
        let Some(last) = body
            .strip_suffix(b"\n")
            .map(|b| b.rsplit(|&c| c == b'\n').next().unwrap_or(b))
        else {
            continue;
        };
        let line: Line = serde_json::from_slice(last).map_err(|e| {
            anyhow::anyhow!(
                "{}: the last line is not a ledger record ({e}); run `rempart evidence verify`",
                path.display()
            )
        })?;
        return Ok(Some(Tail {
            seq: line.seq,
            hash: hex::encode(Sha256::digest(last)),
            torn,
        }));
    }
    Ok(None)
}

/// A ledger file's whole lines (without their newline), and the bytes of a
/// torn last line, if any.
pub type FileLines = (Vec<Vec<u8>>, Option<Vec<u8>>);

/// Reads a ledger file as lines, telling whether the last one is whole.
pub fn read_lines(path: &Path) -> std::io::Result<FileLines> {
    let mut r = BufReader::new(File::open(path)?);
    let mut lines = Vec::new();
    loop {
        let mut buf = Vec::new();
        let n = r.read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok((lines, None));
        }
        if buf.last() != Some(&b'\n') {
            return Ok((lines, Some(buf)));
        }
        buf.pop();
        lines.push(buf);
    }
}
