//! One request, one reading: spellings of a refused path, sent byte for byte
//! to the real proxy in front of an origin that logs what it receives. For a
//! refused crawler, the honeypot and a licence's scope, every request that
//! reaches the origin must lead — however the origin reads it (nginx's
//! decoding, Tomcat's `;` parameters, IIS's backslashes and overlong UTF-8) —
//! to a path the decision allowed, and every refusal is in the ledger.

mod common;

use common::*;

/// Ways to write `/films/x` (or reach it from an always-reachable prefix).
const SPELLINGS: &[&str] = &[
    "/films/x",
    "/%66ilms/x",
    "/%66%69%6c%6d%73/x",
    "//films/x",
    "/./films/x",
    "/films/./x",
    "/FILMS/x",
    "/films%2fx",
    "/films%2Fx",
    "/.well-known/../films/x",
    "/.well-known/%2e%2e/films/x",
    "/.well-known/%2E%2E/films/x",
    "/.well-known/.%2e/films/x",
    "/.well-known//../films/x",
    "/.well-known/%ff/../../films/x",
    "/.well-known/%c0%ae%c0%ae/films/x",
    "/.well-known/%c0%af../films/x",
    "/.well-known/..;/films/x",
    "/.well-known;/../films/x",
    "/films;jsessionid=1/x",
    "/.well-known\\..\\films\\x",
    "/.well-known/%5c..%5cfilms/x",
    "/.well-known/..%2ffilms/x",
    "/.well-known/%2e%2e%2ffilms/x",
    "/.well-known/%252e%252e/films/x",
    "/.well-known/%00/../films/x",
    "http://catalogue.example/films/x",
    "films/x",
    "/films/x?/../../.well-known/",
    "/.well-known/x#/../../films/x",
    "/.well-known/x/../../films/x?a=b",
];

/// Every path an origin might make of the bytes it received: one percent-
/// decoding (nginx, Apache, Node's routers, Python), then dot segments
/// removed; with `;` parameters dropped per segment (Tomcat, Jetty); with
/// `\` read as `/` and overlong `%c0%ae` as `.` (IIS).
fn readings(received: &str) -> Vec<String> {
    let path = received.split('?').next().unwrap_or("");
    let iis = path
        .replace('\\', "/")
        .replace("%c0%ae", ".")
        .replace("%C0%AE", ".")
        .replace("%c0%af", "/")
        .replace("%C0%AF", "/");
    let tomcat: String = path
        .split('/')
        .map(|seg| seg.split(';').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("/");
    [path.to_owned(), iis, tomcat]
        .iter()
        .map(|p| resolve(&decode(p)))
        .collect()
}

fn decode(p: &str) -> String {
    let b = p.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).replace('\\', "/")
}

fn resolve(p: &str) -> String {
    let mut segs: Vec<&str> = Vec::new();
    for s in p.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                segs.pop();
            }
            s => segs.push(s),
        }
    }
    format!("/{}", segs.join("/")).to_ascii_lowercase()
}

fn status_of(raw: &str) -> u16 {
    raw.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn send(proxy: &Proxy, target: &str, headers: &[(&str, &str)]) -> u16 {
    let mut req = format!("GET {target} HTTP/1.1\r\nHost: catalogue.example\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    status_of(&proxy.raw(req.as_bytes()))
}

/// Sends every spelling of `base` (spellings name `/films/x`), and checks
/// each request the origin got against `allowed`.
fn attack(
    proxy: &Proxy,
    origin: &Origin,
    base: &str,
    headers: &[(&str, &str)],
    allowed: &dyn Fn(&str) -> bool,
) -> (usize, usize) {
    let (mut refused, mut bad) = (0, 0);
    for spelling in SPELLINGS {
        let target = spelling
            .replace("/films/x", base)
            .replace("films/x", base.trim_start_matches('/'));
        let before = origin.seen.lock().unwrap().len();
        let status = send(proxy, &target, headers);
        assert_ne!(status, 0, "{target}: no answer");
        assert!(status < 500, "{target}: {status}");
        let seen: Vec<String> = origin.seen.lock().unwrap()[before..]
            .iter()
            .map(|s| s.path.clone())
            .filter(|p| p != "/robots.txt")
            .collect();
        for got in &seen {
            for reading in readings(got) {
                assert!(
                    allowed(&reading),
                    "{target} reached the origin as {got:?}, read as {reading:?}"
                );
            }
        }
        match status {
            400 => {
                bad += 1;
                assert!(seen.is_empty(), "{target}: a 400 was forwarded");
            }
            401..=499 => refused += 1,
            _ => {}
        }
    }
    (refused, bad)
}

#[test]
fn no_spelling_takes_a_refused_crawler_to_a_page() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin.url());
    let (refused, bad) = attack(
        &proxy,
        &origin,
        "/films/x",
        &[("user-agent", GPTBOT)],
        &|p| p.starts_with("/.well-known/"),
    );
    assert!(refused >= 8, "{refused} refused");
    assert!(bad >= 10, "{bad} answered 400");
    // Every refusal is in the ledger, with the canonical path decided on.
    let records = proxy.wait_records(refused);
    let paths: Vec<&str> = requests(&records)
        .iter()
        .filter_map(|r| r["path"].as_str())
        .collect();
    assert_eq!(paths.len(), refused, "{paths:?}");
    assert!(
        paths.iter().all(|p| !p.contains('%') && !p.contains("/..")),
        "{paths:?}"
    );
    assert!(paths.contains(&"/films/x"), "{paths:?}");
    assert!(proxy.metric(r#"rempart_bad_requests_total{reason="target-invalid-utf8"}"#) >= 1.0);
}

#[test]
fn no_spelling_walks_around_the_honeypot() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin.url());
    let browser = [
        ("user-agent", CHROME),
        BROWSER_ACCEPT,
        BROWSER_LANGUAGE,
        ("accept", "text/html"),
        ("accept-language", "fr-FR,fr;q=0.9"),
    ];
    let (refused, _) = attack(&proxy, &origin, "/catalogue-integral/x", &browser, &|p| {
        !p.starts_with("/catalogue-integral")
    });
    assert!(refused >= 8, "{refused} refused");
    assert!(proxy.metric(r#"rempart_behaviour_signals_total{signal="honeypot"}"#) >= 8.0);
}

#[test]
fn no_spelling_takes_a_licensee_outside_its_licence() {
    let token = "spelling-test-token";
    let hash = rempart::licensing::licence::hash_token(token);
    let licensee = format!(
        "[[licensees]]\nid = \"news-only\"\nname = \"News only\"\npaths = [\"/news/\"]\ntoken_sha256 = [\"{hash}\"]\n"
    );
    let origin = Origin::start();
    let proxy = Proxy::start_with(
        &origin.url(),
        "",
        &format!("{}\n{licensee}", default_rules()),
    );
    let auth = format!("License {token}");
    let headers = [("user-agent", GPTBOT), ("authorization", auth.as_str())];
    // Inside the licence, the page is served.
    assert_eq!(send(&proxy, "/news/a", &headers), 200);
    let (refused, _) = attack(&proxy, &origin, "/films/x", &headers, &|p| {
        p.starts_with("/news/") || p.starts_with("/.well-known/")
    });
    assert!(refused >= 8, "{refused} refused");
    // And from inside the licence out of it.
    let (refused, _) = attack(&proxy, &origin, "/news/../films/x", &headers, &|p| {
        p.starts_with("/news/") || p.starts_with("/.well-known/")
    });
    assert!(refused >= 4, "{refused} refused");
}

#[test]
fn the_origin_receives_the_canonical_target() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin.url());
    let browser = [("user-agent", CHROME), BROWSER_ACCEPT, BROWSER_LANGUAGE];
    for (sent, expected) in [
        ("/%66ilms/./a//b?q=%2e", "/films/a/b?q=%2e"),
        ("/caf%c3%a9/", "/caf%C3%A9/"),
        ("http://catalogue.example/films/a", "/films/a"),
        ("/films/a", "/films/a"),
    ] {
        assert_eq!(send(&proxy, sent, &browser), 200, "{sent}");
        let last = origin.last().expect("forwarded");
        assert_eq!(last.path, expected, "{sent}");
        assert_eq!(
            last.headers.get("host").map(String::as_str),
            Some("catalogue.example"),
            "{sent}"
        );
    }
    // Two user agents or two hosts: no single reading, nothing forwarded.
    let before = origin.count();
    let two = proxy.raw(
        b"GET /films/a HTTP/1.1\r\nHost: catalogue.example\r\nUser-Agent: Mozilla/5.0\r\nUser-Agent: GPTBot/1.2\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_of(&two), 400, "{two}");
    let two = proxy.raw(
        b"GET /films/a HTTP/1.1\r\nHost: catalogue.example\r\nHost: other.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_of(&two), 400, "{two}");
    // Raw bytes that are not UTF-8: pingora would forward them verbatim.
    let raw = proxy.raw(
        b"GET /.well-known/\xff/../../films/x HTTP/1.1\r\nHost: catalogue.example\r\nUser-Agent: GPTBot/1.2\r\nConnection: close\r\n\r\n",
    );
    assert!(matches!(status_of(&raw), 400), "{raw}");
    assert_eq!(origin.count(), before);
}
