//! The decision path (request facts → identify → decide) against the full
//! shipped catalogue and every range file, on a realistic mix of requests.
//!
//! Criterion reports nanoseconds per request for each kind; a counting
//! allocator reports heap allocations per request, printed before the
//! timings. The behaviour stage that follows is measured on its own in
//! `benches/behaviour.rs`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rempart::facts::RequestFacts;
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
        sample("ai-crawler", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)", "132.196.86.1", "/films/la-traversee"),
        sample("ai-crawler", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)", "203.0.113.99", "/films/la-traversee"),
        sample("ai-crawler", "CCBot/2.0 (https://commoncrawl.org/faq/)", "18.97.9.168", "/catalogue?page=12"),
        sample("search-engine", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "66.249.66.1", "/films/la-traversee"),
        sample("search-engine", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36", "157.55.39.1", "/"),
        sample("tool", "curl/8.5.0", "192.0.2.7", "/api/films.json"),
        sample("tool", "python-requests/2.32.3", "192.0.2.8", "/films/%6ca-traversee"),
    ]
}

fn snapshot() -> Snapshot {
    Snapshot::load_offline(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rempart.toml"))
        .expect("shipped config")
}

fn decide(snap: &Snapshot, s: &Sample) -> rempart::model::Action {
    let facts = RequestFacts::from_parts(
        &s.req.method,
        &s.req.uri,
        &s.req.headers,
        s.peer,
        &snap.trusted,
    );
    snap.evaluate(&facts).decision.action
}

fn allocations_per_request(snap: &Snapshot, samples: &[&Sample]) -> f64 {
    const N: u64 = 10_000;
    // Warm up any lazily built state first.
    for s in samples {
        black_box(decide(snap, s));
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..N {
        for s in samples {
            black_box(decide(snap, black_box(s)));
        }
    }
    (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / (N as f64 * samples.len() as f64)
}

fn bench(c: &mut Criterion) {
    let snap = snapshot();
    let all = mix();
    let kinds = ["browser", "ai-crawler", "search-engine", "tool"];

    println!("allocations per request (decision path):");
    for kind in kinds {
        let samples: Vec<&Sample> = all.iter().filter(|s| s.kind == kind).collect();
        println!(
            "  {kind:<14} {:.2}",
            allocations_per_request(&snap, &samples)
        );
    }
    let everything: Vec<&Sample> = all.iter().collect();
    println!(
        "  {:<14} {:.2}",
        "mix",
        allocations_per_request(&snap, &everything)
    );

    let mut group = c.benchmark_group("decision");
    for kind in kinds {
        let samples: Vec<&Sample> = all.iter().filter(|s| s.kind == kind).collect();
        group.throughput(Throughput::Elements(samples.len() as u64));
        group.bench_function(kind, |b| {
            b.iter(|| {
                for s in &samples {
                    black_box(decide(&snap, black_box(s)));
                }
            })
        });
    }
    group.throughput(Throughput::Elements(everything.len() as u64));
    group.bench_function("mix", |b| {
        b.iter(|| {
            for s in &everything {
                black_box(decide(&snap, black_box(s)));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
