//! The whole decision on an arbitrary request head: the request line's
//! target, and header lines (user agent, host, forwarding, Authorization,
//! Signature*, price bids). The decision is total: one outcome, and a
//! request it forwards has a canonical target.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rempart::decide::{decide_read, Answer, LocalState};
use rempart::request::{Received, Request};

mod common;

fuzz_target!(|data: &[u8]| {
    let snap = common::shipped();
    let mut lines = data.split(|&b| b == b'\n');
    let Some(target) = lines.next() else { return };
    let Ok(uri) = http::Uri::try_from(target) else { return };
    let mut headers = http::HeaderMap::new();
    for line in lines.take(32) {
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(&line[..colon]),
            http::HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    let local = LocalState::new(snap);
    let (mut head, ()) = http::Request::new(()).into_parts();
    head.uri = uri;
    head.headers = headers;
    let peer = "127.0.0.1".parse().expect("ip");
    for (version, raw) in [(http::Version::HTTP_11, Some(target)), (http::Version::HTTP_2, None)] {
        let received = Received {
            version,
            raw_target: raw,
            ..Received::of(&head, peer, 1_800_000_000_000)
        };
        let read = Request::read(received, &snap.trusted, snap.read);
        let outcome = decide_read(snap, &local.state(), &read);
        if let (Answer::Upstream, Ok(req)) = (&outcome.answer, &read) {
            assert!(req.path().starts_with('/'));
        }
        assert_eq!(matches!(outcome.answer, Answer::Upstream), outcome.status().is_none());
    }
});
