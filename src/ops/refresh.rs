//! Live refresh of the operators' published range lists.
//!
//! Each range file has its vendor URL in `SOURCES.tsv`. A background task
//! fetches them on a schedule (daily by default, with jitter so that a fleet
//! does not hit the vendors at once), validates each list (it must parse, and
//! may not shrink by more than `max_shrink_percent`), and writes the good
//! ones to the state directory. The snapshot reads a state copy in place of
//! the shipped file, so the swap is an ordinary reload: atomic, and refused
//! whole if anything is wrong. A failed fetch keeps the old list and is
//! counted. `rempart ranges refresh` does the same once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use pingora::connectors::http::Connector;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::identify::ranges::RangeSource;
use crate::metrics::metrics;
use crate::ops::reload::Reloader;

/// A range list is at most this big (the largest vendor list is ~100 KB).
const MAX_LIST_BYTES: usize = 8 * 1024 * 1024;

/// One entry of `SOURCES.tsv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The file name in the ranges directory (`gptbot.json`).
    pub file: String,
    pub url: String,
}

/// Reads `SOURCES.tsv`: a header line, then `file`, `vendor_url`, … per line.
pub fn read_sources(path: &Path) -> Result<Vec<Source>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let mut cols = line.split('\t');
        let (Some(file), Some(url)) = (cols.next(), cols.next()) else {
            return Err(format!(
                "{}:{}: expected file<TAB>url",
                path.display(),
                i + 1
            ));
        };
        let (file, url) = (file.trim(), url.trim());
        if file.contains('/') || !file.ends_with(".json") {
            return Err(format!(
                "{}:{}: {file:?} is not a range file name",
                path.display(),
                i + 1
            ));
        }
        out.push(Source {
            file: file.to_owned(),
            url: url.to_owned(),
        });
    }
    Ok(out)
}

/// What happened to one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new list was written (prefixes before and after).
    Updated { before: usize, after: usize },
    /// The vendor serves the same list.
    Unchanged { prefixes: usize },
    /// The old list stays: why.
    Failed { stage: &'static str, error: String },
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Updated { .. } => "updated",
            Outcome::Unchanged { .. } => "unchanged",
            Outcome::Failed { stage, .. } => stage,
        }
    }
}

/// Where lists are read from and written to.
#[derive(Debug, Clone)]
pub struct Dirs {
    pub shipped: PathBuf,
    pub state: PathBuf,
    pub max_shrink_percent: u8,
}

impl Dirs {
    /// The list in force for a file: the state copy, or the shipped one.
    fn current(&self, file: &str) -> Option<(String, RangeSource)> {
        for dir in [&self.state, &self.shipped] {
            let path = dir.join(file);
            if let Ok(text) = std::fs::read_to_string(&path) {
                let name = file.trim_end_matches(".json");
                if let Ok(src) = RangeSource::parse(name, &path, &text) {
                    return Some((text, src));
                }
            }
        }
        None
    }
}

/// Validates a fetched list against the one in force and writes it.
pub fn accept(dirs: &Dirs, file: &str, body: &[u8]) -> Outcome {
    let fail = |stage, error: String| Outcome::Failed { stage, error };
    let Ok(text) = std::str::from_utf8(body) else {
        return fail("parse", "not UTF-8".into());
    };
    let name = file.trim_end_matches(".json");
    let path = dirs.state.join(file);
    let new = match RangeSource::parse(name, &path, text) {
        Ok(s) => s,
        Err(e) => return fail("parse", e.to_string()),
    };
    if new.prefixes.is_empty() {
        return fail("parse", "no prefixes".into());
    }
    let current = dirs.current(file);
    let before = current.as_ref().map_or(0, |(_, s)| s.prefixes.len());
    let floor = before * (100 - usize::from(dirs.max_shrink_percent.min(100))) / 100;
    if new.prefixes.len() < floor {
        return fail(
            "shrink",
            format!(
                "{} prefixes where {before} were: more than {}% fewer, refused",
                new.prefixes.len(),
                dirs.max_shrink_percent
            ),
        );
    }
    let unchanged = current.as_ref().is_some_and(|(t, _)| t == text);
    if let Err(e) = write_atomically(&dirs.state, file, body) {
        return fail("write", e);
    }
    if unchanged {
        Outcome::Unchanged {
            prefixes: new.prefixes.len(),
        }
    } else {
        Outcome::Updated {
            before,
            after: new.prefixes.len(),
        }
    }
}

/// Writes `dir/file` through a temporary file and a rename, so that a reader
/// never sees half a list. (Also refreshes its time: the age starts again.)
fn write_atomically(dir: &Path, file: &str, body: &[u8]) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let tmp = dir.join(format!(".{file}.tmp"));
    std::fs::write(&tmp, body).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join(file)).map_err(|e| format!("{}: {e}", dir.display()))
}

/// Fetches and validates every source once.
pub async fn refresh_all(
    connector: &Connector,
    sources: &[Source],
    dirs: &Dirs,
    timeout: Duration,
    private_ok: &[String],
) -> Vec<(Source, Outcome)> {
    let m = metrics();
    let mut out = Vec::with_capacity(sources.len());
    for s in sources {
        let outcome = match crate::ops::fetch::get(
            connector,
            &s.url,
            "application/json",
            MAX_LIST_BYTES,
            timeout,
            private_ok,
        )
        .await
        {
            Ok(body) => accept(dirs, &s.file, &body),
            Err(error) => Outcome::Failed {
                stage: "fetch",
                error,
            },
        };
        let name = s.file.trim_end_matches(".json");
        m.ipranges_refreshes
            .with_label_values(&[name, outcome.label()])
            .inc();
        if let Outcome::Failed { stage, error } = &outcome {
            tracing::warn!(source = name, stage, error = %error, url = %s.url, "range list not refreshed; the previous one stays");
        }
        out.push((s.clone(), outcome));
    }
    out
}

/// A pseudo-random duration in `[0, max)`, from the clock: enough to spread
/// a fleet's fetches.
fn jitter(max: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| {
            u64::from(d.subsec_nanos()) ^ (u64::from(std::process::id()) * 2_654_435_761)
        });
    if max.is_zero() {
        Duration::ZERO
    } else {
        Duration::from_millis(nanos % max.as_millis().max(1) as u64)
    }
}

/// The background refresher.
pub struct RangeRefresher {
    pub reloader: Arc<Reloader>,
    pub sources: Vec<Source>,
    pub dirs: Dirs,
    pub interval: Duration,
    pub jitter: Duration,
    pub timeout: Duration,
    /// Hosts that may resolve to non-public addresses (`ranges.allow_private_hosts`).
    pub private_ok: Vec<String>,
    /// Wait before the first round (a fresh start uses the state copies).
    pub first_delay: Duration,
}

#[async_trait]
impl BackgroundService for RangeRefresher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        // Every source's series exist from the start, at zero.
        let m = metrics();
        for s in &self.sources {
            let name = s.file.trim_end_matches(".json");
            for r in ["updated", "unchanged", "fetch", "parse", "shrink", "write"] {
                m.ipranges_refreshes.with_label_values(&[name, r]);
            }
        }
        let connector = Connector::new(None);
        let mut wait = self.first_delay + jitter(self.jitter);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            let results = refresh_all(
                &connector,
                &self.sources,
                &self.dirs,
                self.timeout,
                &self.private_ok,
            )
            .await;
            let updated = results
                .iter()
                .filter(|(_, o)| matches!(o, Outcome::Updated { .. }))
                .count();
            tracing::info!(updated, sources = results.len(), "range lists refreshed");
            if updated > 0 {
                let r = self.reloader.clone();
                let _ = tokio::task::spawn_blocking(move || r.reload("ranges-refresh")).await;
            }
            wait = self.interval + jitter(self.jitter);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = r#"{"creationTime":"2026-11-01T00:00:00Z","prefixes":[{"ipv4Prefix":"192.0.2.0/24"},{"ipv4Prefix":"198.51.100.0/24"},{"ipv6Prefix":"2001:db8::/32"},{"ipv4Prefix":"203.0.113.0/24"}]}"#;

    fn dirs() -> (tempfile::TempDir, Dirs) {
        let t = tempfile::tempdir().unwrap();
        let shipped = t.path().join("shipped");
        std::fs::create_dir_all(&shipped).unwrap();
        std::fs::write(shipped.join("bot.json"), LIST).unwrap();
        let d = Dirs {
            shipped,
            state: t.path().join("state"),
            max_shrink_percent: 50,
        };
        (t, d)
    }

    #[test]
    fn lists_are_validated_before_they_are_written() {
        let (_t, d) = dirs();
        assert_eq!(
            accept(&d, "bot.json", LIST.as_bytes()),
            Outcome::Unchanged { prefixes: 4 }
        );
        let grown = LIST.replace("]}", r#",{"ipv4Prefix":"100.64.0.0/10"}]}"#);
        assert_eq!(
            accept(&d, "bot.json", grown.as_bytes()),
            Outcome::Updated {
                before: 4,
                after: 5
            }
        );
        assert_eq!(
            std::fs::read_to_string(d.state.join("bot.json")).unwrap(),
            grown
        );
        for (body, stage) in [
            ("<html>not json</html>", "parse"),
            (r#"{"prefixes":[]}"#, "parse"),
            (r#"{"prefixes":[{"ipv4Prefix":"not an address"}]}"#, "parse"),
            (r#"{"prefixes":[{"ipv4Prefix":"192.0.2.0/24"}]}"#, "shrink"),
        ] {
            match accept(&d, "bot.json", body.as_bytes()) {
                Outcome::Failed { stage: s, .. } => assert_eq!(s, stage, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        // The good copy is untouched by the refused ones.
        assert_eq!(
            std::fs::read_to_string(d.state.join("bot.json")).unwrap(),
            grown
        );
    }

    #[test]
    fn sources_file() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("SOURCES.tsv");
        std::fs::write(
            &p,
            "file\tvendor_url\tx\ngptbot.json\thttps://openai.com/gptbot.json\t1\n\n",
        )
        .unwrap();
        assert_eq!(
            read_sources(&p).unwrap(),
            [Source {
                file: "gptbot.json".into(),
                url: "https://openai.com/gptbot.json".into()
            }]
        );
        std::fs::write(&p, "file\tvendor_url\n../etc.json\thttp://x\n").unwrap();
        assert!(read_sources(&p).unwrap_err().contains(":2:"));
    }
}
