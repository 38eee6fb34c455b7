//! Shared behaviour state: two proxies and one real redis-server.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server not found: .ci/run installs it (apt-get install redis-server)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rules(redis: Option<u16>) -> String {
    let rules = default_rules();
    match redis {
        Some(port) => rules.replace(
            "store = \"local\"\nredis_url = \"redis://127.0.0.1:6379/\"",
            &format!("store = \"redis\"\nredis_url = \"redis://127.0.0.1:{port}/\"\nflush_ms = 50"),
        ),
        None => rules,
    }
}

const HEADERS: [(&str, &str); 3] = [
    ("user-agent", CHROME),
    ("accept", "text/html"),
    ("accept-language", "fr-FR"),
];

/// 12 pages on each replica, alternating; returns the statuses in order.
fn alternate(a: &Proxy, b: &Proxy) -> Vec<u16> {
    (0..24)
        .map(|i| {
            let p = if i % 2 == 0 { a } else { b };
            let s = p.get(&format!("/films/{i}"), &HEADERS).status;
            std::thread::sleep(Duration::from_millis(60));
            s
        })
        .collect()
}

#[test]
fn two_replicas_see_one_clients_combined_rate() {
    let origin = Origin::start();
    // The page rate alone: this client's header fingerprint would show the
    // combined count first (the test below).
    let rules = |redis| {
        let text = rules(redis);
        assert!(text.contains("[behaviour.fingerprint]\nenabled = true"));
        text.replace(
            "[behaviour.fingerprint]\nenabled = true",
            "[behaviour.fingerprint]\nenabled = false",
        )
    };
    // Control: with local state, neither replica sees more than 12 pages
    // (the limit is 20 per window), so nothing is limited.
    let (a, b) = (
        Proxy::start_with(&origin.url(), "", &rules(None)),
        Proxy::start_with(&origin.url(), "", &rules(None)),
    );
    let local = alternate(&a, &b);
    assert!(local.iter().all(|&s| s == 200), "{local:?}");
    drop((a, b));

    let redis = Redis::start(free_port());
    let a = Proxy::start_with(&origin.url(), "", &rules(Some(redis.port)));
    let b = Proxy::start_with(&origin.url(), "", &rules(Some(redis.port)));
    let shared = alternate(&a, &b);
    let first = shared.iter().position(|&s| s == 429).map(|i| i + 1);
    let first = first.unwrap_or_else(|| panic!("never limited: {shared:?}"));
    assert!(
        (21..=24).contains(&first),
        "limited at combined request {first} (each replica had seen {} pages): {shared:?}",
        first.div_ceil(2)
    );
    assert!(shared[..first - 1].iter().all(|&s| s == 200));
    for p in [&a, &b] {
        assert_eq!(p.metric("rempart_behaviour_store_up"), 1.0);
        assert!(p.metric("rempart_behaviour_store_flushes_total") > 0.0);
    }

    // Redis goes away: requests are still served, on local state, and the
    // failure is counted.
    let port = redis.port;
    drop(redis);
    let other = [
        ("user-agent", "Mozilla/5.0 Firefox/128.0"),
        ("accept", "text/html"),
        ("accept-language", "fr"),
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut i = 0;
    while a.metric(r#"rempart_behaviour_store_errors_total{kind="connect"}"#)
        + a.metric(r#"rempart_behaviour_store_errors_total{kind="write"}"#)
        == 0.0
    {
        assert!(Instant::now() < deadline, "the failure was never counted");
        assert_eq!(a.get(&format!("/films/x{i}"), &other).status, 200);
        i += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(a.metric("rempart_behaviour_store_up"), 0.0);
    // It comes back: so does the shared state.
    let _redis = Redis::start(port);
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.metric("rempart_behaviour_store_up") != 1.0 {
        assert!(Instant::now() < deadline, "never reconnected");
        assert_eq!(a.get(&format!("/films/y{i}"), &other).status, 200);
        i += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A fleet of ten addresses (through `X-Forwarded-For` from the trusted
/// loopback) spread over two replicas: 24 pages with one header fingerprint,
/// alternating; returns the statuses in order.
fn fleet(a: &Proxy, b: &Proxy) -> Vec<u16> {
    (0..24)
        .map(|i| {
            let p = if i % 2 == 0 { a } else { b };
            let ip = format!("198.51.100.{}", 10 + i % 10);
            let mut h = HEADERS.to_vec();
            h.push(("x-forwarded-for", ip.as_str()));
            let s = p.get(&format!("/films/fleet-{i}"), &h).status;
            std::thread::sleep(Duration::from_millis(60));
            s
        })
        .collect()
}

#[test]
fn two_replicas_see_one_fingerprints_combined_pages() {
    let origin = Origin::start();
    // Refuse the spike outright, so that its first request shows.
    let with_rule = |redis| {
        format!(
            "[[rules]]\nname = \"fleet\"\nsignal = [\"fingerprint-spike\"]\naction = \"block\"\n\n{}",
            rules(redis)
        )
    };
    let trusted = "trusted_proxies = [\"127.0.0.1/32\"]";
    // Control: each replica alone sees 12 pages of the fingerprint, under
    // the floor of 20 a window.
    let (a, b) = (
        Proxy::start_with(&origin.url(), trusted, &with_rule(None)),
        Proxy::start_with(&origin.url(), trusted, &with_rule(None)),
    );
    let local = fleet(&a, &b);
    assert!(local.iter().all(|&s| s == 200), "{local:?}");
    drop((a, b));

    let redis = Redis::start(free_port());
    let a = Proxy::start_with(&origin.url(), trusted, &with_rule(Some(redis.port)));
    let b = Proxy::start_with(&origin.url(), trusted, &with_rule(Some(redis.port)));
    let shared = fleet(&a, &b);
    let first = shared.iter().position(|&s| s == 403).map(|i| i + 1);
    let first = first.unwrap_or_else(|| panic!("the fleet was never seen: {shared:?}"));
    assert!(
        (20..=24).contains(&first),
        "refused at combined request {first}: {shared:?}"
    );
    assert!(shared[first..].iter().all(|&s| s == 403), "{shared:?}");
    let records: Vec<serde_json::Value> = [&a, &b]
        .iter()
        .flat_map(|p| {
            let all = p.wait_records(1);
            requests(&all).into_iter().cloned().collect::<Vec<_>>()
        })
        .collect();
    assert!(
        records.iter().any(|r| r["rule"] == "fleet"
            && r["signals"]
                .as_array()
                .is_some_and(|s| s.iter().any(|v| v == "fingerprint-spike"))),
        "no ledger record of the spike"
    );
    // One fingerprint links the fleet's records, whatever their address.
    let fps: std::collections::BTreeSet<&str> = records
        .iter()
        .filter(|r| r["rule"] == "fleet")
        .filter_map(|r| r["fingerprint"].as_str())
        .collect();
    assert_eq!(fps.len(), 1, "{fps:?}");
}
