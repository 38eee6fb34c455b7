//! PROXY protocol v1/v2 headers: parsed, asked for more, or refused; a
//! parsed header never claims more bytes than it was given.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((len, _))) = rempart::ops::proxy_protocol::parse(data) {
        assert!(len <= data.len());
    }
});
