//! Properties that hold for every input, checked with generated ones:
//! canonicalisation is idempotent and never forwards what it refused, the
//! decision is total, and the ledger chain verifies across rotations.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rempart::decide::{decide_read, Answer, LocalState};
use rempart::request::{canonical_path, Received, Request};
use rempart::snapshot::Snapshot;

fn shipped() -> &'static Snapshot {
    static SNAP: OnceLock<Snapshot> = OnceLock::new();
    SNAP.get_or_init(|| {
        Snapshot::load_offline(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rempart.toml"))
            .expect("shipped config")
    })
}

/// Paths made of the pieces that make canonicalisation hard.
fn tricky_path() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/".to_owned()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("%2e".to_owned()),
        Just("%2E%2e".to_owned()),
        Just("%2f".to_owned()),
        Just("%25".to_owned()),
        Just("%ff".to_owned()),
        Just("%c3%a9".to_owned()),
        Just("%41".to_owned()),
        Just(";".to_owned()),
        Just("\\".to_owned()),
        Just("films".to_owned()),
        Just(".well-known".to_owned()),
        Just("catalogue-integral".to_owned()),
        "[a-zA-Z0-9~_-]{1,4}",
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|v| format!("/{}", v.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn canonicalisation_is_idempotent(raw in tricky_path(), fold in any::<bool>()) {
        if let Ok(t) = canonical_path(&raw, fold) {
            prop_assert!(t.path.starts_with('/'));
            prop_assert!(!t.path.contains("//"));
            prop_assert!(!t.path.split('/').any(|s| s == "." || s == ".."));
            let wire = t.wire.clone().unwrap_or_else(|| raw.clone());
            let again = canonical_path(&wire, fold).expect("the wire form is canonical");
            prop_assert_eq!(&again.path, &t.path);
            prop_assert_eq!(again.wire, None);
        }
    }

    #[test]
    fn the_decision_is_total(
        raw in tricky_path(),
        ua in prop_oneof![
            Just(String::new()),
            Just("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36".to_owned()),
            Just("GPTBot/1.2".to_owned()),
            Just("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)".to_owned()),
            "[ -~]{0,40}",
        ],
        ip in any::<[u8; 4]>(),
        auth in proptest::option::of("(License|Bearer) [ -~]{0,20}"),
        bid in proptest::option::of("EUR [0-9.]{0,6}"),
    ) {
        let snap = shipped();
        let Ok(uri) = raw.parse::<http::Uri>() else { return Ok(()) };
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::HOST, http::HeaderValue::from_static("catalogue.example"));
        if let Ok(v) = http::HeaderValue::from_str(&ua) {
            headers.insert(http::header::USER_AGENT, v);
        }
        if let Some(a) = auth.and_then(|a| http::HeaderValue::from_str(&a).ok()) {
            headers.insert(http::header::AUTHORIZATION, a);
        }
        if let Some(b) = bid.and_then(|b| http::HeaderValue::from_str(&b).ok()) {
            headers.insert("crawler-max-price", b);
        }
        let local = LocalState::new(snap);
        let (mut head, ()) = http::Request::new(()).into_parts();
        head.uri = uri;
        head.headers = headers;
        let received = Received {
            raw_target: Some(raw.as_bytes()),
            ..Received::of(&head, std::net::IpAddr::from(ip), 1_800_000_000_000)
        };
        let read = Request::read(received, &snap.trusted, snap.read);
        let outcome = decide_read(snap, &local.state(), &read);
        let upstream = matches!(outcome.answer, Answer::Upstream);
        prop_assert_eq!(upstream, outcome.status().is_none());
        if upstream {
            // Only a request that was read, and that nothing refused, goes on.
            prop_assert!(read.is_ok());
            prop_assert_eq!(outcome.action, rempart::model::Action::Allow);
        }
    }
}

#[test]
fn the_ledger_chain_verifies_across_rotations() {
    use rempart::evidence::{Body, Evidence, LedgerOptions, PublishedRecord};
    proptest!(ProptestConfig::with_cases(8), |(sizes in proptest::collection::vec(1usize..3000, 10..80), max_file in 2_000u64..20_000)| {
        let dir = tempfile::tempdir().unwrap();
        let ev = Evidence::start(LedgerOptions {
            max_file_bytes: max_file,
            ..LedgerOptions::new(dir.path().to_path_buf())
        })
        .unwrap();
        for (i, n) in sizes.iter().enumerate() {
            ev.record(Body::Published(PublishedRecord {
                document: "robots.txt".into(),
                sha256: format!("{i:064x}"),
                content: "x".repeat(*n),
            }));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let want = sizes.len() as u64 + 1;
        loop {
            let Ok(v) = rempart::evidence::verify::verify(dir.path()) else {
                // No ledger file yet.
                prop_assert!(Instant::now() < deadline, "no ledger written");
                std::thread::sleep(Duration::from_millis(30));
                continue;
            };
            if v.records >= want || Instant::now() > deadline {
                prop_assert!(v.is_intact(), "{:?}", v.broken);
                prop_assert_eq!(v.records, want);
                break;
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        let files = rempart::evidence::writer::ledger_files(dir.path()).unwrap();
        prop_assert!(files.len() > 1 || sizes.iter().sum::<usize>() < max_file as usize);
    });
}
