//! Cross-address fingerprints: one header fingerprint's pages, assets and
//! addresses per window, against its own baseline.
//!
//! A residential-proxy fleet sends a few requests from each of many addresses,
//! so no per-address count ever grows; what the fleet cannot spread is its HTTP
//! stack. A fingerprint whose pages in the window exceed both a floor and
//! `spike_factor` times its own baseline (or whose distinct addresses do), while
//! it loads few assets per page, shows `fingerprint-spike` on every request,
//! whatever the address. People who share a fingerprint load assets with their
//! pages and arrive at a rate the baseline has learnt.
//!
//! The baseline is an exponential average of the fingerprint's completed
//! windows (each weighs 1/8). A window that spiked weighs 1/512, so that a
//! fleet does not become its own baseline: at ten times a fingerprint's
//! ordinary rate it stays flagged for hours, not minutes. The cost is on the
//! other side: a popular fingerprint that loads few assets through rempart
//! (assets served by a CDN's cache) spikes at start-up, when every baseline is
//! zero, until its baseline has learnt its rate slowly (about 150 windows, 25
//! minutes with the default 10 s window); meanwhile people who share it see
//! the challenge once and pass it. Such sites raise `min_pages` or set
//! `max_assets_per_page` to what their origin actually sees.

use serde::Deserialize;

/// `[behaviour.fingerprint]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FingerprintSpec {
    pub enabled: bool,
    /// Fingerprints remembered; the least useful are evicted first.
    pub max_fingerprints: usize,
    /// Pages per window below which a fingerprint never spikes.
    pub min_pages: u32,
    /// Distinct addresses per window below which the spread never spikes.
    pub min_addresses: u32,
    /// How far above its baseline a fingerprint must go.
    pub spike_factor: f32,
    /// A spike needs fewer assets per page than this (people load assets).
    pub max_assets_per_page: f32,
}

impl Default for FingerprintSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            max_fingerprints: 65_536,
            min_pages: 20,
            min_addresses: 16,
            spike_factor: 4.0,
            max_assets_per_page: 0.2,
        }
    }
}

/// `[behaviour.fingerprint]`, compiled.
#[derive(Debug, Clone, Copy)]
pub struct FingerprintSettings {
    pub enabled: bool,
    pub max_fingerprints: usize,
    pub min_pages: u32,
    pub min_addresses: u32,
    pub spike_factor: f32,
    pub max_assets_per_page: f32,
}

impl FingerprintSpec {
    /// Validates; the error is `(key relative to the section, message)`.
    pub fn compile(&self) -> Result<FingerprintSettings, (&'static str, String)> {
        if self.max_fingerprints == 0 {
            return Err(("max_fingerprints", "must be at least 1".into()));
        }
        if self.min_pages == 0 {
            return Err(("min_pages", "must be at least 1".into()));
        }
        if !(1.0..=1000.0).contains(&self.spike_factor) {
            return Err(("spike_factor", "must be between 1 and 1000".into()));
        }
        if !(0.0..=100.0).contains(&self.max_assets_per_page) {
            return Err(("max_assets_per_page", "must be between 0 and 100".into()));
        }
        Ok(FingerprintSettings {
            enabled: self.enabled,
            max_fingerprints: self.max_fingerprints,
            min_pages: self.min_pages,
            min_addresses: self.min_addresses.max(2),
            spike_factor: self.spike_factor,
            max_assets_per_page: self.max_assets_per_page,
        })
    }
}

/// Weight of a completed window in the baseline, and of one that spiked.
const LEARN: f32 = 1.0 / 8.0;
const LEARN_SPIKING: f32 = 1.0 / 512.0;

/// One fingerprint's state: 40 bytes, plus the shared page rate.
#[derive(Debug, Clone, Copy, Default)]
pub struct FingerprintState {
    window: u32,
    assets: u32,
    assets_prev: u32,
    /// Addresses seen in this window and the previous one, as 64-bit
    /// linear-counting bitmaps (exact enough up to a hundred or so).
    addrs: u64,
    addrs_prev: u64,
    base_pages: f32,
    base_addrs: f32,
    /// This window spiked (it then teaches the baseline slowly).
    spiked: bool,
}

/// What one request adds.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    pub window: u32,
    pub page: bool,
    pub asset: bool,
    /// A hash of the client address.
    pub addr_hash: u64,
}

impl FingerprintState {
    pub fn new(window: u32) -> Self {
        Self {
            window,
            ..Self::default()
        }
    }

    /// Moves to `window`, folding the windows that ended into the baseline.
    /// `pages_done` is the page count of the window that ends.
    fn roll(&mut self, window: u32, pages_done: u32) {
        if window <= self.window {
            return;
        }
        let gap = window - self.window;
        let learn = |base: &mut f32, value: f32, rate: f32| *base += (value - *base) * rate;
        let rate = if self.spiked { LEARN_SPIKING } else { LEARN };
        learn(&mut self.base_pages, pages_done as f32, rate);
        learn(&mut self.base_addrs, distinct(self.addrs), rate);
        // Windows with no request at all: the baseline decays.
        for _ in 1..gap.min(64) {
            learn(&mut self.base_pages, 0.0, LEARN);
            learn(&mut self.base_addrs, 0.0, LEARN);
        }
        if gap == 1 {
            self.assets_prev = self.assets;
            self.addrs_prev = self.addrs;
        } else {
            self.assets_prev = 0;
            self.addrs_prev = 0;
        }
        self.assets = 0;
        self.addrs = 0;
        self.spiked = false;
        self.window = window;
    }

    /// Counts one request; `pages_done` as in [`roll`](Self::roll).
    pub fn add(&mut self, seen: &Seen, pages_done: u32) {
        self.roll(seen.window, pages_done);
        if seen.asset {
            self.assets = self.assets.saturating_add(1);
        }
        self.addrs |= 1u64 << (seen.addr_hash % 64);
    }

    /// Whether the fingerprint spikes now, given its sliding page count.
    pub fn spikes(&mut self, s: &FingerprintSettings, pages: u32, frac_left: f32) -> bool {
        let assets = (self.assets_prev as f32 * frac_left) as u32 + self.assets;
        let few_assets = (assets as f32) < pages as f32 * s.max_assets_per_page;
        let rate = pages >= s.min_pages && pages as f32 > s.spike_factor * self.base_pages;
        let addrs = distinct(self.addrs | self.addrs_prev);
        let spread = pages >= s.min_pages.min(s.min_addresses)
            && addrs >= s.min_addresses as f32
            && addrs > s.spike_factor * self.base_addrs;
        let spike = few_assets && (rate || spread);
        self.spiked |= spike;
        spike
    }
}

/// Linear counting: the number of distinct values hashed into a bitmap.
fn distinct(bits: u64) -> f32 {
    let zero = 64 - bits.count_ones();
    if zero == 0 {
        // Saturated: at least this many.
        return 64.0 * 64f32.ln();
    }
    -64.0 * (zero as f32 / 64.0).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> FingerprintSettings {
        FingerprintSpec::default().compile().unwrap()
    }

    fn seen(window: u32, page: bool, addr: u64) -> Seen {
        Seen {
            window,
            page,
            asset: !page,
            addr_hash: addr.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 7,
        }
    }

    #[test]
    fn a_new_fingerprint_without_assets_spikes_past_the_floor() {
        let s = settings();
        let mut st = FingerprintState::new(1);
        let mut spiked_at = None;
        for page in 1..=40u32 {
            st.add(&seen(1, true, u64::from(page)), 0);
            if st.spikes(&s, page, 1.0) && spiked_at.is_none() {
                spiked_at = Some(page);
            }
        }
        // The spread (16 addresses) or the floor (20 pages), whichever first.
        assert!(
            spiked_at.is_some_and(|p| (14..=20).contains(&p)),
            "{spiked_at:?}"
        );
    }

    #[test]
    fn pages_with_their_assets_never_spike() {
        let s = settings();
        let mut st = FingerprintState::new(1);
        for page in 1..=200u32 {
            st.add(&seen(1, true, u64::from(page)), 0);
            for _ in 0..3 {
                st.add(&seen(1, false, u64::from(page)), 0);
            }
            assert!(!st.spikes(&s, page, 1.0), "page {page}");
        }
    }

    /// `pages` pages from `addrs` addresses in window `w`, with `assets` per page.
    fn window(st: &mut FingerprintState, w: u32, pages: u32, addrs: u64, assets: u32, done: u32) {
        for p in 0..pages {
            st.add(
                &seen(
                    w,
                    true,
                    u64::from(p) % addrs + u64::from(w) * 1000 * u64::from(addrs > 50),
                ),
                done,
            );
            for _ in 0..assets {
                st.add(&seen(w, false, 0), done);
            }
        }
    }

    #[test]
    fn the_baseline_learns_an_ordinary_rate_and_a_fleet_stays_above_it() {
        let s = settings();
        let mut st = FingerprintState::new(0);
        // People: 30 pages a window from 10 addresses, with their assets.
        for w in 1..=60u32 {
            window(&mut st, w, 30, 10, 1, 30);
            assert!(!st.spikes(&s, 30, 1.0), "window {w}");
        }
        assert!((25.0..=31.0).contains(&st.base_pages), "{}", st.base_pages);
        // A fleet at ten times that rate from new addresses, no assets: it
        // spikes at once and, over 200 windows, stays flagged.
        for w in 61..=260u32 {
            window(&mut st, w, 300, 300, 0, if w == 61 { 30 } else { 300 });
            assert!(st.spikes(&s, 300, 1.0), "window {w}");
        }
    }

    #[test]
    fn a_popular_fingerprint_without_assets_learns_its_rate_at_last() {
        let s = settings();
        let mut st = FingerprintState::new(0);
        let mut spiking = Vec::new();
        for w in 1..=400u32 {
            window(&mut st, w, 30, 10, 0, 30);
            spiking.push(st.spikes(&s, 30, 1.0));
        }
        assert!(spiking[0], "no baseline at start: it spikes");
        assert!(
            !spiking[399],
            "and stops once the baseline has learnt the rate"
        );
    }

    #[test]
    fn distinct_counts_are_close() {
        let mut bits = 0u64;
        for a in 0..16u64 {
            bits |= 1 << (seen(0, true, a).addr_hash % 64);
        }
        let n = distinct(bits);
        assert!((12.0..=20.0).contains(&n), "{n}");
        assert!(distinct(u64::MAX) > 200.0);
        assert_eq!(distinct(0), 0.0);
    }

    #[test]
    fn bad_values_name_their_key() {
        let bad = FingerprintSpec {
            spike_factor: 0.5,
            ..FingerprintSpec::default()
        };
        assert_eq!(bad.compile().unwrap_err().0, "spike_factor");
    }
}
