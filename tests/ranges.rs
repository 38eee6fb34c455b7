//! Live range refresh from a local HTTP server standing in for the vendor.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// A vendor whose list can be changed during the test.
struct Vendor {
    body: Arc<Mutex<String>>,
    port: u16,
}

impl Vendor {
    fn start(body: String) -> Self {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let port = server.server_addr().to_ip().unwrap().port();
        let body = Arc::new(Mutex::new(body));
        let b = body.clone();
        std::thread::spawn(move || {
            for req in server.incoming_requests() {
                let text = b.lock().unwrap().clone();
                let _ = req.respond(tiny_http::Response::from_string(text));
            }
        });
        Self { body, port }
    }
    fn serve(&self, body: &str) {
        *self.body.lock().unwrap() = body.to_owned();
    }
}

fn shipped() -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(repo().join("config/ipranges/gptbot.json")).unwrap(),
    )
    .unwrap()
}

/// The shipped GPTBot list plus one prefix (TEST-NET-3).
fn grown() -> (String, usize) {
    let mut v = shipped();
    let prefixes = v["prefixes"].as_array_mut().unwrap();
    prefixes.push(serde_json::json!({"ipv4Prefix": "203.0.113.0/24"}));
    let n = prefixes.len();
    (v.to_string(), n)
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_refresh_swaps_lists_under_load_and_refuses_corrupt_or_shrunk_ones() {
    let (list, n) = grown();
    let vendor = Vendor::start(list.clone());
    let dir = tempfile::tempdir().unwrap();
    let sources = dir.path().join("SOURCES.tsv");
    std::fs::write(
        &sources,
        format!(
            "file\tvendor_url\ngptbot.json\thttp://127.0.0.1:{}/gptbot.json\n",
            vendor.port
        ),
    )
    .unwrap();
    let origin = LoadOrigin::start();
    let rules = default_rules()
        .replace(
            "[behaviour]\nenabled = true",
            "[behaviour]\nenabled = false",
        )
        .replace(
            "sources = \"ipranges/SOURCES.tsv\"",
            &format!(
                "sources = \"{}\"\nallow_private_hosts = [\"127.0.0.1\"]",
                sources.display()
            ),
        )
        .replace("interval_seconds = 86400", "interval_seconds = 1")
        .replace("jitter_seconds = 3600", "jitter_seconds = 0")
        .replace("[reload]\nwatch = true", "[reload]\nwatch = false");
    let proxy = Proxy::start_with(
        &origin.url(),
        "trusted_proxies = [\"127.0.0.1/32\"]",
        &rules,
    );

    // Browsers load pages all along.
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let load: Vec<_> = (0..8)
        .map(|_| {
            let (stop, failed, ok, url) = (
                stop.clone(),
                failed.clone(),
                ok.clone(),
                proxy.url("/films/x"),
            );
            std::thread::spawn(move || {
                let agent = ureq::agent();
                while !stop.load(Ordering::Relaxed) {
                    match agent
                        .get(&url)
                        .set("user-agent", CHROME)
                        .set(BROWSER_ACCEPT.0, BROWSER_ACCEPT.1)
                        .set(BROWSER_LANGUAGE.0, BROWSER_LANGUAGE.1)
                        .call()
                    {
                        Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();

    let gpt_from = |ip: &str| {
        proxy
            .get(
                "/films/x",
                &[("user-agent", GPTBOT), ("x-forwarded-for", ip)],
            )
            .status
    };
    let verified = || {
        proxy.metric(r#"rempart_requests_total{action="offer",purpose="ai-training",verification="verified"}"#)
    };
    let prefixes = || proxy.metric(r#"rempart_ipranges_prefixes{source="gptbot"}"#);

    // The new list is fetched, validated and swapped in.
    wait_for("the refreshed list", || prefixes() == n as f64);
    let before = verified();
    assert_eq!(gpt_from("203.0.113.50"), 402);
    assert_eq!(
        verified(),
        before + 1.0,
        "an address only the new list has is verified"
    );
    assert!(proxy.metric(r#"rempart_ipranges_age_seconds{source="gptbot"}"#) < 10.0);
    assert!(
        proxy.metric(r#"rempart_ipranges_age_seconds{source="googlebot"}"#) > 10.0,
        "shipped lists are older"
    );
    assert!(
        proxy.metric(r#"rempart_ipranges_refresh_total{result="updated",source="gptbot"}"#) >= 1.0
    );

    // A corrupt list is refused, counted, and the good one stays.
    vendor.serve("<html>maintenance</html>");
    wait_for("a refused corrupt list", || {
        proxy.metric(r#"rempart_ipranges_refresh_total{result="parse",source="gptbot"}"#) >= 1.0
    });
    // A list that lost most of its prefixes is refused too.
    vendor.serve(r#"{"prefixes":[{"ipv4Prefix":"192.0.2.0/24"}]}"#);
    wait_for("a refused shrunk list", || {
        proxy.metric(r#"rempart_ipranges_refresh_total{result="shrink",source="gptbot"}"#) >= 1.0
    });
    assert_eq!(prefixes(), n as f64);
    let before = verified();
    assert_eq!(gpt_from("203.0.113.50"), 402);
    assert_eq!(verified(), before + 1.0);

    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no request failed during the swaps"
    );
    assert!(ok.load(Ordering::Relaxed) > 100);
    // The good copy is kept on disk, and the next start uses it.
    let state = proxy.dir.path().join("state");
    let kept = std::fs::read_to_string(state.join("ipranges/gptbot.json")).unwrap();
    assert_eq!(kept, list);
    let next = Proxy::start_args(
        &origin.url(),
        "",
        &default_rules(),
        &["--state-dir", state.to_str().unwrap()],
    );
    assert_eq!(
        next.metric(r#"rempart_ipranges_prefixes{source="gptbot"}"#),
        n as f64
    );
    assert!(next.metric(r#"rempart_ipranges_prefixes{source="googlebot"}"#) > 0.0);
}

#[test]
fn ranges_refresh_once_from_the_command_line() {
    let (list, n) = grown();
    let vendor = Vendor::start(list.clone());
    let dir = tempfile::tempdir().unwrap();
    let sources = dir.path().join("SOURCES.tsv");
    std::fs::write(
        &sources,
        format!(
            "file\tvendor_url\ngptbot.json\thttp://127.0.0.1:{}/gptbot.json\nbingbot.json\thttp://127.0.0.1:1/unreachable\n",
            vendor.port
        ),
    )
    .unwrap();
    let (_cfg_dir, config) = config_for_check("", |t| {
        t.replace(
            "sources = \"ipranges/SOURCES.tsv\"",
            &format!(
                "sources = \"{}\"\nallow_private_hosts = [\"127.0.0.1\"]",
                sources.display()
            ),
        )
    });
    let state = dir.path().join("state");
    let (code, out, err) = run_cli(
        &[
            "ranges",
            "refresh",
            "--config",
            &config,
            "--state-dir",
            state.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, 1, "one source failed: {out}{err}");
    assert!(
        out.contains(&format!("gptbot.json: updated ({} -> {n} prefixes)", n - 1)),
        "{out}"
    );
    assert!(
        out.contains("bingbot.json: kept the previous list (fetch:"),
        "{out}"
    );
    assert!(out.contains("1 of 2 lists refreshed"), "{out}");
    assert_eq!(
        std::fs::read_to_string(state.join("ipranges/gptbot.json")).unwrap(),
        list
    );
    assert!(!state.join("ipranges/bingbot.json").exists());
    // Once more: nothing new.
    vendor.serve(&list);
    let (_, out, _) = run_cli(
        &[
            "ranges",
            "refresh",
            "--config",
            &config,
            "--state-dir",
            state.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.contains(&format!("gptbot.json: unchanged ({n} prefixes)")),
        "{out}"
    );
}

#[test]
fn a_list_on_a_private_address_is_never_fetched_unless_named() {
    let (list, _) = grown();
    let vendor = Vendor::start(list);
    let dir = tempfile::tempdir().unwrap();
    let sources = dir.path().join("SOURCES.tsv");
    std::fs::write(
        &sources,
        format!(
            "file\tvendor_url\ngptbot.json\thttp://127.0.0.1:{}/gptbot.json\n",
            vendor.port
        ),
    )
    .unwrap();
    let (_cfg_dir, config) = config_for_check("", |t| {
        t.replace(
            "sources = \"ipranges/SOURCES.tsv\"",
            &format!("sources = \"{}\"", sources.display()),
        )
    });
    let state = dir.path().join("state");
    let (code, out, err) = run_cli(
        &[
            "ranges",
            "refresh",
            "--config",
            &config,
            "--state-dir",
            state.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        format!("{out}{err}").contains("not a public address"),
        "{out}{err}"
    );
    assert!(!state.join("ipranges/gptbot.json").exists());
}
