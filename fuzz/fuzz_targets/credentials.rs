//! The credential and price headers: `Authorization` against licensees,
//! and the pay-per-crawl bids.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let snap = common::shipped();
    let half = data.len() / 2;
    let _ = snap.licensees.check(Some(data), None, Some("catalogue.example"), "/films/x", std::time::SystemTime::now());
    let bid = rempart::licensing::payment::bid(Some(&data[..half]), None);
    let _ = rempart::licensing::payment::settle(10_000, bid, true);
    let bid = rempart::licensing::payment::bid(None, Some(&data[half..]));
    let _ = rempart::licensing::payment::settle(10_000, bid, false);
});
