//! The container image, built and run for real: deploy/docker/Dockerfile's
//! runtime stage over a minimal base made here (the binary's shared
//! libraries, a non-root user, /tmp), with the binary the test suite has
//! already built in place of the build stage, since no registry is reachable
//! from the test suite. The container runs read-only, as uid 65532, with a fresh named
//! volume for its state, in front of a real origin on the host.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// `docker` with a running daemon, or None (and a printed reason) outside CI;
/// under CI=true a missing daemon fails the test (.ci/run starts one).
fn docker_or_skip(test: &str) -> bool {
    let answers = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !answers {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true and no container daemon answers `docker info`: .ci/run installs and starts it"
        );
        println!("SKIPPED {test}: no container daemon answers `docker info`");
    }
    answers
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Removes what the test created, whatever happens.
struct Cleanup {
    containers: Vec<String>,
    images: Vec<String>,
    volumes: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = Command::new("docker").args(["rm", "-f", "-v", c]).output();
        }
        for v in &self.volumes {
            let _ = Command::new("docker")
                .args(["volume", "rm", "-f", v])
                .output();
        }
        for i in &self.images {
            let _ = Command::new("docker").args(["rmi", "-f", i]).output();
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// The shared libraries the binary loads, from `ldd`.
fn shared_libraries(binary: &str) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(binary).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let path = l.split("=>").last()?.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// A minimal base in the spirit of distroless/cc: the libraries, a non-root
/// user 65532 and a /tmp, nothing else (no shell).
fn build_base(tag: &str, dir: &Path) {
    let root = dir.join("root");
    for lib in shared_libraries(bin()) {
        let dest = root.join(lib.strip_prefix("/").unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&lib, dest).unwrap();
    }
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\nnonroot:x:65532:\n").unwrap();
    std::fs::write(root.join("etc/nsswitch.conf"), "hosts: files dns\n").unwrap();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    std::fs::create_dir_all(root.join("home/nonroot")).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY root/ /\nUSER 65532:65532\n",
    )
    .unwrap();
    docker(&["build", "-q", "-t", tag, dir.to_str().unwrap()]);
}

/// An image holding the test suite's binary at /out/rempart and an empty /out/state.
fn build_prebuilt(tag: &str, dir: &Path) {
    std::fs::create_dir_all(dir.join("out/state")).unwrap();
    std::fs::copy(bin(), dir.join("out/rempart")).unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY out /out\n").unwrap();
    docker(&["build", "-q", "-t", tag, dir.to_str().unwrap()]);
}

/// The build context: the repository's config and .dockerignore, plus state
/// a careless build would copy (a ledger and the address key under config/state).
fn build_context(dir: &Path) {
    copy_dir(&repo().join("config"), &dir.join("config"));
    std::fs::copy(repo().join(".dockerignore"), dir.join(".dockerignore")).unwrap();
    std::fs::create_dir_all(dir.join("config/state/evidence")).unwrap();
    std::fs::write(dir.join("config/state/evidence-ip-key"), [7u8; 32]).unwrap();
    std::fs::write(dir.join("config/state/evidence/ledger.jsonl"), "{}\n").unwrap();
}

/// An origin every container can reach (on all host addresses).
fn open_origin() -> (std::sync::Arc<tiny_http::Server>, u16) {
    let server = std::sync::Arc::new(tiny_http::Server::http("0.0.0.0:0").unwrap());
    let port = server.server_addr().to_ip().unwrap().port();
    for _ in 0..2 {
        let s = server.clone();
        std::thread::spawn(move || {
            for req in s.incoming_requests() {
                let resp = tiny_http::Response::from_string(ORIGIN_BODY).with_header(
                    tiny_http::Header::from_bytes("content-type", "text/html; charset=utf-8")
                        .unwrap(),
                );
                let _ = req.respond(resp);
            }
        });
    }
    (server, port)
}

/// Whether `ok` held within `timeout`.
fn wait_for(timeout: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !ok() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    true
}

fn uid_of_pid(pid: &str) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn the_image_runs_read_only_as_non_root_and_keeps_its_ledger_on_a_volume() {
    if !docker_or_skip("the_image_runs_read_only_as_non_root_and_keeps_its_ledger_on_a_volume") {
        return;
    }
    let started = Instant::now();
    let id = format!("rempart-test-{}", std::process::id());
    let (base, prebuilt, image, volume) = (
        format!("{id}-base"),
        format!("{id}-binary"),
        format!("{id}-image"),
        format!("{id}-state"),
    );
    let mut cleanup = Cleanup {
        containers: vec![id.clone()],
        images: vec![image.clone(), prebuilt.clone(), base.clone()],
        volumes: vec![volume.clone()],
    };
    let work = tempfile::tempdir().unwrap();
    build_base(&base, &work.path().join("base"));
    build_prebuilt(&prebuilt, &work.path().join("binary"));
    let context = work.path().join("context");
    build_context(&context);
    // deploy/docker/Dockerfile with its build stage, and only it, replaced by
    // the image holding the prebuilt binary.
    let dockerfile = std::fs::read_to_string(repo().join("deploy/docker/Dockerfile")).unwrap();
    let start = dockerfile.find("FROM ${BUILD_IMAGE} AS build\n").unwrap();
    let end = start + dockerfile[start..].find("\nFROM ").unwrap() + 1;
    let test_dockerfile = format!(
        "{}FROM {prebuilt} AS build\n\n{}",
        &dockerfile[..start],
        &dockerfile[end..]
    );
    assert!(test_dockerfile.contains("FROM ${RUNTIME_IMAGE} AS runtime"));
    let test_dockerfile_path = work.path().join("Dockerfile");
    std::fs::write(&test_dockerfile_path, test_dockerfile).unwrap();
    docker(&[
        "build",
        "-q",
        "--build-arg",
        &format!("RUNTIME_IMAGE={base}"),
        "-f",
        test_dockerfile_path.to_str().unwrap(),
        "-t",
        &image,
        context.to_str().unwrap(),
    ]);

    // What the image declares.
    assert_eq!(
        docker(&["inspect", "--format", "{{.Config.User}}", &image]),
        "65532:65532"
    );
    let cmd = docker(&["inspect", "--format", "{{json .Config.Cmd}}", &image]);
    assert!(cmd.contains("\"--log-json\""), "{cmd}");
    let volumes = docker(&["inspect", "--format", "{{json .Config.Volumes}}", &image]);
    assert!(volumes.contains("/var/lib/rempart"), "{volumes}");
    // No state from the build context in the image: export its file system.
    let probe = docker(&["create", &image]);
    cleanup.containers.push(probe.clone());
    let tar = work.path().join("fs.tar");
    docker(&["export", "-o", tar.to_str().unwrap(), &probe]);
    let listing = Command::new("tar")
        .args(["--numeric-owner", "-tvf"])
        .arg(&tar)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    assert!(listing.contains(" etc/rempart/rempart.toml"), "{listing}");
    assert!(
        !listing.contains("etc/rempart/state"),
        "the build context's state entered the image"
    );
    assert!(
        !listing.contains("evidence-ip-key"),
        "an address key entered the image"
    );
    let state_dir = listing
        .lines()
        .find(|l| l.ends_with(" var/lib/rempart/"))
        .unwrap_or_else(|| panic!("no /var/lib/rempart in the image: {listing}"));
    assert!(state_dir.contains(" 65532/65532 "), "{state_dir}");

    // Run it read-only, as its own user, with a fresh named volume.
    let (_origin, origin_port) = open_origin();
    let (port, admin) = (free_port(), free_port());
    docker(&["volume", "create", &volume]);
    // The host, as the container sees it.
    let upstream = format!("http://origin.host:{origin_port}");
    let run = |name: &str| {
        docker(&[
            "run",
            "-d",
            "--name",
            name,
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--add-host",
            "origin.host:host-gateway",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges:true",
            "-p",
            &format!("127.0.0.1:{port}:8080"),
            "-p",
            &format!("127.0.0.1:{admin}:9090"),
            "-v",
            &format!("{volume}:/var/lib/rempart"),
            &image,
            "run",
            "--log-json",
            "--config",
            "/etc/rempart/rempart.toml",
            "--upstream",
            &upstream,
            "--listen",
            "0.0.0.0:8080",
            "--admin",
            "0.0.0.0:9090",
            "--state-dir",
            "/var/lib/rempart",
        ])
    };
    run(&id);
    let logs = || {
        let out = Command::new("docker").args(["logs", &id]).output().unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let ready = || http_get(&format!("http://127.0.0.1:{admin}/readyz"), &[]).status == 200;
    let site = format!("http://127.0.0.1:{port}");
    let check_traffic = || {
        assert!(
            wait_for(Duration::from_secs(60), ready),
            "never ready:\n{}",
            logs()
        );
        let page = http_get(
            &format!("{site}/films/x"),
            &[("user-agent", CHROME), BROWSER_ACCEPT, BROWSER_LANGUAGE],
        );
        assert_eq!(page.status, 200, "{}\n{}", page.body, logs());
        assert!(
            page.body.contains("Film page from the origin"),
            "{}",
            page.body
        );
        let bot = http_get(&format!("{site}/films/x"), &[("user-agent", GPTBOT)]);
        assert_eq!(bot.status, 402, "{}\n{}", bot.body, logs());
    };
    check_traffic();

    // Non-root, seen from the host.
    let pid = docker(&["inspect", "--format", "{{.State.Pid}}", &id]);
    let uid = uid_of_pid(&pid);
    assert_eq!(uid, 65532, "the container's process runs as uid {uid}");
    // The image's own health check turns healthy.
    let health = || docker(&["inspect", "--format", "{{.State.Health.Status}}", &id]);
    assert!(
        wait_for(Duration::from_secs(60), || health() == "healthy"),
        "health {}: {}",
        health(),
        docker(&["inspect", "--format", "{{json .State.Health}}", &id])
    );
    // JSON log lines.
    let log = logs();
    assert!(
        log.lines()
            .any(|l| l.starts_with('{') && serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "{log}"
    );

    // The ledger is on the volume, written by the non-root user (the
    // refused GPTBot request is recorded), and survives a restart.
    let mountpoint = PathBuf::from(docker(&[
        "volume",
        "inspect",
        "--format",
        "{{.Mountpoint}}",
        &volume,
    ]));
    let ledger = mountpoint.join("evidence");
    let before = requests(&wait_records(&ledger, 1)).len();
    assert!(
        before >= 1,
        "{before} request records on the volume\n{}",
        logs()
    );
    docker(&["restart", "-t", "10", &id]);
    check_traffic();
    let after = requests(&wait_records(&ledger, before + 1)).len();
    assert!(after > before, "{before} then {after} request records");
    docker(&["stop", "-t", "10", &id]);
    let (code, out, err) = run_cli(&["evidence", "verify", ledger.to_str().unwrap()], None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("intact: ") && !out.contains("no records"),
        "{out}"
    );
    println!(
        "container test: {after} request records kept across a restart, {:.0} s",
        started.elapsed().as_secs_f64()
    );
}
