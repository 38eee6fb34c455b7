//! Forward-confirmed reverse DNS, for operators that publish host name
//! suffixes instead of address ranges (`rdns` in the catalogue).
//!
//! Never on the request path: a request whose address is not in the cache is
//! decided as `unverifiable`, and a background lookup is started (at most
//! `max_in_flight` at a time, one per address). The lookup asks for the PTR
//! names of the address, then resolves each name forward; a name that
//! resolves back to the address is the confirmed host. The result (a host,
//! or none) is cached until the DNS answers' TTL runs out, bounded by
//! `max_ttl` (and `negative_ttl` for failures).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_resolver::config::ResolverOpts;
use hickory_resolver::TokioResolver;

use crate::metrics::metrics;
use crate::model::Verification;

/// A confirmed host name (lower case, no trailing dot), or none, until `expires`.
#[derive(Debug, Clone)]
struct Entry {
    host: Option<Arc<str>>,
    expires: Instant,
}

/// Settings of the verifier.
#[derive(Debug, Clone)]
pub struct RdnsOptions {
    /// Resolvers to ask; empty: the system's (`/etc/resolv.conf`).
    pub nameservers: Vec<SocketAddr>,
    pub max_in_flight: usize,
    pub max_ttl: Duration,
    pub negative_ttl: Duration,
    pub timeout: Duration,
    pub cache_entries: usize,
}

/// The verifier: a cache in front of background lookups.
pub struct Rdns {
    resolver: TokioResolver,
    cache: quick_cache::sync::Cache<IpAddr, Entry>,
    pending: quick_cache::sync::Cache<IpAddr, ()>,
    in_flight: AtomicUsize,
    opts: RdnsOptions,
}

impl std::fmt::Debug for Rdns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rdns")
            .field("cached", &self.cache.len())
            .finish()
    }
}

/// Whether `host` is `suffix` or one of its subdomains (`crawl-1.googlebot.com`
/// for `googlebot.com` or `.googlebot.com`).
pub fn host_matches(host: &str, suffix: &str) -> bool {
    let suffix = suffix.trim_start_matches('.').trim_end_matches('.');
    if suffix.is_empty() {
        return false;
    }
    let host = host.trim_end_matches('.');
    host.eq_ignore_ascii_case(suffix)
        || (host.len() > suffix.len()
            && host.is_char_boundary(host.len() - suffix.len() - 1)
            && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
            && host.as_bytes()[host.len() - suffix.len() - 1] == b'.')
}

impl From<&crate::config::RdnsSection> for RdnsOptions {
    fn from(rd: &crate::config::RdnsSection) -> Self {
        Self {
            nameservers: rd.nameservers.clone(),
            max_in_flight: rd.max_in_flight.max(1),
            max_ttl: Duration::from_secs(rd.max_ttl_seconds.max(1)),
            negative_ttl: Duration::from_secs(rd.negative_ttl_seconds.max(1)),
            timeout: Duration::from_millis(rd.timeout_ms.max(1)),
            cache_entries: rd.cache_entries,
        }
    }
}

/// Reverse-DNS verification as the decision sees it: the proxy's answers
/// come from the cache (a miss starts a background lookup), a replay's from
/// a lookup made there and then.
pub trait ReverseDns: Send + Sync {
    fn verify(&self, ip: IpAddr, suffixes: &[String]) -> Verification;
}

impl ReverseDns for Arc<Rdns> {
    fn verify(&self, ip: IpAddr, suffixes: &[String]) -> Verification {
        self.check(ip, suffixes)
    }
}

/// Lookups made on the spot, for `rempart classify`: a replayed log is
/// judged as the proxy would once its cache is warm.
pub struct BlockingRdns {
    rdns: Rdns,
    runtime: tokio::runtime::Runtime,
}

impl BlockingRdns {
    pub fn new(opts: RdnsOptions) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let rdns = {
            let _guard = runtime.enter();
            Rdns::new(opts)?
        };
        Ok(Self { rdns, runtime })
    }
}

impl ReverseDns for BlockingRdns {
    fn verify(&self, ip: IpAddr, suffixes: &[String]) -> Verification {
        let fresh = self
            .rdns
            .cache
            .get(&ip)
            .filter(|e| e.expires > Instant::now());
        let entry = match fresh {
            Some(e) => e,
            None => {
                let e = self.runtime.block_on(self.rdns.lookup(ip));
                self.rdns.cache.insert(ip, e.clone());
                e
            }
        };
        match &entry.host {
            Some(h) if suffixes.iter().any(|s| host_matches(h, s)) => Verification::Verified,
            _ => Verification::Spoofed,
        }
    }
}

impl Rdns {
    pub fn new(opts: RdnsOptions) -> anyhow::Result<Self> {
        let resolver = crate::dns::resolver(&opts.nameservers, |o| {
            *o = ResolverOpts::default();
            o.timeout = opts.timeout;
            o.attempts = 1;
            o.positive_max_ttl = Some(opts.max_ttl);
            o.negative_max_ttl = Some(opts.negative_ttl);
        })
        .map_err(|e| anyhow::anyhow!("reverse DNS: {e}"))?;
        Ok(Self {
            resolver,
            cache: quick_cache::sync::Cache::new(opts.cache_entries.max(16)),
            pending: quick_cache::sync::Cache::new(opts.max_in_flight.max(1) * 4),
            in_flight: AtomicUsize::new(0),
            opts,
        })
    }

    /// The verdict for an address claimed by an agent with these suffixes:
    /// from the cache, or `unverifiable` while a lookup runs.
    pub fn check(self: &Arc<Self>, ip: IpAddr, suffixes: &[String]) -> Verification {
        if let Some(e) = self.cache.get(&ip) {
            if e.expires > Instant::now() {
                metrics().rdns_hit.inc();
                return match &e.host {
                    Some(h) if suffixes.iter().any(|s| host_matches(h, s)) => {
                        Verification::Verified
                    }
                    _ => Verification::Spoofed,
                };
            }
        }
        self.start_lookup(ip);
        Verification::Unverifiable
    }

    fn start_lookup(self: &Arc<Self>, ip: IpAddr) {
        if self.pending.get(&ip).is_some() {
            return;
        }
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.opts.max_in_flight {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            metrics().rdns.with_label_values(&["busy"]).inc();
            return;
        }
        self.pending.insert(ip, ());
        let me = self.clone();
        tokio::spawn(async move {
            let entry = me.lookup(ip).await;
            let label = if entry.host.is_some() {
                "confirmed"
            } else {
                "unconfirmed"
            };
            metrics().rdns.with_label_values(&[label]).inc();
            me.cache.insert(ip, entry);
            me.pending.remove(&ip);
            me.in_flight.fetch_sub(1, Ordering::AcqRel);
        });
    }

    async fn lookup(&self, ip: IpAddr) -> Entry {
        let now = Instant::now();
        let negative = Entry {
            host: None,
            expires: now + self.opts.negative_ttl,
        };
        let Ok(names) = self.resolver.reverse_lookup(ip).await else {
            return negative;
        };
        let ptr_until = names.as_lookup().valid_until();
        for name in names.iter().take(4) {
            let host = name.to_utf8();
            let Ok(ips) = self.resolver.lookup_ip(host.as_str()).await else {
                continue;
            };
            if ips.iter().any(|a| a == ip) {
                let until = ptr_until
                    .min(ips.valid_until())
                    .min(now + self.opts.max_ttl);
                return Entry {
                    host: Some(Arc::from(host.trim_end_matches('.').to_ascii_lowercase())),
                    expires: until.max(now + Duration::from_secs(1)),
                };
            }
        }
        negative
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_match_whole_labels() {
        assert!(host_matches(
            "crawl-66-249-66-1.googlebot.com",
            "googlebot.com"
        ));
        assert!(host_matches(
            "crawl-66-249-66-1.googlebot.com.",
            ".googlebot.com"
        ));
        assert!(host_matches("googlebot.com", "googlebot.com"));
        assert!(!host_matches("evilgooglebot.com", "googlebot.com"));
        assert!(!host_matches("googlebot.com.evil.example", "googlebot.com"));
        assert!(!host_matches("x.example", ""));
    }
}
