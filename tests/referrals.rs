//! What crawling brings back: AI crawler pages against the visits that AI
//! products refer, counted by the running proxy, written into the ledger and
//! summarised by `rempart evidence report`.

mod common;

use std::time::{Duration, Instant};

use common::*;

const CLAUDEBOT: &str = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)";

/// The shipped rules with tally records every second (the test config names
/// the shipped referrers file).
fn start(origin: &Origin) -> Proxy {
    let rules = default_rules().replace("tally_interval_s = 60", "tally_interval_s = 1");
    assert!(rules.contains("tally_interval_s = 1"));
    Proxy::start_with(&origin.url(), "", &rules)
}

/// A person's browser following a link.
fn visit(proxy: &Proxy, path: &str, referer: Option<&str>) -> u16 {
    let mut headers = vec![("user-agent", CHROME), BROWSER_ACCEPT, BROWSER_LANGUAGE];
    if let Some(r) = referer {
        headers.push(("referer", r));
    }
    proxy.get(path, &headers).status
}

/// Waits until the ledger's `tally` records hold `n` referred visits.
fn wait_referred(proxy: &Proxy, n: u64) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let all = ledger_records(&proxy.evidence_dir());
        let referred: u64 = all
            .iter()
            .filter(|r| r["type"] == "tally")
            .filter_map(|r| r["referred"].as_object())
            .flat_map(|m| m.values().filter_map(|v| v.as_u64()))
            .sum();
        if referred >= n || Instant::now() > deadline {
            return all;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn report(proxy: &Proxy, format: &str) -> String {
    let dir = proxy.evidence_dir();
    let (code, out, err) = run_cli(
        &[
            "evidence",
            "report",
            dir.to_str().unwrap(),
            "--format",
            format,
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    out
}

#[test]
fn pages_crawled_and_visits_referred_per_operator() {
    let origin = Origin::start();
    let proxy = start(&origin);
    let metrics = proxy.metrics_text();
    // Every operator of the referrers file is there from the start, at zero.
    for op in [
        "OpenAI",
        "Perplexity",
        "Anthropic",
        "Google",
        "Microsoft",
        "xAI",
    ] {
        let series = format!("rempart_ai_referrals_total{{operator=\"{op}\"}}");
        assert!(metrics.contains(&format!("{series} 0")), "{series} missing");
    }
    for i in 0..30 {
        proxy.get(&format!("/films/g{i}"), &[("user-agent", GPTBOT)]);
    }
    for i in 0..20 {
        proxy.get(&format!("/films/c{i}"), &[("user-agent", CLAUDEBOT)]);
    }
    let mut statuses = Vec::new();
    for i in 0..3 {
        statuses.push(visit(
            &proxy,
            &format!("/films/o{i}"),
            Some("https://chatgpt.com/"),
        ));
    }
    statuses.push(visit(&proxy, "/films/p0?utm_source=perplexity", None));
    statuses.push(visit(
        &proxy,
        "/series/p1?utm_source=perplexity&utm_medium=referral",
        Some("https://news.example/"),
    ));
    statuses.push(visit(
        &proxy,
        "/films/a0",
        Some("https://claude.ai/chat/0f2a"),
    ));
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // Not visits: an asset, a look-alike host, no referrer, a crawler naming ChatGPT.
    visit(&proxy, "/static/site.css", Some("https://chatgpt.com/"));
    visit(
        &proxy,
        "/films/x",
        Some("https://chatgpt.com.evil.example/"),
    );
    visit(&proxy, "/films/y", None);
    proxy.get(
        "/films/z",
        &[("user-agent", GPTBOT), ("referer", "https://chatgpt.com/")],
    );

    let series =
        |op: &str| proxy.metric(&format!("rempart_ai_referrals_total{{operator=\"{op}\"}}"));
    assert_eq!(series("OpenAI"), 3.0);
    assert_eq!(series("Perplexity"), 2.0);
    assert_eq!(series("Anthropic"), 1.0);
    assert_eq!(series("Google"), 0.0);

    let all = wait_referred(&proxy, 6);
    let tallies: Vec<_> = all.iter().filter(|r| r["type"] == "tally").collect();
    assert!(!tallies.is_empty(), "no tally record: {all:#?}");
    let (code, out, _) = run_cli(
        &["evidence", "verify", proxy.evidence_dir().to_str().unwrap()],
        None,
    );
    assert_eq!(code, 0, "{out}");

    let csv = report(&proxy, "referrals-csv");
    let row = |op: &str| {
        csv.lines()
            .find(|l| l.starts_with(&format!("all,{op},")))
            .unwrap_or_else(|| panic!("no total row for {op}:\n{csv}"))
            .to_owned()
    };
    // period,operator,pages_crawled,allowed,offered,refused,visits_referred,pages_per_visit
    assert_eq!(row("OpenAI"), "all,OpenAI,31,0,31,0,3,10.3", "{csv}");
    assert_eq!(row("Anthropic"), "all,Anthropic,20,0,20,0,1,20.0", "{csv}");
    assert_eq!(row("Perplexity"), "all,Perplexity,0,0,0,0,2,0.0", "{csv}");

    let html = report(&proxy, "html");
    for (op, crawled, referred, ratio) in [
        ("OpenAI", 31, 3, "10.3"),
        ("Anthropic", 20, 1, "20.0"),
        ("Perplexity", 0, 2, "0.0"),
    ] {
        let start = html
            .find(&format!("<tr class=\"referrals\" data-operator=\"{op}\">"))
            .unwrap_or_else(|| panic!("no row for {op}"));
        let tr = &html[start..start + html[start..].find("</tr>").unwrap()];
        assert!(
            tr.contains(&format!("<td class=\"crawled\">{crawled}</td>")),
            "{tr}"
        );
        assert!(
            tr.contains(&format!("<td class=\"referred\">{referred}</td>")),
            "{tr}"
        );
        assert!(
            tr.contains(&format!("<td class=\"ratio\">{ratio}</td>")),
            "{tr}"
        );
    }
    assert!(html.contains("aria-label=\"Pages crawled and visits referred per operator\""));
    assert!(!html.contains("<script") && !html.contains("src=\"http"));
}
