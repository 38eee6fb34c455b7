//! End to end: the rempart binary in front of a real origin, a real client.

mod common;

use common::*;

#[test]
fn a_browser_gets_the_origin_page() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin.url());
    let r = proxy.get(
        "/films/la-traversee",
        &[("user-agent", CHROME), BROWSER_ACCEPT, BROWSER_LANGUAGE],
    );
    assert_eq!(r.status, 200);
    // The page, with the invisible honeypot link (the origin sends no
    // </body>, so it goes last).
    assert_eq!(r.body, page_with_link());
    let seen = origin.last().expect("origin saw the request");
    assert_eq!(seen.path, "/films/la-traversee");
    assert_eq!(
        seen.headers.get("x-forwarded-for").map(String::as_str),
        Some("127.0.0.1")
    );
    assert_eq!(
        proxy
            .metric(r#"rempart_requests_total{action="allow",purpose="none",verification="none"}"#),
        1.0
    );
}

#[test]
fn gptbot_gets_the_offer_in_english_french_or_json() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin.url());

    let en = proxy.get("/films/la-traversee", &[("user-agent", GPTBOT)]);
    assert_eq!(en.status, 402);
    assert!(en.body.contains("<html lang=\"en\">"), "{}", en.body);
    assert!(en.body.contains("Directive (EU) 2019/790"));
    assert!(en.body.contains("L.122-5-3"));
    assert!(en.body.contains("Test Rights SAS"));
    assert!(en.body.contains("https://test.example/terms"));
    assert_eq!(
        en.headers.get("cache-control").map(String::as_str),
        Some("no-store")
    );
    assert_eq!(
        en.headers.get("connection").map(String::as_str),
        Some("keep-alive")
    );

    let fr = proxy.get(
        "/films/la-traversee",
        &[
            ("user-agent", GPTBOT),
            ("accept-language", "fr-FR,fr;q=0.9,en;q=0.5"),
        ],
    );
    assert_eq!(fr.status, 402);
    assert!(fr.body.contains("<html lang=\"fr\">"));
    assert!(fr.body.contains("directive (UE) 2019/790"));
    assert!(fr.body.contains("licences@test.example"));

    let json = proxy.get(
        "/films/la-traversee",
        &[("user-agent", GPTBOT), ("accept", "application/json")],
    );
    assert_eq!(json.status, 402);
    assert_eq!(
        json.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    let v: serde_json::Value = serde_json::from_str(&json.body).expect("offer JSON");
    assert_eq!(v["status"], 402);
    assert_eq!(v["rights_holder"], "Test Rights SAS");
    assert_eq!(v["licensing"]["contact"], "licences@test.example");

    assert_eq!(origin.count(), 0, "nothing reached the origin");
    assert_eq!(
        proxy.metric(
            r#"rempart_requests_total{action="offer",purpose="ai-training",verification="spoofed"}"#
        ),
        3.0
    );
    assert_eq!(
        proxy.metric(
            r#"rempart_agent_requests_total{action="offer",agent="GPTBot",operator="OpenAI"}"#
        ),
        3.0
    );
}

#[test]
fn the_offer_status_can_be_403() {
    let origin = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let (port, admin) = (free_port(), free_port());
    let cfg = write_config(dir.path(), &origin.url(), port, admin, "", &default_rules());
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("[responses]\n", "[responses]\noffer_status = 403\n");
    std::fs::write(&cfg, text).unwrap();
    let (code, out, err) = run_cli(
        &[
            "classify",
            "--config",
            cfg.to_str().unwrap(),
            "--ua",
            "GPTBot/1.2",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(r#""action":"offer""#));
    let _ = (port, admin);
}

#[test]
fn googlebot_from_loopback_is_blocked_as_spoofed() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin.url());
    let r = proxy.get("/", &[("user-agent", GOOGLEBOT)]);
    assert_eq!(r.status, 403);
    assert!(
        r.body.contains("href=\"/ai-licensing\""),
        "the block page links to the offer: {}",
        r.body
    );
    assert_eq!(origin.count(), 0);
    assert_eq!(proxy.metric(r#"rempart_requests_total{action="block",purpose="search-engine",verification="spoofed"}"#), 1.0);
}

#[test]
fn forged_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin.url());
    // Claims to come through a proxy from Google's address: not believed.
    let r = proxy.get(
        "/",
        &[
            ("user-agent", GOOGLEBOT),
            ("x-forwarded-for", GOOGLEBOT_IP),
            ("x-real-ip", GOOGLEBOT_IP),
        ],
    );
    assert_eq!(r.status, 403);
    // The origin gets the forged value with the real peer appended.
    let b = proxy.get(
        "/",
        &[
            ("user-agent", CHROME),
            BROWSER_ACCEPT,
            BROWSER_LANGUAGE,
            ("x-forwarded-for", "203.0.113.5"),
        ],
    );
    assert_eq!(b.status, 200);
    assert_eq!(
        origin
            .last()
            .unwrap()
            .headers
            .get("x-forwarded-for")
            .map(String::as_str),
        Some("203.0.113.5, 127.0.0.1")
    );
}

#[test]
fn trusted_proxy_headers_verify_crawler_addresses() {
    let origin = Origin::start();
    let proxy = Proxy::start_with(
        &origin.url(),
        r#"trusted_proxies = ["127.0.0.0/8"]"#,
        &default_rules(),
    );
    // Googlebot from Google's published range passes as a verified search engine.
    let g = proxy.get(
        "/films/la-traversee",
        &[
            ("user-agent", GOOGLEBOT),
            ("x-forwarded-for", &format!("198.51.100.1, {GOOGLEBOT_IP}")),
        ],
    );
    assert_eq!(g.status, 200);
    // GPTBot from OpenAI's range is verified, and still gets the offer.
    let o = proxy.get(
        "/films/la-traversee",
        &[("user-agent", GPTBOT), ("x-forwarded-for", GPTBOT_IP)],
    );
    assert_eq!(o.status, 402);
    // Googlebot from an address outside Google's ranges, through the trusted proxy: spoofed.
    let s = proxy.get(
        "/",
        &[
            ("user-agent", GOOGLEBOT),
            ("x-forwarded-for", "203.0.113.9"),
        ],
    );
    assert_eq!(s.status, 403);
    assert_eq!(proxy.metric(r#"rempart_requests_total{action="allow",purpose="search-engine",verification="verified"}"#), 1.0);
    assert_eq!(proxy.metric(r#"rempart_requests_total{action="offer",purpose="ai-training",verification="verified"}"#), 1.0);
    assert_eq!(proxy.metric(r#"rempart_requests_total{action="block",purpose="search-engine",verification="spoofed"}"#), 1.0);
}

#[test]
fn robots_txt_lists_the_ai_agents() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin.url());
    // Every client may read it, the AI crawlers first of all.
    let r = proxy.get("/robots.txt", &[("user-agent", GPTBOT)]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers.get("content-type").map(String::as_str),
        Some("text/plain; charset=utf-8")
    );
    for agent in [
        "GPTBot",
        "ClaudeBot",
        "CCBot",
        "Google-Extended",
        "Applebot-Extended",
        "PerplexityBot",
        "Bytespider",
        "Meta-ExternalAgent",
    ] {
        assert!(
            r.body.contains(&format!("\nUser-agent: {agent}\n")),
            "{agent} missing from robots.txt"
        );
    }
    // Search engines and link previews are not in the AI group.
    for agent in ["Googlebot", "bingbot", "Applebot", "facebookexternalhit"] {
        assert!(
            !r.body.contains(&format!("\nUser-agent: {agent}\n")),
            "{agent} must not be disallowed"
        );
    }
    let group_end = r.body.find("Disallow: /\n").expect("disallow line");
    assert!(r.body[group_end..].contains("User-agent: *\nAllow: /"));
    assert_eq!(
        proxy.metric(r#"rempart_served_documents_total{document="robots.txt"}"#),
        1.0
    );
    assert_eq!(origin.count(), 0);
}

#[test]
fn the_offer_page_and_well_known_stay_reachable() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin.url());
    let r = proxy.get("/ai-licensing", &[("user-agent", GPTBOT)]);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Licensing is open"));
    let w = proxy.get("/.well-known/security.txt", &[("user-agent", GPTBOT)]);
    assert_eq!(w.status, 200, "/.well-known/ is always reachable");
    assert_eq!(origin.last().unwrap().path, "/.well-known/security.txt");
    // A percent-encoded path cannot dodge a rule by looking like /.well-known/.
    let e = proxy.get("/%2Ewell-known/../films/x", &[("user-agent", GPTBOT)]);
    assert_eq!(e.status, 402);
}

#[test]
fn log_only_rules_pass_the_request_and_count_it() {
    let origin = Origin::start();
    let rules = format!(
        "[[rules]]\nname = \"shadow-tools\"\nidentity = [\"tool\"]\naction = \"block\"\nmode = \"log-only\"\n\n{}",
        default_rules()
    );
    let proxy = Proxy::start_with(&origin.url(), "", &rules);
    let r = proxy.get("/films/la-traversee", &[("user-agent", "curl/8.5.0")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, page_with_link());
    assert_eq!(
        proxy.metric(r#"rempart_log_only_total{action="block",rule="shadow-tools"}"#),
        1.0
    );
    assert_eq!(
        proxy
            .metric(r#"rempart_requests_total{action="allow",purpose="tool",verification="none"}"#),
        1.0
    );
    // A shadow rule never changes what others get.
    assert_eq!(proxy.get("/", &[("user-agent", GPTBOT)]).status, 402);
}

#[test]
fn an_unreachable_upstream_gives_a_502_page() {
    let closed = free_port();
    let proxy = Proxy::start(&format!("http://127.0.0.1:{closed}"));
    let started = std::time::Instant::now();
    let r = proxy.get(
        "/",
        &[("user-agent", CHROME), BROWSER_ACCEPT, BROWSER_LANGUAGE],
    );
    assert_eq!(r.status, 502);
    assert!(r.body.contains("temporarily unavailable"), "{}", r.body);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(proxy.metric(r#"rempart_upstream_errors_total{stage="connect"}"#) >= 1.0);
    // Refusals do not need the origin.
    assert_eq!(proxy.get("/", &[("user-agent", GPTBOT)]).status, 402);
}

#[test]
fn hostile_requests_get_defined_answers() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin.url());

    // A non-UTF-8 user agent, forwarded byte for byte (it says `bot`: a
    // self-declared bot, let through like any other-bot).
    let raw_origin = RawOrigin::start();
    let byte_proxy = Proxy::start(&raw_origin.url());
    let r = byte_proxy.raw(b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: \xff\xfe\xc3(bot\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let head = raw_origin.last_head();
    let needle: &[u8] = b"\xff\xfe\xc3(bot";
    assert!(
        head.windows(needle.len()).any(|w| w == needle),
        "UA bytes forwarded unchanged"
    );
    assert_eq!(
        byte_proxy
            .metric(r#"rempart_requests_total{action="allow",purpose="other-bot",verification="unverifiable"}"#),
        1.0
    );
    // A non-UTF-8 user agent naming GPTBot is still GPTBot.
    let r = proxy.raw(b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: \xff GPTBot/1.0 \xfe\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 402"), "{r}");
    // An 8 KB user agent.
    let long = "a".repeat(8 * 1024);
    let r =
        proxy.raw(format!("GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: {long}\r\n\r\n").as_bytes());
    assert!(r.starts_with("HTTP/1.1 200"), "{}", &r[..r.len().min(200)]);
    let r = proxy.raw(
        format!("GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: {long} ClaudeBot/1.0\r\n\r\n").as_bytes(),
    );
    assert!(r.starts_with("HTTP/1.1 402"), "{}", &r[..r.len().min(200)]);
    // HTTP/1.1 without Host is malformed (RFC 9112 §3.2): 400, and the origin never sees it.
    let before = origin.count();
    let r = proxy.raw(b"GET /films/x HTTP/1.1\r\nUser-Agent: curl/8\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    assert_eq!(origin.count(), before);
    // HTTP/1.0 needs no Host: forwarded.
    let r = proxy.raw(b"GET / HTTP/1.0\r\n\r\n");
    assert!(
        r.starts_with("HTTP/1.1 200") || r.starts_with("HTTP/1.0 200"),
        "{r}"
    );
    // Garbage instead of a request: 400, or the connection closes.
    let r = proxy.raw(b"\x00\x01\x02 not http at all\r\n\r\n");
    assert!(r.is_empty() || r.starts_with("HTTP/1.1 400"), "{r}");
    // A request line that is far too long.
    let r = proxy.raw(
        format!(
            "GET /{} HTTP/1.1\r\nHost: x\r\n\r\n",
            "x".repeat(256 * 1024)
        )
        .as_bytes(),
    );
    assert!(
        r.is_empty() || r.starts_with("HTTP/1.1 4"),
        "{}",
        &r[..r.len().min(200)]
    );

    // The proxy is still up and answering.
    assert_eq!(proxy.browse("/").status, 200);
    assert_eq!(proxy.get("/", &[("user-agent", GPTBOT)]).status, 402);
}

#[test]
fn head_requests_get_headers_only() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin.url());
    let r = proxy.raw(b"HEAD / HTTP/1.1\r\nHost: x\r\nUser-Agent: GPTBot/1.2\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 402"), "{r}");
    let (head, body) = r.split_once("\r\n\r\n").unwrap();
    assert!(head.to_ascii_lowercase().contains("content-length:"));
    assert!(body.is_empty(), "HEAD has no body: {body:?}");
}

#[test]
fn refusals_keep_the_connection_alive() {
    use std::io::{Read, Write};
    let origin = Origin::start();
    let proxy = Proxy::start(&origin.url());
    let mut s = std::net::TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(3)))
        .unwrap();
    let req = b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: GPTBot/1.2\r\n\r\n";
    let mut answers = 0;
    for _ in 0..3 {
        s.write_all(req).unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16384];
        loop {
            let n = s.read(&mut chunk).unwrap();
            assert!(n > 0, "connection closed after a refusal");
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).into_owned();
            let Some(head_end) = text.find("\r\n\r\n") else {
                continue;
            };
            let len: usize = text[..head_end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .expect("content-length");
            if buf.len() >= head_end + 4 + len {
                assert!(text.starts_with("HTTP/1.1 402"), "{text}");
                assert_eq!(buf.len(), head_end + 4 + len, "exactly one response");
                answers += 1;
                break;
            }
        }
    }
    assert_eq!(answers, 3);
}

#[test]
fn a_bot_no_list_names_is_counted_and_recorded_as_unknown_bot() {
    let origin = Origin::start();
    let cfg = repo().join("config");
    let domains = format!(
        "ranges_dir = \"{}/ipranges\"\noperator_domains = \"{}/agents/operator-domains.toml\"",
        cfg.display(),
        cfg.display()
    );
    let proxy = Proxy::start_edited(&origin.url(), "", &default_rules(), &[], &|text| {
        text.replace(
            &format!("ranges_dir = \"{}/ipranges\"", cfg.display()),
            &domains,
        )
    });
    // Names an AI operator's domain: the licensing offer, nothing for the origin.
    let ai = "Mozilla/5.0 (compatible; NovelThing/0.1; +https://chatgpt.com/novelthing)";
    let r = proxy.get("/films/la-traversee", &[("user-agent", ai)]);
    assert_eq!(r.status, 402);
    assert_eq!(origin.count(), 0);
    // Calls itself a bot: other-bot, let through by the shipped rules.
    let r = proxy.get("/films/la-traversee", &[("user-agent", "ZqxAcmeBot/1.0")]);
    assert_eq!(r.status, 200);
    assert_eq!(origin.count(), 1);
    assert_eq!(
        proxy.metric(
            r#"rempart_agent_requests_total{action="offer",agent="unknown-bot",operator="unknown"}"#
        ),
        1.0
    );
    assert_eq!(
        proxy.metric(
            r#"rempart_agent_requests_total{action="allow",agent="unknown-bot",operator="unknown"}"#
        ),
        1.0
    );
    assert_eq!(
        proxy.metric(r#"rempart_requests_total{action="offer",purpose="ai-training",verification="unverifiable"}"#),
        1.0
    );
    let records = proxy.wait_records(1);
    let offer = records
        .iter()
        .find(|r| r["user_agent"] == ai)
        .expect("the offer is in the ledger");
    assert_eq!(offer["agent"], "unknown-bot");
    assert_eq!(offer["identity"], "declared");
    assert_eq!(offer["purpose"], "ai-training");
}
