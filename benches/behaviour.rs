//! The behaviour stage: one update of the per-client state per request, and
//! the memory each tracked client costs.
//!
//! Before the criterion timings, it fills a tracker sized for 1,000,000
//! clients with 1,000,000 distinct ones and prints the resident memory
//! added per client (and what the cache's own accounting says).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rempart::behaviour::{
    BehaviourSpec, Clock, Observation, PathClass, Settings, SignalSet, Tracker,
};

const UA: &[u8] = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn obs(ip: IpAddr, class: PathClass, ms: u64) -> Observation<'static> {
    Observation {
        ip,
        user_agent: UA,
        class,
        clock: Clock::at(ms, 10_000),
        header_signals: SignalSet::EMPTY,
        honeypot: false,
        robots_served: None,
        verified_agent: false,
        // One browser build: every client shares its header fingerprint.
        fingerprint: Some(0x5eed_f1e1_d0c0_ffee),
    }
}

fn memory(settings: &Settings) {
    const N: u32 = 1_000_000;
    for (label, v6) in [("IPv4, 256 per /24", false), ("IPv6, one per /64", true)] {
        let before = rss_kb();
        let t = Tracker::new(N as usize);
        for i in 0..N {
            let ip = if v6 {
                IpAddr::V6(Ipv6Addr::from(
                    (0x2001_0db8_u128 << 96) | (u128::from(i) << 64) | 1,
                ))
            } else {
                IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
            };
            black_box(t.observe(settings, &obs(ip, PathClass::Page, 1_000), None));
        }
        let after = rss_kb();
        let (clients, addrs) = t.len();
        println!(
            "memory, {label}: {clients} clients and {addrs} addresses/networks tracked; \
             resident +{:.0} bytes per client; cache accounting {:.0} bytes per client",
            (after.saturating_sub(before) * 1024) as f64 / f64::from(N),
            t.memory_used() as f64 / f64::from(N),
        );
        drop(t);
    }
}

fn bench(c: &mut Criterion) {
    let settings = Settings::compile(&BehaviourSpec::default()).expect("defaults");
    memory(&settings);

    let t = Tracker::new(200_000);
    let mut group = c.benchmark_group("behaviour");
    group.throughput(Throughput::Elements(1));
    // A known client: the common case.
    let ip: IpAddr = "203.0.113.10".parse().expect("ip");
    let mut ms = 0u64;
    group.bench_function("page, known client", |b| {
        b.iter(|| {
            ms += 1000; // one page a second: no signal fires
            black_box(t.observe(&settings, black_box(&obs(ip, PathClass::Page, ms)), None))
        })
    });
    group.bench_function("asset, known client", |b| {
        b.iter(|| black_box(t.observe(&settings, black_box(&obs(ip, PathClass::Asset, ms)), None)))
    });
    // A new client every time, in a full cache: insertion and eviction.
    let mut n = 0u32;
    group.bench_function("page, new client (evicting)", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            let ip = IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + n));
            black_box(t.observe(&settings, black_box(&obs(ip, PathClass::Page, ms)), None))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
