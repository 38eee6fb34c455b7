//! The console's quick controls through the real binary, in front of a
//! real origin: who may use them, and that each one changes the next
//! request's answer through the override file (which survives a restart,
//! shows in `rempart check`, ends on time and is put back when a reload
//! refuses it).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

const TOKEN: &str = "s3cret-console-token";

/// Where a test keeps its token and override file, outside the proxy's
/// own directory, so that a second proxy (the restart) finds the same.
struct Shared {
    dir: tempfile::TempDir,
}

impl Shared {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).expect("token");
        Self { dir }
    }

    fn overrides(&self) -> PathBuf {
        self.dir.path().join("overrides.toml")
    }

    /// The `[admin]` keys: the token file (unless `token` is false) and the override file.
    fn admin_keys(&self, token: bool) -> String {
        let mut keys = format!("overrides_file = \"{}\"\n", self.overrides().display());
        if token {
            keys.push_str(&format!(
                "token_file = \"{}\"\n",
                self.dir.path().join("token").display()
            ));
        }
        keys
    }

    fn start(&self, origin: &Origin, token: bool) -> Proxy {
        let keys = self.admin_keys(token);
        Proxy::start_edited(
            &origin.url(),
            r#"trusted_proxies = ["127.0.0.0/8"]"#,
            &default_rules(),
            &[],
            &move |text| text.replacen("[admin]\n", &format!("[admin]\n{keys}"), 1),
        )
    }
}

/// `POST /controls/<control>` on the admin listener.
fn post(proxy: &Proxy, control: &str, body: &str, headers: &[(&str, &str)]) -> Resp {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build();
    let mut req = agent.post(&format!(
        "http://127.0.0.1:{}/controls/{control}",
        proxy.admin
    ));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let resp = match req.send_string(body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("POST /controls/{control}: {e}"),
    };
    let status = resp.status();
    Resp {
        status,
        headers: Default::default(),
        all: Vec::new(),
        body: resp.into_string().unwrap_or_default(),
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

/// A control as the console's script sends it.
fn control(proxy: &Proxy, name: &str, body: &str) -> Resp {
    let auth = bearer();
    post(proxy, name, body, &[JSON, ("authorization", &auth)])
}

fn gptbot(proxy: &Proxy) -> Resp {
    proxy.get(
        "/films/la-traversee",
        &[("user-agent", GPTBOT), ("x-forwarded-for", GPTBOT_IP)],
    )
}

/// Googlebot from an address outside Google's ranges: `spoofed-agents`.
fn fake_googlebot(proxy: &Proxy) -> Resp {
    proxy.get(
        "/films/la-traversee",
        &[
            ("user-agent", GOOGLEBOT),
            ("x-forwarded-for", "203.0.113.9"),
        ],
    )
}

fn check(config: &Path) -> String {
    let (code, out, err) = run_cli(
        &["check", "--offline", "--config", &config.to_string_lossy()],
        None,
    );
    assert_eq!(code, 0, "check failed: {out}{err}");
    out
}

fn controls_metric(proxy: &Proxy, control: &str, result: &str) -> f64 {
    proxy.metric(&format!(
        "rempart_console_controls_total{{control=\"{control}\",result=\"{result}\"}}"
    ))
}

/// The ledger's first control record (waiting for the writer).
fn control_record(proxy: &Proxy) -> serde_json::Value {
    let mut found = None;
    eventually(|| {
        found = ledger_records(&proxy.evidence_dir())
            .into_iter()
            .find(|r| r["type"] == "control");
        found.is_some()
    });
    found.expect("a control record in the ledger")
}

/// Polls `f` until it holds (or 20 s pass); true if it did.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn the_controls_need_the_token_and_the_same_origin() {
    let origin = Origin::start();
    let shared = Shared::new();
    let proxy = shared.start(&origin, true);
    let body = r#"{"agent":"GPTBot"}"#;
    // Every series exists before the first control.
    assert!(proxy
        .metrics_text()
        .contains(r#"rempart_console_controls_total{control="log-only",result="error"} 0"#));
    let r = post(&proxy, "allow", body, &[JSON]);
    assert_eq!(r.status, 401, "{}", r.body);
    let r = post(
        &proxy,
        "allow",
        body,
        &[JSON, ("authorization", "Bearer wrong")],
    );
    assert_eq!(r.status, 401, "{}", r.body);
    let auth = bearer();
    let cross = [
        JSON,
        ("authorization", auth.as_str()),
        ("origin", "http://evil.example"),
    ];
    assert_eq!(post(&proxy, "allow", body, &cross).status, 403);
    let cross = [
        JSON,
        ("authorization", auth.as_str()),
        ("sec-fetch-site", "cross-site"),
    ];
    assert_eq!(post(&proxy, "allow", body, &cross).status, 403);
    let rebound = [
        JSON,
        ("authorization", auth.as_str()),
        ("host", "attacker.example"),
    ];
    assert_eq!(post(&proxy, "allow", body, &rebound).status, 403);
    // A form (which another site could send without asking) is no control.
    let form = [
        ("content-type", "text/plain"),
        ("authorization", auth.as_str()),
    ];
    assert_eq!(post(&proxy, "allow", body, &form).status, 415);
    let get = http_get(
        &format!("http://127.0.0.1:{}/controls/allow", proxy.admin),
        &[],
    );
    assert_eq!(get.status, 405);
    // Nothing reached the file, nothing changed.
    assert!(!shared.overrides().exists());
    assert_eq!(gptbot(&proxy).status, 402);
    assert_eq!(controls_metric(&proxy, "allow", "unauthorized"), 2.0);
    assert_eq!(controls_metric(&proxy, "allow", "forbidden"), 3.0);
    assert_eq!(controls_metric(&proxy, "allow", "invalid"), 1.0);
    assert_eq!(controls_metric(&proxy, "allow", "ok"), 0.0);
    // The token never reaches the log.
    let log = std::fs::read_to_string(&proxy.log).unwrap_or_default();
    assert!(!log.contains(TOKEN), "the token is in the log");
}

#[test]
fn without_a_token_file_the_controls_are_off() {
    let origin = Origin::start();
    let shared = Shared::new();
    let proxy = shared.start(&origin, false);
    let r = post(&proxy, "allow", r#"{"agent":"GPTBot"}"#, &[JSON]);
    assert_eq!(r.status, 403);
    assert!(r.body.contains("admin.token_file"), "{}", r.body);
    assert_eq!(gptbot(&proxy).status, 402);
    let page = http_get(&format!("http://127.0.0.1:{}/", proxy.admin), &[]);
    assert!(page.body.contains("Controls are off"), "{}", page.body);
    assert!(page.body.contains("admin.token_file"));
    assert!(!page.body.contains("id=\"token\""));
    assert_eq!(controls_metric(&proxy, "allow", "forbidden"), 1.0);
}

#[test]
fn a_control_changes_the_next_answer_and_survives_a_restart() {
    let origin = Origin::start();
    let shared = Shared::new();
    let proxy = shared.start(&origin, true);
    let config = proxy.dir.path().join("rempart.toml");
    assert_eq!(
        gptbot(&proxy).status,
        402,
        "the shipped rules offer a licence"
    );
    let before = origin.count();

    let r = control(&proxy, "allow", r#"{"agent":"GPTBot"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("GPTBot: allow until removed"), "{}", r.body);
    let r = gptbot(&proxy);
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with(ORIGIN_BODY), "{}", r.body);
    assert_eq!(origin.count(), before + 1, "the origin received it");
    assert_eq!(origin.last().expect("seen").path, "/films/la-traversee");
    // The lawyer's record: the operator let GPTBot in.
    let c = control_record(&proxy);
    assert_eq!(
        (c["control"].as_str(), c["agent"].as_str()),
        (Some("allow"), Some("GPTBot"))
    );
    assert_eq!(c["result"], "ok");
    assert!(c["config"].as_str().is_some_and(|h| h.len() == 16));
    // And the evidence report lists it.
    let dir = proxy.evidence_dir().to_string_lossy().into_owned();
    let (code, out, err) = run_cli(&["evidence", "report", &dir, "--format", "json"], None);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("report JSON");
    let listed = &report["controls"][0];
    assert_eq!(
        (
            listed["control"].as_str(),
            listed["target"].as_str(),
            listed["until"].as_str()
        ),
        (Some("allow"), Some("agent GPTBot"), Some("until removed")),
        "{report:#}"
    );

    let r = control(&proxy, "block", r#"{"agent":"GPTBot"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(gptbot(&proxy).status, 403);
    let text = std::fs::read_to_string(shared.overrides()).expect("the override file");
    assert!(
        text.contains("agent = \"GPTBot\"") && text.contains("action = \"block\""),
        "{text}"
    );
    let listed = check(&config);
    assert!(
        listed.contains("agent GPTBot: block until removed (in force, set "),
        "{listed}"
    );

    // A restart reads the same file.
    drop(proxy);
    let proxy = shared.start(&origin, true);
    assert_eq!(
        gptbot(&proxy).status,
        403,
        "the override outlives the process"
    );

    let r = control(&proxy, "remove", r#"{"agent":"GPTBot"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(gptbot(&proxy).status, 402, "the old answer is back");
    let r = control(&proxy, "remove", r#"{"agent":"GPTBot"}"#);
    assert_eq!(r.status, 404, "{}", r.body);

    // Log-only: the blocking rule lets the request through, and counts.
    assert_eq!(fake_googlebot(&proxy).status, 403);
    let r = control(&proxy, "log-only", r#"{"rule":"spoofed-agents"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = fake_googlebot(&proxy);
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with(ORIGIN_BODY), "{}", r.body);
    assert_eq!(
        proxy.metric(r#"rempart_log_only_total{action="block",rule="spoofed-agents"}"#),
        1.0
    );
    let r = control(&proxy, "remove", r#"{"rule":"spoofed-agents"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(fake_googlebot(&proxy).status, 403);
    assert_eq!(controls_metric(&proxy, "remove", "ok"), 2.0);
}

#[test]
fn an_override_for_a_while_ends_by_itself() {
    let origin = Origin::start();
    let shared = Shared::new();
    let proxy = shared.start(&origin, true);
    let config = proxy.dir.path().join("rempart.toml");
    let r = control(&proxy, "allow", r#"{"agent":"GPTBot","seconds":2}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("GPTBot: allow until 20"), "{}", r.body);
    // Allowed now (unless this machine took the whole 2 s to get here).
    let first = gptbot(&proxy).status;
    assert!(first == 200 || first == 402, "{first}");
    assert!(
        eventually(|| gptbot(&proxy).status == 402),
        "the override never ended"
    );
    let listed = check(&config);
    assert!(listed.contains("agent GPTBot: allow until 20"), "{listed}");
    assert!(listed.contains("(expired"), "{listed}");
    let c = control_record(&proxy);
    assert!(c["until"].as_str().is_some_and(|u| u.ends_with('Z')), "{c}");
}

#[test]
fn a_refused_override_puts_the_file_back() {
    let origin = Origin::start();
    let shared = Shared::new();
    let proxy = shared.start(&origin, true);
    let r = control(&proxy, "block", r#"{"agent":"GPTBot"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let kept = std::fs::read_to_string(shared.overrides()).expect("file");
    let r = control(&proxy, "allow", r#"{"agent":"NoSuchBot"}"#);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("overrides.toml:"), "file named: {}", r.body);
    assert!(
        r.body.contains("override[1].agent"),
        "key named: {}",
        r.body
    );
    assert!(r.body.contains("NoSuchBot"), "{}", r.body);
    assert_eq!(
        std::fs::read_to_string(shared.overrides()).expect("file"),
        kept
    );
    assert_eq!(
        gptbot(&proxy).status,
        403,
        "the previous configuration serves"
    );
    assert_eq!(proxy.metric("rempart_config_last_reload_success"), 1.0);
    assert_eq!(controls_metric(&proxy, "allow", "invalid"), 1.0);
    let r = control(&proxy, "log-only", r#"{"rule":"no-such-rule"}"#);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        std::fs::read_to_string(shared.overrides()).expect("file"),
        kept
    );
}

/// The override file is a config input like any other: `rempart classify`
/// decides with it (the same decision function as the proxy), and `rempart
/// check` refuses a mistake in it with its file, line and key.
#[test]
fn classify_and_check_read_the_override_file() {
    let (dir, config) = config_for_check("", |t| t);
    let overrides = dir.path().join("state/overrides.toml");
    std::fs::create_dir_all(overrides.parent().expect("state dir")).expect("state dir");
    std::fs::write(
        &overrides,
        "[[override]]\nagent = \"GPTBot\"\naction = \"allow\"\nset_by = \"hand\"\n",
    )
    .expect("override file");
    let (code, out, err) = run_cli(
        &[
            "classify", "--config", &config, "--ua", GPTBOT, "--ip", GPTBOT_IP, "--path",
            "/films/x",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("verdict");
    assert_eq!(
        (v["action"].as_str(), v["rule"].as_str()),
        (Some("allow"), Some("override-allow-GPTBot")),
        "{v}"
    );
    let listed = check(Path::new(&config));
    assert!(
        listed.contains("agent GPTBot: allow until removed (in force, set by hand)"),
        "{listed}"
    );
    // Under --state-dir, the state directory's file is the one read.
    let state = tempfile::tempdir().expect("state dir");
    std::fs::write(
        state.path().join("overrides.toml"),
        "[[override]]\nrule = \"scrapers\"\nmode = \"log-only\"\nuntil_unix = 1\n",
    )
    .expect("state override file");
    let state_dir = state.path().to_string_lossy().into_owned();
    let (code, out, err) = run_cli(
        &[
            "check",
            "--offline",
            "--config",
            &config,
            "--state-dir",
            &state_dir,
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("rule scrapers: log-only until 1970-01-01T00:00:01Z (expired)"),
        "{out}"
    );
    std::fs::write(
        &overrides,
        "[[override]]\nagent = \"GPTBot\"\naction = \"let-in\"\n",
    )
    .expect("bad file");
    let (code, _, err) = run_cli(&["check", "--offline", "--config", &config], None);
    assert_eq!(code, 1);
    assert!(err.contains("overrides.toml:3:"), "{err}");
    assert!(err.contains("key `override[0].action`"), "{err}");
}
