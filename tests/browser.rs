//! A real browser through the challenge: headless Chromium loads a page
//! through rempart with a rule that challenges every browser page, solves
//! the interstitial by itself (the script's proof of work, or with
//! JavaScript off the `<noscript>` refresh), and reaches the origin's page
//! and its assets with the pass cookie.
//!
//! Skipped, with a message, where no Chromium is installed; never under
//! `CI=true` (`.ci/run` installs it), where a missing browser fails.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const PAGE: &str = "<!doctype html><html><head><title>Film</title>\
<link rel=\"stylesheet\" href=\"/static/site.css\"></head>\
<body><h1 id=\"film\">La traversée</h1><img src=\"/img/poster.png\" alt=\"\"></body></html>";

/// The verification path is one of rempart's own documents: no rule needs
/// to keep it reachable.
const RULES: &str = r#"
[[rules]]
name = "challenge-browsers"
identity = ["browser"]
action = "challenge"

[challenge]
noscript_delay_seconds = 1
"#;

/// The Chromium binary, if one is installed.
fn browser_or_skip(test: &str) -> Option<PathBuf> {
    let found = common::chromium();
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true and no chromium binary: .ci/run installs it"
        );
        println!("SKIPPED {test}: no chromium binary (apt-get install chromium)");
    }
    found
}
fn chromium_args(cmd: &mut Command, profile: &std::path::Path) {
    cmd.args(common::HEADLESS)
        .arg(format!("--user-data-dir={}", profile.display()))
        // A person's Chrome, not the HeadlessChrome tool the catalogue names.
        .arg(format!("--user-agent={CHROME}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
}

/// `chromium --headless=new --dump-dom` of `url`: the DOM after the script
/// ran and the navigations settled (in virtual time, no waiting here).
fn dump_dom(chromium: &PathBuf, url: &str) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut cmd = Command::new(chromium);
    chromium_args(&mut cmd, profile.path());
    cmd.args(["--virtual-time-budget=10000", "--dump-dom"])
        .stdout(Stdio::piped());
    let out = cmd.arg(url).output().expect("run chromium");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Chromium with JavaScript off (the profile's content setting, as a person
/// sets it), loading `url` in real time; returns the title of the page it
/// is on once that is `title` and `loaded()` holds (or after 30 s), read
/// from the DevTools HTTP endpoint. The title is known as soon as the head
/// is parsed, before the page's images are asked for: `loaded` keeps the
/// browser running until they were.
///
/// `--blink-settings=scriptEnabled=false` stops headless Chromium before it
/// loads anything, and virtual time would skip the refresh's delay, so this
/// run follows the browser instead.
fn title_without_javascript(
    chromium: &PathBuf,
    url: &str,
    title: &str,
    loaded: impl Fn() -> bool,
) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let prefs = profile.path().join("Default");
    std::fs::create_dir_all(&prefs).unwrap();
    std::fs::write(
        prefs.join("Preferences"),
        r#"{"profile":{"default_content_setting_values":{"javascript":2}}}"#,
    )
    .unwrap();
    let port = free_port();
    let mut cmd = Command::new(chromium);
    chromium_args(&mut cmd, profile.path());
    let mut child = cmd
        .arg(format!("--remote-debugging-port={port}"))
        .arg(url)
        .spawn()
        .expect("run chromium");
    let list = format!("http://127.0.0.1:{port}/json/list");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while Instant::now() < deadline {
        let pages: serde_json::Value =
            serde_json::from_str(&http_get(&list, &[]).body).unwrap_or_default();
        let page = pages
            .as_array()
            .and_then(|p| p.iter().find(|t| t["type"] == "page"));
        if let Some(page) = page {
            last = page["title"].as_str().unwrap_or_default().to_owned();
            if last == title && loaded() {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    last
}

/// What the origin must have seen: the page, then its assets, all with the
/// pass cookie; and the challenge counted as issued and passed.
fn assert_passed(origin: &Origin, proxy: &Proxy) {
    let seen = origin.seen.lock().unwrap().clone();
    let page_at = seen
        .iter()
        .position(|s| s.path == "/films/la-traversee")
        .expect("the origin served the page");
    for asset in ["/static/site.css", "/img/poster.png"] {
        let at = seen
            .iter()
            .position(|s| s.path == asset)
            .unwrap_or_else(|| panic!("{asset} reached the origin: {seen:?}"));
        assert!(at > page_at, "{asset} after the page");
    }
    // The page and its assets, that is; the favicon may come while the
    // interstitial shows, before the pass, and is let through as any asset.
    let ours = ["/films/la-traversee", "/static/site.css", "/img/poster.png"];
    for s in seen.iter().filter(|s| ours.contains(&s.path.as_str())) {
        assert!(
            s.headers
                .get("cookie")
                .is_some_and(|c| c.contains("rempart_pass=")),
            "{} carried the pass: {:?}",
            s.path,
            s.headers
        );
    }
    assert!(proxy.metric("rempart_challenges_total{outcome=\"issued\"}") >= 1.0);
    assert!(proxy.metric("rempart_challenges_total{outcome=\"passed\"}") >= 1.0);
}

fn start() -> (Origin, Proxy) {
    let origin = Origin::start_full(&[], &[("/films/la-traversee", 200, PAGE)]);
    let proxy = Proxy::start_with(&origin.url(), "", RULES);
    (origin, proxy)
}

#[test]
fn headless_chromium_solves_the_challenge_by_itself() {
    let Some(chromium) = browser_or_skip("headless_chromium_solves_the_challenge_by_itself") else {
        return;
    };
    let (origin, proxy) = start();
    let dom = dump_dom(&chromium, &proxy.url("/films/la-traversee"));
    assert!(
        dom.contains("<h1 id=\"film\">La traversée</h1>"),
        "the origin's page, not the interstitial: {dom}"
    );
    assert_passed(&origin, &proxy);
    assert_eq!(
        proxy.metric("rempart_challenges_total{outcome=\"failed\"}"),
        0.0
    );
}

#[test]
fn without_javascript_the_refresh_step_passes() {
    let Some(chromium) = browser_or_skip("without_javascript_the_refresh_step_passes") else {
        return;
    };
    let (origin, proxy) = start();
    let url = proxy.url("/films/la-traversee");
    let assets_seen = || {
        let seen = origin.seen.lock().unwrap();
        ["/static/site.css", "/img/poster.png"]
            .iter()
            .all(|a| seen.iter().any(|s| s.path == *a))
    };
    let title = title_without_javascript(&chromium, &url, "Film", assets_seen);
    assert_eq!(title, "Film", "the origin's page, not the interstitial");
    assert_passed(&origin, &proxy);
    assert_eq!(
        proxy.metric("rempart_challenges_total{outcome=\"failed\"}"),
        0.0,
        "the refresh came after its delay"
    );
}

/// People stay in: a person reading pages in Chromium under the shipped
/// policy, each page with its stylesheet and poster, is never challenged or
/// refused in ordinary traffic (Chromium sends its own headers).
#[test]
fn a_person_in_chromium_reads_pages_under_the_shipped_policy_unchallenged() {
    let Some(chromium) =
        browser_or_skip("a_person_in_chromium_reads_pages_under_the_shipped_policy_unchallenged")
    else {
        return;
    };
    let pages: Vec<String> = (1..=6).map(|i| format!("/films/film-{i}")).collect();
    let routes: Vec<(&str, u16, &str)> = pages.iter().map(|p| (p.as_str(), 200, PAGE)).collect();
    let origin = Origin::start_full(&[], &routes);
    let proxy = Proxy::start(&origin.url());
    for page in &pages {
        let dom = dump_dom(&chromium, &proxy.url(page));
        assert!(
            dom.contains("<h1 id=\"film\">La traversée</h1>"),
            "{page}: the origin's page, not an interstitial: {dom}"
        );
    }
    let seen = origin.seen.lock().unwrap().clone();
    for page in &pages {
        assert!(
            seen.iter().any(|s| &s.path == page),
            "{page} reached the origin"
        );
    }
    let assets = seen
        .iter()
        .filter(|s| s.path == "/static/site.css" || s.path == "/img/poster.png")
        .count();
    assert!(
        assets >= pages.len(),
        "the pages' assets reached the origin: {assets}"
    );
    assert_eq!(
        proxy.metric("rempart_challenges_total{outcome=\"issued\"}"),
        0.0
    );
    for action in ["block", "ratelimit", "offer"] {
        assert_eq!(
            proxy.metric(&format!(
                "rempart_requests_total{{action=\"{action}\",purpose=\"none\",verification=\"none\"}}"
            )),
            0.0,
            "{action}"
        );
    }
}
