//! Evidence: an append-only, hash-chained ledger of what crawlers did, and
//! the tools that check and summarise it.
//!
//! - [`record`]: the line format; [`build`]: a request's record from its outcome;
//! - [`writer`]: the writer thread (bounded queue, batches, fsync interval,
//!   gaps, disk-full recovery);
//! - [`verify`]: the chain check;
//! - [`report`]: summaries for people (HTML, CSV, JSON);
//! - [`pseudonym`]: the keyed hash that replaces personal addresses.

pub mod build;
pub mod pseudonym;
pub mod record;
pub mod referrals;
pub mod report;
pub mod verify;
pub mod writer;

pub use record::{Body, ClientId, ControlRecord, PublishedRecord, RequestRecord};
pub use writer::{Evidence, LedgerOptions};

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::verify::verify;
    use super::writer::{ledger_files, read_lines};
    use super::*;
    use crate::optout::published;

    fn lines(dir: &std::path::Path) -> Vec<serde_json::Value> {
        ledger_files(dir)
            .unwrap()
            .iter()
            .flat_map(|f| read_lines(f).unwrap().0)
            .map(|l| serde_json::from_slice(&l).unwrap())
            .collect()
    }

    fn wait(
        dir: &std::path::Path,
        f: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let l = lines(dir);
            if f(&l) || Instant::now() > deadline {
                return l;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn published(i: usize) -> Body {
        Body::Published(PublishedRecord {
            document: "robots.txt".into(),
            sha256: format!("{i:064x}"),
            content: format!("version {i}"),
        })
    }

    #[test]
    fn a_full_disk_loses_nothing_it_can_hold_and_writes_the_rest_as_a_gap() {
        let dir = tempfile::tempdir().unwrap();
        let m = crate::metrics::metrics();
        let errors_before = m.evidence_errors.with_label_values(&["write"]).get();
        let ev = Evidence::start(LedgerOptions {
            queue: 8,
            ..LedgerOptions::new(dir.path().to_path_buf())
        })
        .unwrap();
        wait(dir.path(), |l| l.len() == 1); // the start record
        ev.set_fault(true);
        for i in 0..100 {
            ev.record(published(i));
        }
        // Writes fail and are counted; the proxy side never waited.
        let deadline = Instant::now() + Duration::from_secs(5);
        while m.evidence_errors.with_label_values(&["write"]).get() == errors_before
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(m.evidence_errors.with_label_values(&["write"]).get() > errors_before);
        assert_eq!(lines(dir.path()).len(), 1, "nothing half-written");
        // Space returns: what was held is written, the rest is a gap record.
        ev.set_fault(false);
        let all = wait(dir.path(), |l| {
            let kept = l.iter().filter(|r| r["type"] == "published").count() as u64;
            let gap: u64 = l.iter().filter_map(|r| r["missing"].as_u64()).sum();
            kept + gap == 100
        });
        let kept = all.iter().filter(|r| r["type"] == "published").count() as u64;
        let gap: u64 = all.iter().filter_map(|r| r["missing"].as_u64()).sum();
        assert_eq!(kept + gap, 100, "{all:#?}");
        // The queue held 8 entries: the gap marker and 7 records.
        assert!(gap > 0 && kept >= 7, "kept {kept}, gap {gap}");
        let gaps: Vec<_> = all.iter().filter(|r| r["type"] == "gap").collect();
        assert_eq!(gaps.len(), 1, "one gap record for the run: {gaps:?}");
        assert_eq!(gaps[0]["reason"], "queue full");
        let v = verify(dir.path()).unwrap();
        assert!(v.is_intact(), "{:?}", v.broken);
        assert_eq!(v.records as usize, all.len());
    }

    #[test]
    fn referred_visits_and_allowed_crawls_become_one_tally_record_per_interval() {
        let dir = tempfile::tempdir().unwrap();
        let ev = Evidence::start(LedgerOptions {
            tally_interval: Duration::from_millis(200),
            ..LedgerOptions::new(dir.path().to_path_buf())
        })
        .unwrap();
        ev.referred("OpenAI");
        ev.referred("OpenAI");
        ev.referred("Perplexity");
        ev.crawled_allowed("Anthropic");
        let all = wait(dir.path(), |l| l.iter().any(|r| r["type"] == "tally"));
        let tallies: Vec<_> = all.iter().filter(|r| r["type"] == "tally").collect();
        assert_eq!(tallies.len(), 1, "{all:#?}");
        let t = tallies[0];
        assert_eq!(t["referred"]["OpenAI"], 2);
        assert_eq!(t["referred"]["Perplexity"], 1);
        assert_eq!(t["crawled_allowed"]["Anthropic"], 1);
        assert!(t["period_start"].as_str().unwrap() <= t["period_end"].as_str().unwrap());
        // A quiet interval writes nothing.
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(lines(dir.path()).len(), all.len());
        let v = verify(dir.path()).unwrap();
        assert!(v.is_intact(), "{:?}", v.broken);
    }

    #[test]
    fn a_second_writer_waits_for_the_first_then_continues_its_chain() {
        // A graceful upgrade: the new process starts while the old one still
        // writes; it queues its records until the old one lets go.
        let dir = tempfile::tempdir().unwrap();
        let old = Evidence::start(LedgerOptions::new(dir.path().to_path_buf())).unwrap();
        old.record(published(1));
        wait(dir.path(), |l| l.len() == 2);
        let new = Evidence::start(LedgerOptions::new(dir.path().to_path_buf())).unwrap();
        new.record(published(2));
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            lines(dir.path()).len(),
            2,
            "the new writer wrote while the old one held the ledger"
        );
        drop(old);
        let all = wait(dir.path(), |l| l.len() == 4);
        assert_eq!(all.len(), 4, "{all:#?}");
        assert_eq!(
            (all[2]["type"].as_str(), all[2]["seq"].as_u64()),
            (Some("start"), Some(2))
        );
        assert_eq!(all[3]["content"], "version 2");
        let v = verify(dir.path()).unwrap();
        assert!(v.is_intact(), "{:?}", v.broken);
        drop(new);
    }

    #[test]
    fn a_restart_continues_the_chain_in_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        {
            let ev = Evidence::start(LedgerOptions::new(dir.path().to_path_buf())).unwrap();
            ev.record(published(1));
            wait(dir.path(), |l| l.len() == 2);
        }
        // A crash left half a line behind.
        let first = ledger_files(dir.path()).unwrap()[0].clone();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&first)
            .unwrap();
        std::io::Write::write_all(&mut f, b"{\"seq\":2,\"ts\":\"20").unwrap();
        let ev = Evidence::start(LedgerOptions::new(dir.path().to_path_buf())).unwrap();
        ev.record(published(2));
        let all = wait(dir.path(), |l| l.len() == 4);
        assert_eq!(ledger_files(dir.path()).unwrap().len(), 2);
        assert_eq!(all[2]["type"], "start");
        assert_eq!(all[2]["seq"], 2);
        assert!(all[2]["torn_tail"]
            .as_str()
            .unwrap()
            .contains("bytes after the last whole line"));
        let v = verify(dir.path()).unwrap();
        assert!(v.is_intact(), "{:?}", v.broken);
        assert_eq!(v.warnings.len(), 1, "{:?}", v.warnings);
    }
    fn request(client: &str, ua: &str) -> Body {
        let kept = build::Kept::new("GET", Some("catalogue.example"), "/films/x", ua.as_bytes());
        Body::Request(Box::new(RequestRecord {
            request_id: "r".into(),
            requested_at: None,
            client: ClientId::Pseudonym(client.into()),
            user_agent: kept.user_agent().to_owned(),
            agent: None,
            operator: None,
            purpose: None,
            identity: "unknown".into(),
            verification: "none".into(),
            verified_by: "none".into(),
            signature: None,
            method: "GET".into(),
            host: kept.host().map(str::to_owned),
            path: kept.path().to_owned(),
            decision: "block".into(),
            status: 403,
            rule: "test".into(),
            log_only: None,
            score: 0,
            signals: vec![],
            fingerprint: None,
            asn: None,
            as_org: None,
            hosting: false,
            reservation: None,
            robots_txt: None,
            truncated: kept.truncated,
        }))
    }

    #[test]
    fn one_client_is_capped_per_window_and_the_rest_is_one_record() {
        let dir = tempfile::tempdir().unwrap();
        let ev = Evidence::start(LedgerOptions {
            per_client_minute: 5,
            limit_window: Duration::from_secs(1),
            ..LedgerOptions::new(dir.path().to_path_buf())
        })
        .unwrap();
        for _ in 0..50 {
            ev.record(request("flooder", "x"));
        }
        ev.record(request("other", "y"));
        let all = wait(dir.path(), |l| l.iter().any(|r| r["type"] == "limited"));
        let flooder = all
            .iter()
            .filter(|r| r["client"]["pseudonym"] == "flooder" && r["type"] == "request")
            .count();
        let limited: Vec<_> = all.iter().filter(|r| r["type"] == "limited").collect();
        assert_eq!(limited.len(), 1, "{limited:?}");
        assert_eq!(limited[0]["client"], "flooder");
        assert_eq!(flooder as u64 + limited[0]["records"].as_u64().unwrap(), 50);
        assert!(flooder <= 5, "{flooder}");
        assert!(all.iter().any(|r| r["client"]["pseudonym"] == "other"));
        assert!(verify(dir.path()).unwrap().is_intact());
    }

    #[test]
    fn the_disk_budget_stops_request_records_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let ev = Evidence::start(LedgerOptions {
            max_bytes: 20_000,
            limit_window: Duration::from_secs(1),
            ..LedgerOptions::new(dir.path().to_path_buf())
        })
        .unwrap();
        let ua = "U".repeat(400);
        for i in 0..400 {
            ev.record(request(&format!("c{i}"), &ua));
        }
        let all = wait(dir.path(), |l| {
            l.iter()
                .any(|r| r["reason"].as_str().is_some_and(|s| s.contains("budget")))
        });
        let gap: u64 = all
            .iter()
            .filter(|r| r["type"] == "gap")
            .filter_map(|r| r["missing"].as_u64())
            .sum();
        let kept = all.iter().filter(|r| r["type"] == "request").count() as u64;
        assert_eq!(kept + gap, 400, "every record written or counted");
        let bytes: u64 = writer::ledger_files(dir.path())
            .unwrap()
            .iter()
            .map(|f| std::fs::metadata(f).unwrap().len())
            .sum();
        assert!(bytes <= 20_000 + 64 * 1024, "{bytes}");
        assert_eq!(crate::metrics::metrics().evidence_budget_exhausted.get(), 1);
        assert!(verify(dir.path()).unwrap().is_intact());
    }

    /// A GPTBot request from outside OpenAI's ranges, decided with the
    /// shipped configuration, and what its record keeps.
    fn decided_gptbot() -> (
        std::sync::Arc<crate::snapshot::Snapshot>,
        crate::decide::Outcome,
        build::Kept,
    ) {
        use crate::request::{Received, Request};
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rempart.toml");
        let snap = std::sync::Arc::new(crate::snapshot::Snapshot::load_offline(&path).unwrap());
        let ua = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)";
        let head = http::Request::builder()
            .uri("/films/la-traversee")
            .header("host", "catalogue.example")
            .header("user-agent", ua)
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let local = crate::decide::LocalState::new(&snap);
        let peer = "203.0.113.10".parse().unwrap();
        let read = Request::read(
            Received::of(&head, peer, 1_800_000_000_000),
            &snap.trusted,
            snap.read,
        );
        let o = crate::decide::decide_read(&snap, &local.state(), &read);
        let req = read.unwrap();
        let mut kept = build::Kept::new(req.method.as_str(), req.host, req.path(), req.user_agent);
        kept.client_ip = Some(req.client_ip);
        kept.requested_ms = req.now_ms;
        (snap, o, kept)
    }

    #[test]
    fn a_request_handed_over_unbuilt_is_written_as_a_request_record() {
        let (snap, o, kept) = decided_gptbot();
        assert!(o.evidence, "the shipped policy records this request");
        let dir = tempfile::tempdir().unwrap();
        let key = std::sync::Arc::new(pseudonym::PseudonymKey::fixed([7; 32]));
        let pending = build::Pending {
            snapshot: snap,
            outcome: o.into(),
            kept,
            robots: None,
            key: key.clone(),
            request_id: crate::request::RequestId {
                prefix: 0xabc,
                seq: 42,
            },
            status: 402,
        };
        // The borrowed line reads back as a request record and writes the
        // same bytes again: readers (verify, reports) see what was written.
        let client = pending.client().expect("a client address");
        let mut text = Vec::new();
        pending
            .write_line(
                &mut text,
                3,
                "2026-12-02T06:00:00Z",
                record::GENESIS,
                &client,
            )
            .unwrap();
        let line: record::Line = serde_json::from_slice(&text).unwrap();
        assert_eq!(serde_json::to_vec(&line).unwrap(), text);
        let Body::Request(r) = &line.body else {
            panic!("{line:?}")
        };
        assert_eq!(r.request_id, "00000abc-2a");
        // The request's own time (the clock its decision read), not the
        // writer's `ts`.
        assert_eq!(r.requested_at.as_deref(), Some("2027-01-15T08:00:00.000Z"));
        assert_eq!(line.ts, "2026-12-02T06:00:00Z");
        assert_eq!(
            r.client,
            ClientId::Pseudonym(key.pseudonym("203.0.113.10".parse().unwrap()))
        );
        assert_eq!(
            (r.agent.as_deref(), r.operator.as_deref()),
            (Some("GPTBot"), Some("OpenAI"))
        );
        assert_eq!((r.decision.as_str(), r.status), ("offer", 402));
        assert_eq!(r.path, "/films/la-traversee");
        let res = r
            .reservation
            .as_ref()
            .expect("the shipped reservation covers /films/");
        assert_eq!(res.signals_served[0], "robots.txt");
        assert!(res.signals_served.iter().any(|s| s == "license.xml"));
        // Handed to the writer, it is written, chained, and verifies.
        let ev = Evidence::start(LedgerOptions::new(dir.path().to_path_buf())).unwrap();
        ev.request(Box::new(pending));
        let all = wait(dir.path(), |l| l.iter().any(|r| r["type"] == "request"));
        let got = all
            .iter()
            .find(|r| r["type"] == "request")
            .expect("written");
        let mut want: serde_json::Value = serde_json::from_slice(&text).unwrap();
        for k in ["seq", "ts", "prev"] {
            want[k] = got[k].clone();
        }
        assert_eq!(got, &want);
        assert!(verify(dir.path()).unwrap().is_intact());
    }

    #[test]
    fn long_client_fields_are_cut_with_their_hash() {
        let ua = "A".repeat(100_000);
        let kept = build::Kept::new("GET", Some("h"), "/p", ua.as_bytes());
        assert_eq!(kept.user_agent().len(), record::MAX_FIELD);
        assert_eq!(kept.truncated.len(), 1);
        assert_eq!(kept.truncated[0].field, "user_agent");
        assert_eq!(kept.truncated[0].len, 100_000);
        assert_eq!(
            kept.truncated[0].sha256,
            published::sha256_hex(ua.as_bytes())
        );
        // Cut on a character boundary.
        let mut text = "GET".to_owned();
        let cut = record::clip_into("path", "é".repeat(400).as_bytes(), &mut text);
        let text = text.strip_prefix("GET").unwrap();
        assert!(text.len() <= record::MAX_FIELD && cut.is_some());
        assert!(text.chars().all(|c| c == 'é'));
    }
}
