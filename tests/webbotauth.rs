//! Web Bot Auth end to end: keys generated here, a key directory served by a
//! real HTTP server started here, signed requests through the real proxy.
//!
//! A signature proves who holds a key, never who someone is: only a key from
//! a directory bound to the claimed agent (catalogue) or to a licensee
//! (config) counts; any other is `signed-unbound` and confers nothing.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use indexmap::IndexMap;
use web_bot_auth::components::{
    CoveredComponent, DerivedComponent, HTTPField, HTTPFieldParameters, HTTPFieldParametersSet,
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
    /// The dictionary member the signature covers (`sig1` for
    /// `"signature-agent";key="sig1"`), or none for the legacy bare string.
    member: Option<String>,
    /// The value covered for `signature-agent`: the whole field, or the member.
    covered_agent: String,
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
                    parameters: HTTPFieldParametersSet(
                        self.member
                            .iter()
                            .map(|m| HTTPFieldParameters::Key(m.clone()))
                            .collect(),
                    ),
                }),
                self.covered_agent.clone(),
            ),
        ])
    }
    fn register_header_contents(&mut self, signature_input: String, signature_header: String) {
        self.input = format!("sig1={signature_input}");
        self.signature = format!("sig1={signature_header}");
    }
}

fn sign(k: &Key, authority: &str, directory: &str) -> Request {
    sign_as(k, authority, directory, None)
}

/// Signs with `Signature-Agent` as the current draft writes it: a dictionary
/// whose member is named by the signature's label (`sig1`).
fn sign_dictionary(k: &Key, authority: &str, directory: &str) -> Request {
    sign_as(k, authority, directory, Some("sig1"))
}

fn sign_as(k: &Key, authority: &str, directory: &str, member: Option<&str>) -> Request {
    let quoted = format!("\"{directory}\"");
    let mut r = Request {
        authority: authority.into(),
        agent: member.map_or_else(|| quoted.clone(), |m| format!("{m}={quoted}")),
        member: member.map(str::to_owned),
        covered_agent: quoted,
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

/// Plain HTTP to the test's loopback directory servers, and nowhere else.
const ALLOW_LOOPBACK: &str = "[web_bot_auth]\nallow_http_hosts = [\"127.0.0.1\"]\n";

fn licensed_to(k: &Key, directory: &str) -> String {
    format!(
        "{ALLOW_LOOPBACK}\n[[licensees]]\nid = \"signed-ai\"\nname = \"Signed AI\"\nkey_ids = [\"{}\"]\nkey_directories = [\"{directory}\"]\n",
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
        &format!("{}\n{}", default_rules(), licensed_to(&k, &directory.url())),
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
    let seen = origin.last().unwrap();
    assert_eq!(
        seen.headers.get("x-rempart-licensee").map(String::as_str),
        Some("signed-ai")
    );
    assert!(proxy.metric(r#"rempart_web_bot_auth_total{result="verified"}"#) >= 1.0);
    // The directory was fetched at its well-known path, once.
    assert_eq!(directory.count(), 1);

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

/// The current draft's form end to end: `Signature-Agent: sig1="https://…"`,
/// covered as `"signature-agent";key="sig1"`, verified against the bound
/// directory served here; and the origin receives the three headers exactly
/// as the crawler sent them, so that it can verify them again.
#[test]
fn a_dictionary_signature_agent_verifies_and_reaches_the_origin_unchanged() {
    let k = key(11);
    let directory = Origin::start_full(&[], &[(DIRECTORY_PATH, 200, &k.jwks)]);
    let directory_url = format!("{}{DIRECTORY_PATH}", directory.url());
    let origin = Origin::start();
    let proxy = Proxy::start_with(
        &origin.url(),
        "",
        &format!("{}\n{}", default_rules(), licensed_to(&k, &directory.url())),
    );
    let authority = format!("127.0.0.1:{}", proxy.port);
    let signed = sign_dictionary(&k, &authority, &directory_url);
    assert!(signed.agent.starts_with("sig1=\""), "{}", signed.agent);
    assert!(
        signed.input.contains(r#""signature-agent";key="sig1""#),
        "{}",
        signed.input
    );

    assert_eq!(get_signed(&proxy, "/films/a", GPTBOT, &signed).status, 402);
    wait_for_directory(&proxy);
    let r = get_signed(&proxy, "/films/a", GPTBOT, &signed);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(proxy.metric(r#"rempart_web_bot_auth_total{result="verified"}"#) >= 1.0);
    let seen = origin.last().unwrap();
    assert_eq!(
        seen.headers.get("x-rempart-licensee").map(String::as_str),
        Some("signed-ai")
    );
    for (name, sent) in [
        ("signature-agent", &signed.agent),
        ("signature-input", &signed.input),
        ("signature", &signed.signature),
    ] {
        assert_eq!(
            seen.headers.get(name),
            Some(sent),
            "{name} forwarded unchanged"
        );
    }

    // The member swapped for a directory bound to nobody: never fetched, and
    // the request confers nothing.
    let mut swapped = sign_dictionary(&k, &authority, &directory_url);
    swapped.agent = "sig1=\"https://elsewhere.example/\"".into();
    assert_eq!(get_signed(&proxy, "/films/a", GPTBOT, &swapped).status, 402);
    assert_eq!(directory.count(), 1);
}

#[test]
fn a_self_made_key_verifies_nobody() {
    let k = key(3);
    let directory = Origin::start_full(&[], &[(DIRECTORY_PATH, 200, &k.jwks)]);
    let directory_url = format!("{}{DIRECTORY_PATH}", directory.url());
    let origin = Origin::start();
    let rules = format!("{}\n{ALLOW_LOOPBACK}", default_rules());
    let proxy = Proxy::start_with(&origin.url(), "", &rules);
    let authority = format!("127.0.0.1:{}", proxy.port);
    let signed = sign(&k, &authority, &directory_url);
    let data_url = format!(
        "data:application/http-message-signatures-directory+json;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&k.jwks)
    );
    let inline = sign(&k, &authority, &data_url);
    // A Googlebot from loopback is spoofed by its ranges, signed or not.
    assert_eq!(proxy.get("/", &[("user-agent", GOOGLEBOT)]).status, 403);
    for _ in 0..3 {
        assert_eq!(get_signed(&proxy, "/", GOOGLEBOT, &signed).status, 403);
        assert_eq!(get_signed(&proxy, "/", GOOGLEBOT, &inline).status, 403);
    }
    // GPTBot's signed bid is charged to nobody: the offer, not the page.
    let mut headers = vec![
        ("user-agent", GPTBOT),
        ("signature-agent", signed.agent.as_str()),
        ("signature-input", signed.input.as_str()),
        ("signature", signed.signature.as_str()),
        ("crawler-max-price", "EUR 1.00"),
    ];
    let r = proxy.get("/films/a", &headers);
    assert_eq!(r.status, 402);
    assert_eq!(r.headers.get("crawler-charged"), None);
    // After the honeypot, a signed bid changes nothing either.
    headers[0] = ("user-agent", CHROME);
    assert_eq!(proxy.get("/catalogue-integral/", &headers).status, 403);
    assert_eq!(proxy.get("/films/a", &headers).status, 403);
    let text = proxy.metrics_text();
    assert!(
        !text.contains("rempart_crawler_charges_total{licensee=\"unknown\"}"),
        "{text}"
    );
    assert_eq!(origin.count(), 0, "no signed request reached the origin");
    // Recorded and counted as signed-unbound; the directory never fetched.
    assert!(proxy.metric(r#"rempart_web_bot_auth_total{result="signed-unbound"}"#) >= 8.0);
    assert_eq!(
        directory.count(),
        0,
        "an unbound directory is never fetched"
    );
    // Every refusal above has its record (the writer takes them on its own
    // schedule): the Googlebots, the offer, the honeypot and the page after it.
    let records = proxy.wait_records(10);
    assert_eq!(requests(&records).len(), 10, "{records:?}");
    assert!(
        requests(&records)
            .iter()
            .any(|r| r["signature"] == "signed-unbound"),
        "{records:?}"
    );
}

#[test]
fn a_key_bound_to_the_agent_verifies_it_whatever_its_address() {
    let k = key(4);
    let directory = Origin::start_full(&[], &[(DIRECTORY_PATH, 200, &k.jwks)]);
    let overlay = tempfile::tempdir().unwrap();
    let bound = overlay.path().join("bound.toml");
    std::fs::write(
        &bound,
        format!(
            "[[agent]]\nname = \"Googlebot\"\nsignature_agents = [\"{}\"]\nsource = \"test\"\n",
            directory.url()
        ),
    )
    .unwrap();
    let origin = Origin::start();
    let rules = format!("{}\n{ALLOW_LOOPBACK}", default_rules());
    let proxy = Proxy::start_edited(&origin.url(), "", &rules, &[], &with_catalogue(&bound));
    // The draft's form: the origin as a structured-field string.
    let signed = sign(&k, &format!("127.0.0.1:{}", proxy.port), &directory.url());
    let _ = get_signed(&proxy, "/", GOOGLEBOT, &signed);
    wait_for_directory(&proxy);
    assert_eq!(get_signed(&proxy, "/", GOOGLEBOT, &signed).status, 200);
    assert_eq!(proxy.metric(r#"rempart_requests_total{action="allow",purpose="search-engine",verification="verified"}"#), 1.0);
    // The same key claiming another agent verifies nothing.
    assert_eq!(
        get_signed(
            &proxy,
            "/films/a",
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            &signed
        )
        .status,
        403
    );
}

#[test]
fn a_bound_directory_must_be_https() {
    let dir = tempfile::tempdir().unwrap();
    let bound = dir.path().join("bound.toml");
    std::fs::write(
        &bound,
        "[[agent]]\nname = \"Googlebot\"\nsignature_agents = [\"http://keys.example\"]\n",
    )
    .unwrap();
    let (_keep, cfg) = config_for_check("", with_catalogue(&bound));
    let (code, _, err) = run_cli(&["check", "--config", &cfg], None);
    assert_eq!(code, 1);
    assert!(
        err.contains("Googlebot") && err.contains("signature_agents"),
        "{err}"
    );
}

#[test]
fn a_down_directory_never_delays_a_request() {
    let k = key(5);
    let dead = format!("http://127.0.0.1:{}", free_port());
    let origin = Origin::start();
    let proxy = Proxy::start_with(
        &origin.url(),
        "",
        &format!("{}\n{}", default_rules(), licensed_to(&k, &dead)),
    );
    let signed = sign(
        &k,
        &format!("127.0.0.1:{}", proxy.port),
        &format!("{dead}{DIRECTORY_PATH}"),
    );
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
    assert_eq!(proxy.browse("/").status, 200);
}
