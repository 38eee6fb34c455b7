//! Config text: parsed and validated, or refused with a located error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = rempart::config::Config::parse(std::path::Path::new("fuzz.toml"), text.to_owned()) {
        assert!(e.to_string().starts_with("fuzz.toml"), "{e}");
    }
});
