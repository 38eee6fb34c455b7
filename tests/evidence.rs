//! The evidence ledger, end to end: records written by the running proxy,
//! checked and summarised by the `rempart evidence` commands.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;

/// The shipped rules and sections, with one evidence setting changed.
fn rules_with_evidence(from: &str, to: &str) -> String {
    let rules = default_rules();
    assert!(rules.contains(from), "{from} not in the shipped config");
    rules.replace(from, to)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    v.sort();
    v
}

fn copy_ledger(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for f in files(from) {
        std::fs::copy(&f, to.path().join(f.file_name().unwrap())).unwrap();
    }
    to
}

fn verify(dir: &Path) -> (i32, String) {
    let (code, out, err) = run_cli(&["evidence", "verify", dir.to_str().unwrap()], None);
    (code, format!("{out}{err}"))
}

fn edit_line(path: &Path, line: usize, f: impl FnOnce(&str) -> Option<String>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    match f(&lines[line - 1]) {
        Some(new) => lines[line - 1] = new,
        None => {
            lines.remove(line - 1);
        }
    }
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn verify_passes_on_a_good_ledger_and_finds_edits_deletions_and_truncation() {
    let origin = Origin::start();
    let proxy = Proxy::start_with(
        &origin.url(),
        "",
        &rules_with_evidence("max_file_kb = 65536", "max_file_kb = 4"),
    );
    for i in 0..40 {
        assert_eq!(
            proxy
                .get(&format!("/films/{i}"), &[("user-agent", GPTBOT)])
                .status,
            402
        );
    }
    let all = proxy.wait_records(40);
    assert_eq!(requests(&all).len(), 40);
    // Sequence numbers are gapless across files, and each record holds the
    // hash of the one before.
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r["seq"], i as u64);
    }
    assert_eq!(all[0]["prev"], "0".repeat(64));
    assert_eq!(all[0]["type"], "start");
    let dir = proxy.evidence_dir();
    let ledger = files(&dir);
    assert!(ledger.len() >= 4, "rotated by size: {ledger:?}");

    let (code, out) = verify(&dir);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "intact: {} records in {} files",
            all.len(),
            ledger.len()
        )),
        "{out}"
    );

    // An edited record: the next one no longer follows it.
    let edited = copy_ledger(&dir);
    let third = files(edited.path())[2].clone();
    edit_line(&third, 2, |l| Some(l.replacen("/films/", "/filmz/", 1)));
    let (code, out) = verify(edited.path());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("BROKEN at {}:3:", third.display())),
        "{out}"
    );
    assert!(out.contains("edited"), "{out}");

    // A deleted record.
    let deleted = copy_ledger(&dir);
    let third = files(deleted.path())[2].clone();
    edit_line(&third, 2, |_| None);
    let (code, out) = verify(deleted.path());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("BROKEN at {}:2:", third.display())),
        "{out}"
    );
    assert!(out.contains("1 record(s) removed"), "{out}");

    // A file cut in the middle of the ledger.
    let cut = copy_ledger(&dir);
    let names = files(cut.path());
    let middle = &names[1];
    // Cut inside its second line, whatever the records' lengths.
    let text = std::fs::read(middle).unwrap();
    let first_end = text.iter().position(|&b| b == b'\n').unwrap() + 1;
    let second_len = text[first_end..].iter().position(|&b| b == b'\n').unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(middle)
        .unwrap()
        .set_len((first_end + second_len / 2) as u64)
        .unwrap();
    let (code, out) = verify(cut.path());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("BROKEN at {}:1:", names[2].display())),
        "{out}"
    );
    assert!(out.contains("truncated"), "{out}");

    // The last file cut mid-line, as a crash leaves it: reported, not fatal.
    let torn = copy_ledger(&dir);
    let last = files(torn.path()).last().unwrap().clone();
    let len = std::fs::metadata(&last).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(len - 10)
        .unwrap();
    let (code, out) = verify(torn.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("torn last line"), "{out}");
}

#[test]
fn a_process_killed_under_load_leaves_a_ledger_that_verifies_with_every_flushed_record() {
    let origin = Origin::start();
    let mut proxy = Proxy::start(&origin.url());
    let stop = Arc::new(AtomicBool::new(false));
    let port = proxy.port;
    let load: Vec<_> = (0..4)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let url = format!("http://127.0.0.1:{port}/films/{t}-{i}");
                    // Errors are expected once the process is gone.
                    let _ = ureq::get(&url).set("user-agent", GPTBOT).call();
                    i += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let flushed = proxy.metric("rempart_evidence_records_total");
    proxy.child.kill().unwrap(); // SIGKILL
    proxy.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    assert!(flushed > 50.0, "load ran: {flushed}");
    let dir = proxy.evidence_dir();
    let (code, out) = verify(&dir);
    assert_eq!(code, 0, "{out}");
    let records = ledger_records(&dir);
    assert!(
        records.len() as f64 >= flushed,
        "{} records on disk, {flushed} flushed before the kill",
        records.len()
    );

    // A new process continues the same chain (here through --evidence-dir).
    let next = Proxy::start_args(
        &origin.url(),
        "",
        &default_rules(),
        &["--evidence-dir", dir.to_str().unwrap()],
    );
    assert_eq!(
        next.get("/films/after", &[("user-agent", GPTBOT)]).status,
        402
    );
    let all = wait_records(
        &dir,
        records.iter().filter(|r| r["type"] == "request").count() + 1,
    );
    let starts: Vec<_> = all.iter().filter(|r| r["type"] == "start").collect();
    assert_eq!(starts.len(), 2);
    let (code, out) = verify(&dir);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("intact: {} records", all.len())),
        "{out}"
    );
}

#[test]
fn a_request_record_says_when_the_request_came_as_well_as_when_it_was_written() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin.url());
    let ms = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i128
    };
    let sent = ms(std::time::SystemTime::now());
    assert_eq!(proxy.get("/films/x", &[("user-agent", GPTBOT)]).status, 402);
    let answered = ms(std::time::SystemTime::now());
    let records = proxy.wait_records(1);
    let r = records
        .iter()
        .find(|r| r["type"] == "request")
        .expect("a request record");
    let at = |field: &str| {
        let text = r[field].as_str().unwrap_or_else(|| panic!("{field}: {r}"));
        let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("{field} {text:?}: {e}"));
        (text.to_owned(), t.unix_timestamp_nanos() / 1_000_000)
    };
    let (text, requested) = at("requested_at");
    let (_, written) = at("ts");
    // To the millisecond, within the client's own exchange, and never after
    // the writer wrote the line.
    assert_eq!(text.len(), "2026-12-04T19:30:00.123Z".len(), "{text}");
    assert!(
        sent <= requested && requested <= answered,
        "{sent} <= {requested} <= {answered}"
    );
    assert!(requested <= written, "{requested} <= {written}");
}

#[test]
fn the_report_summarises_by_operator_and_agent() {
    let origin = Origin::start();
    let proxy = Proxy::start_with(
        &origin.url(),
        "trusted_proxies = [\"127.0.0.1/32\"]",
        &default_rules(),
    );
    let gpt = [("user-agent", GPTBOT), ("x-forwarded-for", GPTBOT_IP)];
    assert_eq!(proxy.get("/robots.txt", &gpt).status, 200);
    for p in ["/films/a", "/films/b", "/films/a"] {
        assert_eq!(proxy.get(p, &gpt).status, 402);
    }
    let bytespider = [(
        "user-agent",
        "Mozilla/5.0 (compatible; Bytespider; spider-feedback@bytedance.com)",
    )];
    for p in ["/films/c", "/series/d"] {
        assert_eq!(proxy.get(p, &bytespider).status, 402);
    }
    proxy.wait_records(5);
    let dir = proxy.evidence_dir();
    let d = dir.to_str().unwrap();

    let (code, json, err) = run_cli(&["evidence", "report", d, "--format", "json"], None);
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(r["intact"], true);
    assert_eq!(r["requests"], 5);
    let group = |agent: &str| {
        r["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["agent"] == agent)
            .unwrap_or_else(|| panic!("{agent}: {json}"))
            .clone()
    };
    let g = group("GPTBot");
    assert_eq!(g["operator"], "OpenAI");
    assert_eq!(g["verification"], "verified");
    assert_eq!(
        (g["requests"].as_u64(), g["actions"]["offer"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(g["distinct_paths"], 2);
    assert_eq!(g["top_paths"][0], serde_json::json!(["/films/a", 2]));
    assert!(g["robots_read_before"].as_str().is_some(), "{g}");
    assert_eq!(g["requests_after_robots"], 3);
    let b = group("Bytespider");
    assert_eq!(
        (b["operator"].as_str(), b["requests"].as_u64()),
        (Some("ByteDance"), Some(2))
    );
    assert!(b["robots_read_before"].is_null());
    assert!(r["published"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["document"] == "robots.txt"));

    let (code, csv, _) = run_cli(&["evidence", "report", d, "--format", "csv"], None);
    assert_eq!(code, 0);
    let mut lines = csv.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("operator,agent,purpose,verification,requests,offer,block,ratelimit"));
    assert!(
        csv.contains("\nOpenAI,GPTBot,ai-training,verified,3,3,0,0,0,0,2,1,"),
        "{csv}"
    );

    let out = proxy.dir.path().join("report.html");
    let (code, _, err) = run_cli(
        &[
            "evidence",
            "report",
            d,
            "--format",
            "html",
            "--output",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(
        html.contains("<svg") && html.contains("<rect"),
        "charts inline"
    );
    assert!(html.contains("GPTBot") && html.contains("OpenAI") && html.contains("ByteDance"));
    assert!(html.contains("intact"));
    assert!(
        !html.contains("<script") && !html.contains("<link") && !html.contains("src=\"http"),
        "self-contained"
    );

    // A period with nothing in it.
    let (code, json, _) = run_cli(
        &[
            "evidence",
            "report",
            d,
            "--format",
            "json",
            "--since",
            "2099-01-01",
        ],
        None,
    );
    assert_eq!(code, 0);
    let r: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(r["requests"], 0);
    let (code, _, err) = run_cli(&["evidence", "report", d, "--since", "last tuesday"], None);
    assert_eq!(code, 2, "a bad argument");
    assert!(
        err.contains("--since") && err.contains("2026-11-01"),
        "{err}"
    );
}

/// Retention, end to end: a restart with `retention_bytes` removes the
/// oldest closed files after a `pruned` record; `verify` passes and names the
/// pruning, the report still works, and a file then removed by hand is
/// still a break.
#[test]
fn retention_prunes_with_a_record_that_verify_and_report_accept() {
    let origin = Origin::start();
    let ledger = tempfile::tempdir().unwrap();
    let dir = ledger.path().to_str().unwrap().to_owned();
    let args = ["--evidence-dir", dir.as_str()];
    let small = rules_with_evidence("max_file_kb = 65536", "max_file_kb = 4");
    {
        let proxy = Proxy::start_args(&origin.url(), "", &small, &args);
        for i in 0..40 {
            let r = proxy.get(&format!("/films/{i}"), &[("user-agent", GPTBOT)]);
            assert_eq!(r.status, 402);
        }
        assert_eq!(requests(&wait_records(ledger.path(), 40)).len(), 40);
    }
    let before = files(ledger.path());
    assert!(before.len() > 4, "{before:?}");
    let retention = rules_with_evidence(
        "max_file_kb = 65536",
        "max_file_kb = 4\nretention_bytes = 8192",
    );
    {
        let _proxy = Proxy::start_args(&origin.url(), "", &retention, &args);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while before[0].exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert!(!before[0].exists(), "the oldest file was not pruned");
    let all = ledger_records(ledger.path());
    let pruned: Vec<_> = all.iter().filter(|r| r["type"] == "pruned").collect();
    assert_eq!(pruned.len(), 1, "{pruned:#?}");
    let named: Vec<&str> = pruned[0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["file"].as_str())
        .collect();
    let removed: Vec<String> = before
        .iter()
        .filter(|f| !f.exists())
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        named, removed,
        "every removed file is named, and only those"
    );
    let (code, out) = verify(ledger.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact:"), "{out}");
    assert!(out.contains("after files removed by retention"), "{out}");
    let (code, json, err) = run_cli(&["evidence", "report", &dir, "--format", "json"], None);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(
        report["integrity"]
            .as_str()
            .is_some_and(|s| s.contains("removed by retention")),
        "{report:#}"
    );
    // A further file removed by hand, with no record: broken.
    std::fs::remove_file(&files(ledger.path())[0]).unwrap();
    let (code, out) = verify(ledger.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("BROKEN"), "{out}");
}
