//! TLS termination, HTTP/2, certificate reload, and the PROXY protocol, with
//! real clients (curl, and a rustls client for the PROXY header).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::*;

fn gen_cert(dir: &Path, cn: &str) {
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .args([
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .output()
        .expect("openssl not found (.ci/run installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn tls_section(dir: &Path, port: u16, extra: &str) -> String {
    format!(
        "\n[tls]\nlisten = \"127.0.0.1:{port}\"\ncert_file = \"{}\"\nkey_file = \"{}\"\n{extra}\n",
        dir.join("cert.pem").display(),
        dir.join("key.pem").display()
    )
}

/// curl over TLS: (HTTP version, status, certificate subject).
fn curl(port: u16, version: &str, ua: &str) -> (String, String, String) {
    let out = Command::new("curl")
        .args([
            "-sk",
            "-v",
            version,
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
            "-A",
            ua,
            // What a browser sends with a navigation over HTTPS (a Chrome
            // user agent without them is not Chrome: `header-mismatch`).
            "-H",
            "Accept: text/html,application/xhtml+xml,*/*;q=0.8",
            "-H",
            "Accept-Language: fr-FR,fr;q=0.9",
            "-H",
            "sec-ch-ua: \"Chromium\";v=\"131\"",
            "-H",
            "Sec-Fetch-Mode: navigate",
        ])
        .arg(format!("https://127.0.0.1:{port}/films/x"))
        .output()
        .expect("curl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (v, code) = stdout.split_once(' ').unwrap_or(("", ""));
    let subject = String::from_utf8_lossy(&out.stderr)
        .lines()
        .find_map(|l| l.split_once("subject: ").map(|(_, s)| s.trim().to_owned()))
        .unwrap_or_default();
    (v.to_owned(), code.to_owned(), subject)
}

#[test]
fn https_with_http2_and_a_certificate_swapped_on_reload() {
    let certs = tempfile::tempdir().unwrap();
    gen_cert(certs.path(), "first");
    let origin = Origin::start();
    let port = free_port();
    let rules = format!("{}{}", default_rules(), tls_section(certs.path(), port, ""));
    let proxy = Proxy::start_with(&origin.url(), "", &rules);

    assert_eq!(
        curl(port, "--http2", CHROME),
        ("2".into(), "200".into(), "CN=first".into())
    );
    assert_eq!(curl(port, "--http1.1", CHROME).0, "1.1");
    assert_eq!(
        curl(port, "--http2", GPTBOT).1,
        "402",
        "the same policy over HTTP/2"
    );
    // The plain listener still works beside it.
    assert_eq!(proxy.browse("/films/x").status, 200);

    // A new certificate lands with a reload; open connections are not cut.
    gen_cert(certs.path(), "second");
    let reload = format!("http://127.0.0.1:{}/reload", proxy.admin);
    let r = ureq::post(&reload).call().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(curl(port, "--http2", CHROME).2, "CN=second");

    // A broken key is refused with the key named; the certificate in force stays.
    std::fs::write(certs.path().join("key.pem"), "not a key").unwrap();
    match ureq::post(&reload).call() {
        Err(ureq::Error::Status(400, r)) => {
            let body = r.into_string().unwrap();
            assert!(body.contains("tls.cert_file"), "{body}");
        }
        other => panic!("expected 400: {other:?}"),
    }
    assert_eq!(
        curl(port, "--http2", CHROME),
        ("2".into(), "200".into(), "CN=second".into())
    );
}

/// Accepts any certificate: the test talks to its own self-signed server.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Sends `preamble` (a PROXY header, or nothing), then a GET over TLS;
/// returns the status, or the error.
fn get_with_preamble(port: u16, preamble: &[u8], ua: &str) -> Result<u16, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    tcp.write_all(preamble).map_err(|e| e.to_string())?;
    let conn = rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap())
        .map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    write!(
        tls,
        "GET /films/x HTTP/1.1\r\nHost: localhost\r\nUser-Agent: {ua}\r\nAccept: text/html\r\nAccept-Language: fr-FR\r\nsec-ch-ua: \"Chromium\";v=\"131\"\r\nSec-Fetch-Mode: navigate\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no HTTP answer: {text:?}"))
}

fn proxy_v2(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x21); // version 2, PROXY
    h.push(0x11); // TCP over IPv4
    h.extend_from_slice(&12u16.to_be_bytes());
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h
}

#[test]
fn the_proxy_protocol_from_a_configured_balancer_names_the_client() {
    let certs = tempfile::tempdir().unwrap();
    gen_cert(certs.path(), "lb");
    let origin = Origin::start();
    let port = free_port();
    let rules = format!(
        "{}{}",
        default_rules(),
        tls_section(
            certs.path(),
            port,
            "proxy_protocol_from = [\"127.0.0.1/32\"]"
        )
    );
    let proxy = Proxy::start_with(&origin.url(), "", &rules);
    let verified = || {
        proxy.metric(r#"rempart_requests_total{action="offer",purpose="ai-training",verification="verified"}"#)
    };
    let spoofed = || {
        proxy.metric(r#"rempart_requests_total{action="offer",purpose="ai-training",verification="spoofed"}"#)
    };

    // v1: GPTBot from OpenAI's published range, as the balancer says.
    let v1 = format!("PROXY TCP4 {GPTBOT_IP} 127.0.0.1 40000 {port}\r\n");
    assert_eq!(get_with_preamble(port, v1.as_bytes(), GPTBOT), Ok(402));
    assert_eq!(verified(), 1.0);
    // v2, binary: the same, and then an address outside the range.
    assert_eq!(
        get_with_preamble(
            port,
            &proxy_v2([132, 196, 86, 1], [127, 0, 0, 1], 40001, port),
            GPTBOT
        ),
        Ok(402)
    );
    assert_eq!(verified(), 2.0);
    assert_eq!(
        get_with_preamble(
            port,
            &proxy_v2([203, 0, 113, 5], [127, 0, 0, 1], 40002, port),
            GPTBOT
        ),
        Ok(402)
    );
    assert_eq!(spoofed(), 1.0);
    // From a configured balancer the header is required.
    assert!(get_with_preamble(port, b"", GPTBOT).is_err());
    // A browser through the balancer gets the page.
    let v1 = "PROXY TCP4 198.51.100.20 127.0.0.1 40003 443\r\n".to_owned();
    assert_eq!(get_with_preamble(port, v1.as_bytes(), CHROME), Ok(200));
}

#[test]
fn the_proxy_protocol_is_not_read_from_anyone_else() {
    let certs = tempfile::tempdir().unwrap();
    gen_cert(certs.path(), "direct");
    let origin = Origin::start();
    let port = free_port();
    let rules = format!(
        "{}{}",
        default_rules(),
        tls_section(certs.path(), port, "proxy_protocol_from = [\"10.0.0.0/8\"]")
    );
    let _proxy = Proxy::start_with(&origin.url(), "", &rules);
    // A client that forges a header breaks its own handshake; one that does
    // not is served.
    let forged = format!("PROXY TCP4 {GPTBOT_IP} 127.0.0.1 40000 {port}\r\n");
    assert!(get_with_preamble(port, forged.as_bytes(), GPTBOT).is_err());
    assert_eq!(get_with_preamble(port, b"", CHROME), Ok(200));
}

/// Sends raw bytes on a fresh connection and returns the whole answer.
fn raw_send(port: u16, bytes: &[u8]) -> String {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    tcp.write_all(bytes).unwrap();
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn the_proxy_protocol_on_plain_http_goes_through_the_relay() {
    let origin = Origin::start();
    let pp = free_port();
    let extra = format!(
        "proxy_protocol_listen = \"127.0.0.1:{pp}\"\nproxy_protocol_from = [\"127.0.0.1/32\"]"
    );
    let proxy = Proxy::start_with(&origin.url(), &extra, &default_rules());
    let verified = || {
        proxy.metric(r#"rempart_requests_total{action="offer",purpose="ai-training",verification="verified"}"#)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", pp)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the PROXY listener never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let get = |ua: &str, close: bool| {
        format!(
            "GET /films/x HTTP/1.1\r\nHost: films.example\r\nUser-Agent: {ua}\r\nAccept: text/html\r\nAccept-Language: fr\r\n{}\r\n",
            if close { "Connection: close\r\n" } else { "" }
        )
    };
    // v1, and two requests on one kept-alive connection.
    let mut tcp = TcpStream::connect(("127.0.0.1", pp)).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let first = format!(
        "PROXY TCP4 {GPTBOT_IP} 127.0.0.1 40000 80\r\n{}",
        get(GPTBOT, false)
    );
    tcp.write_all(first.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut byte = [0u8; 4096];
    // Read the first answer whole: its headers, then Content-Length bytes.
    while !String::from_utf8_lossy(&answer).contains("\r\n\r\n") {
        let n = tcp.read(&mut byte).unwrap();
        assert!(n > 0, "closed early");
        answer.extend_from_slice(&byte[..n]);
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut got = body.len();
    while got < len {
        got += tcp.read(&mut byte).unwrap();
    }
    assert!(head.starts_with("HTTP/1.1 402"), "{head}");
    tcp.write_all(get(GPTBOT, true).as_bytes()).unwrap();
    let mut rest = String::new();
    let _ = tcp.read_to_string(&mut rest);
    assert!(rest.starts_with("HTTP/1.1 402"), "{rest}");
    assert_eq!(verified(), 2.0);
    // v2; a browser's request reaches the origin with the real client in X-Forwarded-For.
    let mut v2 = proxy_v2([198, 51, 100, 20], [127, 0, 0, 1], 40001, 80);
    v2.extend_from_slice(get(CHROME, true).as_bytes());
    assert!(raw_send(pp, &v2).starts_with("HTTP/1.1 200"));
    let seen = origin.last().unwrap();
    assert_eq!(
        seen.headers.get("x-forwarded-for").map(String::as_str),
        Some("198.51.100.20")
    );
    // Without a header, nothing is relayed.
    assert_eq!(raw_send(pp, get(GPTBOT, true).as_bytes()), "");
    // The plain listener itself never reads PROXY headers.
    let forged = format!(
        "PROXY TCP4 {GPTBOT_IP} 127.0.0.1 40000 80\r\n{}",
        get(GPTBOT, true)
    );
    assert!(raw_send(proxy.port, forged.as_bytes()).starts_with("HTTP/1.1 400"));
    assert_eq!(verified(), 2.0);
}
