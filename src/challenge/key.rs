//! 32-byte secret keys kept in files of the state directory (the challenge
//! key, the evidence address key): created at first start from the system's
//! randomness with mode 0600, read as they are afterwards, never logged.

use std::io::Read;
use std::path::Path;

/// Reads the key file, or `None` when it does not exist yet.
pub fn read(path: &Path, what: &str) -> anyhow::Result<Option<[u8; 32]>> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let key: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| anyhow::anyhow!("{}: the {what} must be 32 bytes", path.display()))?;
            Ok(Some(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!(
            "{}: cannot read the {what}: {e}",
            path.display()
        )),
    }
}

/// 32 bytes from the system's randomness.
pub fn random(what: &str) -> anyhow::Result<[u8; 32]> {
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .map_err(|e| anyhow::anyhow!("no randomness for the {what}: {e}"))?;
    Ok(key)
}

/// Reads the key file, creating it (32 random bytes, mode 0600) if absent.
pub fn load_or_create(path: &Path, what: &str) -> anyhow::Result<[u8; 32]> {
    if let Some(key) = read(path, what)? {
        return Ok(key);
    }
    let key = random(what)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot create the {what}: {e}", path.display()))?;
    std::io::Write::write_all(&mut f, &key)?;
    Ok(key)
}
