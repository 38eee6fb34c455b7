//! The pid file: written once the process owns its listening sockets (after
//! an upgrade's hand-over, so that the file never names the new process
//! while the old one still has to be told to hand over), removed at
//! shutdown unless a newer process has written its own pid there since.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

/// The pid file of this process.
pub struct PidFile {
    path: PathBuf,
    pid: u32,
}

impl PidFile {
    /// Writes this process's pid to `path` (through a temporary file and a
    /// rename, so that a reader never sees half a number).
    pub fn write(path: &Path) -> anyhow::Result<PidFile> {
        let pid = std::process::id();
        let tmp = path.with_extension("pid.tmp");
        std::fs::write(&tmp, format!("{pid}\n"))
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| anyhow::anyhow!("{}: cannot write the pid file: {e}", path.display()))?;
        Ok(PidFile {
            path: path.to_owned(),
            pid,
        })
    }

    /// Removes the file if it still names this process.
    pub fn remove(&self) {
        let ours = std::fs::read_to_string(&self.path)
            .is_ok_and(|text| text.trim() == self.pid.to_string());
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[async_trait]
impl BackgroundService for PidFile {
    /// Waits for shutdown (SIGTERM, or SIGQUIT's hand-over), then removes
    /// the file: pingora ends the process with `exit`, so no destructor runs.
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let _ = shutdown.changed().await;
        self.remove();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_only_its_own_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rempart.pid");
        let f = PidFile::write(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        std::fs::write(&path, "1\n").unwrap();
        f.remove();
        assert!(path.exists(), "a newer process's pid stays");
        let f = PidFile::write(&path).unwrap();
        f.remove();
        assert!(!path.exists());
    }
}
