//! Keeps the origin pool's addresses current: each origin given by name is
//! resolved again when its DNS answer expires (the TTL, bounded to 5 s –
//! 5 min), the last good answer kept when a lookup fails; and, when
//! `server.upstream_health_check_ms` is set, every address is checked with
//! a TCP connection, a failure taking it out of the balance as a failed
//! request does, a success putting it back.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hickory_resolver::TokioResolver;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::proxy::origins::Pool;
use crate::snapshot::SharedSnapshot;

/// DNS answers are followed within these bounds: a TTL of 0 must not turn
/// into a lookup per second, nor a TTL of a day into a stale origin.
const MIN_TTL: Duration = Duration::from_secs(5);
const MAX_TTL: Duration = Duration::from_secs(300);

/// The background resolver and health checker.
pub struct OriginResolver {
    pub snapshot: SharedSnapshot,
    pub pool: Arc<Pool>,
}

/// When each origin's answer expires, by (snapshot hash, origin index).
type Due = HashMap<(String, usize), Instant>;

impl OriginResolver {
    /// Resolves the origins whose answers have expired, and hands the pool
    /// any answer that changed.
    async fn refresh(&self, resolver: &TokioResolver, due: &mut Due) {
        let snap = self.snapshot.load_full();
        let table = self.pool.table(&snap);
        let mut resolved = table.resolved.clone();
        let now = Instant::now();
        for (i, origin) in snap.upstream.origins.iter().enumerate() {
            let Some(name) = &origin.name else { continue };
            let key = (snap.hash.clone(), i);
            if due.get(&key).is_some_and(|&t| t > now) {
                continue;
            }
            match resolver.lookup_ip(name.as_str()).await {
                Ok(answer) => {
                    let mut addrs: Vec<SocketAddr> = answer
                        .iter()
                        .map(|ip| SocketAddr::new(ip, origin.port))
                        .collect();
                    addrs.sort();
                    let ttl = answer
                        .valid_until()
                        .saturating_duration_since(Instant::now())
                        .clamp(MIN_TTL, MAX_TTL);
                    due.insert(key, Instant::now() + ttl);
                    if let Some(slot) = resolved.get_mut(i).filter(|_| !addrs.is_empty()) {
                        if *slot != addrs {
                            tracing::info!(origin = %name, addresses = ?addrs, "origin addresses changed");
                            *slot = addrs;
                        }
                    }
                }
                Err(e) => {
                    // The last good answer stays; ask again soon.
                    due.insert(key, Instant::now() + MIN_TTL);
                    tracing::warn!(origin = %name, error = %e, "origin name not resolved; its last addresses stay");
                }
            }
        }
        self.pool.update(&snap.hash, resolved);
        due.retain(|(hash, _), _| *hash == snap.hash);
    }

    /// One TCP check of every address.
    async fn check(&self) {
        let snap = self.snapshot.load_full();
        let table = self.pool.table(&snap);
        let timeout = snap.upstream.connect_timeout;
        for (i, e) in table.entries.iter().enumerate() {
            let ok = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(e.addr))
                .await
                .is_ok_and(|r| r.is_ok());
            if ok {
                Pool::recovered(&table, i);
            } else {
                Pool::failed(&table, i, &snap.upstream);
            }
        }
    }
}

#[async_trait]
impl BackgroundService for OriginResolver {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut servers = self.snapshot.load().upstream.nameservers.clone();
        let mut resolver = crate::dns::origin_resolver(&servers);
        let mut due = Due::new();
        let mut next_check = Instant::now();
        let mut warned = false;
        loop {
            // A reload that names other servers gets a resolver of its own.
            let wanted = &self.snapshot.load().upstream.nameservers;
            if *wanted != servers {
                servers = wanted.clone();
                resolver = crate::dns::origin_resolver(&servers);
                due.clear();
                warned = false;
            }
            match &resolver {
                Ok(r) => self.refresh(r, &mut due).await,
                Err(e) if !warned => {
                    tracing::warn!(error = %e, "origin names keep the addresses of the last load");
                    warned = true;
                }
                Err(_) => {}
            }
            if let Some(every) = self.snapshot.load().upstream.health_check {
                if Instant::now() >= next_check {
                    self.check().await;
                    next_check = Instant::now() + every;
                }
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}
