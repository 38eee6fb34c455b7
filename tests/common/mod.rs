//! Test harness: a real HTTP origin, the real `rempart` binary in front of it,
//! and a real HTTP client. Everything listens on loopback.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
/// What a browser sends beside its user agent on every request (a Chrome
/// user agent without them is another client: `header-mismatch`).
pub const BROWSER_ACCEPT: (&str, &str) = ("accept", "text/html,application/xhtml+xml,*/*;q=0.8");
pub const BROWSER_LANGUAGE: (&str, &str) = ("accept-language", "fr-FR,fr;q=0.9");
pub const GPTBOT: &str = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)";
pub const GOOGLEBOT: &str =
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
/// An address in the shipped gptbot.json ranges.
pub const GPTBOT_IP: &str = "132.196.86.1";
/// An address in the shipped googlebot.json (common crawlers) ranges.
pub const GOOGLEBOT_IP: &str = "66.249.66.1";

/// Debian's Chromium (or another Chromium on `PATH`), for the browser tests.
pub fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

/// The flags every headless Chromium of these tests starts with (each also
/// gets a profile directory of its own).
pub const HEADLESS: [&str; 6] = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-extensions",
];

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_rempart")
}

/// A free loopback port (bound then released).
/// A port no other test of this binary has been given, free right now.
///
/// Asking the kernel for port 0 and releasing it lets two tests running in
/// parallel be handed the same port (one proxy's admin listener then answers
/// for another's). Ports come instead from a range below the kernel's
/// ephemeral ones, a block per process, each handed out once.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let block = 20_000 + (std::process::id() % 120) * 100;
    for _ in 0..100 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed) % 100;
        let port = u16::try_from(block + n).expect("port range");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A request as the origin saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub headers: HashMap<String, String>,
}

/// A real HTTP origin (tiny_http) serving a fixed page, recording requests.
pub struct Origin {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    server: Arc<tiny_http::Server>,
}

pub const ORIGIN_BODY: &str =
    "<!doctype html><title>origin</title><h1>Film page from the origin</h1>";

/// The hidden honeypot link the shipped config adds to HTML pages.
pub const HONEYPOT_LINK: &str = "<a href=\"/catalogue-integral/\" rel=\"nofollow\" style=\"display:none\" aria-hidden=\"true\" tabindex=\"-1\">catalogue</a>";

/// The origin's page as a browser gets it through the shipped config.
pub fn page_with_link() -> String {
    format!("{ORIGIN_BODY}{HONEYPOT_LINK}")
}

impl Origin {
    pub fn start() -> Self {
        Self::start_with_headers(&[])
    }

    /// An origin that adds these headers to every response.
    pub fn start_with_headers(extra: &[(&str, &str)]) -> Self {
        Self::start_full(extra, &[])
    }

    /// An origin with its own answers for some paths: (path, status, body).
    pub fn start_full(extra: &[(&str, &str)], routes: &[(&str, u16, &str)]) -> Self {
        Self::start_at("127.0.0.1:0", extra, routes)
    }

    /// [`Origin::start_full`] on a given address (another loopback address,
    /// the port of another origin).
    pub fn start_at(bind: &str, extra: &[(&str, &str)], routes: &[(&str, u16, &str)]) -> Self {
        let routes: Vec<(String, u16, String)> = routes
            .iter()
            .map(|(p, s, b)| (p.to_string(), *s, b.to_string()))
            .collect();
        let extra: Vec<tiny_http::Header> = extra
            .iter()
            .map(|(k, v)| tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap())
            .collect();
        let server = Arc::new(tiny_http::Server::http(bind).expect("origin bind"));
        let addr = server.server_addr().to_ip().expect("ip addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        for _ in 0..4 {
            let server = server.clone();
            let seen = seen.clone();
            let extra = extra.clone();
            let routes = routes.clone();
            thread::spawn(move || {
                for req in server.incoming_requests() {
                    let headers = req
                        .headers()
                        .iter()
                        .map(|h| {
                            (
                                h.field.as_str().as_str().to_ascii_lowercase(),
                                h.value.as_str().to_owned(),
                            )
                        })
                        .collect();
                    seen.lock().unwrap().push(Seen {
                        path: req.url().to_owned(),
                        headers,
                    });
                    let (status, body) = routes
                        .iter()
                        .find(|(p, _, _)| p == req.url())
                        .map_or((200, ORIGIN_BODY.to_owned()), |(_, s, b)| (*s, b.clone()));
                    let ctype =
                        if req.url() == "/robots.txt" && status == 200 && body != ORIGIN_BODY {
                            "text/plain"
                        } else {
                            "text/html; charset=utf-8"
                        };
                    let mut resp = tiny_http::Response::from_string(body)
                        .with_status_code(status)
                        .with_header(tiny_http::Header::from_bytes("content-type", ctype).unwrap());
                    for h in &extra {
                        resp.add_header(h.clone());
                    }
                    let _ = req.respond(resp);
                }
            });
        }
        Self { addr, seen, server }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The last request, not counting rempart's own robots.txt fetches.
    pub fn last(&self) -> Option<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|s| s.path != "/robots.txt")
            .cloned()
    }

    /// Requests seen, not counting rempart's own robots.txt fetches.
    pub fn count(&self) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path != "/robots.txt")
            .count()
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

/// Writes a config using the shipped catalogue, ranges and templates.
/// A config edit that adds one more catalogue file after the shipped ones.
pub fn with_catalogue(extra: &Path) -> impl Fn(String) -> String + '_ {
    move |text| {
        text.replace(
            "/agents/curated.toml\"]",
            &format!("/agents/curated.toml\", \"{}\"]", extra.display()),
        )
    }
}

pub fn write_config(
    dir: &Path,
    upstream: &str,
    listen: u16,
    admin: u16,
    extra_server: &str,
    rules: &str,
) -> PathBuf {
    let cfg = repo().join("config");
    let text = format!(
        r#"[server]
listen = "127.0.0.1:{listen}"
upstream = "{upstream}"
threads = 1
demo_root = "{cfg}/demo-site"
pid_file = "{dir}/rempart.pid"
upgrade_sock = "{dir}/rempart.sock"
upstream_connect_timeout_ms = 1000
{extra_server}

[admin]
listen = "127.0.0.1:{admin}"

[catalog]
agents = ["{cfg}/agents/ai-robots.toml", "{cfg}/agents/curated.toml"]
ranges_dir = "{cfg}/ipranges"
ai_referrers = "{cfg}/agents/ai-referrers.toml"

[rights_holder]
name = "Test Rights SAS"
contact = "licences@test.example"
terms_url = "https://test.example/terms"

[responses]
templates_dir = "{cfg}/templates"

{rules}
"#,
        cfg = cfg.display(),
        dir = dir.display(),
    );
    let path = dir.join("rempart.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// The shipped default rules (the same text as config/rempart.toml).
pub fn default_rules() -> String {
    let text = std::fs::read_to_string(repo().join("config/rempart.toml")).expect("shipped config");
    let start = text.find("[[rules]]").expect("rules in shipped config");
    text[start..].to_owned()
}

/// A running `rempart run` process.
pub struct Proxy {
    pub child: Child,
    pub port: u16,
    pub admin: u16,
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
}

impl Proxy {
    /// Starts rempart in front of `upstream` with the shipped default rules.
    pub fn start(upstream: &str) -> Self {
        Self::start_with(upstream, "", &default_rules())
    }

    pub fn start_with(upstream: &str, extra_server: &str, rules: &str) -> Self {
        Self::start_args(upstream, extra_server, rules, &[])
    }

    /// [`Proxy::start_with`] with more `rempart run` arguments.
    pub fn start_args(upstream: &str, extra_server: &str, rules: &str, args: &[&str]) -> Self {
        Self::start_edited(upstream, extra_server, rules, args, &|text| text)
    }

    /// [`Proxy::start_args`] with the written config text edited first.
    pub fn start_edited(
        upstream: &str,
        extra_server: &str,
        rules: &str,
        args: &[&str],
        edit: &dyn Fn(String) -> String,
    ) -> Self {
        Self::start_wrapped(&[], upstream, extra_server, rules, args, edit)
    }

    /// [`Proxy::start_edited`] with the binary run under another program
    /// (`wrapper` is its command line, the proxy's follows).
    pub fn start_wrapped(
        wrapper: &[&str],
        upstream: &str,
        extra_server: &str,
        rules: &str,
        args: &[&str],
        edit: &dyn Fn(String) -> String,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (port, admin) = (free_port(), free_port());
        let config = write_config(dir.path(), upstream, port, admin, extra_server, rules);
        let text = std::fs::read_to_string(&config).expect("config");
        std::fs::write(&config, edit(text)).expect("edited config");
        let log = dir.path().join("rempart.log");
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(bin());
                c
            }
            None => Command::new(bin()),
        };
        let child = command
            .args(["run", "--config"])
            .arg(&config)
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn rempart");
        let proxy = Self {
            child,
            port,
            admin,
            dir,
            log,
        };
        proxy.wait_ready();
        proxy
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let health = http_get(&format!("http://127.0.0.1:{}/healthz", self.admin), &[]);
            // rempart's own answer, not another server's on the same port.
            let admin_up = health.status == 200 && health.body == "ok\n";
            if admin_up && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "rempart did not start: {}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// The evidence ledger directory of the test config.
    pub fn evidence_dir(&self) -> PathBuf {
        self.dir.path().join("state/evidence")
    }

    /// Waits until the ledger holds `n` request records (or 10 s), and returns them all.
    pub fn wait_records(&self, n: usize) -> Vec<serde_json::Value> {
        wait_records(&self.evidence_dir(), n)
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        http_get(&self.url(path), headers)
    }

    /// A person's Chrome asking for `path`: its user agent and the Accept
    /// headers every browser sends.
    pub fn browse(&self, path: &str) -> Resp {
        self.get(
            path,
            &[("user-agent", CHROME), BROWSER_ACCEPT, BROWSER_LANGUAGE],
        )
    }

    /// The value of one metric series, 0 if absent.
    pub fn metric(&self, series: &str) -> f64 {
        let body = http_get(&format!("http://127.0.0.1:{}/metrics", self.admin), &[]).body;
        metric_value(&body, series)
    }

    /// The value of one metric series once it reads `expected` (or after
    /// 5 s, whatever it reads then): a response is counted in pingora's
    /// logging phase, which may run just after the client has the response.
    pub fn wait_metric(&self, series: &str, expected: f64) -> f64 {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let value = self.metric(series);
            if value == expected || std::time::Instant::now() > deadline {
                return value;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub fn metrics_text(&self) -> String {
        http_get(&format!("http://127.0.0.1:{}/metrics", self.admin), &[]).body
    }

    /// Sends raw bytes and returns the raw answer (until close or timeout).
    pub fn raw(&self, request: &[u8]) -> String {
        raw_exchange(self.port, request)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn raw_exchange(port: u16, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    stream.write_all(request).expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                // One response is enough: stop once headers and body are in.
                if response_complete(&out) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn response_complete(buf: &[u8]) -> bool {
    let text = String::from_utf8_lossy(buf);
    let Some(head_end) = text.find("\r\n\r\n") else {
        return false;
    };
    let head = text[..head_end].to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    match len {
        Some(n) => buf.len() >= head_end + 4 + n,
        None => false,
    }
}

/// Finds `name{labels} value` in Prometheus text.
pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// A response, whatever its status.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    /// First value of each header (lower-case names).
    pub headers: HashMap<String, String>,
    /// Every value of every header, in order.
    pub all: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn values(&self, name: &str) -> Vec<&str> {
        self.all
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

pub fn http_get(url: &str, headers: &[(&str, &str)]) -> Resp {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .redirects(0)
        .build();
    let mut req = agent.get(url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => {
            return Resp {
                status: 0,
                headers: HashMap::new(),
                all: Vec::new(),
                body: e.to_string(),
            }
        }
    };
    let status = resp.status();
    let names = resp.headers_names();
    let headers = names
        .iter()
        .filter_map(|n| {
            resp.header(n)
                .map(|v| (n.to_ascii_lowercase(), v.to_owned()))
        })
        .collect();
    let mut all = Vec::new();
    let mut done = std::collections::HashSet::new();
    for n in &names {
        if done.insert(n.to_ascii_lowercase()) {
            for v in resp.all(n) {
                all.push((n.to_ascii_lowercase(), v.to_owned()));
            }
        }
    }
    let body = resp.into_string().unwrap_or_default();
    Resp {
        status,
        headers,
        all,
        body,
    }
}

/// Runs the rempart binary to completion.
pub fn run_cli(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rempart");
    {
        let mut input = child.stdin.take().expect("stdin");
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).expect("write stdin");
        }
    }
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A byte-level HTTP/1.1 origin that accepts any header bytes (tiny_http
/// rejects non-UTF-8 headers, as some real origins do) and records the raw
/// request heads it received.
pub struct RawOrigin {
    pub addr: SocketAddr,
    pub heads: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl RawOrigin {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let heads = Arc::new(Mutex::new(Vec::new()));
        let h = heads.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let h = h.clone();
                thread::spawn(move || {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            h.lock().unwrap().push(buf[..end].to_vec());
                            buf.drain(..end + 4);
                            if stream
                                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                                .is_err()
                            {
                                return;
                            }
                        }
                        match stream.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                });
            }
        });
        Self { addr, heads }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn last_head(&self) -> Vec<u8> {
        self.heads
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_default()
    }
}

/// A config for `check`: the shipped rules plus `extra`, then `edit` applied
/// to the whole text. Returns the directory (kept alive) and the path.
pub fn config_for_check(
    extra: &str,
    edit: impl FnOnce(String) -> String,
) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(
        dir.path(),
        "http://127.0.0.1:9",
        free_port(),
        free_port(),
        "",
        &format!("{}\n{extra}", default_rules()),
    );
    let text = std::fs::read_to_string(&path).expect("config");
    std::fs::write(&path, edit(text)).expect("write config");
    let p = path.display().to_string();
    (dir, p)
}

/// Every record of a ledger directory, in order.
pub fn ledger_records(dir: &Path) -> Vec<serde_json::Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "jsonl"));
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect::<Vec<serde_json::Value>>()
        })
        .collect()
}

/// Waits until `dir` holds `n` request records (or 10 s); returns every record.
pub fn wait_records(dir: &Path, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let all = ledger_records(dir);
        let requests = all.iter().filter(|r| r["type"] == "request").count();
        if requests >= n || Instant::now() > deadline {
            return all;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The request records only.
pub fn requests(records: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    records.iter().filter(|r| r["type"] == "request").collect()
}

/// An origin for load tests: a thread per connection, keep-alive, the same
/// page for every GET. (tiny_http can leave a connection waiting for seconds
/// under 64 concurrent keep-alive clients; this one never does.)
pub struct LoadOrigin {
    pub port: u16,
}

impl LoadOrigin {
    pub fn start() -> Self {
        use std::io::{BufRead, BufReader, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                thread::spawn(move || {
                    let _ = conn.set_nodelay(true);
                    let mut out = match conn.try_clone() {
                        Ok(c) => c,
                        Err(_) => return,
                    };
                    let mut reader = BufReader::new(conn);
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\r\n{ORIGIN_BODY}",
                        ORIGIN_BODY.len()
                    );
                    loop {
                        let mut line = String::new();
                        // Request line and headers, up to the blank line.
                        let mut first = true;
                        loop {
                            line.clear();
                            match reader.read_line(&mut line) {
                                Ok(0) | Err(_) => return,
                                Ok(_) if line == "\r\n" && !first => break,
                                Ok(_) => first = false,
                            }
                        }
                        if out.write_all(response.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}
