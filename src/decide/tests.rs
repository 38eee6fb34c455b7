//! The decision, table-driven, with the shipped configuration.

use std::path::Path;

use super::*;
use crate::model::{IdentityKind, Verification};
use crate::request::{Received, Request};

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const GPTBOT: &str =
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
/// In OpenAI's published GPTBot ranges, and Google's Googlebot ranges.
const GPTBOT_IP: &str = "132.196.86.1";
const GOOGLE_IP: &str = "66.249.66.1";
const ELSEWHERE: &str = "203.0.113.10";

fn shipped() -> Snapshot {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rempart.toml");
    Snapshot::load_offline(&path).expect("shipped config")
}

fn head(target: &str, ua: &str, extra: &[(&str, &str)]) -> http::request::Parts {
    let mut b = http::Request::builder()
        .uri(target)
        .header("host", "catalogue.example")
        .header("accept", "text/html")
        .header("accept-language", "fr-FR,fr;q=0.9");
    if !ua.is_empty() {
        b = b.header("user-agent", ua);
    }
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    b.body(()).expect("request").into_parts().0
}

fn run(snap: &Snapshot, local: &LocalState, p: &http::request::Parts, ip: &str) -> Outcome {
    let peer = ip.parse().expect("ip");
    let read = Request::read(
        Received::of(p, peer, 1_800_000_000_000),
        &snap.trusted,
        snap.read,
    );
    decide_read(snap, &local.state(), &read)
}

struct Case {
    name: &'static str,
    target: &'static str,
    ua: &'static str,
    ip: &'static str,
    action: Action,
    status: Option<u16>,
    rule: &'static str,
    evidence: bool,
}

const CASES: &[Case] = &[
    Case {
        name: "a browser's page goes upstream",
        target: "/films/la-traversee",
        ua: CHROME,
        ip: ELSEWHERE,
        action: Action::Allow,
        status: None,
        rule: "default",
        evidence: false,
    },
    Case {
        name: "a verified AI crawler gets the offer",
        target: "/films/la-traversee",
        ua: GPTBOT,
        ip: GPTBOT_IP,
        action: Action::Offer,
        status: Some(402),
        rule: "ai-licensing-offer",
        evidence: true,
    },
    Case {
        name: "a spoofed AI crawler gets the offer too",
        target: "/films/a",
        ua: GPTBOT,
        ip: ELSEWHERE,
        action: Action::Offer,
        status: Some(402),
        rule: "ai-licensing-offer",
        evidence: true,
    },
    Case {
        name: "a verified search engine passes",
        target: "/films/a",
        ua: GOOGLEBOT,
        ip: GOOGLE_IP,
        action: Action::Allow,
        status: None,
        rule: "verified-search-engines",
        evidence: false,
    },
    Case {
        name: "a spoofed search engine is blocked",
        target: "/films/a",
        ua: GOOGLEBOT,
        ip: ELSEWHERE,
        action: Action::Block,
        status: Some(403),
        rule: "spoofed-agents",
        evidence: true,
    },
    Case {
        name: "robots.txt is rempart's own",
        target: "/robots.txt",
        ua: GPTBOT,
        ip: GPTBOT_IP,
        action: Action::Allow,
        status: Some(200),
        rule: "always-reachable",
        evidence: false,
    },
    Case {
        name: "license.xml is rempart's own",
        target: "/license.xml",
        ua: GPTBOT,
        ip: GPTBOT_IP,
        action: Action::Allow,
        status: Some(200),
        rule: "ai-licensing-offer",
        evidence: false,
    },
    Case {
        name: "the TDMRep file is rempart's own",
        target: "/.well-known/tdmrep.json",
        ua: GPTBOT,
        ip: ELSEWHERE,
        action: Action::Allow,
        status: Some(200),
        rule: "always-reachable",
        evidence: false,
    },
    Case {
        name: "the offer page is rempart's own",
        target: "/ai-licensing",
        ua: GPTBOT,
        ip: ELSEWHERE,
        action: Action::Allow,
        status: Some(200),
        rule: "always-reachable",
        evidence: false,
    },
    Case {
        name: "the honeypot refuses a browser UA",
        target: "/catalogue-integral/",
        ua: CHROME,
        ip: ELSEWHERE,
        action: Action::Block,
        status: Some(403),
        rule: "honeypot",
        evidence: true,
    },
    Case {
        name: "encoded dots are decided where they lead",
        target: "/.well-known/%2e%2e/films/x",
        ua: GPTBOT,
        ip: GPTBOT_IP,
        action: Action::Offer,
        status: Some(402),
        rule: "ai-licensing-offer",
        evidence: true,
    },
    Case {
        name: "an encoded honeypot is the honeypot",
        target: "/%63atalogue-integral/x",
        ua: CHROME,
        ip: ELSEWHERE,
        action: Action::Block,
        status: Some(403),
        rule: "honeypot",
        evidence: true,
    },
    Case {
        name: "undecodable bytes beside dot segments: 400",
        target: "/.well-known/%ff/../../films/x",
        ua: GPTBOT,
        ip: GPTBOT_IP,
        action: Action::Block,
        status: Some(400),
        rule: "bad-request",
        evidence: false,
    },
    Case {
        name: "a path parameter: 400",
        target: "/.well-known/..;/films/x",
        ua: GPTBOT,
        ip: GPTBOT_IP,
        action: Action::Block,
        status: Some(400),
        rule: "bad-request",
        evidence: false,
    },
    Case {
        name: "an encoded slash: 400",
        target: "/.well-known%2f..%2ffilms",
        ua: GPTBOT,
        ip: GPTBOT_IP,
        action: Action::Block,
        status: Some(400),
        rule: "bad-request",
        evidence: false,
    },
];

#[test]
fn the_decision_table() {
    let snap = shipped();
    for c in CASES {
        let local = LocalState::new(&snap);
        let o = run(&snap, &local, &head(c.target, c.ua, &[]), c.ip);
        assert_eq!(o.action, c.action, "{}", c.name);
        assert_eq!(o.status(), c.status, "{}", c.name);
        assert_eq!(o.rule_name(&snap), c.rule, "{}", c.name);
        assert_eq!(o.evidence, c.evidence, "{}", c.name);
    }
}

#[test]
fn identity_is_in_the_outcome() {
    let snap = shipped();
    let local = LocalState::new(&snap);
    let o = run(&snap, &local, &head("/films/a", GPTBOT, &[]), GPTBOT_IP);
    assert_eq!(o.identity.kind, IdentityKind::Declared);
    assert_eq!(o.identity.verification, Verification::Verified);
    let Answer::Respond { extra, .. } = &o.answer else {
        panic!("an offer is answered by rempart");
    };
    let price: Vec<_> = extra
        .iter()
        .filter(|(k, _)| *k == "crawler-price")
        .collect();
    assert_eq!(price.len(), 1, "the priced offer names its price");
}

#[test]
fn refusals_persist_across_requests() {
    let snap = shipped();
    let local = LocalState::new(&snap);
    let limit = snap.behaviour.refusals_limit as usize;
    let mut actions = Vec::new();
    for _ in 0..=limit + 1 {
        let o = run(&snap, &local, &head("/films/a", GPTBOT, &[]), GPTBOT_IP);
        actions.push(o.action);
    }
    assert_eq!(actions[0], Action::Offer);
    assert_eq!(actions.last(), Some(&Action::Block), "{actions:?}");
}

#[test]
fn a_bid_never_lifts_a_block() {
    let snap = shipped();
    let local = LocalState::new(&snap);
    let bid = [("crawler-max-price", "EUR 5.00")];
    // Honeypot, then a bid: still blocked.
    let o = run(
        &snap,
        &local,
        &head("/catalogue-integral/", GOOGLEBOT, &bid),
        ELSEWHERE,
    );
    assert_eq!((o.action, o.status()), (Action::Block, Some(403)));
    assert_eq!(o.charge, None);
    // An unknown payer's bid on an offer gets the offer again, not the page.
    let o = run(&snap, &local, &head("/films/a", GPTBOT, &bid), GPTBOT_IP);
    assert_eq!(
        (o.action, o.status(), o.charge),
        (Action::Offer, Some(402), None)
    );
    assert_eq!(o.payment_error, Some("StrongAuthRequired"));
}

#[test]
fn every_request_gets_one_outcome() {
    let snap = shipped();
    let local = LocalState::new(&snap);
    let targets = [
        "/", "/%", "//", "/a/../..", "/%2e", "/;", "/\u{e9}", "/a?b#c", "/.", "/%C0%AE",
    ];
    for t in targets {
        let Ok(uri) = t.parse::<http::Uri>() else {
            continue;
        };
        let mut p = head("/", CHROME, &[]);
        p.uri = uri;
        let o = run(&snap, &local, &p, ELSEWHERE);
        let forwarded = matches!(o.answer, Answer::Upstream);
        assert_eq!(forwarded, o.status().is_none(), "{t}");
    }
}
