//! An origin's robots.txt: merged with rempart's group, then parsed back
//! as it is served and matched for a few agents and paths.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(origin) = std::str::from_utf8(data) else { return };
    let snap = common::shipped();
    let merged = snap.pages.robots.merged(origin);
    assert!(merged.contains("User-agent"));
    let published = rempart::optout::published::Published::new(None);
    let version = published.robots(&bytes::Bytes::from(merged));
    for agent in [None, Some("GPTBot"), Some("Googlebot")] {
        for path in ["/", "/films/x", "/catalogue-integral/"] {
            let _ = version.disallows(agent, path);
        }
    }
});
