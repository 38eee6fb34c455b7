//! Forward-confirmed reverse DNS against a DNS server started by the test.

mod common;

use std::collections::HashMap;
use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// A tiny authoritative server: PTR and A records from two maps.
fn dns_server(ptr: HashMap<Ipv4Addr, &'static str>, a: HashMap<&'static str, Ipv4Addr>) -> u16 {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                return;
            };
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut r = Message::new();
            r.set_id(q.id())
                .set_message_type(MessageType::Response)
                .set_authoritative(true);
            r.set_recursion_available(true);
            let mut found = false;
            for query in q.queries() {
                r.add_query(query.clone());
                let name = query.name().to_utf8().to_ascii_lowercase();
                match query.query_type() {
                    RecordType::PTR => {
                        let octets: Vec<u8> = name
                            .trim_end_matches(".in-addr.arpa.")
                            .split('.')
                            .rev()
                            .filter_map(|o| o.parse().ok())
                            .collect();
                        if let [a1, a2, a3, a4] = octets[..] {
                            if let Some(host) = ptr.get(&Ipv4Addr::new(a1, a2, a3, a4)) {
                                let target = Name::from_ascii(host).unwrap();
                                r.add_answer(Record::from_rdata(
                                    query.name().clone(),
                                    60,
                                    RData::PTR(PTR(target)),
                                ));
                                found = true;
                            }
                        }
                    }
                    RecordType::A => {
                        if let Some(ip) = a.get(name.trim_end_matches('.')) {
                            r.add_answer(Record::from_rdata(
                                query.name().clone(),
                                60,
                                RData::A(A(*ip)),
                            ));
                            found = true;
                        }
                    }
                    _ => {}
                }
            }
            if !found {
                r.set_response_code(ResponseCode::NXDomain);
            }
            let _ = sock.send_to(&r.to_vec().unwrap(), from);
        }
    });
    port
}

const PETALBOT: &str =
    "Mozilla/5.0 (compatible;PetalBot;+https://webmaster.petalsearch.com/site/petalbot)";

#[test]
fn reverse_dns_verifies_in_the_background_and_catches_liars() {
    let port = dns_server(
        HashMap::from([
            (
                Ipv4Addr::new(203, 0, 113, 7),
                "crawl-203-0-113-7.petalsearch.com.",
            ),
            (
                Ipv4Addr::new(198, 51, 100, 9),
                "crawl-9.petalsearch.com.evil.example.",
            ),
            (
                Ipv4Addr::new(192, 0, 2, 44),
                "crawl-192-0-2-44.petalsearch.com.",
            ),
        ]),
        HashMap::from([
            (
                "crawl-203-0-113-7.petalsearch.com",
                Ipv4Addr::new(203, 0, 113, 7),
            ),
            (
                "crawl-9.petalsearch.com.evil.example",
                Ipv4Addr::new(198, 51, 100, 9),
            ),
            // The name exists, but does not point back to the address.
            (
                "crawl-192-0-2-44.petalsearch.com",
                Ipv4Addr::new(192, 0, 2, 99),
            ),
        ]),
    );
    let origin = Origin::start();
    let rules = default_rules()
        .replace(
            "[behaviour]\nenabled = true",
            "[behaviour]\nenabled = false",
        )
        .replace(
            "nameservers = []",
            &format!("nameservers = [\"127.0.0.1:{port}\"]"),
        );
    let proxy = Proxy::start_with(
        &origin.url(),
        "trusted_proxies = [\"127.0.0.1/32\"]",
        &rules,
    );
    let from = |ip: &str| {
        proxy
            .get(
                "/films/x",
                &[("user-agent", PETALBOT), ("x-forwarded-for", ip)],
            )
            .status
    };
    let count = |v: &str| {
        proxy.metric(&format!(
            r#"rempart_requests_total{{action="allow",purpose="search-engine",verification="{v}"}}"#
        ))
    };

    // First sight: not in the cache, so unverifiable (and let through), while
    // the lookup runs in the background.
    assert_eq!(from("203.0.113.7"), 200);
    assert_eq!(count("unverifiable"), 1.0);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert_eq!(from("203.0.113.7"), 200);
        if count("verified") >= 1.0 {
            break;
        }
        assert!(Instant::now() < deadline, "never verified");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A PTR name outside the operator's domain, and a name that does not
    // resolve back: spoofed, and the shipped policy blocks spoofed agents.
    for liar in ["198.51.100.9", "192.0.2.44"] {
        from(liar);
        let deadline = Instant::now() + Duration::from_secs(10);
        while from(liar) != 403 {
            assert!(Instant::now() < deadline, "{liar} never caught");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // Forward-confirmed: the PetalBot address and the evil.example name
    // (confirmed, but outside the operator's domain); not confirmed: the
    // name that does not point back.
    assert_eq!(
        proxy.metric(r#"rempart_rdns_lookups_total{result="confirmed"}"#),
        2.0
    );
    assert_eq!(
        proxy.metric(r#"rempart_rdns_lookups_total{result="unconfirmed"}"#),
        1.0
    );
    assert!(proxy.metric(r#"rempart_rdns_lookups_total{result="hit"}"#) >= 3.0);
    // An address with no PTR record at all is not PetalBot either; only its
    // first request, before the answer is in, is let through as unverifiable.
    assert_eq!(from("192.0.2.200"), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while from("192.0.2.200") != 403 {
        assert!(
            Instant::now() < deadline,
            "an address without PTR never caught"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
