//! The deploy kit, validated with the tools each format has: the
//! Kubernetes schemas (kubernetes-validate, offline), promtool, systemd-analyze,
//! and rempart itself (the ConfigMap's config, the dashboard's metrics).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};

use common::*;

fn deploy(path: &str) -> std::path::PathBuf {
    repo().join("deploy").join(path)
}

fn tool(name: &str, install: &str) -> Command {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(found, "{name} not found: {install} (.ci/run installs it)");
    Command::new(name)
}

fn yaml_docs(path: &std::path::Path) -> Vec<serde_yaml::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}

#[test]
fn kubernetes_manifests_match_their_schemas() {
    let files = [
        "configmap.yaml",
        "deployment.yaml",
        "service.yaml",
        "hpa.yaml",
        "pdb.yaml",
        "redis.yaml",
    ];
    let out = tool("kubernetes-validate", "pip install kubernetes-validate")
        .args(["--strict", "-k", "1.30.0"])
        .args(files.iter().map(|f| deploy("kubernetes").join(f)))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches(" passed for resource ").count(), 8, "{text}");
    assert!(!text.contains("ERROR") && !text.contains("WARN"), "{text}");

    // The ServiceMonitor is a CRD (no schema in Kubernetes itself): check
    // that it selects the admin Service and scrapes its port.
    let sm = &yaml_docs(&deploy("kubernetes/servicemonitor.yaml"))[0];
    assert_eq!(sm["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "admin");
    let admin_svc = yaml_docs(&deploy("kubernetes/service.yaml"))
        .into_iter()
        .find(|d| d["metadata"]["name"] == "rempart-admin")
        .unwrap();
    for (k, v) in sm["spec"]["selector"]["matchLabels"].as_mapping().unwrap() {
        assert_eq!(&admin_svc["metadata"]["labels"][k], v);
    }
    // Probes point at the endpoints rempart serves.
    let dep = &yaml_docs(&deploy("kubernetes/deployment.yaml"))[0];
    let c = &dep["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    let kustomization = std::fs::read_to_string(deploy("kubernetes/kustomization.yaml")).unwrap();
    for f in files.iter().chain(&["servicemonitor.yaml"]) {
        assert!(
            kustomization.contains(f),
            "{f} missing from kustomization.yaml"
        );
    }
}

#[test]
fn the_configmap_config_passes_check() {
    let cm = &yaml_docs(&deploy("kubernetes/configmap.yaml"))[0];
    let text = cm["data"]["rempart.toml"].as_str().unwrap();
    // The image has the data files under /etc/rempart; here they are in config/.
    let local = text.replace(
        "/etc/rempart/",
        &format!("{}/", repo().join("config").display()),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rempart.toml");
    std::fs::write(&path, local).unwrap();
    // The origin is a cluster name: resolved in the pod, not here.
    let (code, out, err) = run_cli(
        &["check", "--config", path.to_str().unwrap(), "--offline"],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = run_cli(&["check", "--config", path.to_str().unwrap()], None);
    assert_eq!(
        code, 1,
        "resolving the cluster's origin name here fails: {err}"
    );
    assert!(
        err.contains("server.upstream") && err.contains("origin.default.svc.cluster.local"),
        "{err}"
    );
}

#[test]
fn the_systemd_unit_verifies() {
    let unit = std::fs::read_to_string(deploy("systemd/rempart.service")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rempart.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/rempart", bin())).unwrap();
    let out = tool("systemd-analyze", "apt-get install systemd")
        .args(["verify"])
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    let about_us: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("rempart.service"))
        .collect();
    assert!(about_us.is_empty(), "{about_us:?}");
}

/// Metric names in PromQL expressions (histogram series mapped to their family).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in expr.match_indices("rempart_") {
        let name: String = expr[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let family = name
            .strip_suffix("_bucket")
            .or_else(|| name.strip_suffix("_count"))
            .or_else(|| name.strip_suffix("_sum"))
            .unwrap_or(&name)
            .to_owned();
        out.insert(family);
    }
    out
}

#[test]
fn alerts_and_live_metrics_pass_promtool_and_the_dashboard_queries_only_real_metrics() {
    let out = tool("promtool", "apt-get install prometheus")
        .args(["check", "rules"])
        .arg(deploy("prometheus/alerts.yml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("SUCCESS: 9 rules found"));

    // A proxy with a licensee and range refresh, after a little traffic.
    let (_, hash, _) = run_cli(&["licences", "hash-token"], Some("token-1\n"));
    let sources = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        sources.path(),
        "file\tvendor_url\ngptbot.json\thttp://127.0.0.1:1/x\n",
    )
    .unwrap();
    let rules = format!(
        "{}\n[[licensees]]\nid = \"acme\"\nname = \"ACME\"\ntoken_sha256 = [\"{}\"]\n",
        default_rules()
            .replace(
                "sources = \"ipranges/SOURCES.tsv\"",
                &format!("sources = \"{}\"", sources.path().display())
            )
            .replace("jitter_seconds = 3600", "jitter_seconds = 0"),
        hash.trim(),
    );
    let origin = Origin::start();
    let proxy = Proxy::start_with(&origin.url(), "", &rules);
    proxy.get(
        "/",
        &[("user-agent", CHROME), BROWSER_ACCEPT, BROWSER_LANGUAGE],
    );
    proxy.get("/films/x", &[("user-agent", GPTBOT)]);
    proxy.get(
        "/films/x",
        &[("user-agent", GPTBOT), ("authorization", "License token-1")],
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while proxy.metric(r#"rempart_ipranges_refresh_total{result="fetch",source="gptbot"}"#) < 1.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the refresh never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let scrape = http_get(&format!("http://127.0.0.1:{}/metrics", proxy.admin), &[]);
    assert_eq!(scrape.status, 200, "{}", scrape.body);
    let metrics = scrape.body;
    assert!(
        metrics.starts_with("# HELP "),
        "not the exposition format: {:?}",
        metrics.get(..300)
    );

    let mut check = tool("promtool", "apt-get install prometheus")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let families: BTreeSet<String> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(deploy("grafana/rempart.json")).unwrap())
            .unwrap();
    let mut queried = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            queried.extend(metric_names(t["expr"].as_str().unwrap()));
        }
    }
    assert!(queried.len() >= 12, "{queried:?}");
    let missing: Vec<_> = queried.difference(&families).collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics rempart does not export: {missing:?}"
    );
    let alerts = std::fs::read_to_string(deploy("prometheus/alerts.yml")).unwrap();
    let missing: Vec<_> = metric_names(&alerts)
        .into_iter()
        .filter(|m| !families.contains(m))
        .collect();
    assert!(
        missing.is_empty(),
        "the alerts use metrics rempart does not export: {missing:?}"
    );
}

#[test]
fn the_container_files_hang_together() {
    let dockerfile = std::fs::read_to_string(deploy("docker/Dockerfile")).unwrap();
    // The image is built by the script CI runs.
    assert!(dockerfile.contains("RUN deploy/docker/build.sh /out"));
    assert!(dockerfile.contains("USER 65532:65532"));
    // The base images are build arguments whose defaults are the published ones.
    assert!(dockerfile.contains("ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot"));
    assert!(dockerfile.contains("ARG BUILD_IMAGE=rust:1.95-bookworm"));
    // The state directory is the runtime user's, before it becomes a volume.
    let chown = dockerfile
        .find("COPY --from=build --chown=65532:65532 /out/state /var/lib/rempart")
        .unwrap();
    assert!(chown < dockerfile.find("VOLUME /var/lib/rempart").unwrap());
    assert!(dockerfile.contains("HEALTHCHECK"));
    let ci = std::fs::read_to_string(repo().join(".ci/run")).unwrap();
    assert!(ci.contains("deploy/docker/build.sh"));
    let compose = &yaml_docs(&deploy("docker/docker-compose.yml"))[0];
    let base = deploy("docker");
    for svc in ["prometheus", "grafana", "origin"] {
        for v in compose["services"][svc]["volumes"].as_sequence().unwrap() {
            let host = v.as_str().unwrap().split(':').next().unwrap();
            assert!(base.join(host).exists(), "{svc}: {host} does not exist");
        }
    }
    assert_eq!(
        compose["services"]["rempart"]["build"]["dockerfile"],
        "deploy/docker/Dockerfile"
    );
    // JSON log lines wherever rempart runs in a container.
    assert!(dockerfile.contains(r#"CMD ["run", "--log-json","#));
    assert!(compose["services"]["rempart"]["command"]
        .as_sequence()
        .unwrap()
        .contains(&"--log-json".into()));
    let dep = &yaml_docs(&deploy("kubernetes/deployment.yaml"))[0];
    let args = &dep["spec"]["template"]["spec"]["containers"][0]["args"];
    assert!(args.as_sequence().unwrap().contains(&"--log-json".into()));
    // .dockerignore keeps the state (ledger, address key) and the build out.
    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    for entry in [
        "config/state",
        "target",
        ".git",
        "fuzz/corpus",
        "fuzz/artifacts",
    ] {
        assert!(
            ignore.lines().any(|l| l == entry),
            "{entry} not in .dockerignore"
        );
    }
    // The health check command exists and works against a live admin listener.
    let origin = Origin::start();
    let proxy = Proxy::start(&origin.url());
    let (code, _, err) = run_cli(
        &["health", "--admin", &format!("127.0.0.1:{}", proxy.admin)],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = run_cli(
        &["health", "--admin", &format!("127.0.0.1:{}", free_port())],
        None,
    );
    assert_eq!(code, 1);
}

/// The system calls of a syscall-filter group, its nested groups expanded,
/// as `systemd-analyze syscall-filter` lists them.
fn syscall_group(groups: &BTreeMap<String, Vec<String>>, name: &str, out: &mut BTreeSet<String>) {
    for member in groups.get(name).into_iter().flatten() {
        if member.starts_with('@') {
            syscall_group(groups, member, out);
        } else {
            out.insert(member.clone());
        }
    }
}

#[test]
fn the_systemd_unit_is_hardened_and_allows_every_system_call_the_proxy_makes() {
    let unit = std::fs::read_to_string(deploy("systemd/rempart.service")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rempart.service");
    std::fs::write(&path, &unit).unwrap();
    // Exposure: systemd's own score of the unit's sandbox (10 = none).
    let out = tool("systemd-analyze", "apt-get install systemd")
        .args(["security", "--offline=true"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let score: f64 = text
        .lines()
        .find_map(|l| l.split("exposure level for rempart.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure score: {text}"));
    assert!(score <= 2.0, "exposure {score}: {text}");
    eprintln!("systemd-analyze security: exposure {score}");

    // The calls the filter leaves: @system-service minus the denied groups.
    let listing = tool("systemd-analyze", "apt-get install systemd")
        .arg("syscall-filter")
        .output()
        .unwrap();
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = String::new();
    for line in String::from_utf8_lossy(&listing.stdout).lines() {
        let item = line.trim();
        if item.is_empty() || item.starts_with('#') {
            continue;
        }
        if line.starts_with('@') {
            current = item.to_owned();
        } else {
            groups
                .entry(current.clone())
                .or_default()
                .push(item.to_owned());
        }
    }
    let mut allowed = BTreeSet::new();
    let mut denied = BTreeSet::new();
    for line in unit.lines() {
        let Some(value) = line.strip_prefix("SystemCallFilter=") else {
            continue;
        };
        let (set, names) = match value.strip_prefix('~') {
            Some(names) => (&mut denied, names),
            None => (&mut allowed, value),
        };
        for name in names.split_whitespace() {
            if name.starts_with('@') {
                syscall_group(&groups, name, set);
            } else {
                set.insert(name.to_owned());
            }
        }
    }
    assert!(allowed.len() > 100, "{} calls allowed", allowed.len());
    let allowed: BTreeSet<String> = allowed.difference(&denied).cloned().collect();

    // The calls the proxy makes: the real binary under strace, serving a
    // browser, a crawler, its own documents, metrics and a reload, then
    // stopped as systemd stops it.
    let calls = dir.path().join("calls");
    let calls_arg = calls.display().to_string();
    tool("strace", "apt-get install strace");
    let origin = Origin::start();
    let mut proxy = Proxy::start_wrapped(
        &["strace", "-f", "-qq", "-c", "-o", &calls_arg],
        &origin.url(),
        "",
        "[[rules]]\nname = \"gpt\"\nagent = [\"GPTBot\"]\naction = \"offer\"\n",
        &[],
        &|t| t,
    );
    assert_eq!(proxy.browse("/").status, 200);
    assert_eq!(proxy.get("/films/x", &[("user-agent", GPTBOT)]).status, 402);
    assert_eq!(proxy.get("/robots.txt", &[]).status, 200);
    assert!(proxy.metrics_text().contains("rempart_requests_total"));
    let config = proxy.dir.path().join("rempart.toml");
    let admin = format!("127.0.0.1:{}", proxy.admin);
    let (code, _, err) = run_cli(
        &[
            "reload",
            "--config",
            config.to_str().unwrap(),
            "--admin",
            &admin,
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let pid = std::fs::read_to_string(proxy.dir.path().join("rempart.pid")).unwrap();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .unwrap()
        .success());
    let _ = proxy.child.wait();
    let summary = std::fs::read_to_string(&calls).unwrap();
    let used: BTreeSet<String> = summary
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .filter(|name| {
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .filter(|name| *name != "total" && *name != "syscall")
        .map(str::to_owned)
        .collect();
    assert!(
        used.len() > 20,
        "strace saw {} calls: {summary}",
        used.len()
    );
    let refused: Vec<&String> = used.difference(&allowed).collect();
    assert!(
        refused.is_empty(),
        "the unit's filter would refuse {refused:?}"
    );
    eprintln!(
        "the proxy made {} distinct system calls, all allowed by the unit",
        used.len()
    );
}

#[test]
fn every_alert_fires_when_it_should_and_only_then() {
    // deploy/prometheus/alerts.test.yml: the proxy down, a refused reload
    // (firing while the bad file is the latest), total origin failure at low
    // traffic, a stale JSON range list but not one published as a web page,
    // metering losses, the ledger's disk use.
    let out = tool("promtool", "apt-get install prometheus")
        .args(["test", "rules"])
        .arg(deploy("prometheus/alerts.test.yml"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.contains("SUCCESS"), "{text}");
    let tests = std::fs::read_to_string(deploy("prometheus/alerts.test.yml")).unwrap();
    for alert in [
        "RempartDown",
        "RempartConfigReloadFailed",
        "RempartUpstreamErrors",
        "RempartRangesStale",
        "RempartMeteringLoss",
        "RempartEvidenceDiskUse",
    ] {
        assert!(
            tests.contains(&format!("alertname: {alert}")),
            "{alert} is tested"
        );
    }
}

#[test]
fn the_dashboard_picks_its_data_source_and_instances_and_its_queries_parse() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(deploy("grafana/rempart.json")).unwrap())
            .unwrap();
    let vars: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(vars, ["datasource", "job", "instance"]);
    // Every query, scoped to the chosen job and instances, as a recording
    // rule that promtool must accept.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, panel) in dashboard["panels"].as_array().unwrap().iter().enumerate() {
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "panel {i}");
        for t in panel["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            assert!(
                expr.contains("instance=~\"$instance\""),
                "panel {i}: {expr}"
            );
            let concrete = expr
                .replace("$job", ".*")
                .replace("$instance", ".*")
                .replace("$__range", "1h")
                .replace("$__rate_interval", "1m");
            rules.push_str(&format!(
                "      - record: dashboard:panel{i}\n        expr: {}\n",
                serde_json::to_string(&concrete).unwrap()
            ));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dashboard-rules.yml");
    std::fs::write(&path, rules).unwrap();
    let out = tool("promtool", "apt-get install prometheus")
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
/// The ConfigMap's config: the shipped config/rempart.toml, with what differs
/// in a cluster and nothing else: listeners on all addresses, the origin
/// Service as upstream, the pod network's proxies trusted, a longer drain, the
/// data files by their path in the image (/etc/rempart) and the state under
/// the state volume (/var/lib/rempart; `--state-dir` puts it there anyway).
fn configmap_toml(shipped: &str) -> String {
    let data_dirs = ["agents", "ipranges", "network", "templates"];
    let mut out = String::from(
        "# rempart's shipped configuration (config/rempart.toml), adapted to the cluster.\n",
    );
    // The shipped file's own header speaks of the demo; the cluster's is above.
    let body = shipped.split_once("\n\n").map_or(shipped, |(_, rest)| rest);
    for line in body.lines() {
        let line = match line.trim() {
            "listen = \"127.0.0.1:8080\"" => "listen = \"0.0.0.0:8080\"".to_owned(),
            "listen = \"127.0.0.1:9090\"" => {
                "# Probes and Prometheus reach the pod IP; the Service exposes 8080 only.\nlisten = \"0.0.0.0:9090\"".to_owned()
            }
            "upstream = \"builtin:demo\"" => {
                "upstream = \"http://origin.default.svc.cluster.local:80\"".to_owned()
            }
            "demo_root = \"demo-site\"" => continue,
            "trusted_proxies = []" => "# The pod network in front of rempart (ingress controller): its\n# X-Forwarded-For is believed. Narrow this to your ingress pods' range.\ntrusted_proxies = [\"10.0.0.0/8\"]".to_owned(),
            "grace_period_seconds = 5" => "grace_period_seconds = 10".to_owned(),
            _ => {
                let mut l = line.replace("\"state/", "\"/var/lib/rempart/");
                for d in data_dirs {
                    l = l
                        .replace(&format!("\"{d}/"), &format!("\"/etc/rempart/{d}/"))
                        .replace(&format!("\"{d}\""), &format!("\"/etc/rempart/{d}\""));
                }
                l
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[test]
fn the_configmap_carries_the_shipped_policy() {
    let shipped = std::fs::read_to_string(repo().join("config/rempart.toml")).unwrap();
    let expected_toml = configmap_toml(&shipped);
    // Every change is one of the cluster's: the rules, reservation and
    // behaviour settings are the shipped ones.
    let parsed: toml::Value = toml::from_str(&expected_toml).unwrap();
    let original: toml::Value = toml::from_str(&shipped).unwrap();
    for key in ["rules", "reservation", "rights_holder", "behaviour"] {
        assert_eq!(parsed[key], original[key], "{key}");
    }
    let path = deploy("kubernetes/configmap.yaml");
    let current = std::fs::read_to_string(&path).unwrap();
    let (head, _) = current.split_once("  rempart.toml: |\n").unwrap();
    let mut expected = format!("{head}  rempart.toml: |\n");
    for line in expected_toml.lines() {
        if !line.is_empty() {
            expected.push_str("    ");
            expected.push_str(line);
        }
        expected.push('\n');
    }
    if current != expected {
        // REMPART_WRITE_DEPLOY=1 regenerates the file from config/rempart.toml.
        if std::env::var_os("REMPART_WRITE_DEPLOY").is_some() {
            std::fs::write(&path, &expected).unwrap();
        }
        panic!(
            "deploy/kubernetes/configmap.yaml is not config/rempart.toml adapted to the cluster; \
             regenerate it with REMPART_WRITE_DEPLOY=1 cargo test --locked --test deploy \
             the_configmap_carries_the_shipped_policy. Expected:\n{expected}"
        );
    }
}
