//! The clause for the site's terms: served in French and English ahead of
//! policy, linked from the offer and robots.txt, archived in the ledger.

mod common;

use std::time::{Duration, Instant};

use common::*;

const RESERVATION: &str = "\n[reservation]\nbase_url = \"https://films.example\"\n\
    [[reservation.location]]\npath = \"/films/*\"\ntdm_reserved = true\nallow = [\"search\"]\n\
    refuse = [\"ai-train\", \"ai-input\", \"ai-index\"]\nprice_eur = 0.02\n\
    [[reservation.location]]\npath = \"/trailers/*\"\ntdm_reserved = false\nallow = [\"search\", \"ai-input\"]\n";

fn proxy(origin: &Origin) -> Proxy {
    Proxy::start_with(
        &origin.url(),
        "",
        &format!("{}{RESERVATION}", default_rules()),
    )
}

/// Waits for the ledger to hold a published record of `document`.
fn published(proxy: &Proxy, document: &str) -> Option<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = ledger_records(&proxy.evidence_dir())
            .into_iter()
            .find(|r| r["type"] == "published" && r["document"] == document);
        if found.is_some() || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_clause_is_served_in_the_clients_language_and_never_reaches_the_origin() {
    let origin = Origin::start();
    let proxy = proxy(&origin);
    let fr = proxy.get(
        "/tdm-reservation",
        &[
            ("user-agent", CHROME),
            BROWSER_ACCEPT,
            ("accept-language", "fr-FR,fr;q=0.9"),
        ],
    );
    assert_eq!(fr.status, 200, "{}", fr.body);
    assert_eq!(fr.headers["content-type"], "text/html; charset=utf-8");
    assert!(fr.body.contains("<html lang=\"fr\">"), "{}", fr.body);
    assert_eq!(fr.headers["content-language"], "fr");
    assert!(
        fr.body
            .contains("article L.122-5-3 du code de la propriété intellectuelle"),
        "{}",
        fr.body
    );
    assert!(
        fr.body.contains("<strong>Test Rights SAS</strong>"),
        "{}",
        fr.body
    );
    assert!(
        fr.body.contains("<li><strong>/films/*</strong></li>"),
        "{}",
        fr.body
    );

    let en = proxy.get(
        "/tdm-reservation",
        &[
            ("user-agent", CHROME),
            ("accept", "text/plain"),
            ("accept-language", "en-GB"),
        ],
    );
    assert_eq!(en.status, 200, "{}", en.body);
    assert_eq!(en.headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(en.headers["content-language"], "en");
    assert!(
        en.body.contains("article 4 (3) of Directive (EU) 2019/790"),
        "{}",
        en.body
    );
    assert!(en.body.contains("Regulation (EU) 2024/1689"), "{}", en.body);
    assert!(en.body.contains("- /trailers/*"), "{}", en.body);
    assert!(en.body.contains("EUR 0.02"), "{}", en.body);

    // An AI crawler the policy offers a licence everywhere else reads it too.
    let bot = proxy.get(
        "/tdm-reservation",
        &[("user-agent", GPTBOT), ("accept", "text/markdown")],
    );
    assert_eq!(bot.status, 200, "{}", bot.body);
    assert!(bot.headers["content-type"].starts_with("text/markdown"));
    assert_eq!(origin.count(), 0, "the origin received nothing");
}

#[test]
fn the_offer_and_robots_txt_link_to_the_clause_and_the_ledger_archives_it() {
    let origin = Origin::start();
    let proxy = proxy(&origin);
    let offer = proxy.get("/ai-licensing", &[("user-agent", GPTBOT)]);
    assert!(
        offer.body.contains("<a href=\"/tdm-reservation\">"),
        "{}",
        offer.body
    );
    let json = proxy.get(
        "/ai-licensing",
        &[("user-agent", GPTBOT), ("accept", "application/json")],
    );
    let v: serde_json::Value = serde_json::from_str(&json.body).expect("offer JSON");
    assert_eq!(v["licensing"]["clause"], "/tdm-reservation");
    let robots = proxy.get("/robots.txt", &[("user-agent", GPTBOT)]);
    assert!(
        robots.body.contains("# The clause of the terms of use that reserves it: https://films.example/tdm-reservation\n"),
        "{}",
        robots.body
    );
    let policy = proxy.get("/.well-known/tdm-policy.json", &[("user-agent", GPTBOT)]);
    let p: serde_json::Value = serde_json::from_str(&policy.body).expect("policy JSON");
    assert_eq!(
        p["dct:source"]["@id"],
        "https://films.example/tdm-reservation"
    );

    let served = proxy.get(
        "/tdm-reservation",
        &[
            ("user-agent", CHROME),
            BROWSER_ACCEPT,
            ("accept-language", "fr"),
        ],
    );
    for (document, format_marker) in [
        ("clause.fr.html", "<html lang=\"fr\">"),
        ("clause.en.md", "# Reservation"),
    ] {
        let record = published(&proxy, document)
            .unwrap_or_else(|| panic!("no published record of {document}"));
        let content = record["content"].as_str().unwrap_or_default();
        assert!(content.contains(format_marker), "{content}");
        assert!(content.contains("L.122-5-3"), "{content}");
        assert_eq!(
            record["sha256"].as_str().map(str::len),
            Some(64),
            "{record}"
        );
    }
    let archived = ledger_records(&proxy.evidence_dir())
        .into_iter()
        .filter(|r| r["type"] == "published" && r["document"] == "clause.fr.html")
        .collect::<Vec<_>>();
    assert_eq!(archived.len(), 1, "archived once");
    assert_eq!(
        archived[0]["content"],
        served.body.as_str(),
        "the very text served"
    );
    assert_eq!(origin.count(), 0);
}
