//! Licensed crawlers end to end: a credential issued by the rights holder lets
//! a crawler through, metered; a wrong or expired one gets 401; nobody can
//! forge the licensee header.

mod common;

use common::*;

const TOKEN: &str = "acme-7f3c9a2e-licence";
const EXPIRED: &str = "old-licence-2020";

fn licensees() -> String {
    let (code, hash, err) = run_cli(&["licences", "hash-token"], Some(&format!("{TOKEN}\n")));
    assert_eq!(code, 0, "{err}");
    let hash = hash.trim();
    assert_eq!(hash.len(), 64);
    let (_, old, _) = run_cli(&["licences", "hash-token"], Some(EXPIRED));
    format!(
        r#"
[[licensees]]
id = "acme-ai"
name = "ACME AI Ltd"
agents = ["GPTBot"]
paths = ["/films/"]
token_sha256 = ["{hash}"]

[[licensees]]
id = "old-ai"
name = "Old AI"
expires = "2020-12-31"
token_sha256 = ["{}"]
"#,
        old.trim()
    )
}

fn start(origin: &Origin) -> Proxy {
    Proxy::start_with(
        &origin.url(),
        "",
        &format!("{}\n{}", default_rules(), licensees()),
    )
}

#[test]
fn a_licensed_crawler_passes_and_is_metered() {
    let origin = Origin::start();
    let proxy = start(&origin);
    let r = proxy.get(
        "/films/la-traversee",
        &[
            ("user-agent", GPTBOT),
            ("authorization", &format!("License {TOKEN}")),
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body, ORIGIN_BODY);
    let seen = origin.last().unwrap();
    assert_eq!(
        seen.headers.get("x-rempart-licensee").map(String::as_str),
        Some("acme-ai")
    );
    let b = proxy.get(
        "/films/x",
        &[
            ("user-agent", GPTBOT),
            ("authorization", &format!("Bearer {TOKEN}")),
        ],
    );
    assert_eq!(b.status, 200);
    assert_eq!(
        proxy.metric(r#"rempart_licensed_requests_total{licensee="acme-ai"}"#),
        2.0
    );
    assert_eq!(
        proxy.metric(r#"rempart_licensed_bytes_total{licensee="acme-ai"}"#),
        2.0 * ORIGIN_BODY.len() as f64
    );
    // Out of the licence's scope: the ordinary policy applies (the offer).
    let out = proxy.get(
        "/news/x",
        &[
            ("user-agent", GPTBOT),
            ("authorization", &format!("License {TOKEN}")),
        ],
    );
    assert_eq!(out.status, 402);
}

#[test]
fn a_wrong_or_expired_licence_gets_401() {
    let origin = Origin::start();
    let proxy = start(&origin);
    for auth in [
        "License not-the-token",
        "License",
        &format!("License {EXPIRED}"),
        &format!("Bearer {EXPIRED}"),
    ] {
        let r = proxy.get(
            "/films/x",
            &[("user-agent", GPTBOT), ("authorization", auth)],
        );
        assert_eq!(r.status, 401, "{auth}");
        assert_eq!(
            r.headers.get("www-authenticate").map(String::as_str),
            Some("License error=\"invalid_token\"")
        );
    }
    let huge = format!("License {}", "x".repeat(4000));
    let r = proxy.get(
        "/films/x",
        &[("user-agent", GPTBOT), ("authorization", &huge)],
    );
    assert_eq!(r.status, 401);
    assert_eq!(origin.count(), 0);
    assert_eq!(
        proxy.metric(r#"rempart_licence_rejections_total{reason="invalid"}"#),
        5.0
    );
}

#[test]
fn an_unknown_bearer_token_belongs_to_the_origin() {
    let origin = Origin::start();
    let proxy = start(&origin);
    let r = proxy.get(
        "/api/me",
        &[
            ("user-agent", CHROME),
            BROWSER_ACCEPT,
            BROWSER_LANGUAGE,
            ("authorization", "Bearer viewer-session-token"),
        ],
    );
    assert_eq!(
        r.status, 200,
        "a viewer's own API token is not rempart's business"
    );
    assert_eq!(
        origin
            .last()
            .unwrap()
            .headers
            .get("authorization")
            .map(String::as_str),
        Some("Bearer viewer-session-token")
    );
}

#[test]
fn a_forged_licensee_header_is_stripped() {
    let origin = Origin::start();
    let proxy = start(&origin);
    let r = proxy.get(
        "/films/x",
        &[
            ("user-agent", CHROME),
            BROWSER_ACCEPT,
            BROWSER_LANGUAGE,
            ("x-rempart-licensee", "acme-ai"),
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        origin.last().unwrap().headers.get("x-rempart-licensee"),
        None
    );
    // And it opens nothing for a crawler.
    let r = proxy.get(
        "/films/x",
        &[("user-agent", GPTBOT), ("x-rempart-licensee", "acme-ai")],
    );
    assert_eq!(r.status, 402);
}

const PRICED: &str = r#"
[reservation]
base_url = "https://films.example"
[[reservation.location]]
path = "/*"
tdm_reserved = true
allow = ["search"]
price_eur = 0.05
"#;

fn start_priced(origin: &Origin) -> Proxy {
    Proxy::start_with(
        &origin.url(),
        "",
        &format!("{}\n{}\n{PRICED}", default_rules(), licensees()),
    )
}

#[test]
fn pay_per_crawl_price_flow() {
    let origin = Origin::start();
    let proxy = start_priced(&origin);
    let auth = format!("License {TOKEN}");

    // Unpaid: the offer, with the price.
    let r = proxy.get("/news/a", &[("user-agent", GPTBOT)]);
    assert_eq!(r.status, 402);
    assert_eq!(
        r.headers.get("crawler-price").map(String::as_str),
        Some("EUR 0.05")
    );

    // A bid from nobody who can be billed: the offer again, never the page.
    let r = proxy.get(
        "/news/a",
        &[("user-agent", GPTBOT), ("crawler-max-price", "EUR 1.00")],
    );
    assert_eq!(r.status, 402);
    assert_eq!(
        r.headers.get("crawler-price").map(String::as_str),
        Some("EUR 0.05")
    );
    assert_eq!(
        r.headers.get("crawler-error").map(String::as_str),
        Some("StrongAuthRequired")
    );

    // A licensee outside its licence's paths pays per crawl.
    let r = proxy.get(
        "/news/a",
        &[
            ("user-agent", GPTBOT),
            ("authorization", &auth),
            ("crawler-exact-price", "EUR 0.05"),
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers.get("crawler-charged").map(String::as_str),
        Some("EUR 0.05")
    );
    let r = proxy.get(
        "/news/b",
        &[
            ("user-agent", GPTBOT),
            ("authorization", &auth),
            ("crawler-max-price", "EUR 0.10"),
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers.get("crawler-charged").map(String::as_str),
        Some("EUR 0.05")
    );
    assert_eq!(
        proxy.metric(r#"rempart_crawler_charges_total{licensee="acme-ai"}"#),
        2.0
    );
    assert!(
        (proxy.metric(r#"rempart_crawler_charged_euros_total{licensee="acme-ai"}"#) - 0.10).abs()
            < 1e-9
    );

    // Bids that do not cover the price, or are malformed.
    type Bids<'a> = &'a [(&'a str, &'a str)];
    let cases: [(Bids, u16, &str); 5] = [
        (
            &[("crawler-exact-price", "EUR 0.01")],
            402,
            "InvalidCrawlerExactPrice",
        ),
        (
            &[("crawler-max-price", "EUR 0.01")],
            402,
            "InvalidCrawlerMaxPrice",
        ),
        (
            &[("crawler-max-price", "USD 1.00")],
            402,
            "InvalidCrawlerMaxPrice",
        ),
        (
            &[
                ("crawler-exact-price", "EUR 0.05"),
                ("crawler-max-price", "EUR 1"),
            ],
            400,
            "ConflictingPriceHeaders",
        ),
        (
            &[("crawler-exact-price", "five euros")],
            400,
            "InvalidCrawlerPriceValue",
        ),
    ];
    for (bids, status, error) in cases {
        let mut headers = vec![("user-agent", GPTBOT), ("authorization", auth.as_str())];
        headers.extend_from_slice(bids);
        let r = proxy.get("/news/c", &headers);
        assert_eq!(r.status, status, "{bids:?}");
        assert_eq!(
            r.headers.get("crawler-error").map(String::as_str),
            Some(error),
            "{bids:?}"
        );
        if status == 402 {
            assert_eq!(
                r.headers.get("crawler-price").map(String::as_str),
                Some("EUR 0.05")
            );
        }
    }
    let huge = format!("EUR {}", "9".repeat(5000));
    let r = proxy.get(
        "/news/c",
        &[
            ("user-agent", GPTBOT),
            ("authorization", &auth),
            ("crawler-max-price", &huge),
        ],
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        origin.count(),
        2,
        "only the two paid requests reached the origin"
    );
}

#[test]
fn licensed_traffic_is_reported_for_invoicing() {
    let origin = Origin::start();
    let proxy = start_priced(&origin);
    let auth = format!("License {TOKEN}");
    for path in ["/films/a", "/films/b", "/films/poster.jpg"] {
        assert_eq!(
            proxy
                .get(path, &[("user-agent", GPTBOT), ("authorization", &auth)])
                .status,
            200
        );
    }
    let paid = proxy.get(
        "/news/a",
        &[
            ("user-agent", GPTBOT),
            ("authorization", &auth),
            ("crawler-exact-price", "EUR 0.05"),
        ],
    );
    assert_eq!(paid.status, 200);

    let today = rempart::licensing::metering::day_of(rempart::licensing::metering::now_secs());
    let config = proxy.dir.path().join("rempart.toml").display().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let csv = loop {
        let (code, out, err) = run_cli(
            &["licences", "report", "--config", &config, "--since", &today],
            None,
        );
        assert_eq!(code, 0, "{err}");
        if out.contains(",page,3,") || std::time::Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let body = ORIGIN_BODY.len();
    assert_eq!(
        csv,
        format!(
            "day,licensee,path_class,requests,bytes,charged_eur\n\
             {today},acme-ai,image,1,{body},0.000000\n\
             {today},acme-ai,page,3,{},0.050000\n",
            3 * body
        )
    );
    let (code, json, _) = run_cli(
        &[
            "licences", "report", "--config", &config, "--since", &today, "--format", "json",
        ],
        None,
    );
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[1]["requests"], 3);
    assert_eq!(v[1]["charged_eur"], 0.05);
    let (code, _, err) = run_cli(
        &[
            "licences",
            "report",
            "--config",
            &config,
            "--since",
            "yesterday",
        ],
        None,
    );
    assert_eq!(code, 2, "a bad argument");
    assert!(err.contains("\"yesterday\" is not a date"), "{err}");
}

#[test]
fn a_licence_quota_is_enforced_per_day() {
    let origin = Origin::start();
    let (_, hash, _) = run_cli(&["licences", "hash-token"], Some("quota-token"));
    let rules = format!(
        "{}\n[[licensees]]\nid = \"small\"\nname = \"Small AI\"\nquota_per_day = 2\ntoken_sha256 = [\"{}\"]\n",
        default_rules(),
        hash.trim()
    );
    let proxy = Proxy::start_with(&origin.url(), "", &rules);
    let auth = [
        ("user-agent", GPTBOT),
        ("authorization", "License quota-token"),
    ];
    assert_eq!(proxy.get("/films/a", &auth).status, 200);
    assert_eq!(proxy.get("/films/b", &auth).status, 200);
    let over = proxy.get("/films/c", &auth);
    assert_eq!(over.status, 429);
    let retry: u64 = over
        .headers
        .get("retry-after")
        .expect("retry-after")
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&retry));
    assert_eq!(
        proxy.get("/robots.txt", &auth).status,
        200,
        "robots.txt stays reachable"
    );
    assert_eq!(
        proxy.metric(r#"rempart_licence_rejections_total{reason="quota"}"#),
        1.0
    );
    assert_eq!(origin.count(), 2);
}
