//! Scrapers that a list misses, end to end through the shipped policy: a
//! real python-requests client with a Chrome user agent, alone, spread over
//! many loopback addresses (a residential-proxy fleet as the site sees it),
//! and again sending Chrome's Accept and Accept-Language. What counts is what
//! reached the origin.

mod common;

use std::process::Command;

use common::*;

/// A Python 3 that has `requests`, or `None` (outside CI) with a message.
fn python() -> Option<&'static str> {
    let ok = Command::new("python3")
        .args(["-c", "import requests"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some("python3");
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "python3 with `requests` is required in CI (.ci/run installs it)"
    );
    eprintln!("skipped: no python3 with `requests` (pip install requests)");
    None
}

/// Runs the scripted scraper and returns how many pages the origin served.
fn scrape(pages: u32, addresses: u32, chrome_headers: bool) -> (usize, String) {
    let Some(py) = python() else {
        return (0, String::new());
    };
    let origin = Origin::start();
    // The shipped policy, and the loopback fleet's own connections: each
    // source address is its own client.
    let proxy = Proxy::start(&origin.url());
    let script = repo().join("tests/scripts/scraper.py");
    let mut cmd = Command::new(py);
    cmd.arg(&script)
        .arg(format!("http://127.0.0.1:{}", proxy.port))
        .arg(pages.to_string())
        .arg(addresses.to_string());
    if chrome_headers {
        cmd.arg("--chrome-headers");
    }
    let out = cmd.output().expect("run the scraper");
    assert!(
        out.status.success(),
        "scraper failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let statuses = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let served = origin.count();
    eprintln!("{pages} pages from {addresses} addresses (chrome headers: {chrome_headers}): origin served {served}, client saw {statuses}");
    (served, statuses)
}

#[test]
fn python_requests_with_a_chrome_user_agent_gets_at_most_ten_pages() {
    let (served, statuses) = scrape(100, 1, false);
    assert!(served <= 10, "origin served {served} pages: {statuses}");
}

#[test]
fn the_same_scraper_spread_over_many_addresses_gets_at_most_ten_pages() {
    let (served, statuses) = scrape(300, 100, false);
    assert!(served <= 10, "origin served {served} pages: {statuses}");
}

#[test]
fn with_chromes_accept_headers_it_gets_at_most_fifty_pages() {
    let (served, statuses) = scrape(200, 1, true);
    assert!(served <= 50, "origin served {served} pages: {statuses}");
}

#[test]
fn with_chromes_accept_headers_over_many_addresses_it_gets_at_most_fifty_pages() {
    let (served, statuses) = scrape(300, 100, true);
    assert!(served <= 50, "origin served {served} pages: {statuses}");
}
