//! Connection limits against slow, idle, oversized and many clients.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

const LIMITS: &str = "header_timeout_ms = 1000\nkeepalive_timeout_seconds = 1\nmax_connections_per_client = 5\nheader_memory_mb = 1";

fn start() -> (Origin, Proxy) {
    let origin = Origin::start();
    let proxy = Proxy::start_with(&origin.url(), LIMITS, &default_rules());
    (origin, proxy)
}

fn connect(proxy: &Proxy) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// True once the server has closed the connection (read gives 0 or an error).
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return true,
            Ok(_) => {}
        }
    }
    false
}

/// A header line every 300 ms: each read is quick, the block never ends.
/// True when a write failed (the proxy closed the connection).
fn trickle(s: &mut TcpStream) -> bool {
    (0..40).any(|i| {
        std::thread::sleep(Duration::from_millis(300));
        s.write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
            .is_err()
    })
}

#[test]
fn a_header_block_trickled_line_by_line_is_cut_off() {
    let (origin, proxy) = start();
    let mut s = connect(&proxy);
    s.write_all(b"GET /films/a HTTP/1.1\r\nHost: catalogue.example\r\n")
        .unwrap();
    // A header line every 300 ms: each read is quick, the block never ends.
    let started = Instant::now();
    let cut = trickle(&mut s);
    assert!(
        cut || closed_within(&mut s, Duration::from_secs(3)),
        "still open"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(origin.count(), 0);
    assert!(proxy.metric(r#"rempart_connections_closed_total{reason="header-timeout"}"#) >= 1.0);
}

#[test]
fn an_idle_keep_alive_connection_is_closed() {
    let (_origin, proxy) = start();
    let mut s = connect(&proxy);
    s.write_all(
        b"GET /films/a HTTP/1.1\r\nHost: catalogue.example\r\nUser-Agent: Mozilla/5.0\r\n\r\n",
    )
    .unwrap();
    let mut buf = [0u8; 8192];
    let n = s.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(
        closed_within(&mut s, Duration::from_secs(4)),
        "idle connection kept open"
    );
    assert!(proxy.metric(r#"rempart_connections_closed_total{reason="idle-timeout"}"#) >= 1.0);
}

#[test]
fn large_header_blocks_get_431_and_huge_ones_are_cut() {
    let (origin, proxy) = start();
    let big = "x".repeat(40 * 1024);
    let answer = proxy.raw(
        format!("GET /films/a HTTP/1.1\r\nHost: catalogue.example\r\nX-Big: {big}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "{}",
        &answer[..answer.len().min(120)]
    );
    assert!(answer.contains("too large"));
    let mut s = connect(&proxy);
    let huge = "y".repeat(200 * 1024);
    let _ = s.write_all(
        format!("GET /films/a HTTP/1.1\r\nHost: catalogue.example\r\nX-Huge: {huge}").as_bytes(),
    );
    assert!(closed_within(&mut s, Duration::from_secs(3)));
    assert_eq!(origin.count(), 0);
    assert!(proxy.metric(r#"rempart_bad_requests_total{reason="headers-too-large"}"#) >= 1.0);
    assert!(proxy.metric(r#"rempart_connections_closed_total{reason="header-size"}"#) >= 1.0);
}

#[test]
fn one_address_gets_a_bounded_number_of_connections() {
    let origin = Origin::start();
    let proxy = Proxy::start_with(
        &origin.url(),
        "header_timeout_ms = 8000\nmax_connections_per_client = 5",
        &default_rules(),
    );
    let mut held: Vec<TcpStream> = (0..5).map(|_| connect(&proxy)).collect();
    for s in &mut held {
        s.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut sixth = connect(&proxy);
    let _ = sixth.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(
        closed_within(&mut sixth, Duration::from_secs(2)),
        "the sixth connection was served"
    );
    assert!(proxy.metric(r#"rempart_connections_closed_total{reason="client"}"#) >= 1.0);
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(proxy.browse("/films/a").status, 200);
}

#[test]
fn unfinished_header_blocks_share_a_memory_budget() {
    let origin = Origin::start();
    let proxy = Proxy::start_with(
        &origin.url(),
        "header_timeout_ms = 8000\nheader_memory_mb = 1\nmax_connections_per_client = 100",
        &default_rules(),
    );
    // 1 MiB for everyone: forty connections with 30 KB each cannot all hold theirs.
    let chunk = format!("GET / HTTP/1.1\r\nX-Fill: {}\r\n", "z".repeat(30 * 1024));
    let mut conns = Vec::new();
    for _ in 0..40 {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", proxy.port)) else {
            continue;
        };
        let _ = s.write_all(chunk.as_bytes());
        conns.push(s);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(proxy.metric(r#"rempart_connections_closed_total{reason="header-memory"}"#) >= 1.0);
    drop(conns);
    assert_eq!(origin.count(), 0);
    assert_eq!(proxy.browse("/films/a").status, 200);
}

#[test]
fn the_next_request_on_a_kept_alive_connection_has_the_same_deadline() {
    let (_origin, proxy) = start();
    let mut s = connect(&proxy);
    s.write_all(
        b"GET /films/a HTTP/1.1\r\nHost: catalogue.example\r\nUser-Agent: Mozilla/5.0\r\n\r\n",
    )
    .unwrap();
    let mut buf = [0u8; 8192];
    let n = s.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    s.write_all(b"GET /films/b HTTP/1.1\r\n").unwrap();
    let cut = trickle(&mut s);
    assert!(
        cut || closed_within(&mut s, Duration::from_secs(3)),
        "still open"
    );
}
