//! The read-only console of the admin listener: scripted traffic through
//! the real binary, then the counts as `/console.json` reports them and as
//! headless Chromium shows them once the page's script ran.
//!
//! The browser half is skipped, with a message, where no Chromium is
//! installed; never under `CI=true`, where a missing browser fails.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::*;

/// Three browsers, GPTBot three times from OpenAI's range (offered), and a
/// Googlebot from an address outside Google's ranges (refused).
fn traffic() -> (Origin, Proxy) {
    let origin = Origin::start();
    let proxy = Proxy::start_with(
        &origin.url(),
        r#"trusted_proxies = ["127.0.0.0/8"]"#,
        &default_rules(),
    );
    for path in ["/", "/films/la-traversee", "/films/"] {
        assert_eq!(proxy.browse(path).status, 200, "browser on {path}");
    }
    for _ in 0..3 {
        let r = proxy.get(
            "/films/la-traversee",
            &[("user-agent", GPTBOT), ("x-forwarded-for", GPTBOT_IP)],
        );
        assert_eq!(r.status, 402);
    }
    let s = proxy.get(
        "/",
        &[
            ("user-agent", GOOGLEBOT),
            ("x-forwarded-for", "203.0.113.9"),
        ],
    );
    assert_eq!(s.status, 403);
    (origin, proxy)
}

fn admin(proxy: &Proxy, path: &str) -> Resp {
    http_get(&format!("http://127.0.0.1:{}{path}", proxy.admin), &[])
}

fn agent<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["agents"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["agent"] == name))
        .unwrap_or_else(|| panic!("{name} in the console's agents: {v:#}"))
}

/// The count of `key` in an agent's `[[key, n], ...]` list.
fn count(list: &serde_json::Value, key: &str) -> u64 {
    list.as_array()
        .and_then(|a| a.iter().find(|p| p[0] == key))
        .and_then(|p| p[1].as_u64())
        .unwrap_or(0)
}

#[test]
fn the_console_json_counts_the_traffic() {
    let (_origin, proxy) = traffic();
    let r = admin(&proxy, "/console.json");
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    let v: serde_json::Value = serde_json::from_str(&r.body).expect("console JSON");
    // Shown with --nocapture, for whoever reads the test's run.
    println!(
        "requests {}\nrecent {}\nagents {}\noffers {}\nevidence {}\nconfig {}",
        v["requests"], v["recent"], v["agents"], v["offers"], v["evidence"], v["config"]
    );
    assert_eq!(v["requests"]["allow"], 3);
    assert_eq!(v["requests"]["offer"], 3);
    assert_eq!(v["requests"]["block"], 1);
    assert_eq!(v["recent"]["requests"]["offer"], 3);
    let gpt = agent(&v, "GPTBot");
    assert_eq!(gpt["operator"], "OpenAI");
    assert_eq!(gpt["total"], 3);
    assert_eq!(count(&gpt["verifications"], "verified"), 3);
    assert_eq!(count(&gpt["actions"], "offer"), 3);
    let google = agent(&v, "Googlebot");
    assert_eq!(count(&google["verifications"], "spoofed"), 1);
    assert_eq!(count(&google["actions"], "block"), 1);
    assert_eq!(v["offers"]["requests"], 3);
    assert_eq!(v["config"]["last_reload_success"], true);
    assert!(v["config"]["hash"].as_str().is_some_and(|h| !h.is_empty()));
    assert!(v["evidence"]["records"].as_u64().is_some());
}

#[test]
fn the_console_page_is_locked_down_and_escaped() {
    let (_origin, proxy) = traffic();
    let r = admin(&proxy, "/");
    assert_eq!(r.status, 200);
    assert!(r.headers["content-type"].starts_with("text/html"));
    assert_eq!(r.headers["x-frame-options"], "DENY");
    let csp = &r.headers["content-security-policy"];
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(r.body.contains("<td>GPTBot</td>"));
    assert!(r.body.contains("<span id=\"live\">as served</span>"));
}

/// The Chromium binary, if one is installed.
/// The DOM of `url` once its script ran (virtual time, no waiting here).
fn dump_dom(chromium: &PathBuf, url: &str) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let out = Command::new(chromium)
        .args(common::HEADLESS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--virtual-time-budget=5000", "--dump-dom"])
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .expect("run chromium");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn headless_chromium_shows_the_console() {
    let Some(chromium) = common::chromium() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true and no chromium binary: .ci/run installs it"
        );
        println!("SKIPPED headless_chromium_shows_the_console: no chromium binary (apt-get install chromium)");
        return;
    };
    let (_origin, proxy) = traffic();
    let dom = dump_dom(&chromium, &format!("http://127.0.0.1:{}/", proxy.admin));
    // The script ran (the policy's hash admits it) and refreshed the tables.
    assert!(dom.contains("<span id=\"live\">live</span>"), "{dom}");
    assert!(dom.contains("<td>GPTBot</td>"), "{dom}");
    assert!(dom.contains("<td>OpenAI</td>"), "{dom}");
    assert!(dom.contains("<td>verified 3</td>"), "{dom}");
    assert!(dom.contains("<td>offer 3</td>"), "{dom}");
    assert!(dom.contains("<td>spoofed 1</td>"), "{dom}");
    // The requests-by-action rows, rebuilt by the script from the JSON.
    assert!(dom.contains("<tr><td>allow</td><td>3</td></tr>"), "{dom}");
    assert!(dom.contains("<tr><td>offer</td><td>3</td></tr>"), "{dom}");
    assert!(dom.contains("<tr><td>block</td><td>1</td></tr>"), "{dom}");
}

/// An operator name with markup, from a catalogue file: escaped on the
/// page, text in the browser's DOM, never an element.
#[test]
fn names_from_data_files_are_escaped() {
    let overlay = tempfile::tempdir().expect("overlay");
    let extra = overlay.path().join("markup.toml");
    std::fs::write(
        &extra,
        "[[agent]]\nname = \"EvilBot\"\noperator = \"<img src=x onerror=alert(1)>&Co\"\npurpose = \"ai-training\"\n",
    )
    .expect("catalogue file");
    let origin = Origin::start();
    let proxy = Proxy::start_edited(
        &origin.url(),
        "",
        &default_rules(),
        &[],
        &with_catalogue(&extra),
    );
    proxy.get("/", &[("user-agent", "EvilBot/1.0")]);
    let page = admin(&proxy, "/").body;
    assert!(page.contains("<td>EvilBot</td>"), "{page}");
    assert!(
        page.contains("<td>&lt;img src=x onerror=alert(1)&gt;&amp;Co</td>"),
        "{page}"
    );
    assert!(!page.contains("<img"), "{page}");
    let v: serde_json::Value =
        serde_json::from_str(&admin(&proxy, "/console.json").body).expect("console JSON");
    assert_eq!(
        agent(&v, "EvilBot")["operator"],
        "<img src=x onerror=alert(1)>&Co"
    );
}

/// A proxy whose admin listener has a token (the controls are on), after
/// GPTBot was offered a licence once.
fn with_controls(token: &str) -> (Origin, Proxy, tempfile::TempDir) {
    let secrets = tempfile::tempdir().expect("token dir");
    let token_file = secrets.path().join("token");
    std::fs::write(&token_file, token).expect("token");
    let origin = Origin::start();
    let keys = format!("token_file = \"{}\"\n", token_file.display());
    let proxy = Proxy::start_edited(
        &origin.url(),
        r#"trusted_proxies = ["127.0.0.0/8"]"#,
        &default_rules(),
        &[],
        &move |text| text.replacen("[admin]\n", &format!("[admin]\n{keys}"), 1),
    );
    (origin, proxy, secrets)
}

fn gptbot(proxy: &Proxy) -> Resp {
    proxy.get(
        "/films/la-traversee",
        &[("user-agent", GPTBOT), ("x-forwarded-for", GPTBOT_IP)],
    )
}

/// Headless Chromium driven over its DevTools protocol: one page, and
/// `Runtime.evaluate` in it.
struct Browser {
    child: std::process::Child,
    ws: tungstenite::WebSocket<std::net::TcpStream>,
    session: String,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn open(chromium: &PathBuf, url: &str) -> Self {
        let profile = tempfile::tempdir().expect("profile dir");
        let child = Command::new(chromium)
            .args(common::HEADLESS)
            .arg("--remote-debugging-port=0")
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run chromium");
        // Chromium writes the port it chose, and the browser's path.
        let file = profile.path().join("DevToolsActivePort");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let (port, path) = loop {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let mut lines = text.lines();
            if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                break (port.to_owned(), path.to_owned());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "chromium did not open its DevTools port"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        let stream = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).expect("devtools");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .expect("timeout");
        let (ws, _) = tungstenite::client(format!("ws://127.0.0.1:{port}{path}"), stream)
            .expect("devtools websocket");
        let mut b = Self {
            child,
            ws,
            session: String::new(),
            next_id: 0,
            _profile: profile,
        };
        let target = b.call(
            "Target.createTarget",
            serde_json::json!({ "url": url }),
            false,
        );
        let id = target["targetId"].clone();
        let attached = b.call(
            "Target.attachToTarget",
            serde_json::json!({ "targetId": id, "flatten": true }),
            false,
        );
        b.session = attached["sessionId"]
            .as_str()
            .expect("session id")
            .to_owned();
        b
    }

    /// Sends one command (to the page when `page`) and returns its result.
    fn call(&mut self, method: &str, params: serde_json::Value, page: bool) -> serde_json::Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = serde_json::json!({ "id": id, "method": method, "params": params });
        if page {
            msg["sessionId"] = serde_json::json!(self.session);
        }
        self.ws
            .send(tungstenite::Message::text(msg.to_string()))
            .expect("send to devtools");
        loop {
            let m = self.ws.read().expect("devtools answer");
            let Ok(text) = m.to_text() else { continue };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
                continue;
            };
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// The value of a script expression in the page.
    fn eval(&mut self, expression: &str) -> serde_json::Value {
        let r = self.call(
            "Runtime.evaluate",
            serde_json::json!({ "expression": expression, "returnByValue": true }),
            true,
        );
        r["result"]["value"].clone()
    }

    /// Evaluates `expression` until it is true (or 20 s pass).
    fn wait_for(&mut self, expression: &str) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if self.eval(expression) == serde_json::json!(true) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The operator types the token, names GPTBot and clicks "Allow agent" in
/// the page: the page's script posts the control, and GPTBot's next
/// request reaches the origin instead of the licensing offer.
#[test]
fn a_control_clicked_in_chromium_changes_the_next_answer() {
    let Some(chromium) = common::chromium() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true and no chromium binary: .ci/run installs it"
        );
        println!("SKIPPED a_control_clicked_in_chromium_changes_the_next_answer: no chromium binary (apt-get install chromium)");
        return;
    };
    let token = "browser-test-token";
    let (origin, proxy, _secrets) = with_controls(token);
    assert_eq!(gptbot(&proxy).status, 402);
    let mut b = Browser::open(&chromium, &format!("http://127.0.0.1:{}/", proxy.admin));
    assert!(
        b.wait_for("document.getElementById('live')?.textContent === 'live'"),
        "the page's script ran"
    );
    assert!(
        b.wait_for("document.getElementById('agents').textContent.includes('GPTBot')"),
        "the agents table shows GPTBot"
    );
    let before = origin.count();
    b.eval(&format!(
        "document.getElementById('token').value = {token:?};\
         document.getElementById('agent').value = 'GPTBot';\
         document.getElementById('allow').click(); true"
    ));
    assert!(
        b.wait_for("document.getElementById('result').dataset.status === '200'"),
        "the control's answer: {}",
        b.eval("document.getElementById('result').textContent")
    );
    let r = gptbot(&proxy);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.starts_with(ORIGIN_BODY), "{}", r.body);
    assert_eq!(origin.count(), before + 1, "the origin received it");
    // The page lists the override once its script refreshed.
    assert!(
        b.wait_for(
            "document.getElementById('overrides').textContent.includes('GPTBot') && \
             document.getElementById('overrides').textContent.includes('in force')"
        ),
        "the overrides table"
    );
    // A wrong token, typed in the page, changes nothing.
    b.eval(
        "document.getElementById('token').value = 'wrong';\
         document.getElementById('block').click(); true",
    );
    assert!(b.wait_for("document.getElementById('result').dataset.status === '401'"));
    assert_eq!(gptbot(&proxy).status, 200);
}
