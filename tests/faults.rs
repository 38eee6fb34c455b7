//! Faults around the proxy: an origin that is slow past the read timeout,
//! resets mid-body or sends a truncated body, and an evidence disk that
//! fills up. Each gives a clear answer or log line, counts a metric, and
//! recovers. (Origin down, Redis down and back, DNS silent and a failing
//! range refresh are in proxy.rs, redis.rs, rdns.rs and ranges.rs.)

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use common::*;

/// An origin that misbehaves by path.
struct BadOrigin {
    port: u16,
}

impl BadOrigin {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                std::thread::spawn(move || serve(conn));
            }
        });
        Self { port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn serve(mut conn: TcpStream) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split(' ').nth(1).unwrap_or("/").to_owned();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                break;
            }
        }
        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10000\r\n\r\n";
        match path.as_str() {
            "/slow" => {
                std::thread::sleep(Duration::from_secs(3));
                return;
            }
            "/reset" => {
                let _ = conn.write_all(head.as_bytes());
                let _ = conn.write_all(&[b'a'; 100]);
                // RST instead of FIN.
                let sock = socket2::SockRef::from(&conn);
                let _ = sock.set_linger(Some(Duration::ZERO));
                return;
            }
            "/truncated" => {
                let _ = conn.write_all(head.as_bytes());
                let _ = conn.write_all(&[b'a'; 100]);
                let _ = conn.shutdown(std::net::Shutdown::Both);
                return;
            }
            _ => {
                let body = "fine";
                let _ = conn.write_all(
                    format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}", body.len())
                        .as_bytes(),
                );
            }
        }
    }
}

fn errors(proxy: &Proxy) -> f64 {
    proxy.metric(r#"rempart_upstream_errors_total{stage="proxy"}"#)
        + proxy.metric(r#"rempart_upstream_errors_total{stage="connect"}"#)
}

#[test]
fn a_slow_origin_gets_the_502_page_and_the_next_request_passes() {
    let origin = BadOrigin::start();
    let proxy = Proxy::start_with(
        &origin.url(),
        "upstream_read_timeout_ms = 500",
        &default_rules(),
    );
    let r = proxy.get(
        "/slow",
        &[("user-agent", CHROME), BROWSER_ACCEPT, BROWSER_LANGUAGE],
    );
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(
        r.body.contains("502") || r.body.to_lowercase().contains("origin"),
        "{}",
        r.body
    );
    assert!(errors(&proxy) >= 1.0);
    assert_eq!(proxy.browse("/ok").body, "fine");
}

#[test]
fn an_origin_that_resets_or_truncates_mid_body_never_passes_for_a_whole_page() {
    let origin = BadOrigin::start();
    let proxy = Proxy::start(&origin.url());
    for path in ["/reset", "/truncated"] {
        let answer = proxy.raw(
            format!("GET {path} HTTP/1.1\r\nHost: a\r\nUser-Agent: {CHROME}\r\nAccept: text/html\r\nAccept-Language: fr\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
        // The client sees the status and what arrived, then a closed
        // connection short of Content-Length: never a complete page.
        assert!(body.len() < 10_000, "{path}: {} body bytes", body.len());
    }
    assert!(errors(&proxy) >= 2.0, "{}", errors(&proxy));
    assert_eq!(proxy.browse("/ok").body, "fine");
}

/// Mounts a small tmpfs where the system lets root do it.
fn small_disk(dir: &std::path::Path, kib: u32) -> bool {
    std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success())
}

fn unmount(dir: &std::path::Path) {
    let _ = std::process::Command::new("umount").arg(dir).status();
}

#[test]
fn a_full_evidence_disk_is_logged_counted_and_recovered() {
    let disk = tempfile::tempdir().unwrap();
    if !small_disk(disk.path(), 256) {
        eprintln!(
            "skipped: cannot mount a tmpfs here (the injected full disk is tested in src/evidence)"
        );
        return;
    }
    let origin = Origin::start();
    let ledger = disk.path().join("evidence");
    let proxy = Proxy::start_args(
        &origin.url(),
        "",
        &default_rules().replace(
            "[behaviour]\nenabled = true",
            "[behaviour]\nenabled = false",
        ),
        &["--evidence-dir", ledger.to_str().unwrap()],
    );
    // Fill the disk with something else, then refuse crawlers.
    let filler = disk.path().join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 240 * 1024]);
    for i in 0..200 {
        let r = proxy.get(&format!("/films/{i}"), &[("user-agent", GPTBOT)]);
        assert_eq!(r.status, 402, "the proxy keeps serving on a full disk");
    }
    std::thread::sleep(Duration::from_millis(500));
    let failed = proxy.metric(r#"rempart_evidence_write_errors_total{op="write"}"#);
    let log = std::fs::read_to_string(&proxy.log).unwrap();
    // Space returns: the writer catches up, and the chain verifies.
    std::fs::remove_file(&filler).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let records = ledger_records(&ledger);
    drop(proxy);
    let (code, out, err) = run_cli(&["evidence", "verify", ledger.to_str().unwrap()], None);
    unmount(disk.path());
    assert!(failed >= 1.0, "no write error counted");
    assert!(log.contains("evidence: write failed"), "{log}");
    assert!(!requests(&records).is_empty());
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_dns_server_that_never_answers_delays_nothing_and_is_counted() {
    // A UDP socket that reads queries and answers none.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while silent.recv_from(&mut buf).is_ok() {}
    });
    let origin = Origin::start();
    let rules = default_rules()
        .replace(
            "[behaviour]\nenabled = true",
            "[behaviour]\nenabled = false",
        )
        .replace(
            "nameservers = []",
            &format!("nameservers = [\"127.0.0.1:{port}\"]\ntimeout_ms = 300"),
        );
    let proxy = Proxy::start_with(
        &origin.url(),
        "trusted_proxies = [\"127.0.0.1/32\"]",
        &rules,
    );
    let petal = "Mozilla/5.0 (Linux; Android 7.0;) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible; PetalBot;+https://webmaster.petalsearch.com/site/petalbot)";
    for _ in 0..5 {
        let started = std::time::Instant::now();
        let r = proxy.get(
            "/films/x",
            &[("user-agent", petal), ("x-forwarded-for", "203.0.113.7")],
        );
        // Never waits on the resolver: unverifiable, and the ordinary policy.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(r.status == 200 || r.status == 403, "{}", r.status);
        std::thread::sleep(Duration::from_millis(200));
    }
    let failed = proxy.metric(r#"rempart_rdns_lookups_total{result="unconfirmed"}"#);
    assert!(failed >= 1.0, "the failed lookup is counted");
    // The proxy keeps serving everyone else.
    assert_eq!(proxy.browse("/films/a").status, 200);
}
