//! Behaviour, end to end: realistic sessions replayed through the running
//! proxy, in front of a real origin, with a real HTTP client.

mod common;

use common::*;
use sha2::{Digest, Sha256};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

/// What a browser sends with a page request.
fn browser_headers(ua: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("user-agent", ua),
        ("accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
        ("accept-language", "fr-FR,fr;q=0.9,en;q=0.5"),
    ]
}

#[test]
fn a_person_browsing_with_assets_is_never_over_the_threshold() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin.url());
    let h = browser_headers(FIREFOX);
    // Faster than anyone reads: 15 pages, each with its stylesheet, script,
    // poster and font.
    for i in 0..15 {
        let page = proxy.get(&format!("/films/film-{i}"), &h);
        assert_eq!(page.status, 200, "page {i}");
        for asset in [
            "/static/site.css",
            "/static/app.js",
            &format!("/img/poster-{i}.webp"),
            "/fonts/title.woff2",
        ] {
            assert_eq!(proxy.get(asset, &h).status, 200, "{asset}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let text = proxy.metrics_text();
    for signal in ["page-rate", "no-assets", "robots-ignored", "honeypot"] {
        assert_eq!(
            metric_value(
                &text,
                &format!(r#"rempart_behaviour_signals_total{{signal="{signal}"}}"#)
            ),
            0.0,
            "{signal}"
        );
    }
    assert_eq!(
        metric_value(
            &text,
            r#"rempart_requests_total{action="allow",purpose="none",verification="none"}"#
        ),
        75.0
    );
    // Nothing to record: the ledger holds only the start and what was published.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(requests(&ledger_records(&proxy.evidence_dir())).is_empty());
}

#[test]
fn a_fast_scraper_with_a_browser_user_agent_is_stopped_within_25_requests() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin.url());
    let h = browser_headers(CHROME);
    let mut first_stopped = None;
    for i in 1..=50 {
        let r = proxy.get(&format!("/films/film-{i}"), &h);
        if r.status == 200 {
            assert!(
                first_stopped.is_none(),
                "request {i} passed after the scraper was stopped"
            );
            continue;
        }
        // Its header fingerprint spikes (pages far above its baseline, no
        // assets): the challenge, which a script that only fetches pages
        // never passes.
        assert_eq!(r.status, 403, "request {i}");
        assert!(
            r.body.contains("/.well-known/rempart/challenge"),
            "request {i}: {}",
            r.body
        );
        first_stopped.get_or_insert(i);
    }
    let first = first_stopped.expect("stopped within 50 requests");
    assert!(first <= 25, "stopped from request {first}");
    assert_eq!(
        origin.count(),
        first as usize - 1,
        "what reached the origin"
    );
    assert_eq!(
        proxy.metric(r#"rempart_challenges_total{outcome="issued"}"#),
        f64::from(51 - first)
    );
    let records = proxy.wait_records(51 - first as usize);
    let reqs = requests(&records);
    assert_eq!(reqs.len(), 51 - first as usize);
    let r = reqs[0];
    assert_eq!(r["decision"], "challenge");
    assert_eq!(r["status"], 403);
    assert_eq!(r["rule"], "suspicious-browsers");
    let signals: Vec<&str> = r["signals"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    assert!(signals.contains(&"fingerprint-spike"), "{signals:?}");
    assert!(r["fingerprint"].as_str().is_some_and(|f| f.len() == 16));
    // A person is not a company: the address is pseudonymised.
    assert!(r["client"]["pseudonym"]
        .as_str()
        .unwrap()
        .starts_with("hmac-sha256:"));
    assert!(r["client"].get("ip").is_none());
}

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[test]
fn a_crawler_that_reads_robots_txt_then_takes_a_disallowed_path_is_refused_and_recorded() {
    let origin = Origin::start_full(
        &[],
        &[("/robots.txt", 200, "User-agent: *\nDisallow: /private/\n")],
    );
    let reservation = "\n[reservation]\nbase_url = \"https://films.example\"\nheaders = true\n\
        [[reservation.location]]\npath = \"/*\"\ntdm_reserved = true\nallow = [\"search\"]\n\
        refuse = [\"ai-train\", \"ai-input\"]\n";
    let proxy = Proxy::start_with(
        &origin.url(),
        "",
        &format!("{}{reservation}", default_rules()),
    );
    let h = browser_headers(CHROME);
    // Before reading robots.txt, a path is just a path.
    let robots = loop {
        let r = proxy.get("/robots.txt", &[("user-agent", "Mozilla/5.0 probe")]);
        if r.body.contains("Disallow: /private/") {
            break r;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(robots.body.contains("Disallow: /catalogue-integral/"));
    assert_eq!(proxy.get("/private/contracts", &h).status, 200);

    // A browser-like crawler reads robots.txt, then goes where it says not to.
    let sneaky = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36 sneaky";
    let sh = browser_headers(sneaky);
    let served = proxy.get("/robots.txt", &sh);
    assert_eq!(
        proxy.get("/films/allowed", &sh).status,
        200,
        "allowed paths stay open"
    );
    let r = proxy.get("/private/contracts", &sh);
    assert_eq!(r.status, 403, "refused on that very request");
    assert_eq!(
        proxy.get("/films/next", &sh).status,
        403,
        "and the flag sticks"
    );

    // A named AI crawler that reads robots.txt and crawls anyway gets the
    // offer, and the record names it.
    let bytespider = "Mozilla/5.0 (compatible; Bytespider; spider-feedback@bytedance.com)";
    let bh = [("user-agent", bytespider)];
    proxy.get("/robots.txt", &bh);
    assert_eq!(proxy.get("/films/la-traversee", &bh).status, 402);

    let records = proxy.wait_records(3);
    let reqs = requests(&records);
    let by_path = |p: &str, ua: &str| {
        *reqs
            .iter()
            .find(|r| r["path"] == p && r["user_agent"] == ua)
            .unwrap_or_else(|| panic!("no record of {p}: {reqs:#?}"))
    };
    let ignored = by_path("/private/contracts", sneaky);
    assert_eq!(ignored["decision"], "block");
    assert_eq!(ignored["rule"], "ignored-reservation");
    assert!(ignored["signals"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == "robots-ignored"));
    assert_eq!(ignored["robots_txt"]["sha256"], sha256(&served.body));
    assert!(ignored["robots_txt"]["fetched_at"]
        .as_str()
        .unwrap()
        .starts_with("20"));
    let named = by_path("/films/la-traversee", bytespider);
    assert_eq!(named["agent"], "Bytespider");
    assert_eq!(named["operator"], "ByteDance");
    assert_eq!(named["decision"], "offer");
    assert!(named["signals"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == "robots-ignored"));
    assert_eq!(named["reservation"]["location"], "/*");
    assert_eq!(named["reservation"]["tdm_reserved"], true);
    assert_eq!(
        named["reservation"]["content_usage"],
        "train-ai=n, search=y"
    );
    let served_signals = named["reservation"]["signals_served"].as_array().unwrap();
    assert!(served_signals.iter().any(|s| s == "tdmrep.json"));
    // The version served is archived in the ledger.
    assert!(records.iter().any(|r| r["type"] == "published"
        && r["document"] == "robots.txt"
        && r["sha256"] == sha256(&served.body)
        && r["content"] == served.body.as_str()));
}

#[test]
fn following_the_invisible_link_springs_the_honeypot() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin.url());
    let h = browser_headers(CHROME);
    let page = proxy.get("/films/la-traversee", &h);
    assert_eq!(page.status, 200);
    let href = page
        .body
        .split("href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the page carries the hidden link");
    assert_eq!(href, "/catalogue-integral/");
    assert!(page.body.contains("style=\"display:none\""));
    // The length grows by the link and stays declared: the page is not sent chunked.
    assert_eq!(
        page.values("content-length"),
        [page.body.len().to_string().as_str()]
    );
    assert!(page.values("transfer-encoding").is_empty());
    // A non-HTML response is untouched.
    let robots = proxy.get("/robots.txt", &h);
    assert!(
        robots
            .body
            .contains("User-agent: *\nAllow: /\nDisallow: /catalogue-integral/\n"),
        "{}",
        robots.body
    );
    assert!(!robots.body.contains("<a href"));

    let trap = proxy.get(href, &h);
    assert_eq!(trap.status, 403);
    assert_eq!(origin.count(), 1, "the origin never saw the trap request");
    let records = proxy.wait_records(1);
    let r = requests(&records)[0];
    assert_eq!(
        (r["path"].as_str(), r["rule"].as_str()),
        (Some("/catalogue-integral/"), Some("honeypot"))
    );
    assert!(r["signals"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == "honeypot"));
    assert_eq!(
        proxy.metric(r#"rempart_behaviour_signals_total{signal="honeypot"}"#),
        1.0
    );
    assert_eq!(proxy.metric("rempart_honeypot_links_total"), 1.0);
}

#[test]
fn a_player_pulling_200_segments_stays_allowed() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin.url());
    let h = browser_headers(CHROME);
    assert_eq!(proxy.get("/films/la-traversee", &h).status, 200);
    assert_eq!(proxy.get("/vod/la-traversee/master.m3u8", &h).status, 200);
    assert_eq!(proxy.get("/vod/la-traversee/720p.m3u8", &h).status, 200);
    for i in 0..200 {
        let r = proxy.get(&format!("/vod/la-traversee/720p/seg-{i:05}.ts"), &h);
        assert_eq!(r.status, 200, "segment {i}");
    }
    assert_eq!(
        proxy
            .metric(r#"rempart_requests_total{action="allow",purpose="none",verification="none"}"#),
        203.0
    );
    assert_eq!(
        proxy.metric(r#"rempart_behaviour_signals_total{signal="page-rate"}"#),
        0.0
    );
}

#[test]
fn a_verified_ai_crawler_that_keeps_coming_after_offers_is_blocked() {
    let origin = Origin::start();
    let proxy = Proxy::start_with(
        &origin.url(),
        "trusted_proxies = [\"127.0.0.1/32\"]",
        &default_rules().replace("[behaviour]\n", "[behaviour]\nrefusals_limit = 3\n"),
    );
    let h = [("user-agent", GPTBOT), ("x-forwarded-for", GPTBOT_IP)];
    let statuses: Vec<u16> = (0..5)
        .map(|i| proxy.get(&format!("/films/{i}"), &h).status)
        .collect();
    assert_eq!(statuses, [402, 402, 402, 403, 403]);
    let records = proxy.wait_records(5);
    let last = *requests(&records).last().unwrap();
    assert_eq!(last["rule"], "persistent-ai-crawlers");
    // A crawler's published address is a company's, not a person's: kept.
    assert_eq!(last["client"]["ip"], GPTBOT_IP);
    assert_eq!(last["verification"], "verified");
    assert_eq!(last["verified_by"], "ip-ranges");
}
