//! The browser challenge through the real binary: the interstitial, a
//! client that solves it as the page's script does, the pass cookie, what
//! is never challenged, and the metrics.

mod common;

use common::*;
use sha2::{Digest, Sha256};

const TOKEN: &str = "challenge-test-licence";

fn rules() -> String {
    let (code, hash, err) = run_cli(&["licences", "hash-token"], Some(TOKEN));
    assert_eq!(code, 0, "{err}");
    format!(
        r#"
[[rules]]
name = "always-reachable"
path_prefix = ["/.well-known/"]
path = ["/robots.txt", "/ai-licensing"]
action = "allow"

[[rules]]
name = "challenge-everyone"
action = "challenge"

[[licensees]]
id = "acme-ai"
name = "ACME AI Ltd"
agents = ["GPTBot"]
token_sha256 = ["{}"]
"#,
        hash.trim()
    )
}

fn start(origin: &Origin) -> Proxy {
    Proxy::start_with(
        &origin.url(),
        r#"trusted_proxies = ["127.0.0.0/8"]"#,
        &rules(),
    )
}

fn browser(lang: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("user-agent", CHROME),
        ("accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
        ("accept-language", lang),
    ]
}

/// The value of `var = "…"` (or a number) in the interstitial's script.
fn script_value<'a>(body: &'a str, var: &str) -> &'a str {
    let start = body.find(&format!("{var} = ")).expect(var) + var.len() + 3;
    let rest = &body[start..];
    let end = rest.find([',', ';']).expect("end of value");
    rest[..end].trim_matches('"')
}

/// Solves the interstitial as its script does: the first decimal answer
/// whose SHA-256(nonce ‖ answer) starts with `d` zero bits.
fn solve(body: &str) -> String {
    let nonce = script_value(body, "var n");
    let d: u32 = script_value(body, "d").parse().expect("difficulty");
    let r = script_value(body, "r");
    let zero_bits = |h: &[u8]| {
        let mut z = 0;
        for &b in h {
            if b != 0 {
                return z + b.leading_zeros();
            }
            z += 8;
        }
        z
    };
    let answer = (0u64..)
        .find(|a| zero_bits(&Sha256::digest(format!("{nonce}{a}"))) >= d)
        .expect("an answer");
    format!("/.well-known/rempart/challenge?n={nonce}&a={answer}&r={r}")
}

/// The `name=value` of the pass cookie in a `Set-Cookie` header.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().expect("pair").to_owned()
}

#[test]
fn a_client_that_solves_the_challenge_reaches_the_origin_with_its_assets() {
    let origin = Origin::start();
    let proxy = start(&origin);

    // English and French interstitials: a refusal's status, never indexed.
    let en = proxy.get("/films/la-traversee?saison=2", &browser("en-GB,en;q=0.9"));
    assert_eq!(en.status, 403);
    assert_eq!(
        en.headers.get("x-robots-tag").map(String::as_str),
        Some("noindex, nofollow")
    );
    assert_eq!(
        en.headers.get("cache-control").map(String::as_str),
        Some("no-store")
    );
    assert!(en.headers["content-type"].starts_with("text/html"));
    assert!(
        en.body.contains("<html lang=\"en\">") && en.body.contains("One moment"),
        "{}",
        en.body
    );
    assert!(en.body.contains("<noscript><meta http-equiv=\"refresh\""));
    let fr = proxy.get("/films/la-traversee", &browser("fr-FR,fr;q=0.9"));
    assert_eq!(fr.status, 403);
    assert!(fr.body.contains("<html lang=\"fr\">") && fr.body.contains("Un instant"));
    assert_eq!(origin.count(), 0, "nothing reached the origin");

    // Solved as the page's script solves it.
    let verify = proxy.get(&solve(&en.body), &browser("en"));
    assert_eq!(verify.status, 303, "{}", verify.body);
    assert_eq!(verify.headers["location"], "/films/la-traversee?saison=2");
    let set_cookie = &verify.headers["set-cookie"];
    for attr in [
        "rempart_pass=",
        "; Max-Age=3600",
        "; Path=/",
        "; HttpOnly",
        "; SameSite=Lax",
    ] {
        assert!(set_cookie.contains(attr), "{attr} in {set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
    let cookie = cookie_pair(set_cookie);

    // The page and its assets, with the pass, reach the origin.
    let mut with_pass = browser("en");
    with_pass.push(("cookie", &cookie));
    let page = proxy.get("/films/la-traversee?saison=2", &with_pass);
    assert_eq!(page.status, 200);
    assert_eq!(page.body, page_with_link());
    for asset in ["/static/site.css", "/static/app.js", "/img/poster.jpg"] {
        assert_eq!(proxy.get(asset, &with_pass).status, 200, "{asset}");
    }
    let seen = origin.seen.lock().unwrap().clone();
    let paths: Vec<&str> = seen
        .iter()
        .map(|s| s.path.as_str())
        .filter(|p| *p != "/robots.txt")
        .collect();
    assert_eq!(
        paths,
        [
            "/films/la-traversee?saison=2",
            "/static/site.css",
            "/static/app.js",
            "/img/poster.jpg"
        ]
    );
    assert!(seen.iter().filter(|s| s.path != "/robots.txt").all(|s| s
        .headers
        .get("cookie")
        .is_some_and(|c| c.contains("rempart_pass="))));

    assert_eq!(
        proxy.metric("rempart_challenges_total{outcome=\"issued\"}"),
        2.0
    );
    assert_eq!(
        proxy.metric("rempart_challenges_total{outcome=\"passed\"}"),
        1.0
    );
    assert_eq!(
        proxy.metric("rempart_challenges_total{outcome=\"admitted\"}"),
        4.0
    );
    assert_eq!(
        proxy.metric("rempart_challenges_total{outcome=\"failed\"}"),
        0.0
    );

    // The interstitial is a decision worth a ledger record.
    let records = proxy.wait_records(2);
    let challenged: Vec<_> = requests(&records)
        .into_iter()
        .filter(|r| r["decision"] == "challenge")
        .collect();
    assert_eq!(challenged.len(), 2, "{records:?}");
    assert_eq!(challenged[0]["rule"], "challenge-everyone");
}

#[test]
fn assets_without_a_pass_are_never_challenged() {
    let origin = Origin::start();
    let proxy = start(&origin);
    // A person's page loaded before the challenge began: its assets, a
    // segment and an API call go on (to the origin here).
    let mut h = browser("en");
    for path in ["/static/site.css", "/vod/seg-00001.ts", "/img/poster.png"] {
        assert_eq!(proxy.get(path, &h).status, 200, "{path}");
    }
    h.push(("sec-fetch-mode", "cors"));
    h.push(("sec-fetch-dest", "empty"));
    assert_eq!(proxy.get("/api/films", &h).status, 200, "fetch() of an API");
    assert_eq!(origin.count(), 4);
    // A navigation says so, whatever its path.
    let nav = [
        ("user-agent", CHROME),
        ("sec-fetch-mode", "navigate"),
        ("sec-fetch-dest", "document"),
    ];
    assert_eq!(proxy.get("/img/poster.png", &nav).status, 403);
    assert_eq!(
        proxy.metric("rempart_challenges_total{outcome=\"issued\"}"),
        1.0
    );
}

#[test]
fn forged_expired_and_foreign_passes_are_challenged_again() {
    let origin = Origin::start();
    let proxy = start(&origin);
    let first = proxy.get("/films/x", &browser("en"));
    let verify = proxy.get(&solve(&first.body), &browser("en"));
    let cookie = cookie_pair(&verify.headers["set-cookie"]);

    let with = |c: &str, ua: &'static str| {
        let c = c.to_owned();
        proxy.get(
            "/films/x",
            &[("user-agent", ua), ("accept", "text/html"), ("cookie", &c)],
        )
    };
    assert_eq!(with(&cookie, CHROME).status, 200, "the pass itself");
    // Tampered: another expiry with the same mac, or a flipped mac.
    let (name_expiry, mac) = cookie.split_once('.').unwrap();
    let later = format!("{}f.{mac}", name_expiry);
    assert_eq!(with(&later, CHROME).status, 403);
    let flipped = format!(
        "{name_expiry}.{}",
        mac.replace(|c: char| c.is_ascii_digit(), "a")
    );
    assert_eq!(with(&flipped, CHROME).status, 403);
    // Another user agent with the same pass.
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    assert_eq!(with(&cookie, firefox).status, 403);
    // Signed with the right key, but expired.
    let key_bytes: [u8; 32] = std::fs::read(proxy.dir.path().join("state/challenge-key"))
        .unwrap()
        .try_into()
        .unwrap();
    let key = rempart::challenge::token::Key::new(key_bytes);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ip: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let expired = format!("rempart_pass={}", key.pass(ip, CHROME.as_bytes(), now - 1));
    assert_eq!(with(&expired, CHROME).status, 403);
    let fresh = format!(
        "rempart_pass={}",
        key.pass(ip, CHROME.as_bytes(), now + 600)
    );
    assert_eq!(with(&fresh, CHROME).status, 200, "the same key, unexpired");
    assert_eq!(
        proxy.metric("rempart_challenges_total{outcome=\"invalid-pass\"}"),
        4.0
    );

    // The key file is the state directory's, private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(proxy.dir.path().join("state/challenge-key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn wrong_answers_and_open_redirects_are_refused() {
    let origin = Origin::start();
    let proxy = start(&origin);
    let page = proxy.get("/films/x", &browser("en"));
    let good = solve(&page.body);
    // A wrong answer, a nonce of another client, the no-script step taken
    // before its delay: challenged again, no cookie.
    let (base, _) = good.split_once("&a=").unwrap();
    for bad in [
        format!("{base}&a=notanumber&r=%2F"),
        good.replace("n=", "n=0"),
        format!("{base}&m=wait&r=%2F"),
        "/.well-known/rempart/challenge".to_owned(),
    ] {
        let r = proxy.get(&bad, &browser("en"));
        assert_eq!(r.status, 403, "{bad}");
        assert!(!r.headers.contains_key("set-cookie"), "{bad}");
        assert!(r.body.contains("One moment"));
    }
    assert_eq!(
        proxy.metric("rempart_challenges_total{outcome=\"failed\"}"),
        4.0
    );
    // A good answer never sends the browser to another site.
    let (solved, _) = good.split_once("&r=").unwrap();
    for target in [
        "%2F%2Fevil.example%2F",
        "https%3A%2F%2Fevil.example%2F",
        "%2F%5Cevil.example",
        "evil.example",
        "%2Fa%0D%0ASet-Cookie%3A%20x%3D1",
    ] {
        let r = proxy.get(&format!("{solved}&r={target}"), &browser("en"));
        assert_eq!(r.status, 303, "{target}");
        assert_eq!(r.headers["location"], "/", "{target}");
    }
    // Over HTTPS (here: a trusted proxy's X-Forwarded-Proto) the pass is Secure.
    let mut https = browser("en");
    https.push(("x-forwarded-proto", "https"));
    let r = proxy.get(&solved.replace("&a=", "&r=%2Ffilms%2Fx&a="), &https);
    assert_eq!(r.status, 303);
    assert_eq!(r.headers["location"], "/films/x");
    assert!(
        r.headers["set-cookie"].ends_with("; Secure"),
        "{}",
        r.headers["set-cookie"]
    );
}

#[test]
fn search_engines_licensees_and_rempart_documents_are_never_challenged() {
    let origin = Origin::start();
    let proxy = start(&origin);
    let google = proxy.get(
        "/films/x",
        &[("user-agent", GOOGLEBOT), ("x-forwarded-for", GOOGLEBOT_IP)],
    );
    assert_eq!(google.status, 200, "a verified search engine");
    let licence = format!("License {TOKEN}");
    let licensed = proxy.get(
        "/films/x",
        &[
            ("user-agent", GPTBOT),
            ("x-forwarded-for", GPTBOT_IP),
            ("authorization", &licence),
        ],
    );
    assert_eq!(
        licensed.status, 200,
        "a licensed crawler: {}",
        licensed.body
    );
    assert_eq!(origin.count(), 2);
    for doc in ["/robots.txt", "/ai-licensing"] {
        let r = proxy.get(doc, &browser("en"));
        assert_eq!(r.status, 200, "{doc}");
        assert!(!r.body.contains("One moment"), "{doc}");
    }
    // A spoofed Googlebot is challenged like anyone else.
    let spoofed = proxy.get(
        "/films/x",
        &[
            ("user-agent", GOOGLEBOT),
            ("x-forwarded-for", "198.51.100.9"),
        ],
    );
    assert_eq!(spoofed.status, 403);
    assert_eq!(
        proxy.metric("rempart_challenges_total{outcome=\"issued\"}"),
        1.0
    );
}

#[test]
fn the_shipped_policy_challenges_a_chrome_user_agent_with_a_script_s_headers() {
    let origin = Origin::start();
    let proxy = Proxy::start_with(
        &origin.url(),
        r#"trusted_proxies = ["127.0.0.0/8"]"#,
        &default_rules(),
    );
    // Over HTTPS (at a trusted CDN), Chrome sends client hints and
    // sec-fetch-*; a script with Chrome's user agent does not.
    let script = [
        ("user-agent", CHROME),
        ("accept", "*/*"),
        ("x-forwarded-proto", "https"),
    ];
    let r = proxy.get("/films/x", &script);
    assert_eq!(r.status, 403);
    assert!(r.body.contains("One moment"));
    // Chrome itself is let through on its first page.
    let chrome = [
        ("user-agent", CHROME),
        ("accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
        ("accept-language", "fr-FR,fr;q=0.9"),
        ("sec-ch-ua", "\"Chromium\";v=\"126\""),
        ("sec-fetch-mode", "navigate"),
        ("sec-fetch-dest", "document"),
        ("x-forwarded-proto", "https"),
    ];
    assert_eq!(proxy.get("/films/x", &chrome).status, 200);
    // Every challenge series exists from the start.
    let text = proxy.metrics_text();
    for outcome in ["issued", "passed", "failed", "admitted", "invalid-pass"] {
        assert!(
            text.contains(&format!(
                "rempart_challenges_total{{outcome=\"{outcome}\"}}"
            )),
            "{outcome}"
        );
    }
}

#[test]
fn challenge_settings_are_checked_with_file_line_and_key() {
    for (from, to, key) in [
        ("difficulty = 14", "difficulty = 40", "challenge.difficulty"),
        ("status = 403", "status = 200", "challenge.status"),
        (
            "noscript_delay_seconds = 2",
            "noscript_delay_seconds = 0",
            "challenge.noscript_delay_seconds",
        ),
    ] {
        let (_dir, path) = config_for_check("", |t| {
            assert!(t.contains(from), "{from}");
            t.replacen(from, to, 1)
        });
        let line = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .position(|l| l.starts_with(to))
            .unwrap()
            + 1;
        let (code, _, err) = run_cli(&["check", "--config", &path], None);
        assert_eq!(code, 1, "{to}");
        assert!(
            err.contains(&format!("rempart.toml:{line}:")) && err.contains(key),
            "{to}: {err}"
        );
    }
    // `check` reads the key where it exists and never creates it.
    let (dir, path) = config_for_check("", |t| t);
    let (code, _, err) = run_cli(&["check", "--config", &path], None);
    assert_eq!(code, 0, "{err}");
    assert!(!dir.path().join("state/challenge-key").exists());
}
