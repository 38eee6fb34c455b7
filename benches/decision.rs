//! The decision path — the canonical request read from the head, then
//! `rempart::decide::decide`, the one function the proxy and `classify` use —
//! against the full shipped catalogue and every range file, on a realistic
//! mix of requests.
//!
//! Two groups: `decision` with behaviour off (identity, own documents,
//! policy, licence and payment steps, the answer), and `decision-behaviour`
//! with the shipped behaviour on, each browser request from one of 4,096
//! clients (a crowd, so that no viewer is rate-limited) and each crawler
//! from its own address (so its state is that of a crawler that keeps
//! coming: verified AI crawlers end up refused for persisting). Criterion reports
//! nanoseconds per request; a counting allocator reports heap allocations
//! per request, printed before the timings.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rempart::decide::{decide_read, LocalState};
use rempart::request::{Received, Request};
use rempart::snapshot::Snapshot;

/// Counts allocations (not frees) made through the global allocator.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Sample {
    kind: &'static str,
    req: http::request::Parts,
    peer: IpAddr,
}

fn sample(kind: &'static str, ua: &str, ip: &str, path: &str) -> Sample {
    let (req, ()) = http::Request::builder()
        .uri(path)
        .header("host", "www.catalogue-demo.example")
        .header("user-agent", ua)
        .header(
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )
        .header("accept-language", "fr-FR,fr;q=0.9,en;q=0.8")
        .header("accept-encoding", "gzip, deflate, br")
        .body(())
        .expect("request")
        .into_parts();
    Sample {
        kind,
        req,
        peer: ip.parse().expect("ip"),
    }
}

fn mix() -> Vec<Sample> {
    vec![
        sample("browser", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "203.0.113.10", "/films/la-traversee"),
        sample("browser", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", "198.51.100.20", "/series/les-veilleurs/saison-1"),
        sample("browser", "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "2001:db8::42", "/assets/app.js"),
        // Each browser loads assets with its pages, as people do (a header
        // fingerprint that only fetches pages is a fleet: `fingerprint-spike`).
        sample("browser", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "203.0.113.10", "/assets/app.css"),
        sample("browser", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", "198.51.100.20", "/img/poster.jpg"),
        sample("ai-crawler", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)", "132.196.86.1", "/films/la-traversee"),
        sample("ai-crawler", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)", "203.0.113.99", "/films/la-traversee"),
        sample("ai-crawler", "CCBot/2.0 (https://commoncrawl.org/faq/)", "18.97.9.168", "/catalogue?page=12"),
        sample("search-engine", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "66.249.66.1", "/films/la-traversee"),
        sample("search-engine", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36", "157.55.39.1", "/"),
        sample("tool", "curl/8.5.0", "192.0.2.7", "/api/films.json"),
        sample("tool", "python-requests/2.32.3", "192.0.2.8", "/films/%6ca-traversee"),
    ]
}

fn snapshot(behaviour: bool) -> Snapshot {
    let mut snap =
        Snapshot::load_offline(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rempart.toml"))
            .expect("shipped config");
    snap.behaviour.enabled = behaviour;
    snap
}

/// One client of a crowd: a browser's address with its last bits varied.
/// Crawlers keep their own address (their operators' ranges verify it).
fn client(s: &Sample, n: u32) -> IpAddr {
    if s.kind != "browser" {
        return s.peer;
    }
    match s.peer {
        IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & !0xfff | (n & 0xfff)).into()),
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !0xfff | u128::from(n & 0xfff)).into()),
    }
}

fn decide(snap: &Snapshot, local: &LocalState, s: &Sample, n: u32) -> rempart::model::Action {
    let received = Received::of(&s.req, client(s, n), 1_800_000_000_000 + u64::from(n));
    let read = Request::read(received, &snap.trusted, snap.read);
    decide_read(snap, &local.state(), &read).action
}

fn allocations_per_request(snap: &Snapshot, local: &LocalState, samples: &[&Sample]) -> f64 {
    const N: u32 = 10_000;
    // Warm up any lazily built state first.
    for (i, s) in samples.iter().enumerate() {
        black_box(decide(snap, local, s, i as u32));
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for n in 0..N {
        for s in samples {
            black_box(decide(snap, local, black_box(s), n));
        }
    }
    (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / (N as f64 * samples.len() as f64)
}

fn group(c: &mut Criterion, name: &str, behaviour: bool) {
    let snap = snapshot(behaviour);
    let local = LocalState::new(&snap);
    let all = mix();
    let kinds = ["browser", "ai-crawler", "search-engine", "tool"];
    println!("allocations per request ({name}):");
    for kind in kinds {
        let samples: Vec<&Sample> = all.iter().filter(|s| s.kind == kind).collect();
        println!(
            "  {kind:<14} {:.2}",
            allocations_per_request(&snap, &local, &samples)
        );
    }
    let everything: Vec<&Sample> = all.iter().collect();
    println!(
        "  {:<14} {:.2}",
        "mix",
        allocations_per_request(&snap, &local, &everything)
    );
    // What is measured: a person's browser goes upstream, warm state or not.
    for s in all.iter().filter(|s| s.kind == "browser") {
        let action = decide(&snap, &local, s, 7);
        assert_eq!(
            action,
            rempart::model::Action::Allow,
            "{name}: a browser sample is answered {action:?}: {:?}",
            s.req.uri
        );
    }
    let mut group = c.benchmark_group(name);
    let mut n = 0u32;
    for kind in kinds.into_iter().chain(["mix"]) {
        let samples: Vec<&Sample> = match kind {
            "mix" => everything.clone(),
            k => all.iter().filter(|s| s.kind == k).collect(),
        };
        group.throughput(Throughput::Elements(samples.len() as u64));
        group.bench_function(kind, |b| {
            b.iter(|| {
                n = n.wrapping_add(1);
                for s in &samples {
                    black_box(decide(&snap, &local, black_box(s), n));
                }
            })
        });
    }
    group.finish();
}

/// The shipped config with one more rule first: every browser page is
/// challenged (behaviour off, so only the challenge's own cost shows).
fn challenging() -> Snapshot {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rempart.toml");
    let text = std::fs::read_to_string(&path).expect("shipped config").replacen(
        "[[rules]]",
        "[[rules]]\nname = \"challenge-browsers\"\nidentity = [\"browser\"]\naction = \"challenge\"\n\n[[rules]]",
        1,
    );
    let config = rempart::config::Config::parse(&path, text).expect("config");
    let opts = rempart::snapshot::CompileOptions {
        demo_origin: None,
        offline: true,
    };
    let mut snap = Snapshot::compile(&config, &opts).expect("snapshot");
    snap.behaviour.enabled = false;
    snap
}

/// The challenge's three costs, at one fixed time (so that nonces and
/// passes stay valid): issuing the interstitial (a nonce, the page filled),
/// checking an answer at the verification path (the nonce's mac, one
/// SHA-256, a pass minted), and a page let through on a pass (the cookie
/// found in the header scan, its mac checked), against the same client's
/// asset (no challenge, no pass) as the baseline.
fn challenge_group(c: &mut Criterion) {
    const NOW: u64 = 1_800_000_000_000;
    let snap = challenging();
    let local = LocalState::new(&snap);
    let browser = &mix()[0];
    let ua = browser.req.headers["user-agent"].to_str().expect("ua");
    let with = |path: &str, cookie: Option<&str>| {
        let mut b = http::Request::builder()
            .uri(path)
            .header("host", "www.catalogue-demo.example")
            .header("user-agent", ua)
            .header("accept", "text/html");
        if let Some(c) = cookie {
            b = b.header("cookie", c);
        }
        b.body(()).expect("request").into_parts().0
    };
    let run = |p: &http::request::Parts| {
        let read = Request::read(Received::of(p, browser.peer, NOW), &snap.trusted, snap.read);
        decide_read(&snap, &local.state(), &read)
    };
    let page = with("/films/la-traversee", None);
    let nonce = {
        let read = Request::read(
            Received::of(&page, browser.peer, NOW),
            &snap.trusted,
            snap.read,
        );
        snap.challenge.nonce(&read.expect("request"))
    };
    let answer = rempart::challenge::pow::solve(nonce.as_bytes(), snap.challenge.difficulty);
    let verify = with(
        &format!("/.well-known/rempart/challenge?n={nonce}&a={answer}&r=%2Ffilms%2Fla-traversee"),
        None,
    );
    let cookie = match &run(&verify).answer {
        rempart::decide::Answer::Respond { extra, .. } => extra
            .iter()
            .find(|(k, _)| *k == "set-cookie")
            .and_then(|(_, v)| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .expect("a pass")
            .to_owned(),
        rempart::decide::Answer::Upstream => panic!("the verification answers itself"),
    };
    let passing = with("/films/la-traversee", Some(&cookie));
    // The baseline: the same client's asset, which no challenge concerns.
    let asset = with("/assets/app.js", None);
    assert_eq!(run(&page).status(), Some(403));
    assert_eq!(
        run(&passing).status(),
        None,
        "the pass lets the page through"
    );
    let mut group = c.benchmark_group("decision-challenge");
    group.throughput(Throughput::Elements(1));
    group.bench_function("issue", |b| b.iter(|| black_box(run(black_box(&page)))));
    group.bench_function("verify-answer", |b| {
        b.iter(|| black_box(run(black_box(&verify))))
    });
    group.bench_function("pass", |b| b.iter(|| black_box(run(black_box(&passing)))));
    group.bench_function("asset", |b| b.iter(|| black_box(run(black_box(&asset)))));
    group.finish();
}

/// What the signals of the fingerprint and the network table cost: the
/// whole mix with the shipped behaviour, then without the header
/// fingerprints, then without the network table.
fn signals_group(c: &mut Criterion) {
    let shipped = snapshot(true);
    let mut no_fingerprint = snapshot(true);
    no_fingerprint.behaviour.fingerprint.enabled = false;
    let mut no_network = snapshot(true);
    no_network.network = std::sync::Arc::new(rempart::identify::network::NetworkTable::empty());
    let all = mix();
    let mut group = c.benchmark_group("decision-signals");
    group.throughput(Throughput::Elements(all.len() as u64));
    for (name, snap) in [
        ("shipped", &shipped),
        ("without-fingerprint", &no_fingerprint),
        ("without-network", &no_network),
    ] {
        let local = LocalState::new(snap);
        let mut n = 0u32;
        group.bench_function(name, |b| {
            b.iter(|| {
                n = n.wrapping_add(1);
                for s in &all {
                    black_box(decide(snap, &local, black_box(s), n));
                }
            })
        });
    }
    group.finish();
}

fn bench(c: &mut Criterion) {
    group(c, "decision", false);
    group(c, "decision-behaviour", true);
    signals_group(c);
    challenge_group(c);
}

criterion_group!(benches, bench);
criterion_main!(benches);
