//! Production operations, end to end: hot reload under load, graceful
//! upgrade under load, range refresh from a local server, health endpoints,
//! access logs.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

/// The rules of one policy: GPTBot gets `gpt_action`. Behaviour is off so
/// that the load itself is never rate-limited.
fn policy(gpt_action: &str, extra: &str) -> String {
    format!(
        "[[rules]]\nname = \"gpt\"\nagent = [\"GPTBot\"]\naction = \"{gpt_action}\"\n\n\
         [behaviour]\nenabled = false\n\n[reload]\nwatch = false\n{extra}\n"
    )
}

/// Rewrites the config of a running proxy with other rules.
fn rewrite(proxy: &Proxy, upstream: &str, rules: &str) {
    let config = proxy.dir.path().join("rempart.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let head = &text[..text.find("[[rules]]").unwrap()];
    std::fs::write(&config, format!("{head}{rules}")).unwrap();
    let _ = upstream;
}

fn post(url: &str) -> (u16, String) {
    match ureq::post(url).call() {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

/// 64 keep-alive clients asking for pages until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<Vec<String>>>,
}

impl Load {
    fn start(port: u16, connections: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let threads = (0..connections)
            .map(|t| {
                let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
                std::thread::spawn(move || {
                    let agent = ureq::AgentBuilder::new()
                        .timeout(Duration::from_secs(10))
                        .max_idle_connections_per_host(1)
                        .build();
                    let mut errors = Vec::new();
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let url = format!("http://127.0.0.1:{port}/films/{t}-{i}");
                        match agent
                            .get(&url)
                            .set("user-agent", CHROME)
                            .set(BROWSER_ACCEPT.0, BROWSER_ACCEPT.1)
                            .set(BROWSER_LANGUAGE.0, BROWSER_LANGUAGE.1)
                            .call()
                        {
                            Ok(r) if r.status() == 200 => {
                                let _ = r.into_string();
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(r) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                errors.push(format!("status {}", r.status()));
                            }
                            Err(e) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                errors.push(e.to_string());
                            }
                        }
                        i += 1;
                    }
                    errors
                })
            })
            .collect();
        Self {
            stop,
            ok,
            failed,
            threads,
        }
    }

    fn finish(self) -> (u64, u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let mut errors = Vec::new();
        for t in self.threads {
            errors.extend(t.join().unwrap());
        }
        errors.truncate(5);
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            errors,
        )
    }
}

fn gpt_status(proxy: &Proxy) -> u16 {
    proxy.get("/films/x", &[("user-agent", GPTBOT)]).status
}

#[test]
fn twenty_reloads_under_load_fail_no_request_and_change_verdicts_when_a_good_config_lands() {
    let origin = LoadOrigin::start();
    let proxy = Proxy::start_with(&origin.url(), "", &policy("offer", ""));
    assert_eq!(gpt_status(&proxy), 402);
    let load = Load::start(proxy.port, 64);
    let reload = format!("http://127.0.0.1:{}/reload", proxy.admin);
    let mut expected = 402;
    let mut last_hash = String::new();
    let started = Instant::now();
    for i in 0..20 {
        std::thread::sleep(Duration::from_millis(900));
        if i % 2 == 0 {
            let (action, status) = if expected == 402 {
                ("block", 403)
            } else {
                ("offer", 402)
            };
            rewrite(
                &proxy,
                &origin.url(),
                &policy(action, &format!("# reload {i}")),
            );
            let (code, body) = post(&reload);
            assert_eq!(code, 200, "{body}");
            assert!(body.contains("loaded"), "{body}");
            last_hash = body.split_whitespace().last().unwrap().to_owned();
            expected = status;
        } else {
            rewrite(
                &proxy,
                &origin.url(),
                "[[rules]]\nname = \"broken\"\nacton = \"block\"\n",
            );
            let (code, body) = post(&reload);
            assert_eq!(code, 400, "{body}");
            assert!(
                body.contains("rempart.toml:") && body.contains("rules[0]"),
                "file, line and key: {body}"
            );
        }
        assert_eq!(gpt_status(&proxy), expected, "after reload {i}");
    }
    // Keep the load on for 20 s in all.
    if let Some(rest) = Duration::from_secs(20).checked_sub(started.elapsed()) {
        std::thread::sleep(rest);
    }
    let (ok, failed, errors) = load.finish();
    assert_eq!(failed, 0, "failed requests: {errors:?}");
    assert!(ok > 1000, "the load ran: {ok} requests");
    assert_eq!(
        proxy.metric(r#"rempart_config_reload_total{result="ok"}"#),
        10.0
    );
    assert_eq!(
        proxy.metric(r#"rempart_config_reload_total{result="error"}"#),
        10.0
    );
    assert_eq!(
        proxy.metric(&format!(r#"rempart_config_info{{hash="{last_hash}"}}"#)),
        1.0,
        "{}",
        proxy
            .metrics_text()
            .lines()
            .filter(|l| l.contains("config_info"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!("reload test: {ok} requests under load, 0 failed, 20 reloads (10 good, 10 refused)");
}

#[test]
fn sighup_and_file_changes_reload_and_a_bad_file_is_refused() {
    let origin = Origin::start();
    let watched = policy("offer", "").replace("watch = false", "watch = true\ndebounce_ms = 300");
    let proxy = Proxy::start_with(&origin.url(), "", &watched);
    assert_eq!(gpt_status(&proxy), 402);
    // A file change: picked up after the debounce, no signal needed.
    rewrite(
        &proxy,
        &origin.url(),
        &watched.replace("\"offer\"", "\"block\""),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while gpt_status(&proxy) != 403 {
        assert!(Instant::now() < deadline, "file change never loaded");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A broken file: refused, counted, logged with file, line and key; the old config serves.
    rewrite(
        &proxy,
        &origin.url(),
        "[[rules]]\nname = \"x\"\naction = \"teleport\"\n",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.metric(r#"rempart_config_reload_total{result="error"}"#) < 1.0 {
        assert!(Instant::now() < deadline, "bad file never noticed");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(gpt_status(&proxy), 403);
    let log = std::fs::read_to_string(&proxy.log).unwrap();
    assert!(
        log.contains("config reload refused") && log.contains("rules[0].action"),
        "{log}"
    );

    // SIGHUP.
    let unwatched = policy("offer", "");
    rewrite(&proxy, &origin.url(), &unwatched);
    std::thread::sleep(Duration::from_millis(100));
    let pid = proxy.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while gpt_status(&proxy) != 402 {
        assert!(Instant::now() < deadline, "SIGHUP never reloaded");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(proxy.child.try_wait_alive());
}

trait Alive {
    fn try_wait_alive(&self) -> bool;
}
impl Alive for std::process::Child {
    fn try_wait_alive(&self) -> bool {
        Path::new(&format!("/proc/{}", self.id())).exists()
    }
}

#[test]
fn a_graceful_upgrade_under_load_fails_no_request() {
    let origin = LoadOrigin::start();
    let mut old = Proxy::start_with(
        &origin.url(),
        "grace_period_seconds = 2",
        &policy("offer", ""),
    );
    let load = Load::start(old.port, 64);
    std::thread::sleep(Duration::from_secs(3));
    // The new binary starts, waiting for the sockets...
    let config = old.dir.path().join("rempart.toml");
    let log = old.dir.path().join("upgraded.log");
    let mut new = std::process::Command::new(bin())
        .args(["run", "--upgrade", "--config"])
        .arg(&config)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    // ...and the old one, named by the pid file as docs/operations.md says
    // (`kill -QUIT $(cat …/rempart.pid)`), hands them over and drains.
    let pid_file = old.dir.path().join("rempart.pid");
    let named = std::fs::read_to_string(&pid_file).unwrap();
    assert_eq!(
        named.trim(),
        old.child.id().to_string(),
        "the pid file names the running process"
    );
    assert!(std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("kill -QUIT $(cat {})", pid_file.display()))
        .status()
        .unwrap()
        .success());
    let status = old.child.wait().unwrap();
    assert!(new.try_wait().unwrap().is_none(), "the new process runs");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(&pid_file)
        .unwrap_or_default()
        .trim()
        != new.id().to_string()
    {
        assert!(
            Instant::now() < deadline,
            "the pid file never named the new process"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(3));
    let (ok, failed, errors) = load.finish();
    let upgraded = http_get(
        &format!("http://127.0.0.1:{}/films/x", old.port),
        &[("user-agent", GPTBOT)],
    );
    let _ = new.kill();
    let _ = new.wait();
    assert_eq!(
        failed,
        0,
        "failed requests: {errors:?}; new process log: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(ok > 500, "the load ran: {ok}");
    assert_eq!(upgraded.status, 402, "the new process answers");
    eprintln!("upgrade test: {ok} requests under load, 0 failed; old process exited with {status}");
}

#[test]
fn readyz_is_the_proxy_s_own_unless_told_to_probe_the_origin() {
    let origin = Origin::start();
    let proxy = Proxy::start_with(&origin.url(), "", &policy("offer", ""));
    let ready = http_get(&format!("http://127.0.0.1:{}/readyz", proxy.admin), &[]);
    assert_eq!((ready.status, ready.body.trim()), (200, "ready"));
    let dead = format!("http://127.0.0.1:{}", free_port());
    // By default, readiness is the proxy's own: an origin blip must not
    // take every replica out of its load balancer.
    let alone = Proxy::start_with(&dead, "", &policy("offer", ""));
    let r = http_get(&format!("http://127.0.0.1:{}/readyz", alone.admin), &[]);
    assert_eq!((r.status, r.body.trim()), (200, "ready"));
    // `admin.readiness = "origin"`: the origin must accept a connection.
    let lonely = Proxy::start_edited(&dead, "", &policy("offer", ""), &[], &|t| {
        t.replacen("[admin]\n", "[admin]\nreadiness = \"origin\"\n", 1)
    });
    let r = http_get(&format!("http://127.0.0.1:{}/readyz", lonely.admin), &[]);
    assert_eq!(r.status, 503);
    assert!(
        r.body.contains("upstream") && r.body.contains("unreachable"),
        "{}",
        r.body
    );
    assert_eq!(
        http_get(&format!("http://127.0.0.1:{}/healthz", lonely.admin), &[]).status,
        200
    );
}

#[test]
fn access_log_lines_are_flat_json_with_the_decision_and_follow_logrotate() {
    let origin = Origin::start();
    let proxy = Proxy::start_args(
        &origin.url(),
        "access_log = true\naccess_log_file = \"access.log\"",
        &policy("block", ""),
        &[],
    );
    let path = proxy.dir.path().join("access.log");
    let read = |path: &std::path::Path, n: usize| {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let lines: Vec<serde_json::Value> = std::fs::read_to_string(path)
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str(l).expect("every line is one JSON object"))
                .collect();
            if lines.len() >= n || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert_eq!(gpt_status(&proxy), 403);
    let r = http_get(
        &proxy.url("/films/y?page=2"),
        &[
            ("user-agent", CHROME),
            BROWSER_ACCEPT,
            BROWSER_LANGUAGE,
            ("referer", "https://chatgpt.com/"),
        ],
    );
    assert_eq!(r.status, 200);
    let lines = read(&path, 2);
    assert_eq!(lines.len(), 2, "one line per request");
    let keys: Vec<&str> = lines[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut want = vec![
        "ts",
        "request_id",
        "client",
        "method",
        "host",
        "path",
        "query",
        "status",
        "bytes",
        "duration_ms",
        "ua",
        "referer",
        "protocol",
        "action",
        "rule",
        "agent",
        "verification",
    ];
    want.sort_unstable();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, want, "flat: no nesting under `fields`");
    let (gpt, person) = (&lines[0], &lines[1]);
    assert_eq!(
        (
            gpt["status"].as_u64(),
            gpt["action"].as_str(),
            gpt["rule"].as_str()
        ),
        (Some(403), Some("block"), Some("gpt"))
    );
    assert_eq!(
        (
            gpt["agent"].as_str(),
            gpt["path"].as_str(),
            gpt["ua"].as_str()
        ),
        (Some("GPTBot"), Some("/films/x"), Some(GPTBOT))
    );
    assert_eq!(
        (person["action"].as_str(), person["query"].as_str()),
        (Some("allow"), Some("page=2"))
    );
    assert_eq!(
        (person["referer"].as_str(), person["protocol"].as_str()),
        (Some("https://chatgpt.com/"), Some("HTTP/1.1"))
    );
    assert_eq!(person["client"], "127.0.0.1");
    assert_eq!(person["bytes"].as_u64(), Some(r.body.len() as u64));
    assert!(person["duration_ms"].as_f64().unwrap() > 0.0);
    assert_ne!(gpt["request_id"], person["request_id"]);
    // logrotate: move the file away, SIGUSR1, and the next line goes to a new file.
    let rotated = proxy.dir.path().join("access.log.1");
    std::fs::rename(&path, &rotated).unwrap();
    let pid = proxy.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-USR1", &pid])
        .status()
        .unwrap()
        .success());
    // The writer reopens within its 200 ms tick; the next request's line
    // goes to the new file.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(proxy.browse("/films/z").status, 200);
    let fresh = read(&path, 1);
    assert_eq!(fresh.len(), 1, "the new file has the new line");
    assert_eq!(fresh[0]["path"], "/films/z");
    assert_eq!(
        read(&rotated, 2).len(),
        2,
        "the rotated file keeps its lines"
    );
}

#[test]
fn rempart_reload_reports_the_refusal_and_the_pid_file_follows_the_process() {
    let origin = Origin::start();
    let mut proxy = Proxy::start_with(&origin.url(), "", &policy("offer", ""));
    let config = proxy.dir.path().join("rempart.toml");
    let pid_file = proxy.dir.path().join("rempart.pid");
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        proxy.child.id().to_string()
    );
    assert_eq!(proxy.metric("rempart_config_last_reload_success"), 1.0);
    let admin = format!("127.0.0.1:{}", proxy.admin);
    let reload = |extra: &[&str]| {
        let mut args = vec![
            "reload",
            "--config",
            config.to_str().unwrap(),
            "--admin",
            &admin,
        ];
        args.extend_from_slice(extra);
        run_cli(&args, None)
    };
    let (code, out, err) = reload(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("unchanged "), "{out}");
    rewrite(&proxy, &origin.url(), &policy("block", ""));
    let (code, out, err) = reload(&[]);
    assert_eq!((code, out.starts_with("loaded ")), (0, true), "{out}{err}");
    assert_eq!(gpt_status(&proxy), 403);
    // A broken file: the command fails with the proxy's own words (file,
    // line, key), the gauge stays at 0 while the bad file is there.
    rewrite(
        &proxy,
        &origin.url(),
        "[[rules]]\nname = \"x\"\naction = \"teleport\"\n",
    );
    let (code, _, err) = reload(&[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("reload refused (400)")
            && err.contains("rempart.toml:")
            && err.contains("rules[0].action"),
        "{err}"
    );
    assert_eq!(proxy.metric("rempart_config_last_reload_success"), 0.0);
    assert_eq!(gpt_status(&proxy), 403, "the previous config serves");
    rewrite(&proxy, &origin.url(), &policy("offer", ""));
    let (code, _, err) = reload(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(proxy.metric("rempart_config_last_reload_success"), 1.0);
    assert_eq!(gpt_status(&proxy), 402);
    // Nobody listening: an error, not a success.
    let (code, _, err) = run_cli(
        &[
            "reload",
            "--config",
            config.to_str().unwrap(),
            "--admin",
            "127.0.0.1:1",
        ],
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not answering"), "{err}");
    // SIGTERM: the pid file goes with the process.
    let pid = proxy.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let _ = proxy.child.wait();
    assert!(!pid_file.exists(), "the pid file is removed at exit");
    let log = std::fs::read_to_string(&proxy.log).unwrap();
    assert!(log.contains("config reload refused"), "{log}");
    assert!(
        !log.contains('\x1b'),
        "no colour codes when stderr is a file: {log}"
    );
}

#[test]
fn http_metrics_count_every_response_by_status_and_action_and_time_it() {
    let origin = Origin::start();
    let proxy = Proxy::start_with(&origin.url(), "", &policy("offer", ""));
    let text = proxy.metrics_text();
    // At zero before any request: the series a dashboard and an alert need.
    for series in [
        r#"rempart_http_responses_total{action="allow",status="200"}"#,
        r#"rempart_http_responses_total{action="none",status="5xx"}"#,
        r#"rempart_bad_requests_total{reason="repeated-host"}"#,
        r#"rempart_connections_closed_total{reason="header-timeout"}"#,
        r#"rempart_served_documents_total{document="robots.txt"}"#,
        r#"rempart_web_bot_auth_total{result="verified"}"#,
        r#"rempart_licence_rejections_total{reason="quota"}"#,
        "rempart_request_duration_seconds_count",
        "rempart_upstream_duration_seconds_count",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(series)),
            "{series} missing at start"
        );
        assert_eq!(proxy.metric(series), 0.0, "{series}");
    }
    // (CPU seconds may still be 0 this early: present is what counts.)
    assert!(text
        .lines()
        .any(|l| l.starts_with("process_cpu_seconds_total ")));
    for process in ["process_resident_memory_bytes", "process_open_fds"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(process))
            .unwrap_or_else(|| panic!("{process}"));
        let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(value > 0.0, "{line}");
    }
    let build = text
        .lines()
        .find(|l| l.starts_with("rempart_build_info{"))
        .unwrap();
    assert!(
        build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))),
        "{build}"
    );
    assert!(build.ends_with(" 1"), "{build}");
    for _ in 0..3 {
        assert_eq!(proxy.browse("/films/a").status, 200);
    }
    assert_eq!(gpt_status(&proxy), 402);
    assert_eq!(gpt_status(&proxy), 402);
    let page = proxy.browse("/films/a").body.len() as f64;
    assert_eq!(
        proxy.wait_metric(
            r#"rempart_http_responses_total{action="allow",status="200"}"#,
            4.0
        ),
        4.0
    );
    assert_eq!(
        proxy.wait_metric(
            r#"rempart_http_responses_total{action="offer",status="402"}"#,
            2.0
        ),
        2.0
    );
    assert_eq!(
        proxy.wait_metric("rempart_request_duration_seconds_count", 6.0),
        6.0
    );
    assert_eq!(
        proxy.wait_metric("rempart_upstream_duration_seconds_count", 4.0),
        4.0,
        "only proxied requests"
    );
    assert!(proxy.metric("rempart_request_duration_seconds_sum") > 0.0);
    assert_eq!(
        proxy.wait_metric(
            r#"rempart_response_bytes_total{action="allow"}"#,
            4.0 * page
        ),
        4.0 * page
    );
    assert!(proxy.metric(r#"rempart_response_bytes_total{action="offer"}"#) > 0.0);
}

/// With `metrics.host_label`, responses are counted by host: each
/// configured host under its name (at zero from the start), any other under
/// `other`, and there is no series without the label.
#[test]
fn the_host_label_counts_configured_hosts_and_other() {
    let origin = Origin::start();
    let proxy = Proxy::start_with(
        &origin.url(),
        "",
        &policy(
            "offer",
            "[metrics]\nhost_label = true\nhosts = [\"www.example.com\", \"Media.Example.com\"]\n",
        ),
    );
    let series = |host: &str, status: &str, action: &str| {
        format!(
            r#"rempart_http_responses_total{{action="{action}",host="{host}",status="{status}"}}"#
        )
    };
    let text = proxy.metrics_text();
    for host in ["www.example.com", "media.example.com", "other"] {
        let s = series(host, "402", "offer");
        assert!(
            text.lines().any(|l| l == format!("{s} 0")),
            "{s} at zero from the start"
        );
    }
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("rempart_http_responses_total{action=\"allow\",status=")),
        "no series without the host label"
    );
    let browse = |host: &str| {
        proxy
            .get(
                "/films/a",
                &[
                    ("user-agent", CHROME),
                    BROWSER_ACCEPT,
                    BROWSER_LANGUAGE,
                    ("host", host),
                ],
            )
            .status
    };
    assert_eq!(browse("www.example.com"), 200);
    assert_eq!(browse("WWW.example.com:8080"), 200);
    assert_eq!(browse("unknown.example"), 200);
    let gpt = proxy.get(
        "/films/x",
        &[("user-agent", GPTBOT), ("host", "media.example.com")],
    );
    assert_eq!(gpt.status, 402);
    assert_eq!(
        proxy.metric(&series("www.example.com", "200", "allow")),
        2.0
    );
    assert_eq!(proxy.metric(&series("other", "200", "allow")), 1.0);
    assert_eq!(
        proxy.metric(&series("media.example.com", "402", "offer")),
        1.0
    );
    assert_eq!(
        proxy.metric(&series("www.example.com", "402", "offer")),
        0.0
    );
    assert!(
        !proxy.metrics_text().contains("unknown.example"),
        "a client's Host never becomes a label"
    );
}
