//! Web Bot Auth end to end: keys generated here, a key directory served by a
//! real HTTP server started here, signed requests through the real proxy.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use indexmap::IndexMap;
use web_bot_auth::components::{
    CoveredComponent, DerivedComponent, HTTPField, HTTPFieldParametersSet,
};
use web_bot_auth::keyring::{Algorithm, Thumbprintable};
use web_bot_auth::message_signatures::{MessageSigner, UnsignedMessage};

const DIRECTORY_PATH: &str = "/.well-known/http-message-signatures-directory";

struct Key {
    secret: [u8; 32],
    jwks: String,
    keyid: String,
}

fn key(seed: u8) -> Key {
    let signing = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    let x =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes());
    let keyid = Thumbprintable::OKP {
        crv: "Ed25519".into(),
        x: x.clone(),
    }
    .b64_thumbprint();
    Key {
        secret: signing.to_bytes(),
        jwks: format!(r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{x}"}}]}}"#),
        keyid,
    }
}

/// The headers of a signed request to `authority`.
struct Request {
    authority: String,
    agent: String,
    input: String,
    signature: String,
}

impl UnsignedMessage for Request {
    fn fetch_components_to_cover(&self) -> IndexMap<CoveredComponent, String> {
        IndexMap::from_iter([
            (
                CoveredComponent::Derived(DerivedComponent::Authority { req: false }),
                self.authority.clone(),
            ),
            (
                CoveredComponent::HTTP(HTTPField {
                    name: "signature-agent".into(),
                    parameters: HTTPFieldParametersSet(vec![]),
                }),
                self.agent.clone(),
            ),
        ])
    }
    fn register_header_contents(&mut self, signature_input: String, signature_header: String) {
        self.input = format!("sig1={signature_input}");
        self.signature = format!("sig1={signature_header}");
    }
}

fn sign(k: &Key, authority: &str, directory: &str) -> Request {
    let mut r = Request {
        authority: authority.into(),
        agent: format!("\"{directory}\""),
        input: String::new(),
        signature: String::new(),
    };
    MessageSigner {
        keyid: k.keyid.clone(),
        nonce: "test-nonce".into(),
        tag: "web-bot-auth".into(),
    }
    .generate_signature_headers_content(
        &mut r,
        Duration::from_secs(300),
        Algorithm::Ed25519,
        &k.secret[..],
    )
    .expect("sign");
    r
}

fn get_signed(proxy: &Proxy, path: &str, ua: &str, r: &Request) -> Resp {
    proxy.get(
        path,
        &[
            ("user-agent", ua),
            ("signature-agent", &r.agent),
            ("signature-input", &r.input),
            ("signature", &r.signature),
        ],
    )
}

fn licensed_to(k: &Key) -> String {
    format!(
        "[[licensees]]\nid = \"signed-ai\"\nname = \"Signed AI\"\nkey_ids = [\"{}\"]\n",
        k.keyid
    )
}

fn wait_for_directory(proxy: &Proxy) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.metric(r#"rempart_key_directory_fetches_total{result="ok"}"#) < 1.0
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_signed_request_passes_and_a_tampered_one_does_not() {
    let k = key(7);
    let directory = Origin::start_full(&[], &[(DIRECTORY_PATH, 200, &k.jwks)]);
    let directory_url = format!("{}{DIRECTORY_PATH}", directory.url());
    let origin = Origin::start();
    let proxy = Proxy::start_with(
        &origin.url(),
        "",
        &format!("{}\n{}", default_rules(), licensed_to(&k)),
    );
    let authority = format!("127.0.0.1:{}", proxy.port);
    let signed = sign(&k, &authority, &directory_url);

    // First sight of the directory: not cached yet, so not verified, and not delayed.
    let started = Instant::now();
    let first = get_signed(&proxy, "/films/a", GPTBOT, &signed);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(first.status, 402);
    wait_for_directory(&proxy);

    // Keys cached: the signature binds the request to the licensee.
    let r = get_signed(&proxy, "/films/a", GPTBOT, &signed);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        origin
            .last()
            .unwrap()
            .headers
            .get("x-rempart-licensee")
            .map(String::as_str),
        Some("signed-ai")
    );
    assert!(proxy.metric(r#"rempart_web_bot_auth_total{result="verified"}"#) >= 1.0);

    // Tampered: signed for another authority, or with another key.
    let elsewhere = sign(&k, "films.example", &directory_url);
    assert_eq!(
        get_signed(&proxy, "/films/a", GPTBOT, &elsewhere).status,
        402
    );
    let mut forged = sign(&key(9), &authority, &directory_url);
    forged.input = forged.input.replace(&key(9).keyid, &k.keyid);
    assert_eq!(get_signed(&proxy, "/films/a", GPTBOT, &forged).status, 402);
    // One character of the signature bytes changed (the first after `:`).
    let mut flipped = sign(&k, &authority, &directory_url);
    let at = flipped.signature.find(':').expect("sfv byte sequence") + 1;
    let c = flipped.signature.as_bytes()[at];
    let other = if c == b'A' { "B" } else { "A" };
    flipped.signature.replace_range(at..=at, other);
    assert_eq!(get_signed(&proxy, "/films/a", GPTBOT, &flipped).status, 402);
    assert!(proxy.metric(r#"rempart_web_bot_auth_total{result="invalid"}"#) >= 2.0);
}

#[test]
fn a_valid_signature_verifies_an_agent_whatever_its_address() {
    let k = key(3);
    let directory = Origin::start_full(&[], &[(DIRECTORY_PATH, 200, &k.jwks)]);
    let directory_url = format!("{}{DIRECTORY_PATH}", directory.url());
    let origin = Origin::start();
    let proxy = Proxy::start(&origin.url());
    let signed = sign(&k, &format!("127.0.0.1:{}", proxy.port), &directory_url);
    // Googlebot from loopback is spoofed by its ranges...
    assert_eq!(proxy.get("/", &[("user-agent", GOOGLEBOT)]).status, 403);
    let _ = get_signed(&proxy, "/", GOOGLEBOT, &signed);
    wait_for_directory(&proxy);
    // ...but verified by its signature, and verified search engines pass.
    assert_eq!(get_signed(&proxy, "/", GOOGLEBOT, &signed).status, 200);
    assert_eq!(proxy.metric(r#"rempart_requests_total{action="allow",purpose="search-engine",verification="verified"}"#), 1.0);
}

#[test]
fn a_down_directory_never_delays_a_request() {
    let k = key(5);
    let origin = Origin::start();
    let proxy = Proxy::start_with(
        &origin.url(),
        "",
        &format!("{}\n{}", default_rules(), licensed_to(&k)),
    );
    let dead = format!("http://127.0.0.1:{}{DIRECTORY_PATH}", free_port());
    let signed = sign(&k, &format!("127.0.0.1:{}", proxy.port), &dead);
    for _ in 0..3 {
        let started = Instant::now();
        let r = get_signed(&proxy, "/films/a", GPTBOT, &signed);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(r.status, 402, "unverifiable: the ordinary policy applies");
    }
    assert!(proxy.metric(r#"rempart_web_bot_auth_total{result="unverifiable"}"#) >= 3.0);
}

#[test]
fn hostile_signature_headers_are_refused() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin.url());
    let huge = format!("sig1=(\"@authority\");tag=\"{}\"", "x".repeat(8000));
    let r = proxy.get(
        "/",
        &[
            ("user-agent", GPTBOT),
            ("signature-input", &huge),
            ("signature", "sig1=:AAAA:"),
        ],
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.headers.get("crawler-error").map(String::as_str),
        Some("InvalidSignature")
    );
    // Malformed but small: not verified, ordinary policy.
    let r = proxy.get(
        "/",
        &[
            ("user-agent", GPTBOT),
            ("signature-input", "((((garbage"),
            ("signature", ":::"),
        ],
    );
    assert_eq!(r.status, 402);
    assert_eq!(proxy.get("/", &[("user-agent", CHROME)]).status, 200);
}
