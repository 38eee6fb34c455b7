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
        proxy.metric(r#"rempart_licence_rejections_total{scheme="license"}"#),
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
        &[("user-agent", CHROME), ("x-rempart-licensee", "acme-ai")],
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
