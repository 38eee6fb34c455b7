//! The proxy and `rempart classify` decide alike: the same requests, in the
//! same order, sent through the running proxy (behind a trusted proxy, so
//! that client addresses can be chosen) and replayed through `classify`
//! with the same config, get the same action, rule and status each time.

mod common;

use std::time::{Duration, Instant};

use common::*;

const TOKEN: &str = "parity-licence-token";

struct Step {
    ip: &'static str,
    ua: &'static str,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
}

const fn step(ip: &'static str, ua: &'static str, path: &'static str) -> Step {
    Step {
        ip,
        ua,
        path,
        headers: &[],
    }
}

const LICENSED: &[(&str, &str)] = &[("authorization", "License parity-licence-token")];
const WRONG_LICENCE: &[(&str, &str)] = &[("authorization", "License not-a-token")];
const BID: &[(&str, &str)] = &[("crawler-max-price", "EUR 1.00")];

fn steps() -> Vec<Step> {
    let mut s = vec![
        step("203.0.113.20", CHROME, "/films/a"),
        step(GPTBOT_IP, GPTBOT, "/films/a"),
        step(GPTBOT_IP, GPTBOT, "/license.xml"),
        step(GPTBOT_IP, GPTBOT, "/robots.txt"),
        step(GPTBOT_IP, GPTBOT, "/.well-known/tdmrep.json"),
        step(GPTBOT_IP, GPTBOT, "/ai-licensing"),
        step("203.0.113.10", GOOGLEBOT, "/films/a"),
        step(GOOGLEBOT_IP, GOOGLEBOT, "/films/a"),
        Step {
            headers: LICENSED,
            ..step("203.0.113.30", GPTBOT, "/films/a")
        },
        Step {
            headers: WRONG_LICENCE,
            ..step("203.0.113.31", GPTBOT, "/films/a")
        },
        Step {
            headers: BID,
            ..step("203.0.113.32", GPTBOT, "/films/b")
        },
        step("203.0.113.33", GPTBOT, "/.well-known/%ff/../../films/x"),
        step("203.0.113.34", GPTBOT, "/.well-known/%2e%2e/films/x"),
        step("203.0.113.21", CHROME, "/catalogue-integral/"),
        step("203.0.113.21", CHROME, "/films/after-the-trap"),
    ];
    // More offers to one verified agent than `refusals_limit` (3 here).
    for _ in 0..5 {
        s.push(step(GPTBOT_IP, GPTBOT, "/films/c"));
    }
    s
}

fn licensee() -> String {
    let hash = rempart::licensing::licence::hash_token(TOKEN);
    format!("[[licensees]]\nid = \"parity-ai\"\nname = \"Parity AI\"\nagents = [\"GPTBot\"]\ntoken_sha256 = [\"{hash}\"]\n")
}

/// The shipped reservation (so that rempart serves license.xml and the
/// TDMRep files) and rules, with a lower refusal limit, and one licensee.
fn rules() -> String {
    let shipped = std::fs::read_to_string(repo().join("config/rempart.toml")).unwrap();
    let start = shipped.find("[reservation]").expect("shipped reservation");
    let end = shipped.find("[[rules]]").expect("shipped rules");
    let reservation = &shipped[start..end];
    let rules = default_rules().replace("[behaviour]\n", "[behaviour]\nrefusals_limit = 3\n");
    format!("{reservation}\n{rules}\n{}", licensee())
}

/// (status, action, rule) of each access-log line, in order.
fn access_log(proxy: &Proxy, n: usize) -> Vec<(u64, String, String)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = std::fs::read_to_string(proxy.dir.path().join("access.log")).unwrap_or_default();
        let lines: Vec<(u64, String, String)> = log
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| {
                let f = &v;
                (
                    f["status"].as_u64().unwrap_or(0),
                    f["action"].as_str().unwrap_or("").to_owned(),
                    f["rule"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_proxy_and_classify_take_the_same_action() {
    let origin = Origin::start();
    let proxy = Proxy::start_args(
        &origin.url(),
        "access_log = true\naccess_log_file = \"access.log\"\ntrusted_proxies = [\"127.0.0.1/32\"]",
        &rules(),
        &["--log-json"],
    );
    let steps = steps();
    let mut input = String::new();
    for s in &steps {
        let mut req = format!(
            // Every client here sends the Accept headers a browser sends
            // (a log line has no header set, so `classify` cannot judge them).
            "GET {} HTTP/1.1\r\nHost: catalogue.example\r\nUser-Agent: {}\r\nAccept: text/html\r\nAccept-Language: fr-FR\r\nX-Forwarded-For: {}\r\n",
            s.path, s.ua, s.ip
        );
        for (k, v) in s.headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("Connection: close\r\n\r\n");
        let answer = proxy.raw(req.as_bytes());
        assert!(answer.starts_with("HTTP/1.1 "), "{}: {answer}", s.path);
        let headers: serde_json::Map<String, serde_json::Value> = s
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
            .collect();
        input.push_str(
            &serde_json::json!({
                "ua": s.ua, "ip": s.ip, "path": s.path, "host": "catalogue.example",
                "headers": headers,
            })
            .to_string(),
        );
        input.push('\n');
    }
    let live = access_log(&proxy, steps.len());
    assert_eq!(live.len(), steps.len(), "one access-log line per request");

    let config = proxy.dir.path().join("rempart.toml");
    let (code, out, err) = run_cli(
        &["classify", "--config", config.to_str().unwrap()],
        Some(&input),
    );
    assert_eq!(code, 0, "{err}");
    let replayed: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(replayed.len(), steps.len(), "{err}");
    for ((s, (status, action, rule)), r) in steps.iter().zip(&live).zip(&replayed) {
        let what = format!(
            "{} {} {}",
            s.ip,
            s.ua.split(';').nth(1).unwrap_or(s.ua),
            s.path
        );
        assert_eq!(r["action"].as_str(), Some(action.as_str()), "{what}");
        assert_eq!(r["rule"].as_str(), Some(rule.as_str()), "{what}");
        // classify names the status rempart answers with; none means the origin's 200.
        assert_eq!(r["status"].as_u64().unwrap_or(200), *status, "{what}");
    }
    // The sequence itself: what each step must be.
    let statuses: Vec<u64> = live.iter().map(|l| l.0).collect();
    assert_eq!(
        statuses,
        [
            200, 402, 200, 200, 200, 200, 403, 200, 200, 401, 402, 400, 402, 403, 403, 402, 402,
            403, 403, 403
        ],
        "{live:?}"
    );
}
