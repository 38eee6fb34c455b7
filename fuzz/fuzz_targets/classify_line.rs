//! `rempart classify`'s log-line parser, then the decision on what it read.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rempart::classify::{classify, parse_line, ClientFrom, Replay};

mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else { return };
    let snap = common::shipped();
    if let Some(sample) = parse_line(line, ClientFrom::Xff) {
        let mut replay = Replay::new(snap);
        let _ = classify(snap, &sample, &mut replay);
    }
});
