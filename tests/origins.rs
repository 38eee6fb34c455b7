//! Origins: several, balanced round robin; an address that refuses
//! connections is taken out and its requests retried on another; names
//! resolved at load and by `rempart check`.

mod common;

use std::net::{Ipv4Addr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};

/// A DNS server answering one name with the address in `answer` (TTL 1 s).
fn dns_server(name: &'static str, answer: Arc<Mutex<Ipv4Addr>>) -> u16 {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut r = Message::new();
            r.set_id(q.id())
                .set_message_type(MessageType::Response)
                .set_authoritative(true)
                .set_recursion_available(true);
            let mut found = false;
            for query in q.queries() {
                r.add_query(query.clone());
                let asked = query.name().to_utf8().to_ascii_lowercase();
                if asked.trim_end_matches('.') == name && query.query_type() == RecordType::A {
                    let ip = *answer.lock().unwrap();
                    r.add_answer(Record::from_rdata(query.name().clone(), 1, RData::A(A(ip))));
                    found = true;
                }
            }
            if !found
                && q.queries()
                    .iter()
                    .all(|q| q.name().to_utf8().trim_end_matches('.') != name)
            {
                r.set_response_code(ResponseCode::NXDomain);
            }
            let _ = sock.send_to(&r.to_vec().unwrap(), from);
        }
    });
    port
}

const RULES: &str = "[[rules]]\nname = \"gpt\"\nagent = [\"GPTBot\"]\naction = \"offer\"\n\n[behaviour]\nenabled = false\n\n[reload]\nwatch = false\n";

fn with_origins(urls: &[String]) -> impl Fn(String) -> String {
    let list = urls
        .iter()
        .map(|u| format!("\"{u}\""))
        .collect::<Vec<_>>()
        .join(", ");
    move |text: String| {
        let start = text.find("\nupstream = ").expect("upstream line") + 1;
        let end = start + text[start..].find('\n').expect("end of line");
        format!("{}upstream = [{list}]{}", &text[..start], &text[end..])
    }
}

#[test]
fn two_origins_share_the_requests_and_a_dead_one_is_skipped() {
    let a = Origin::start();
    let b = Origin::start();
    let edit = with_origins(&[a.url(), b.url()]);
    let proxy = Proxy::start_edited(&a.url(), "", RULES, &[], &edit);
    for _ in 0..20 {
        let r = proxy.browse("/films/x");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, ORIGIN_BODY);
    }
    assert_eq!((a.count(), b.count()), (10, 10), "round robin");
    // A third origin address that refuses connections: every request still
    // succeeds (retried on another address), and the dead one is tried once,
    // then left out for the fail timeout.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let edit = with_origins(&[a.url(), dead.clone(), b.url()]);
    let proxy = Proxy::start_edited(&a.url(), "", RULES, &[], &edit);
    let (before_a, before_b) = (a.count(), b.count());
    for _ in 0..30 {
        assert_eq!(proxy.browse("/films/y").status, 200);
    }
    assert_eq!(
        a.count() + b.count() - before_a - before_b,
        30,
        "every request reached a live origin"
    );
    assert_eq!(
        proxy.metric(r#"rempart_upstream_errors_total{stage="connect"}"#),
        1.0,
        "the dead address was tried once, then left out"
    );
    assert_eq!(
        proxy.metric(r#"rempart_http_responses_total{action="allow",status="200"}"#),
        30.0
    );
}

#[test]
fn an_origin_by_name_is_resolved_and_its_unreachable_addresses_left_out() {
    // `localhost` resolves to 127.0.0.1 and often ::1 too; the origin only
    // listens on the first: the other address fails once and is left out.
    let a = Origin::start();
    let url = format!("http://localhost:{}", a.addr.port());
    let proxy = Proxy::start_with(&url, "", RULES);
    for _ in 0..10 {
        assert_eq!(proxy.browse("/films/z").status, 200);
    }
    assert_eq!(a.count(), 10);
    assert!(proxy.metric(r#"rempart_upstream_errors_total{stage="connect"}"#) <= 1.0);
}

#[test]
fn check_resolves_each_origin_and_names_the_one_that_fails() {
    let a = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &a.url(), free_port(), free_port(), "", RULES);
    let text = std::fs::read_to_string(&config).unwrap();
    let bad =
        with_origins(&[a.url(), "http://no-such-origin.invalid:8080".to_owned()])(text.clone());
    std::fs::write(&config, &bad).unwrap();
    let path = config.to_str().unwrap();
    let (code, out, err) = run_cli(&["check", "--config", path], None);
    assert_eq!(code, 1, "{out}{err}");
    let line = bad
        .lines()
        .position(|l| l.starts_with("upstream = ["))
        .unwrap()
        + 1;
    assert!(err.contains(&format!("rempart.toml:{line}:")), "{err}");
    assert!(
        err.contains("server.upstream[1]") && err.contains("no-such-origin.invalid"),
        "{err}"
    );
    let (code, _, err) = run_cli(&["check", "--config", path, "--offline"], None);
    assert_eq!(code, 0, "--offline does not resolve: {err}");
    std::fs::write(&config, with_origins(&[a.url()])(text)).unwrap();
    let (code, out, err) = run_cli(&["check", "--config", path], None);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("origin {}: {}", a.url(), a.addr)),
        "{out}"
    );
    // A list with the demo and another origin, or an origin twice: refused.
    for (urls, says) in [
        (
            vec!["builtin:demo".to_owned(), a.url()],
            "[0]`: builtin:demo cannot be balanced",
        ),
        (vec![a.url(), a.url()], "[1]`: \"http"),
    ] {
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, with_origins(&urls)(text)).unwrap();
        let (code, _, err) = run_cli(&["check", "--config", path, "--offline"], None);
        assert_eq!(code, 1, "{urls:?}");
        assert!(err.contains(&format!("server.upstream{says}")), "{err}");
    }
}

#[test]
fn an_origin_whose_address_moves_is_followed_without_a_reload() {
    // The origin's name first points at 127.0.0.1, then at 127.0.0.2 (same
    // port): rempart follows the DNS answer (TTL 1 s, followed within its
    // 5 s floor) with no reload and no failed request.
    let first = Origin::start();
    let port = first.addr.port();
    let second = Origin::start_at(&format!("127.0.0.2:{port}"), &[], &[]);
    let answer = Arc::new(Mutex::new(Ipv4Addr::new(127, 0, 0, 1)));
    let dns = dns_server("origin.rempart.test", answer.clone());
    let url = format!("http://origin.rempart.test:{port}");
    let extra = format!("upstream_nameservers = [\"127.0.0.1:{dns}\"]");
    let proxy = Proxy::start_with(&url, &extra, RULES);
    for _ in 0..5 {
        assert_eq!(proxy.browse("/films/a").status, 200);
    }
    assert_eq!((first.count(), second.count()), (5, 0));
    *answer.lock().unwrap() = Ipv4Addr::new(127, 0, 0, 2);
    let deadline = Instant::now() + Duration::from_secs(15);
    while second.count() == 0 {
        assert!(Instant::now() < deadline, "the new address was never used");
        assert_eq!(
            proxy.browse("/films/b").status,
            200,
            "no request fails meanwhile"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let before = first.count();
    for _ in 0..5 {
        assert_eq!(proxy.browse("/films/c").status, 200);
    }
    assert_eq!(first.count(), before, "the old address is no longer used");
    assert_eq!(
        proxy.metric("rempart_config_reload_total{result=\"ok\"}"),
        0.0,
        "no reload"
    );
    let log = std::fs::read_to_string(&proxy.log).unwrap();
    assert!(log.contains("origin addresses changed"), "{log}");
}
