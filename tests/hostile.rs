//! Hostile input against rempart's own machinery: forged forwarding and
//! rempart headers, the admin endpoint from another site, and key-directory
//! fetches aimed at private addresses.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::*;

#[test]
fn forged_forwarding_headers_never_reach_the_origin() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin.url());
    let r = proxy.get(
        "/films/a",
        &[
            ("user-agent", CHROME),
            BROWSER_ACCEPT,
            BROWSER_LANGUAGE,
            ("x-real-ip", GOOGLEBOT_IP),
            ("true-client-ip", GOOGLEBOT_IP),
            ("forwarded", "for=66.249.66.1;proto=https"),
            ("x-forwarded-host", "admin.internal"),
            ("x-forwarded-proto", "https"),
            ("x-rempart-licensee", "acme-ai"),
            ("x_rempart_licensee", "acme-ai"),
            ("x-rempart-anything", "1"),
        ],
    );
    assert_eq!(r.status, 200);
    let seen = origin.last().unwrap();
    let h = |n: &str| seen.headers.get(n).cloned();
    assert_eq!(
        h("x-real-ip").as_deref(),
        Some("127.0.0.1"),
        "{:?}",
        seen.headers
    );
    assert_eq!(h("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(h("x-forwarded-for").as_deref(), Some("127.0.0.1"));
    for forged in ["true-client-ip", "forwarded", "x-forwarded-host"] {
        assert_eq!(h(forged), None, "{forged} reached the origin");
    }
    assert!(
        seen.headers
            .keys()
            .all(|k| !k.replace('_', "-").starts_with("x-rempart-")),
        "{:?}",
        seen.headers
    );
}

#[test]
fn several_forwarded_for_headers_are_one_list_for_the_decision_and_the_origin() {
    let origin = Origin::start();
    let proxy = Proxy::start_with(
        &origin.url(),
        "trusted_proxies = [\"127.0.0.1/32\"]",
        &default_rules(),
    );
    // The crawler's address is in the second header: decided on as one list.
    let raw = format!(
        "GET /films/a HTTP/1.1\r\nHost: catalogue.example\r\nUser-Agent: {GOOGLEBOT}\r\n\
         X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-For: {GOOGLEBOT_IP}\r\nConnection: close\r\n\r\n"
    );
    let answer = proxy.raw(raw.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let seen = origin.last().unwrap();
    assert_eq!(
        seen.headers.get("x-forwarded-for").map(String::as_str),
        Some(format!("203.0.113.7, {GOOGLEBOT_IP}, 127.0.0.1").as_str())
    );
    assert_eq!(
        seen.headers.get("x-real-ip").map(String::as_str),
        Some(GOOGLEBOT_IP)
    );
}

fn post_reload(proxy: &Proxy, headers: &[(&str, &str)]) -> (u16, String) {
    let mut req = "POST /reload HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n".to_owned();
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: 127.0.0.1:{}\r\n", proxy.admin));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let answer = raw_exchange(proxy.admin, req.as_bytes());
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

#[test]
fn the_admin_refuses_other_sites_and_wants_its_token() {
    let origin = Origin::start();
    let token_dir = tempfile::tempdir().unwrap();
    let token_file = token_dir.path().join("admin-token");
    std::fs::write(&token_file, "s3cret-admin-token\n").unwrap();
    let proxy = Proxy::start_edited(&origin.url(), "", &default_rules(), &[], &|t| {
        t.replace(
            "[admin]\n",
            &format!("[admin]\ntoken_file = \"{}\"\n", token_file.display()),
        )
    });
    let bearer = "Bearer s3cret-admin-token";
    let cases: [(&[(&str, &str)], u16); 6] = [
        (&[("authorization", bearer)], 200),
        (&[], 401),
        (&[("authorization", "Bearer wrong")], 401),
        (
            &[("authorization", bearer), ("sec-fetch-site", "cross-site")],
            403,
        ),
        (
            &[("authorization", bearer), ("origin", "http://evil.example")],
            403,
        ),
        (
            &[("authorization", bearer), ("host", "rebound.evil.example")],
            403,
        ),
    ];
    for (headers, expected) in cases {
        let (status, answer) = post_reload(&proxy, headers);
        assert_eq!(status, expected, "{headers:?}: {answer}");
    }
    let log = std::fs::read_to_string(&proxy.log).unwrap();
    assert!(
        !log.contains("s3cret-admin-token"),
        "the token is never logged"
    );
    // Reading stays open: metrics need no token.
    assert!(proxy.metrics_text().contains("rempart_requests_total"));
}

#[test]
fn a_same_site_reload_without_a_token_still_works_on_loopback() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin.url());
    let (status, answer) = post_reload(&proxy, &[]);
    assert_eq!(status, 200, "{answer}");
    let (status, _) = post_reload(&proxy, &[("sec-fetch-site", "cross-site")]);
    assert_eq!(status, 403);
}

#[test]
fn a_bound_directory_on_a_private_address_is_never_fetched() {
    // A bound directory whose host resolves to loopback, without the config
    // naming that host: the fetch is refused before any connection.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let overlay = tempfile::tempdir().unwrap();
    let bound = overlay.path().join("bound.toml");
    std::fs::write(
        &bound,
        format!(
            "[[agent]]\nname = \"Googlebot\"\nsignature_agents = [\"https://127.0.0.1:{port}\"]\n"
        ),
    )
    .unwrap();
    let origin = Origin::start();
    let proxy = Proxy::start_edited(
        &origin.url(),
        "",
        &default_rules(),
        &[],
        &with_catalogue(&bound),
    );
    let input = "sig1=(\"@authority\" \"signature-agent\");created=1700000000;expires=4102444800;keyid=\"k\";tag=\"web-bot-auth\"";
    let agent = format!("\"https://127.0.0.1:{port}\"");
    for _ in 0..3 {
        let r = proxy.get(
            "/",
            &[
                ("user-agent", GOOGLEBOT),
                ("signature-agent", agent.as_str()),
                ("signature-input", input),
                ("signature", "sig1=:AAAA:"),
            ],
        );
        assert_eq!(r.status, 403);
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        listener.accept().is_err(),
        "rempart connected to a private address"
    );
    assert!(proxy.metric(r#"rempart_key_directory_fetches_total{result="error"}"#) >= 1.0);
}

#[test]
fn huge_user_agents_cannot_fill_the_ledger() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin.url());
    // Under the 32 KiB header limit (a 500 KB one gets 431, nothing recorded).
    let ua = format!("GPTBot/1.2 {}", "x".repeat(30_000));
    let n = 150;
    for _ in 0..n {
        let req = format!(
            "GET /films/a HTTP/1.1\r\nHost: catalogue.example\r\nUser-Agent: {ua}\r\nConnection: close\r\n\r\n"
        );
        let answer = proxy.raw(req.as_bytes());
        assert!(
            answer.starts_with("HTTP/1.1 402"),
            "{}",
            &answer[..answer.len().min(200)]
        );
    }
    // The shipped cap keeps 120 records of one client per minute.
    let records = proxy.wait_records(120);
    let reqs = requests(&records);
    assert!(reqs.len() >= 100 && reqs.len() <= 120, "{}", reqs.len());
    for r in &reqs {
        assert!(r["user_agent"].as_str().unwrap().len() <= 512);
        assert_eq!(r["truncated"][0]["field"], "user_agent");
        assert_eq!(r["truncated"][0]["len"].as_u64(), Some(ua.len() as u64));
        assert_eq!(r["truncated"][0]["sha256"].as_str().map(str::len), Some(64));
    }
    let dir = proxy.evidence_dir();
    let bytes: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("ledger-"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(
        bytes < 120 * 4096,
        "{n} refusals with 30 KB user agents took {bytes} bytes"
    );
    let before = requests(&proxy.wait_records(0)).len();
    let huge = format!("GPTBot/1.2 {}", "x".repeat(500_000));
    let answer = proxy.raw(
        format!("GET /films/a HTTP/1.1\r\nHost: catalogue.example\r\nUser-Agent: {huge}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{}",
        &answer[..answer.len().min(100)]
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(requests(&proxy.wait_records(0)).len(), before);
    let (code, out, err) = run_cli(&["evidence", "verify", dir.to_str().unwrap()], None);
    assert_eq!(code, 0, "{out}{err}");
}

/// The local ports of connections from `from` to the plain listener `port`.
fn relay_ports(port: u16) -> Vec<u16> {
    let out = std::process::Command::new("ss")
        .args([
            "-Htn",
            "state",
            "established",
            &format!("( dport = :{port} )"),
        ])
        .output()
        .expect("ss");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let local = l.split_whitespace().nth(2)?;
            let (ip, p) = local.rsplit_once(':')?;
            (ip == "127.0.0.1").then(|| p.parse().ok()).flatten()
        })
        .collect()
}

#[test]
fn the_proxy_relay_client_is_not_inherited_from_another_loopback_address() {
    use std::io::Write;
    let origin = Origin::start();
    let pp = free_port();
    let extra = format!(
        "proxy_protocol_listen = \"127.0.0.1:{pp}\"\nproxy_protocol_from = [\"127.0.0.1/32\"]"
    );
    let proxy = Proxy::start_with(&origin.url(), &extra, &default_rules());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", pp)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the PROXY listener never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A relayed connection naming Googlebot's address, kept open.
    let mut relayed = std::net::TcpStream::connect(("127.0.0.1", pp)).unwrap();
    relayed
        .write_all(
            format!(
                "PROXY TCP4 {GOOGLEBOT_IP} 127.0.0.1 40000 80\r\nGET /films/x HTTP/1.1\r\nHost: a\r\nUser-Agent: {GOOGLEBOT}\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let ports = relay_ports(proxy.port);
    assert!(!ports.is_empty(), "no relay connection seen");
    // Another local process, on another loopback address, from the same port.
    let mut tried = 0;
    for port in ports {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        let from: std::net::SocketAddr = format!("127.0.0.2:{port}").parse().unwrap();
        if socket.bind(&from.into()).is_err() {
            continue;
        }
        let to: std::net::SocketAddr = format!("127.0.0.1:{}", proxy.port).parse().unwrap();
        socket.connect(&to.into()).unwrap();
        let mut s: std::net::TcpStream = socket.into();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.write_all(format!("GET /films/x HTTP/1.1\r\nHost: a\r\nUser-Agent: {GOOGLEBOT}\r\nConnection: close\r\n\r\n").as_bytes())
            .unwrap();
        let mut answer = String::new();
        let _ = std::io::Read::read_to_string(&mut s, &mut answer);
        assert!(
            answer.starts_with("HTTP/1.1 403"),
            "inherited the relayed client: {answer}"
        );
        tried += 1;
    }
    assert!(tried >= 1, "no port could be tried");
    drop(relayed);
}
