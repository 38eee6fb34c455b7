//! The command line: check, classify, catalogue import, demo, and config errors.

mod common;

use common::*;

fn shipped() -> String {
    repo().join("config/rempart.toml").display().to_string()
}

#[test]
fn check_accepts_the_shipped_config() {
    let (code, out, err) = run_cli(&["check", "--config", &shipped()], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(": ok ("), "{out}");
    assert!(out.contains("24 range files"), "{out}");
}

fn broken_config(replace: (&str, &str)) -> (tempfile::TempDir, String) {
    config_for_check("", |text| {
        assert!(text.contains(replace.0), "fixture has {:?}", replace.0);
        text.replacen(replace.0, replace.1, 1)
    })
}

fn line_of(path: &str, needle: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap()
}

#[test]
fn a_typo_in_a_key_names_file_line_and_key() {
    let (_dir, path) = broken_config(("threads = 1", "thraeds = 1"));
    let (code, _, err) = run_cli(&["check", "--config", &path], None);
    assert_eq!(code, 1);
    let line = line_of(&path, "thraeds");
    assert!(err.contains(&format!("{path}:{line}:")), "{err}");
    assert!(
        err.contains("key `server.thraeds`") || err.contains("`thraeds`"),
        "{err}"
    );
    assert!(err.contains("unknown field"), "{err}");
}

#[test]
fn a_wrong_value_names_file_line_and_key() {
    let (_dir, path) = broken_config(("action = \"offer\"", "action = \"ofer\""));
    let (code, _, err) = run_cli(&["check", "--config", &path], None);
    assert_eq!(code, 1);
    let line = line_of(&path, "\"ofer\"");
    assert!(err.contains(&format!("{path}:{line}:")), "{err}");
    assert!(err.contains("rules[4].action"), "{err}");
}

#[test]
fn an_unknown_agent_in_a_rule_names_file_line_and_key() {
    let (_dir, path) = broken_config(("purpose = [\"search-engine\"]", "agent = [\"NoSuchBot\"]"));
    let (code, _, err) = run_cli(&["check", "--config", &path], None);
    assert_eq!(code, 1);
    let line = line_of(&path, "NoSuchBot");
    assert!(err.contains(&format!("{path}:{line}:")), "{err}");
    assert!(
        err.contains("rules[1].agent[0]") && err.contains("NoSuchBot"),
        "{err}"
    );
}

#[test]
fn run_refuses_to_start_on_a_bad_config() {
    let (_dir, path) = broken_config(("listen = \"127.0.0.1:", "listen = \"localhost:"));
    let (code, _, err) = run_cli(&["run", "--config", &path], None);
    assert_eq!(code, 1);
    assert!(err.contains("key `server.listen`"), "{err}");
}

#[test]
fn a_broken_range_file_fails_the_check_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let ranges = dir.path().join("ipranges");
    std::fs::create_dir(&ranges).unwrap();
    for entry in std::fs::read_dir(repo().join("config/ipranges")).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, ranges.join(p.file_name().unwrap())).unwrap();
    }
    std::fs::write(
        ranges.join("gptbot.json"),
        r#"{"prefixes":[{"ipv4Prefix":"300.1.2.0/24"}]}"#,
    )
    .unwrap();
    let (_config_dir, path) = config_for_check("", |text| {
        text.replace(
            &format!("{}/config/ipranges", repo().display()),
            &ranges.display().to_string(),
        )
    });
    let path = std::path::PathBuf::from(path);
    let (code, _, err) = run_cli(&["check", "--config", &path.display().to_string()], None);
    assert_eq!(code, 1);
    assert!(
        err.contains("gptbot.json") && err.contains("300.1.2.0/24"),
        "{err}"
    );
}

#[test]
fn a_broken_catalogue_entry_fails_the_check_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("extra.toml");
    std::fs::write(
        &extra,
        "[[agent]]\nname = \"NewBot\"\npurpose = \"ai-training\"\n",
    )
    .unwrap();
    let (_config_dir, path) = config_for_check("", |text| {
        text.replace(
            "/agents/curated.toml\"]",
            &format!("/agents/curated.toml\", \"{}\"]", extra.display()),
        )
    });
    let path = std::path::PathBuf::from(path);
    let (code, _, err) = run_cli(&["check", "--config", &path.display().to_string()], None);
    assert_eq!(code, 1);
    assert!(
        err.contains("extra.toml") && err.contains("NewBot") && err.contains("operator"),
        "{err}"
    );

    std::fs::write(
        &extra,
        "[[agent]]\nname = \"NewBot\"\noperator = \"x\"\npurpose = \"ai-trainign\"\n",
    )
    .unwrap();
    let (code, _, err) = run_cli(&["check", "--config", &path.display().to_string()], None);
    assert_eq!(code, 1);
    assert!(
        err.contains("extra.toml:4:") && err.contains("agent[0].purpose"),
        "{err}"
    );
}

#[test]
fn classify_one_request() {
    let (code, out, err) = run_cli(
        &[
            "classify",
            "--ua",
            "Mozilla/5.0 (compatible; GPTBot/1.2; +https://openai.com/gptbot)",
            "--ip",
            GPTBOT_IP,
            "--path",
            "/films/x",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["identity"], "declared");
    assert_eq!(v["agent"], "GPTBot");
    assert_eq!(v["operator"], "OpenAI");
    assert_eq!(v["purpose"], "ai-training");
    assert_eq!(v["verification"], "verified");
    assert_eq!(v["action"], "offer");
    assert_eq!(v["rule"], "ai-licensing-offer");
}

#[test]
fn classify_replays_json_lines_and_access_logs() {
    let input = format!(
        "{{\"ua\":\"{GOOGLEBOT}\",\"ip\":\"{GOOGLEBOT_IP}\",\"path\":\"/films/a\"}}\n\
         {GOOGLEBOT_IP} - - [23/Nov/2026:10:00:00 +0100] \"GET /films/b?x=1 HTTP/1.1\" 200 512 \"-\" \"{GOOGLEBOT}\"\n\
         203.0.113.7 - - [23/Nov/2026:10:00:01 +0100] \"GET /films/c HTTP/1.1\" 200 512 \"-\" \"{GOOGLEBOT}\"\n\
         203.0.113.8 - - [23/Nov/2026:10:00:02 +0100] \"GET / HTTP/1.1\" 200 512 \"https://x\" \"{CHROME}\"\n\
         203.0.113.9 - - [23/Nov/2026:10:00:03 +0100] \"GET /robots.txt HTTP/1.1\" 200 512 \"-\" \"CCBot/2.0 (https://commoncrawl.org/faq/)\"\n\
         203.0.113.9 - - [23/Nov/2026:10:00:04 +0100] \"GET /films/d HTTP/1.1\" 200 512 \"-\" \"CCBot/2.0 (https://commoncrawl.org/faq/)\"\n\
         this line is not a request\n"
    );
    let (code, out, err) = run_cli(&["classify"], Some(&input));
    assert_eq!(code, 0, "{err}");
    let verdicts: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<&str> = verdicts
        .iter()
        .map(|v| v["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["allow", "allow", "block", "allow", "allow", "offer"]
    );
    assert_eq!(verdicts[1]["path"], "/films/b");
    assert_eq!(verdicts[2]["verification"], "spoofed");
    assert_eq!(verdicts[3]["identity"], "browser");
    assert_eq!(verdicts[4]["rule"], "always-reachable");
    assert!(
        err.contains("6 requests classified, allow: 4, block: 1, offer: 1, 1 lines not understood"),
        "{err}"
    );
}

#[test]
fn import_ai_robots_reproduces_the_shipped_catalogue() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ai-robots.toml");
    let (code, stdout, err) = run_cli(
        &[
            "catalog",
            "import-ai-robots",
            "config/agents/ai.robots.txt/robots.json",
            "--output",
            &out.display().to_string(),
            "--source",
            "ai.robots.txt robots.json @ 738c80d (2026-08-22)",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("160 agents written"), "{stdout}");
    let shipped = std::fs::read_to_string(repo().join("config/agents/ai-robots.toml")).unwrap();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        shipped,
        "refresh is one command and reproducible"
    );
}

/// The raw list each generated file comes from.
const LISTS: &[(&str, &str)] = &[
    ("ai-robots", "config/agents/ai.robots.txt/robots.json"),
    (
        "crawler-user-agents",
        "config/agents/sources/crawler-user-agents/crawler-user-agents.json",
    ),
    (
        "device-detector",
        "config/agents/sources/device-detector/bots.yml",
    ),
    (
        "ai-crawler-index",
        "config/agents/sources/ai-crawler-index/data.json",
    ),
];

/// The provenance a generated file's first line records (`... from PROVENANCE.`).
fn provenance_of(generated: &str) -> String {
    let first = generated.lines().next().unwrap();
    let (_, rest) = first.split_once("` from ").unwrap();
    rest.strip_suffix('.').unwrap().to_owned()
}

#[test]
fn every_generated_file_is_what_import_makes_of_its_committed_list() {
    let dir = tempfile::tempdir().unwrap();
    for (source, list) in LISTS {
        let shipped =
            std::fs::read_to_string(repo().join(format!("config/agents/{source}.toml"))).unwrap();
        let out = dir.path().join(format!("{source}.toml"));
        let provenance = provenance_of(&shipped);
        let (code, stdout, err) = run_cli(
            &[
                "catalog",
                "import",
                "--source",
                source,
                list,
                "--output",
                &out.display().to_string(),
                "--provenance",
                &provenance,
            ],
            None,
        );
        assert_eq!(code, 0, "{source}: {err}");
        assert!(stdout.contains("entries read"), "{stdout}");
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            shipped,
            "{source}: the committed file has drifted from its list"
        );
        // And a diff against the committed file finds nothing to do.
        let (code, stdout, err) = run_cli(
            &[
                "catalog",
                "diff",
                "--source",
                source,
                list,
                "--provenance",
                &provenance,
            ],
            None,
        );
        assert_eq!(code, 0, "{err}");
        let last = stdout.lines().last().unwrap_or("");
        assert!(
            last.starts_with("0 added, 0 removed, 0 changed, "),
            "{source}: {stdout}"
        );
    }
}

#[test]
fn catalog_diff_shows_what_a_refresh_changes() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("crawler-user-agents.json");
    std::fs::write(
        &list,
        r#"[{"pattern":"GPTBot","instances":["GPTBot/1.2"],"tags":["ai-crawler"],"description":"x"},
            {"pattern":"NovelCrawlerBot","url":"https://novel.example/bot","instances":["NovelCrawlerBot/0.1"],"tags":["ai-crawler"],"description":"trains models"}]"#,
    )
    .unwrap();
    let (code, stdout, err) = run_cli(
        &[
            "catalog",
            "diff",
            "--source",
            "crawler-user-agents",
            &list.display().to_string(),
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout.contains("+ NovelCrawlerBot (tokens NovelCrawlerBot; operator novel.example; purpose ai-training)"),
        "{stdout}"
    );
    // Everything the two-entry list no longer names would go.
    assert!(
        stdout.lines().filter(|l| l.starts_with("- ")).count() > 1000,
        "{stdout}"
    );
    let last = stdout.lines().last().unwrap();
    assert!(
        last.starts_with("1 added, ")
            && last.contains(" removed, ")
            && last.ends_with(" unchanged"),
        "{last}"
    );
}

#[test]
fn import_names_an_unknown_source() {
    let (code, _, err) = run_cli(&["catalog", "import", "--source", "nope", "x.json"], None);
    assert_eq!(code, 1);
    assert!(err.contains("unknown source \"nope\""), "{err}");
}

#[test]
fn import_rejects_a_file_that_is_not_robots_json() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("robots.json");
    std::fs::write(&bad, "[1, 2, 3]").unwrap();
    let out = dir.path().join("out.toml");
    let (code, _, err) = run_cli(
        &[
            "catalog",
            "import-ai-robots",
            &bad.display().to_string(),
            "-o",
            &out.display().to_string(),
        ],
        None,
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("robots.json") && err.contains("not an ai.robots.txt"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn demo_serves_the_built_in_catalogue_site() {
    let (port, admin) = (free_port(), free_port());
    let mut child = std::process::Command::new(bin())
        .args([
            "demo",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--admin",
            &format!("127.0.0.1:{admin}"),
        ])
        .current_dir(repo())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut page = http_get(
        &format!("http://127.0.0.1:{port}/films/la-traversee"),
        &[("user-agent", CHROME), BROWSER_ACCEPT, BROWSER_LANGUAGE],
    );
    while page.status != 200 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        page = http_get(
            &format!("http://127.0.0.1:{port}/films/la-traversee"),
            &[("user-agent", CHROME), BROWSER_ACCEPT, BROWSER_LANGUAGE],
        );
    }
    let offer = http_get(
        &format!("http://127.0.0.1:{port}/films/la-traversee"),
        &[("user-agent", GPTBOT)],
    );
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    assert_eq!(page.status, 200);
    assert!(page.body.contains("La Traversée"), "{}", page.body);
    assert_eq!(offer.status, 402);
    let guide = String::from_utf8_lossy(&output.stdout);
    assert!(
        guide.contains(&format!("curl -i http://127.0.0.1:{port}/")),
        "{guide}"
    );
}

#[test]
fn classify_replays_a_log_with_behaviour_state_across_lines() {
    // A browser-like client walking 25 pages in 2.5 s, then a client that
    // reads robots.txt and follows the trap path.
    let mut lines = String::new();
    for i in 0..25 {
        lines.push_str(&format!(
            "{{\"ua\":\"Mozilla/5.0 Chrome/126.0\",\"ip\":\"198.51.100.7\",\"path\":\"/films/f{i}\",\"ts\":{}}}\n",
            1_800_000_000.0 + f64::from(i) * 0.1
        ));
    }
    lines.push_str(r#"{"ua":"Mozilla/5.0 Firefox/128","ip":"203.0.113.5","path":"/robots.txt","ts":1800000010}"#);
    lines.push('\n');
    lines.push_str(r#"203.0.113.5 - - [15/Jan/2027:08:00:11 +0000] "GET /catalogue-integral/x HTTP/1.1" 200 10 "-" "Mozilla/5.0 Firefox/128""#);
    lines.push('\n');
    let config = repo().join("config/rempart.toml");
    let (code, out, err) = run_cli(
        &["classify", "--config", config.to_str().unwrap()],
        Some(&lines),
    );
    assert_eq!(code, 0, "{err}");
    let verdicts: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(verdicts.len(), 27);
    assert_eq!(verdicts[0]["score"], 0);
    let first_limited = verdicts
        .iter()
        .position(|v| v["action"] == "ratelimit")
        .unwrap();
    assert_eq!(first_limited, 20, "the 21st page in the window");
    assert_eq!(
        verdicts[first_limited]["signals"],
        serde_json::json!(["page-rate", "no-assets"])
    );
    assert_eq!(verdicts[first_limited]["score"], 70);
    let trap = &verdicts[26];
    assert_eq!(
        (trap["action"].as_str(), trap["rule"].as_str()),
        (Some("block"), Some("honeypot"))
    );
    assert_eq!(
        trap["signals"],
        serde_json::json!(["robots-ignored", "honeypot"])
    );
    assert!(err.contains("27 requests classified"), "{err}");
}

#[test]
fn classify_shows_a_self_declared_bot_as_unknown_bot() {
    let (code, stdout, err) = run_cli(
        &[
            "classify",
            "--ua",
            "Mozilla/5.0 (compatible; NovelThing/0.1; +https://mistral.ai/novelthing)",
            "--ip",
            "203.0.113.7",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["identity"], "declared");
    assert_eq!(v["agent"], "unknown-bot");
    assert_eq!(v["purpose"], "ai-training");
    assert_eq!(v["verification"], "unverifiable");
    assert_eq!(v["action"], "offer");
}

#[test]
fn classify_reads_an_nginx_json_log_and_counts_what_it_cannot_read() {
    let line = |addr: &str, ua: &str, uri: &str| {
        serde_json::json!({
            "time_iso8601": "2026-11-23T10:00:00+01:00", "remote_addr": addr,
            "request_method": "GET", "request_uri": uri, "status": "200",
            "body_bytes_sent": "512", "http_referer": "-", "http_user_agent": ua,
            "http_x_forwarded_for": "-", "http_host": "www.example.com",
        })
        .to_string()
    };
    let input = [
        line(GOOGLEBOT_IP, GOOGLEBOT, "/films/a?x=1"),
        line("203.0.113.7", GOOGLEBOT, "/films/b"),
        line("203.0.113.8", CHROME, "/"),
        line(GPTBOT_IP, GPTBOT, "/films/c"),
        r#"{"status":"200","body_bytes_sent":"512"}"#.to_owned(),
        line("notanip", CHROME, "/"),
    ]
    .join("\n");
    let (code, out, err) = run_cli(&["classify", "--config", &shipped()], Some(&input));
    assert_eq!(code, 0, "{err}");
    let verdicts: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen: Vec<(&str, &str, &str)> = verdicts
        .iter()
        .map(|v| {
            (
                v["ip"].as_str().unwrap(),
                v["verification"].as_str().unwrap(),
                v["action"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (GOOGLEBOT_IP, "verified", "allow"),
            ("203.0.113.7", "spoofed", "block"),
            ("203.0.113.8", "none", "allow"),
            (GPTBOT_IP, "verified", "offer"),
        ]
    );
    assert_eq!(verdicts[0]["path"], "/films/a");
    assert!(
        err.contains("4 requests classified, allow: 2, block: 1, offer: 1, 2 lines not understood"),
        "{err}"
    );
    assert!(err.contains("line not understood: {\"status\""), "{err}");
}

#[test]
fn classify_behind_a_cdn_takes_the_client_from_the_forwarded_field() {
    // nginx behind a CDN: the peer is the CDN's address, the client is the
    // last X-Forwarded-For address (the one the CDN appended; the first is
    // whatever the client claimed).
    let input = format!(
        "10.0.0.5 - - [23/Nov/2026:10:00:00 +0100] \"GET /films/a HTTP/1.1\" 200 512 \"-\" \"{GOOGLEBOT}\" \"203.0.113.50, {GOOGLEBOT_IP}\"\n\
         10.0.0.5 - - [23/Nov/2026:10:00:01 +0100] \"GET /films/b HTTP/1.1\" 200 512 \"-\" \"{GOOGLEBOT}\" \"{GOOGLEBOT_IP}, 203.0.113.51\"\n"
    );
    let run = |from: &str| {
        let (code, out, err) = run_cli(
            &["classify", "--config", &shipped(), "--client-from", from],
            Some(&input),
        );
        assert_eq!(code, 0, "{err}");
        out.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["ip"].as_str().unwrap().to_owned(),
                    v["verification"].as_str().unwrap().to_owned(),
                )
            })
            .collect::<Vec<_>>()
    };
    let pair = |ip: &str, v: &str| (ip.to_owned(), v.to_owned());
    assert_eq!(
        run("xff"),
        [
            pair(GOOGLEBOT_IP, "verified"),
            pair("203.0.113.51", "spoofed")
        ]
    );
    assert_eq!(
        run("peer"),
        [pair("10.0.0.5", "spoofed"), pair("10.0.0.5", "spoofed")],
        "read at the edge, the CDN's address is no Googlebot"
    );
}

#[test]
fn every_bad_argument_is_an_error_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().display().to_string();
    for (args, says) in [
        (vec!["classify", "--ua", "x", "--ip", "notanip"], "notanip"),
        (vec!["classify", "--ua", "x", "--path", "films"], "films"),
        (vec!["classify", "--client-from", "cdn"], "cdn"),
        (
            vec!["licences", "report", "--since", "2026-13-99"],
            "2026-13-99",
        ),
        (
            vec!["licences", "report", "--since", "2026-02-31"],
            "2026-02-31",
        ),
        (
            vec![
                "licences",
                "report",
                "--since",
                "2026-03-02",
                "--until",
                "2026-03-01",
            ],
            "before",
        ),
        (
            vec!["evidence", "report", &ledger, "--since", "2026-02-31"],
            "2026-02-31",
        ),
        (
            vec!["evidence", "report", &ledger, "--until", "yesterday"],
            "yesterday",
        ),
        (vec!["evidence", "pseudonym", "999.1.1.1"], "999.1.1.1"),
    ] {
        let (code, _, err) = run_cli(&args, None);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn optout_clause_prints_the_french_clause_in_markdown() {
    let (code, out, err) = run_cli(
        &[
            "optout",
            "clause",
            "--lang",
            "fr",
            "--format",
            "markdown",
            "--config",
            &shipped(),
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("# Réserve des droits de fouille de textes et de données\n"),
        "{out}"
    );
    assert!(
        out.contains("article L.122-5-3 du code de la propriété intellectuelle"),
        "{out}"
    );
    assert!(out.contains("**Catalogue Démo SAS**"), "{out}");
    assert!(out.contains("- **/\\***"), "{out}");
    assert!(
        out.contains("[licences@catalogue-demo.example](mailto:licences@catalogue-demo.example)"),
        "{out}"
    );
}

#[test]
fn optout_clause_refuses_an_unknown_language() {
    let (code, out, err) = run_cli(
        &[
            "optout",
            "clause",
            "--lang",
            "de",
            "--format",
            "text",
            "--config",
            &shipped(),
        ],
        None,
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("invalid value 'de'"), "{err}");
    assert!(out.is_empty(), "{out}");
}

#[test]
fn a_clause_path_that_takes_the_offers_names_file_line_and_key() {
    let (_dir, path) = config_for_check(
        "[reservation]\nbase_url = \"https://films.example\"\nclause_path = \"/ai-licensing\"\n[[reservation.location]]\npath = \"/*\"\ntdm_reserved = true\n",
        |t| t,
    );
    let (code, _, err) = run_cli(&["check", "--config", &path], None);
    assert_eq!(code, 1);
    let line = line_of(&path, "clause_path");
    assert!(err.contains(&format!("{path}:{line}:")), "{err}");
    assert!(err.contains("reservation.clause_path"), "{err}");
    assert!(err.contains("offer page"), "{err}");
}

#[test]
fn a_clause_path_that_is_a_pattern_names_file_line_and_key() {
    let (_dir, path) = config_for_check(
        "[reservation]\nbase_url = \"https://films.example\"\nclause_path = \"/terms/*\"\n[[reservation.location]]\npath = \"/*\"\ntdm_reserved = true\n",
        |t| t,
    );
    let (code, _, err) = run_cli(&["check", "--config", &path], None);
    assert_eq!(code, 1);
    let line = line_of(&path, "clause_path");
    assert!(err.contains(&format!("{path}:{line}:")), "{err}");
    assert!(err.contains("reservation.clause_path"), "{err}");
}
