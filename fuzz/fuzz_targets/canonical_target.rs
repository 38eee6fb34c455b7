//! The request-target canonicaliser: never panics, and is idempotent (the
//! wire form of a canonical path is canonical and decides the same way).
#![no_main]
use libfuzzer_sys::fuzz_target;
use rempart::request::canonical_path;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    for fold in [false, true] {
        if let Ok(t) = canonical_path(raw, fold) {
            assert!(t.path.starts_with('/'));
            assert!(!t.path.contains("//") && !t.path.contains("/./") && !t.path.contains("/../"));
            let wire = t.wire.clone().unwrap_or_else(|| raw.to_owned());
            let again = canonical_path(&wire, fold).expect("the wire form is canonical");
            assert_eq!(again.path, t.path);
            assert_eq!(again.wire, None);
        }
    }
});
