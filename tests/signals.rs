//! The opt-out in every machine-readable form, end to end: headers on proxied
//! responses, tdmrep.json, the ODRL policy, license.xml and robots.txt, all
//! generated from one reservation model.

mod common;

use common::*;

const RESERVATION: &str = r#"
[reservation]
base_url = "https://films.example"

[[reservation.location]]
path = "/*"
tdm_reserved = true
allow = ["search"]
refuse = ["ai-train", "ai-input", "ai-index"]
price_eur = 0.05

[[reservation.location]]
path = "/trailers/*"
tdm_reserved = false
allow = ["search", "ai-input"]

[[reservation.location]]
path = "/press/*"
tdm_reserved = true
allow = ["search", "ai-input"]
refuse = ["ai-train"]
"#;

fn start(origin: &Origin) -> Proxy {
    Proxy::start_with(
        &origin.url(),
        "",
        &format!("{}\n{RESERVATION}", default_rules()),
    )
}

fn dictionary(value: &str) -> Vec<(String, String)> {
    let dict: sfv::Dictionary = sfv::Parser::new(value)
        .parse()
        .expect("Content-Usage is a structured-field dictionary");
    dict.iter()
        .map(|(k, v)| {
            let token = match v {
                sfv::ListEntry::Item(item) => {
                    item.bare_item.as_token().map(|t| t.as_str().to_owned())
                }
                sfv::ListEntry::InnerList(_) => None,
            };
            (k.as_str().to_owned(), token.expect("token value"))
        })
        .collect()
}

#[test]
fn proxied_responses_carry_every_header_and_keep_the_origins() {
    let origin = Origin::start_with_headers(&[
        ("X-Robots-Tag", "noarchive"),
        ("Link", "</style.css>; rel=preload; as=style"),
        ("tdm-reservation", "0"),
    ]);
    let proxy = start(&origin);
    let r = proxy.get(
        "/films/la-traversee",
        &[("user-agent", CHROME), BROWSER_ACCEPT, BROWSER_LANGUAGE],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.values("tdm-reservation"),
        ["1"],
        "the config's value replaces the origin's, once"
    );
    assert_eq!(
        r.values("tdm-policy"),
        ["https://films.example/.well-known/tdm-policy.json"]
    );
    let cu = r.values("content-usage");
    assert_eq!(cu.len(), 1);
    assert_eq!(
        dictionary(cu[0]),
        [
            ("train-ai".to_string(), "n".to_string()),
            ("search".to_string(), "y".to_string())
        ]
    );
    assert_eq!(
        r.values("x-robots-tag"),
        ["noarchive, noai, noimageai"],
        "added to the origin's, not replacing it"
    );
    let links = r.values("link");
    assert!(
        links.contains(&"</style.css>; rel=preload; as=style"),
        "{links:?}"
    );
    assert!(
        links.contains(
            &"<https://films.example/license.xml>; rel=\"license\"; type=\"application/rsl+xml\""
        ),
        "{links:?}"
    );
    assert_eq!(links.len(), 2);
}

#[test]
fn headers_are_not_duplicated_when_the_origin_already_sent_them() {
    let origin = Origin::start_with_headers(&[
        ("X-Robots-Tag", "noai, noimageai"),
        (
            "Link",
            "<https://films.example/license.xml>; rel=\"license\"; type=\"application/rsl+xml\"",
        ),
        ("Content-Usage", "train-ai=n, search=y"),
    ]);
    let proxy = start(&origin);
    let r = proxy.get(
        "/films/x",
        &[("user-agent", CHROME), BROWSER_ACCEPT, BROWSER_LANGUAGE],
    );
    assert_eq!(r.values("x-robots-tag"), ["noai, noimageai"]);
    assert_eq!(r.values("link").len(), 1);
    assert_eq!(r.values("content-usage"), ["train-ai=n, search=y"]);
}

#[test]
fn each_path_gets_its_own_reservation() {
    let origin = Origin::start();
    let proxy = start(&origin);
    let trailer = proxy.get(
        "/trailers/la-traversee.mp4",
        &[("user-agent", CHROME), BROWSER_ACCEPT, BROWSER_LANGUAGE],
    );
    assert_eq!(trailer.values("tdm-reservation"), ["0"]);
    assert!(trailer.values("tdm-policy").is_empty());
    assert!(
        trailer.values("x-robots-tag").is_empty(),
        "no noai where AI use is not reserved"
    );
    assert_eq!(
        dictionary(trailer.values("content-usage")[0]),
        [("search".to_string(), "y".to_string())]
    );
    let press = proxy.get(
        "/press/kit.html",
        &[("user-agent", CHROME), BROWSER_ACCEPT, BROWSER_LANGUAGE],
    );
    assert_eq!(press.values("tdm-reservation"), ["1"]);
    assert_eq!(press.values("x-robots-tag"), ["noai, noimageai"]);
}

#[test]
fn tdmrep_json_matches_the_reservation() {
    let origin = Origin::start();
    let proxy = start(&origin);
    let r = proxy.get("/.well-known/tdmrep.json", &[("user-agent", GPTBOT)]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let entries = v.as_array().unwrap();
    let locations: Vec<&str> = entries
        .iter()
        .map(|e| e["location"].as_str().unwrap())
        .collect();
    assert_eq!(
        locations,
        ["/trailers/*", "/press/*", "/*"],
        "most specific first"
    );
    assert_eq!(entries[0]["tdm-reservation"], 0);
    assert_eq!(entries[1]["tdm-reservation"], 1);
    assert_eq!(entries[2]["tdm-reservation"], 1);
    assert_eq!(
        entries[2]["tdm-policy"],
        "https://films.example/.well-known/tdm-policy.json"
    );

    let policy = proxy.get("/.well-known/tdm-policy.json", &[("user-agent", GPTBOT)]);
    assert_eq!(policy.status, 200);
    let p: serde_json::Value = serde_json::from_str(&policy.body).unwrap();
    assert_eq!(p["@type"], "Offer");
    assert_eq!(p["profile"], "http://www.w3.org/ns/tdmrep");
    assert_eq!(
        p["uid"],
        "https://films.example/.well-known/tdm-policy.json"
    );
    assert_eq!(
        p["permission"][0]["duty"][1]["refinement"][0]["rightOperand"],
        0.05
    );
    assert_eq!(origin.count(), 0, "served by rempart, not the origin");
}

#[test]
fn license_xml_is_well_formed_rsl() {
    let origin = Origin::start();
    let proxy = start(&origin);
    let r = proxy.get("/license.xml", &[("user-agent", GPTBOT)]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers.get("content-type").map(String::as_str),
        Some("application/rsl+xml")
    );
    let doc = roxmltree::Document::parse(&r.body).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "rsl");
    assert_eq!(
        root.tag_name().namespace(),
        Some("https://rslstandard.org/rsl")
    );
    let contents: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("content"))
        .collect();
    assert_eq!(contents.len(), 3);
    let all = contents
        .iter()
        .find(|c| c.attribute("url") == Some("/*"))
        .unwrap();
    let text = |node: &roxmltree::Node, tag: &str| {
        node.descendants()
            .find(|n| n.has_tag_name(tag))
            .and_then(|n| n.text())
            .map(str::to_owned)
    };
    assert_eq!(text(all, "permits").as_deref(), Some("search"));
    assert_eq!(
        text(all, "prohibits").as_deref(),
        Some("ai-train ai-input ai-index")
    );
    assert_eq!(text(all, "amount").as_deref(), Some("0.05"));
    let press = contents
        .iter()
        .find(|c| c.attribute("url") == Some("/press/*"))
        .unwrap();
    assert_eq!(
        text(press, "prohibits").as_deref(),
        Some("ai-train ai-index")
    );
    let trailers = contents
        .iter()
        .find(|c| c.attribute("url") == Some("/trailers/*"))
        .unwrap();
    assert_eq!(text(trailers, "prohibits"), None);
}

#[test]
fn robots_txt_carries_the_signals() {
    let origin = Origin::start();
    let proxy = start(&origin);
    let r = proxy.get("/robots.txt", &[("user-agent", GPTBOT)]);
    assert!(
        r.body
            .contains("\nLicense: https://films.example/license.xml\n"),
        "{}",
        r.body
    );
    let star = &r.body[r.body.find("User-agent: *\n").unwrap()..];
    assert!(
        star.contains("Content-Usage: /trailers/ search=y\n"),
        "{star}"
    );
    assert!(
        star.contains("Content-Usage: /press/ train-ai=n, search=y\n"),
        "{star}"
    );
    assert!(
        star.contains("Content-Usage: train-ai=n, search=y\n"),
        "{star}"
    );
    assert!(
        star.contains("Content-Signal: search=yes, ai-input=no, ai-train=no\n"),
        "{star}"
    );
}

#[test]
fn contradictory_reservations_fail_the_check() {
    let bad = RESERVATION.replacen(
        "allow = [\"search\"]\nrefuse = [\"ai-train\"",
        "allow = [\"search\", \"ai-train\"]\nrefuse = [\"ai-train\"",
        1,
    );
    assert_ne!(bad, RESERVATION);
    let (_dir, path) = config_for_check(&bad, |text| text);
    let (code, _, err) = run_cli(&["check", "--config", &path], None);
    assert_eq!(code, 1);
    assert!(
        err.contains("key `reservation.location[0].allow`")
            && err.contains("both allowed and refused"),
        "{err}"
    );
}

const ORIGIN_ROBOTS: &str = "\
# The origin's own robots.txt
Sitemap: https://films.example/sitemap.xml

User-agent: *
Disallow: /admin/

User-agent: GPTBot
Allow: /
this line is malformed
";

fn wait_for_robots(proxy: &Proxy, needle: &str) -> Resp {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = proxy.get("/robots.txt", &[("user-agent", GPTBOT)]);
        if r.body.contains(needle) || std::time::Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn robots_txt_is_merged_with_the_origins() {
    let origin = Origin::start_full(&[], &[("/robots.txt", 200, ORIGIN_ROBOTS)]);
    let proxy = start(&origin);
    let r = wait_for_robots(&proxy, "sitemap.xml");
    assert_eq!(r.status, 200);
    let body = &r.body;
    assert!(
        body.contains("Sitemap: https://films.example/sitemap.xml\n"),
        "{body}"
    );
    assert!(
        body.contains("User-agent: *\nDisallow: /catalogue-integral/\nDisallow: /admin/\n"),
        "the origin's rules are kept, and the honeypot is disallowed: {body}"
    );
    assert!(
        body.contains("this line is malformed\n"),
        "unparsed lines are kept verbatim: {body}"
    );
    assert!(body.contains("\nLicense: https://films.example/license.xml\n"));
    assert!(body.contains("Content-Signal: search=yes, ai-input=no, ai-train=no\n"));
    // The origin's `Allow: /` for GPTBot cannot re-open what the reservation closes.
    let origin_part = &body[..body
        .find("# --- added by rempart")
        .expect("rempart's group")];
    assert!(!origin_part.contains("User-agent: GPTBot"), "{body}");
    assert!(!origin_part.contains("Allow: /\n"), "{body}");
    let added = &body[body.find("# --- added by rempart").unwrap()..];
    for agent in ["GPTBot", "Google-Extended", "ClaudeBot"] {
        assert!(added.contains(&format!("User-agent: {agent}\n")), "{agent}");
    }
    assert!(proxy.metric(r#"rempart_origin_robots_fetches_total{result="ok"}"#) >= 1.0);
}

#[test]
fn robots_txt_is_generated_when_the_origin_has_none_or_is_down() {
    let origin = Origin::start_full(&[], &[("/robots.txt", 404, "not found")]);
    let proxy = start(&origin);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while proxy.metric(r#"rempart_origin_robots_fetches_total{result="none"}"#) < 1.0
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let r = proxy.get("/robots.txt", &[("user-agent", GPTBOT)]);
    assert!(
        !r.body.contains("# --- added by rempart"),
        "generated, not merged: {}",
        r.body
    );
    assert!(r.body.contains("User-agent: GPTBot\n"));

    let down = Proxy::start_with(
        &format!("http://127.0.0.1:{}", free_port()),
        "",
        &format!("{}\n{RESERVATION}", default_rules()),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while down.metric(r#"rempart_origin_robots_fetches_total{result="error"}"#) < 1.0
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let r = down.get("/robots.txt", &[("user-agent", GPTBOT)]);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("User-agent: GPTBot\n") && r.body.contains("License: "));
}

/// The origin's robots.txt with its own AIPREF lines: one for `/` (which the
/// config also answers) and one for a path only the origin speaks for.
const ORIGIN_ROBOTS_WITH_USAGE: &str = "\
User-agent: *
Content-Usage: train-ai=y
Content-Usage: /blog/ train-ai=y, search=y
Content-Signal: ai-train=yes
Disallow: /admin/
";

/// The real binary's `/robots.txt`, read back as a crawler would: every
/// `Content-Usage` line of the `*` group a path and a dictionary, most
/// specific first for rempart's own, the origin's line for `/blog/` kept and
/// its line for `/` given up to the config's; one `Content-Signal`, with
/// `use`; and license.xml naming the licence server.
#[test]
fn robots_txt_lines_parse_back_from_the_running_proxy() {
    let origin = Origin::start_full(&[], &[("/robots.txt", 200, ORIGIN_ROBOTS_WITH_USAGE)]);
    let reservation = RESERVATION
        .replacen(
            "base_url = \"https://films.example\"\n",
            "base_url = \"https://films.example\"\nlicense_server = \"https://licences.films.example/rsl\"\n",
            1,
        )
        .replacen("price_eur = 0.05\n", "price_eur = 0.05\nuse = \"reference\"\n", 1);
    assert_ne!(reservation, RESERVATION);
    let proxy = Proxy::start_with(
        &origin.url(),
        "",
        &format!("{}\n{reservation}", default_rules()),
    );
    let r = wait_for_robots(&proxy, "/blog/");
    assert_eq!(r.status, 200);
    let start = r.body.find("User-agent: *\n").expect("a * group");
    let end = r
        .body
        .find("# --- added by rempart")
        .expect("rempart's group");
    let star = &r.body[start..end];
    let mut usage = Vec::new();
    let mut signals = Vec::new();
    for line in star.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Content-Usage" => {
                let (path, prefs) = match value.split_once(' ') {
                    Some((p, rest)) if p.starts_with('/') => (p, rest),
                    _ => ("/", value),
                };
                usage.push((path.to_owned(), dictionary(prefs)));
            }
            "Content-Signal" => signals.push(value.to_owned()),
            _ => {}
        }
    }
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    assert_eq!(
        usage,
        [
            (
                "/blog/".to_owned(),
                vec![pair("train-ai", "y"), pair("search", "y")]
            ),
            ("/trailers/".to_owned(), vec![pair("search", "y")]),
            (
                "/press/".to_owned(),
                vec![pair("train-ai", "n"), pair("search", "y")]
            ),
            (
                "/".to_owned(),
                vec![pair("train-ai", "n"), pair("search", "y")]
            ),
        ],
        "{}",
        r.body
    );
    assert_eq!(
        signals,
        ["search=yes, ai-input=no, ai-train=no, use=reference"],
        "{}",
        r.body
    );
    let licence = proxy.get("/license.xml", &[("user-agent", GPTBOT)]);
    let doc = roxmltree::Document::parse(&licence.body).expect("well-formed RSL");
    let servers: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("content"))
        .filter_map(|n| n.attribute("server"))
        .collect();
    assert_eq!(servers.len(), 3, "{}", licence.body);
    assert!(servers
        .iter()
        .all(|s| *s == "https://licences.films.example/rsl"));
}
