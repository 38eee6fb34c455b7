//! User-agent matching and identification on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let snap = common::shipped();
    let id = rempart::identify::identify(&snap.catalogue, &snap.ranges, data, "203.0.113.1".parse().expect("ip"));
    if let Some(agent) = id.agent {
        let _ = snap.catalogue.agent(agent);
    }
});
