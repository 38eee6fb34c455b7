//! Per-client state in bounded memory, and the signals it gives.
//!
//! Three caches (quick_cache: sharded, size-bounded, S3-FIFO eviction, no
//! global lock; a hit locks one shard for a few instructions):
//! - clients, keyed by IP + user agent: page and asset counts, robots.txt
//!   fetches, refusals, sticky flags (honeypot, robots ignored);
//! - addresses, keyed by IP and by its /24 (IPv4) or /64 (IPv6): page rates,
//!   so that rotating user agents or addresses in one network does not reset
//!   the count;
//! - header fingerprints, whatever the address: page rate, assets, addresses
//!   and baseline ([`super::fingerprint`]), so that a fleet spread over many
//!   addresses is one client.
//!
//! Keys are 64-bit keyed hashes (SipHash, random key per process): fixed size,
//! no allocation, and a client cannot aim at another's slot. Rates are sliding
//! windows (two fixed windows, the previous one weighted by how much of it
//! still overlaps), so state decays by itself; flags expire after
//! `memory_seconds`; counts are halved when they grow large, so old behaviour
//! weighs less than new.

use std::hash::{BuildHasher, Hash, Hasher};
use std::net::IpAddr;

use quick_cache::sync::{Cache, EntryAction, EntryResult};

use super::fingerprint::{self, FingerprintState};
use super::signals::{PathClass, Signal, SignalSet};
use super::Settings;

const FLAG_HONEYPOT: u8 = 1;
const FLAG_ROBOTS_IGNORED: u8 = 2;

/// Which counter a shared (Redis) increment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateKind {
    Client,
    Ip,
    Subnet,
    Fingerprint,
}

impl RateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RateKind::Client => "c",
            RateKind::Ip => "ip",
            RateKind::Subnet => "net",
            RateKind::Fingerprint => "fp",
        }
    }
}

/// A sliding-window page counter of this replica.
#[derive(Debug, Clone, Copy, Default)]
struct Rate {
    window: u32,
    cur: u32,
    prev: u32,
}

impl Rate {
    fn roll(&mut self, idx: u32) {
        if idx == self.window {
            return;
        }
        self.prev = if idx == self.window.wrapping_add(1) {
            self.cur
        } else {
            0
        };
        self.cur = 0;
        self.window = idx;
    }

    /// This replica's pages in the sliding window ending now.
    fn sliding(&self, frac_left: f32) -> u32 {
        (self.prev as f32 * frac_left) as u32 + self.cur
    }

    fn count_page(&mut self) {
        self.cur = self.cur.saturating_add(1);
    }
}

/// A page counter the shared store counts too: this replica's count, the
/// store's counts for `shared_window` and the window before it, and the
/// local pages not yet included in them.
#[derive(Debug, Clone, Copy, Default)]
struct SharedRate {
    local: Rate,
    shared: u32,
    shared_prev: u32,
    shared_window: u32,
    unflushed: u32,
}

/// A page rate, of this replica only or of every replica. The tracker holds
/// one kind or the other, chosen when it is made: without a shared store,
/// no entry carries the store's 16 bytes (a third of a client's state).
trait Counter: Copy + Default + Send + Sync + 'static {
    fn local(&self) -> &Rate;
    fn local_mut(&mut self) -> &mut Rate;
    /// Counts a page; `unflushed` when it is also to be sent to the store.
    fn add_page(&mut self, unflushed: bool);
    /// Pages in the sliding window ending now.
    fn estimate(&self, idx: u32, frac_left: f32) -> u32;
    /// Applies the store's total for `idx`, of which `flushed` were ours.
    fn apply_shared(&mut self, idx: u32, total: u32, flushed: u32);

    fn started(window: u32) -> Self {
        let mut c = Self::default();
        c.local_mut().window = window;
        c
    }

    fn roll(&mut self, idx: u32) {
        self.local_mut().roll(idx);
    }
}

impl Counter for Rate {
    fn local(&self) -> &Rate {
        self
    }

    fn local_mut(&mut self) -> &mut Rate {
        self
    }

    fn add_page(&mut self, _: bool) {
        self.count_page();
    }

    fn estimate(&self, _: u32, frac_left: f32) -> u32 {
        self.sliding(frac_left)
    }

    /// Nothing to apply: a tracker without a store is never sent its counts.
    fn apply_shared(&mut self, _: u32, _: u32, _: u32) {}
}

impl Counter for SharedRate {
    fn local(&self) -> &Rate {
        &self.local
    }

    fn local_mut(&mut self) -> &mut Rate {
        &mut self.local
    }

    fn add_page(&mut self, unflushed: bool) {
        self.local.count_page();
        if unflushed {
            self.unflushed = self.unflushed.saturating_add(1);
        }
    }

    fn estimate(&self, idx: u32, frac_left: f32) -> u32 {
        // The shared counts slide the same way as the local ones.
        let shared = if self.shared_window == idx {
            (self.shared_prev as f32 * frac_left) as u32 + self.shared
        } else if self.shared_window.wrapping_add(1) == idx {
            (self.shared as f32 * frac_left) as u32
        } else {
            0
        };
        self.local.sliding(frac_left).max(shared + self.unflushed)
    }

    fn apply_shared(&mut self, idx: u32, total: u32, flushed: u32) {
        if idx == self.shared_window {
            self.shared = self.shared.max(total);
        } else if idx == self.shared_window.wrapping_add(1) {
            self.shared_prev = self.shared;
            self.shared = total;
            self.shared_window = idx;
        } else if idx > self.shared_window {
            self.shared_prev = 0;
            self.shared = total;
            self.shared_window = idx;
        } else if idx.wrapping_add(1) == self.shared_window {
            // A late answer for the previous window.
            self.shared_prev = self.shared_prev.max(total);
        }
        self.unflushed = self.unflushed.saturating_sub(flushed);
    }
}

/// Everything rempart remembers about one IP + user agent: 32 bytes, 48
/// with a shared store.
#[derive(Debug, Clone, Copy, Default)]
struct ClientState<C> {
    rate: C,
    pages: u16,
    assets: u16,
    refusals: u16,
    flags: u8,
    flag_at: u32,
    /// Unix seconds of the last robots.txt fetch (0: never), and which
    /// version it was served.
    robots_at: u32,
    robots_version: u32,
}

impl<C: Counter> ClientState<C> {
    /// Counts one request of this client and returns the state after it.
    fn count(&mut self, s: &Settings, o: &Observation<'_>, shared_on: bool) -> Self {
        let now = o.clock.now_secs;
        self.rate.roll(o.clock.window);
        if o.class == PathClass::Page {
            self.rate.add_page(shared_on);
            self.pages = self.pages.saturating_add(1);
        } else if matches!(
            o.class,
            PathClass::Asset | PathClass::Manifest | PathClass::Segment
        ) {
            self.assets = self.assets.saturating_add(1);
        }
        // Recent behaviour weighs more: halve old counts.
        if self.pages >= 1024 || self.assets >= 1024 {
            self.pages /= 2;
            self.assets /= 2;
        }
        if self.flags != 0 && now.saturating_sub(self.flag_at) > s.memory_seconds {
            self.flags = 0;
        }
        if o.honeypot {
            self.flags |= FLAG_HONEYPOT;
            self.flag_at = now;
        }
        if let Some(v) = o.robots_served {
            self.robots_at = now;
            self.robots_version = v;
        }
        *self
    }
}

/// Where a request sits in the time windows.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub now_secs: u32,
    pub window: u32,
    /// The share of the previous window still inside the sliding window.
    pub frac_left: f32,
}

impl Clock {
    pub fn at(now_ms: u64, window_ms: u64) -> Self {
        let window_ms = window_ms.max(1);
        let idx = now_ms / window_ms;
        Clock {
            now_secs: (now_ms / 1000) as u32,
            window: idx as u32,
            frac_left: 1.0 - (now_ms % window_ms) as f32 / window_ms as f32,
        }
    }
}

/// One request, as the tracker sees it.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    pub ip: IpAddr,
    pub user_agent: &'a [u8],
    pub class: PathClass,
    pub clock: Clock,
    /// Signals of the request alone (header anomalies).
    pub header_signals: SignalSet,
    /// The path is the honeypot.
    pub honeypot: bool,
    /// The request is robots.txt, served as this version.
    pub robots_served: Option<u32>,
    /// A declared agent whose identity is verified.
    pub verified_agent: bool,
    /// The request's header fingerprint, when it is tracked.
    pub fingerprint: Option<u64>,
}

/// What the tracker concluded for one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Assessment {
    pub signals: SignalSet,
    pub score: u16,
    /// When this client last fetched robots.txt (unix seconds), and which.
    pub robots: Option<(u32, u32)>,
    pub client: u64,
    /// Pages in the sliding window for this IP + UA.
    pub page_rate: u32,
    /// The header fingerprint it was counted under, if any.
    pub fingerprint: Option<u64>,
}

/// A page count to add to the shared store.
#[derive(Debug, Clone)]
pub struct SharedIncrement {
    pub kind: RateKind,
    pub local_key: u64,
    /// The key in the shared store, the same on every replica.
    pub shared_key: String,
    pub window: u32,
}

/// One header fingerprint: its (shareable) page rate and the rest.
#[derive(Debug, Clone, Copy)]
struct FingerprintEntry<C> {
    rate: C,
    state: FingerprintState,
}

/// The per-client state of the whole proxy. Lives across config reloads.
///
/// Its entries count pages for this replica alone, or for a shared store
/// as well ([`Tracker::with_shared_store`]); which one is fixed when it is
/// made, as the store is started once, with the server.
pub struct Tracker(Kind);

enum Kind {
    Local(Caches<Rate>),
    Shared(Caches<SharedRate>),
}

/// The three caches, their entries counting with `C`.
struct Caches<C> {
    clients: Cache<u64, ClientState<C>>,
    addrs: Cache<u64, C>,
    fingerprints: Cache<u64, FingerprintEntry<C>>,
    hasher: std::hash::RandomState,
}

/// Calls the same generic method on either kind of caches.
macro_rules! each {
    ($tracker:expr, $c:ident => $call:expr) => {
        match &$tracker.0 {
            Kind::Local($c) => $call,
            Kind::Shared($c) => $call,
        }
    };
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        each!(self, c => f
            .debug_struct("Tracker")
            .field("shared", &matches!(self.0, Kind::Shared(_)))
            .field("clients", &c.clients.len())
            .field("addrs", &c.addrs.len())
            .field("fingerprints", &c.fingerprints.len())
            .finish())
    }
}

/// The network an address belongs to for counting: /24 for IPv4, /64 for IPv6.
pub fn subnet_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & 0xffff_ff00).into()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => subnet_of(IpAddr::V4(v4)),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

impl Tracker {
    /// A tracker for up to `max_clients` IP + user agent pairs (and as many
    /// addresses and networks), counting for this replica alone.
    pub fn new(max_clients: usize) -> Self {
        Self(Kind::Local(Caches::for_clients(max_clients)))
    }

    /// A tracker sized by the `[behaviour]` settings, counting for this
    /// replica alone.
    pub fn for_settings(s: &Settings) -> Self {
        Self(Kind::Local(Caches::for_settings(s)))
    }

    /// A tracker sized by the `[behaviour]` settings whose entries also
    /// hold a shared store's counts (the store applies them with
    /// [`Tracker::apply_shared`]).
    pub fn with_shared_store(s: &Settings) -> Self {
        Self(Kind::Shared(Caches::for_settings(s)))
    }

    #[cfg(test)]
    fn shared(max_clients: usize) -> Self {
        Self(Kind::Shared(Caches::for_clients(max_clients)))
    }

    /// Number of tracked clients and addresses.
    pub fn len(&self) -> (usize, usize) {
        each!(self, c => (c.clients.len(), c.addrs.len()))
    }

    pub fn is_empty(&self) -> bool {
        each!(self, c => c.clients.is_empty() && c.addrs.is_empty())
    }

    /// Counts one request and returns the signals its client shows now.
    /// `shared` receives the page increments for the shared store, if any
    /// (a tracker made without one sends none).
    pub fn observe(
        &self,
        s: &Settings,
        o: &Observation<'_>,
        shared: Option<&mut dyn FnMut(SharedIncrement)>,
    ) -> Assessment {
        match &self.0 {
            Kind::Local(c) => c.observe(s, o, None),
            Kind::Shared(c) => c.observe(s, o, shared),
        }
    }

    /// Records that the client took a path robots.txt disallowed for it.
    pub fn mark_robots_ignored(&self, s: &Settings, a: &mut Assessment, now_secs: u32) {
        each!(self, c => c.mark_robots_ignored(a.client, now_secs));
        a.signals.insert(Signal::RobotsIgnored);
        a.score = s.weights.score(a.signals);
    }

    /// Records that the client was refused (402 or 403).
    pub fn note_refusal(&self, client: u64) {
        each!(self, c => c.note_refusal(client))
    }

    /// Applies a count from the shared store.
    pub fn apply_shared(&self, kind: RateKind, key: u64, window: u32, total: u32, flushed: u32) {
        each!(self, c => c.apply_shared(kind, key, window, total, flushed))
    }

    /// Bytes used by the caches' own structures (entries and index).
    pub fn memory_used(&self) -> usize {
        each!(self, c => c.memory_used())
    }
}

impl<C: Counter> Caches<C> {
    fn for_settings(s: &Settings) -> Self {
        Self::sized(s.max_clients, s.fingerprint.max_fingerprints)
    }

    /// Up to `max_clients` clients, and as many fingerprints up to 65,536.
    fn for_clients(max_clients: usize) -> Self {
        Self::sized(max_clients, max_clients.min(65_536))
    }

    fn sized(max_clients: usize, max_fingerprints: usize) -> Self {
        let max = max_clients.max(16);
        Self {
            clients: Cache::new(max),
            addrs: Cache::new(max),
            fingerprints: Cache::new(max_fingerprints.max(16)),
            hasher: std::hash::RandomState::new(),
        }
    }

    fn key(&self, tag: u8, ip: IpAddr, ua: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        tag.hash(&mut h);
        ip.hash(&mut h);
        ua.hash(&mut h);
        h.finish()
    }

    fn update_rate(&self, key: u64, clock: Clock, page: bool, shared: bool) -> u32 {
        let step = |r: &mut C| {
            r.roll(clock.window);
            if page {
                r.add_page(shared);
            }
            r.estimate(clock.window, clock.frac_left)
        };
        match self
            .addrs
            .entry(&key, None, |_, r| EntryAction::Retain(step(r)))
        {
            EntryResult::Retained(n) => n,
            EntryResult::Vacant(guard) => {
                let mut r = C::started(clock.window);
                let n = step(&mut r);
                let _ = guard.insert(r);
                n
            }
            _ => 0,
        }
    }

    /// Counts a page in its address's and network's rates (and, with the
    /// shared store, in the client's, address's and network's shared counts);
    /// returns the rate signals.
    fn count_addresses<'f>(
        &self,
        s: &Settings,
        o: &Observation<'_>,
        client: u64,
        shared: Option<&mut (dyn FnMut(SharedIncrement) + 'f)>,
    ) -> SignalSet {
        let shared_on = shared.is_some();
        let mut set = SignalSet::EMPTY;
        let subnet = subnet_of(o.ip);
        let ip_key = self.key(1, o.ip, b"");
        let net_key = self.key(2, subnet, b"");
        let ip_rate = self.update_rate(ip_key, o.clock, true, shared_on);
        let net_rate = self.update_rate(net_key, o.clock, true, shared_on);
        if ip_rate > s.ip_page_limit {
            set.insert(Signal::IpRate);
        }
        if net_rate > s.subnet_page_limit {
            set.insert(Signal::SubnetRate);
        }
        if let Some(send) = shared {
            let ua = stable_hash(o.user_agent);
            for (kind, key, id) in [
                (RateKind::Client, client, format!("{}:{ua:016x}", o.ip)),
                (RateKind::Ip, ip_key, o.ip.to_string()),
                (RateKind::Subnet, net_key, subnet.to_string()),
            ] {
                send(SharedIncrement {
                    kind,
                    local_key: key,
                    shared_key: format!(
                        "rempart:{}:{}:{}:{id}",
                        s.window_ms,
                        o.clock.window,
                        kind.as_str()
                    ),
                    window: o.clock.window,
                });
            }
        }
        set
    }

    fn observe(
        &self,
        s: &Settings,
        o: &Observation<'_>,
        mut shared: Option<&mut dyn FnMut(SharedIncrement)>,
    ) -> Assessment {
        let page = o.class == PathClass::Page;
        let media_or_asset = matches!(
            o.class,
            PathClass::Asset | PathClass::Manifest | PathClass::Segment
        );
        let shared_on = shared.is_some();
        let client = self.key(0, o.ip, o.user_agent);
        let mut signals = o.header_signals;
        if page {
            signals = signals.union(self.count_addresses(s, o, client, shared.as_deref_mut()));
        }
        if let Some(fp) = o.fingerprint.filter(|_| s.fingerprint.enabled) {
            if self.fingerprint_spikes(s, o, fp, page, media_or_asset, shared) {
                signals.insert(Signal::FingerprintSpike);
            }
        }
        let step = |c: &mut ClientState<C>| c.count(s, o, shared_on);
        let state = match self
            .clients
            .entry(&client, None, |_, c| EntryAction::Retain(step(c)))
        {
            EntryResult::Retained(c) => c,
            EntryResult::Vacant(guard) => {
                let mut c = ClientState {
                    rate: C::started(o.clock.window),
                    ..ClientState::default()
                };
                let c = step(&mut c);
                let _ = guard.insert(c);
                c
            }
            _ => ClientState::default(),
        };
        let page_rate = state.rate.estimate(o.clock.window, o.clock.frac_left);
        if page_rate > s.page_limit {
            signals.insert(Signal::PageRate);
        }
        if u32::from(state.pages) >= s.ratio_min_pages
            && f32::from(state.assets) < f32::from(state.pages) * s.min_assets_per_page
        {
            signals.insert(Signal::NoAssets);
        }
        if state.flags & FLAG_HONEYPOT != 0 {
            signals.insert(Signal::Honeypot);
        }
        if state.flags & FLAG_ROBOTS_IGNORED != 0 {
            signals.insert(Signal::RobotsIgnored);
        }
        if o.verified_agent && u32::from(state.refusals) >= s.refusals_limit {
            signals.insert(Signal::RefusedPersist);
        }
        Assessment {
            signals,
            score: s.weights.score(signals),
            robots: (state.robots_at != 0).then_some((state.robots_at, state.robots_version)),
            client,
            page_rate,
            fingerprint: o.fingerprint.filter(|_| s.fingerprint.enabled),
        }
    }

    /// Counts the request in its fingerprint and says whether it spikes.
    fn fingerprint_spikes<'f>(
        &self,
        s: &Settings,
        o: &Observation<'_>,
        fp: u64,
        page: bool,
        asset: bool,
        shared: Option<&mut (dyn FnMut(SharedIncrement) + 'f)>,
    ) -> bool {
        let seen = fingerprint::Seen {
            window: o.clock.window,
            page,
            asset,
            addr_hash: self.key(3, o.ip, b""),
        };
        let shared_on = shared.is_some();
        let step = |e: &mut FingerprintEntry<C>| {
            let done = if e.rate.local().window != o.clock.window {
                e.rate.local().cur
            } else {
                0
            };
            e.state.add(&seen, done);
            e.rate.roll(o.clock.window);
            if page {
                e.rate.add_page(shared_on);
            }
            let pages = e.rate.estimate(o.clock.window, o.clock.frac_left);
            e.state.spikes(&s.fingerprint, pages, o.clock.frac_left)
        };
        let spikes = match self
            .fingerprints
            .entry(&fp, None, |_, e| EntryAction::Retain(step(e)))
        {
            EntryResult::Retained(spikes) => spikes,
            EntryResult::Vacant(guard) => {
                let mut e = FingerprintEntry {
                    rate: C::started(o.clock.window),
                    state: FingerprintState::new(o.clock.window),
                };
                let spikes = step(&mut e);
                let _ = guard.insert(e);
                spikes
            }
            _ => false,
        };
        if let (Some(send), true) = (shared, page) {
            send(SharedIncrement {
                kind: RateKind::Fingerprint,
                local_key: fp,
                shared_key: format!("rempart:{}:{}:fp:{fp:016x}", s.window_ms, o.clock.window),
                window: o.clock.window,
            });
        }
        spikes
    }

    fn mark_robots_ignored(&self, client: u64, now_secs: u32) {
        let _ = self.clients.entry(&client, None, |_, c| {
            c.flags |= FLAG_ROBOTS_IGNORED;
            c.flag_at = now_secs;
            EntryAction::Retain(())
        });
    }

    fn note_refusal(&self, client: u64) {
        let _ = self.clients.entry(&client, None, |_, c| {
            c.refusals = c.refusals.saturating_add(1);
            EntryAction::Retain(())
        });
    }

    fn apply_shared(&self, kind: RateKind, key: u64, window: u32, total: u32, flushed: u32) {
        match kind {
            RateKind::Client => {
                let _ = self.clients.entry(&key, None, |_, c| {
                    c.rate.apply_shared(window, total, flushed);
                    EntryAction::Retain(())
                });
            }
            RateKind::Ip | RateKind::Subnet => {
                let _ = self.addrs.entry(&key, None, |_, r| {
                    r.apply_shared(window, total, flushed);
                    EntryAction::Retain(())
                });
            }
            RateKind::Fingerprint => {
                let _ = self.fingerprints.entry(&key, None, |_, e| {
                    e.rate.apply_shared(window, total, flushed);
                    EntryAction::Retain(())
                });
            }
        }
    }

    fn memory_used(&self) -> usize {
        let c = self.clients.memory_used();
        let a = self.addrs.memory_used();
        let f = self.fingerprints.memory_used();
        c.entries + c.map + a.entries + a.map + f.entries + f.map
    }
}

/// A hash that is the same on every replica (for shared-store keys).
fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::BehaviourSpec;

    fn settings() -> Settings {
        Settings::compile(&BehaviourSpec::default()).unwrap()
    }

    fn obs<'a>(ip: &str, ua: &'a [u8], class: PathClass, ms: u64) -> Observation<'a> {
        Observation {
            ip: ip.parse().unwrap(),
            user_agent: ua,
            class,
            clock: Clock::at(ms, 10_000),
            header_signals: SignalSet::EMPTY,
            honeypot: false,
            robots_served: None,
            verified_agent: false,
            fingerprint: None,
        }
    }

    #[test]
    fn state_is_small() {
        // A client's and an address's entries, without and with a store.
        assert!(std::mem::size_of::<ClientState<Rate>>() <= 32);
        assert!(std::mem::size_of::<Rate>() <= 12);
        assert!(std::mem::size_of::<ClientState<SharedRate>>() <= 48);
        assert!(std::mem::size_of::<SharedRate>() <= 28);
    }

    #[test]
    fn subnets() {
        assert_eq!(
            subnet_of("192.0.2.77".parse().unwrap()).to_string(),
            "192.0.2.0"
        );
        assert_eq!(
            subnet_of("2001:db8:1:2:3:4:5:6".parse().unwrap()).to_string(),
            "2001:db8:1:2::"
        );
        assert_eq!(
            subnet_of("::ffff:192.0.2.77".parse().unwrap()).to_string(),
            "192.0.2.0"
        );
    }

    #[test]
    fn a_fast_page_walker_trips_the_rate_and_the_asset_ratio() {
        let t = Tracker::new(1000);
        let s = settings();
        let mut last = Assessment::default();
        for i in 0..25u64 {
            last = t.observe(
                &s,
                &obs("198.51.100.7", b"ua", PathClass::Page, 1_000 + i * 50),
                None,
            );
        }
        assert!(
            last.signals.contains(Signal::PageRate),
            "{:?}",
            last.signals.names()
        );
        assert!(last.signals.contains(Signal::NoAssets));
        assert!(last.page_rate >= 25 - 1);
        // Another user agent on the same address shares the IP counter only.
        let other = t.observe(
            &s,
            &obs("198.51.100.7", b"ua2", PathClass::Page, 2_500),
            None,
        );
        assert!(!other.signals.contains(Signal::PageRate));
    }

    #[test]
    fn a_reader_with_assets_and_a_player_stay_clean() {
        let t = Tracker::new(1000);
        let s = settings();
        let mut ms = 0;
        for _ in 0..15 {
            ms += 3_000;
            let a = t.observe(
                &s,
                &obs("203.0.113.9", b"reader", PathClass::Page, ms),
                None,
            );
            assert!(a.signals.is_empty(), "{:?}", a.signals.names());
            for _ in 0..4 {
                t.observe(
                    &s,
                    &obs("203.0.113.9", b"reader", PathClass::Asset, ms),
                    None,
                );
            }
        }
        let player = |i: u64| obs("203.0.113.10", b"player", PathClass::Segment, i * 20);
        t.observe(
            &s,
            &obs("203.0.113.10", b"player", PathClass::Page, 0),
            None,
        );
        t.observe(
            &s,
            &obs("203.0.113.10", b"player", PathClass::Manifest, 0),
            None,
        );
        for i in 0..200 {
            let a = t.observe(&s, &player(i), None);
            assert!(a.signals.is_empty(), "segment {i}: {:?}", a.signals.names());
        }
    }

    #[test]
    fn windows_slide_and_decay() {
        let t = Tracker::new(1000);
        let s = settings();
        for i in 0..30u64 {
            t.observe(&s, &obs("192.0.2.1", b"x", PathClass::Page, i * 10), None);
        }
        // Half a window later, half of the previous window still counts.
        let a = t.observe(&s, &obs("192.0.2.1", b"x", PathClass::Asset, 15_000), None);
        assert!((14..=16).contains(&a.page_rate), "{}", a.page_rate);
        // Two windows later, nothing.
        let a = t.observe(&s, &obs("192.0.2.1", b"x", PathClass::Asset, 30_001), None);
        assert_eq!(a.page_rate, 0);
    }

    #[test]
    fn flags_stick_then_expire_and_refusals_count_for_verified_agents() {
        let t = Tracker::new(1000);
        let s = settings();
        let mut o = obs("192.0.2.2", b"bot", PathClass::Page, 1_000);
        o.honeypot = true;
        assert!(t.observe(&s, &o, None).signals.contains(Signal::Honeypot));
        let later = obs("192.0.2.2", b"bot", PathClass::Page, 60_000);
        assert!(t
            .observe(&s, &later, None)
            .signals
            .contains(Signal::Honeypot));
        let much_later = obs(
            "192.0.2.2",
            b"bot",
            PathClass::Page,
            1_000 + (u64::from(s.memory_seconds) + 2) * 1000,
        );
        assert!(!t
            .observe(&s, &much_later, None)
            .signals
            .contains(Signal::Honeypot));

        let mut v = obs("192.0.2.3", b"GPTBot", PathClass::Page, 1_000);
        v.verified_agent = true;
        let a = t.observe(&s, &v, None);
        for _ in 0..s.refusals_limit {
            t.note_refusal(a.client);
        }
        assert!(t
            .observe(&s, &v, None)
            .signals
            .contains(Signal::RefusedPersist));
        v.verified_agent = false;
        assert!(!t
            .observe(&s, &v, None)
            .signals
            .contains(Signal::RefusedPersist));
    }

    #[test]
    fn robots_fetch_is_remembered_and_ignoring_it_sticks() {
        let t = Tracker::new(1000);
        let s = settings();
        let mut o = obs("192.0.2.4", b"bot", PathClass::Other, 5_000);
        o.robots_served = Some(3);
        let a = t.observe(&s, &o, None);
        assert_eq!(a.robots, Some((5, 3)));
        let mut a = t.observe(&s, &obs("192.0.2.4", b"bot", PathClass::Page, 6_000), None);
        t.mark_robots_ignored(&s, &mut a, 6);
        assert!(a.score >= 100);
        let next = t.observe(&s, &obs("192.0.2.4", b"bot", PathClass::Page, 7_000), None);
        assert!(next.signals.contains(Signal::RobotsIgnored));
    }

    #[test]
    fn shared_counts_raise_the_estimate_of_a_tracker_made_for_a_store_only() {
        let s = settings();
        // (tracker, increments sent for one page, its page rate once another
        // replica's 30 pages are applied)
        for (t, increments, rate) in [(Tracker::shared(1000), 3, 31), (Tracker::new(1000), 0, 1)] {
            let mut sent = Vec::new();
            let mut sink = |i: SharedIncrement| sent.push(i);
            let a = t.observe(
                &s,
                &obs("192.0.2.5", b"x", PathClass::Page, 1_000),
                Some(&mut sink),
            );
            assert_eq!(sent.len(), increments, "{t:?}");
            if let Some(first) = sent.first() {
                assert!(first.shared_key.starts_with("rempart:10000:0:c:192.0.2.5:"));
            }
            // Another replica saw 30 pages of this client in the same window.
            t.apply_shared(RateKind::Client, a.client, 0, 31, 1);
            let b = t.observe(&s, &obs("192.0.2.5", b"x", PathClass::Asset, 1_100), None);
            assert_eq!(b.page_rate, rate, "{t:?}");
            assert_eq!(b.signals.contains(Signal::PageRate), rate > s.page_limit);
        }
    }

    #[test]
    fn shared_counts_slide_across_a_window_boundary() {
        let mut r = SharedRate::default();
        // 14 pages seen by all replicas in window 0, 8 in window 1.
        r.apply_shared(0, 14, 0);
        r.apply_shared(1, 8, 0);
        // A quarter into window 1, three quarters of window 0 still count.
        assert_eq!(r.estimate(1, 0.75), 10 + 8);
        // A late answer for window 0 raises it.
        r.apply_shared(0, 16, 0);
        assert_eq!(r.estimate(1, 0.75), 12 + 8);
        // In window 2 only the tail of window 1 is left; in window 3 nothing.
        assert_eq!(r.estimate(2, 0.5), 4);
        assert_eq!(r.estimate(3, 0.5), 0);
    }

    #[test]
    fn memory_is_bounded_by_capacity() {
        let t = Tracker::new(1_000);
        let s = settings();
        for i in 0..20_000u32 {
            let ip = IpAddr::V4(i.into());
            t.observe(
                &s,
                &Observation {
                    ip,
                    ..obs("0.0.0.0", b"x", PathClass::Page, 0)
                },
                None,
            );
        }
        let (c, a) = t.len();
        assert!(c <= 1_100 && a <= 1_100, "{c} {a}");
    }
}
