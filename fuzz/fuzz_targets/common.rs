//! The shipped configuration, compiled once per fuzzing process.
use std::sync::OnceLock;

use rempart::snapshot::Snapshot;

pub fn shipped() -> &'static Snapshot {
    static SNAP: OnceLock<Snapshot> = OnceLock::new();
    SNAP.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/rempart.toml");
        Snapshot::load_offline(&path).expect("shipped config")
    })
}
