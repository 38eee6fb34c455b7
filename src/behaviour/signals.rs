//! The behaviour signals, as a small bit set, and the ones that a single
//! request shows on its own: header anomalies and the class of its path.

use std::sync::LazyLock;

use memchr::memmem::Finder;
use serde::{Deserialize, Serialize};

/// One thing a client did that a person in a browser does not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Signal {
    /// More HTML pages per window than the limit, for this IP and user agent.
    PageRate,
    /// More HTML pages per window than the limit, for this IP (any user agent).
    IpRate,
    /// More HTML pages per window than the limit, for this /24 or /64.
    SubnetRate,
    /// Many pages and (almost) no stylesheets, scripts, images or fonts.
    NoAssets,
    /// Fetched robots.txt, then a path that robots.txt disallowed for it.
    RobotsIgnored,
    /// Fetched the trap path that robots.txt disallows for everyone and no
    /// person can see.
    Honeypot,
    /// A Chromium user agent without `sec-ch-ua` and `sec-fetch-*`, over HTTPS.
    HeadlessChromium,
    /// No `Accept-Language` header.
    NoAcceptLanguage,
    /// HTTP/1.0.
    Http10,
    /// No `Accept` header.
    NoAccept,
    /// A verified AI crawler that keeps coming after it was refused (402/403).
    RefusedPersist,
    /// A user agent that claims a browser, with headers that browser never
    /// sends that way (another client's header set).
    HeaderMismatch,
    /// The request's header fingerprint fetches pages, across all addresses,
    /// far above its own baseline and with few assets.
    FingerprintSpike,
    /// A browser-shaped user agent from an address of a hosting network
    /// (cloud, VPS, dedicated servers): people rarely browse from there.
    HostingNetwork,
}

impl Signal {
    pub const ALL: [Signal; 14] = [
        Signal::PageRate,
        Signal::IpRate,
        Signal::SubnetRate,
        Signal::NoAssets,
        Signal::RobotsIgnored,
        Signal::Honeypot,
        Signal::HeadlessChromium,
        Signal::NoAcceptLanguage,
        Signal::Http10,
        Signal::NoAccept,
        Signal::RefusedPersist,
        Signal::HeaderMismatch,
        Signal::FingerprintSpike,
        Signal::HostingNetwork,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Signal::PageRate => "page-rate",
            Signal::IpRate => "ip-rate",
            Signal::SubnetRate => "subnet-rate",
            Signal::NoAssets => "no-assets",
            Signal::RobotsIgnored => "robots-ignored",
            Signal::Honeypot => "honeypot",
            Signal::HeadlessChromium => "headless-chromium",
            Signal::NoAcceptLanguage => "no-accept-language",
            Signal::Http10 => "http10",
            Signal::NoAccept => "no-accept",
            Signal::RefusedPersist => "refused-persist",
            Signal::HeaderMismatch => "header-mismatch",
            Signal::FingerprintSpike => "fingerprint-spike",
            Signal::HostingNetwork => "hosting-network",
        }
    }

    /// The default weight in the score. The strongest signals alone reach
    /// every shipped threshold; header anomalies alone never do.
    pub fn default_weight(self) -> u16 {
        match self {
            Signal::PageRate => 40,
            Signal::IpRate => 30,
            Signal::SubnetRate => 20,
            Signal::NoAssets => 30,
            Signal::RobotsIgnored => 100,
            Signal::Honeypot => 100,
            Signal::HeadlessChromium => 30,
            Signal::NoAcceptLanguage => 10,
            Signal::Http10 => 10,
            Signal::NoAccept => 10,
            Signal::RefusedPersist => 50,
            Signal::HeaderMismatch => 20,
            Signal::FingerprintSpike => 30,
            // Moderate: VPN exits and corporate proxies live there too, so
            // alone it never reaches a shipped threshold.
            Signal::HostingNetwork => 30,
        }
    }
}

/// A set of signals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SignalSet(u16);

impl SignalSet {
    pub const EMPTY: SignalSet = SignalSet(0);

    pub fn insert(&mut self, s: Signal) {
        self.0 |= 1 << s as u16;
    }
    pub fn with(mut self, s: Signal) -> Self {
        self.insert(s);
        self
    }
    pub fn contains(self, s: Signal) -> bool {
        self.0 & (1 << s as u16) != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn union(self, other: SignalSet) -> SignalSet {
        SignalSet(self.0 | other.0)
    }
    pub fn intersects(self, other: SignalSet) -> bool {
        self.0 & other.0 != 0
    }
    pub fn iter(self) -> impl Iterator<Item = Signal> {
        Signal::ALL.into_iter().filter(move |s| self.contains(*s))
    }
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Signal::as_str).collect()
    }
}

impl FromIterator<Signal> for SignalSet {
    fn from_iter<I: IntoIterator<Item = Signal>>(iter: I) -> Self {
        iter.into_iter()
            .fold(SignalSet::EMPTY, |set, s| set.with(s))
    }
}

impl Serialize for SignalSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(Signal::as_str))
    }
}

/// Weights of the signals in the score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weights([u16; Signal::ALL.len()]);

impl Default for Weights {
    fn default() -> Self {
        Weights(Signal::ALL.map(Signal::default_weight))
    }
}

impl Weights {
    pub fn set(&mut self, s: Signal, w: u16) {
        self.0[s as usize] = w;
    }
    pub fn get(&self, s: Signal) -> u16 {
        self.0[s as usize]
    }
    /// The score of a set of signals: the sum of their weights.
    pub fn score(&self, set: SignalSet) -> u16 {
        set.iter()
            .fold(0u16, |acc, s| acc.saturating_add(self.get(s)))
    }
}

/// What a path is, for counting: people load pages with assets, players load
/// manifests and segments, scrapers load pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathClass {
    Page,
    Asset,
    Manifest,
    Segment,
    Other,
}

impl PathClass {
    pub fn as_str(self) -> &'static str {
        match self {
            PathClass::Page => "page",
            PathClass::Asset => "asset",
            PathClass::Manifest => "manifest",
            PathClass::Segment => "segment",
            PathClass::Other => "other",
        }
    }
}

/// Path classes by file extension, compiled for one lookup per request: each
/// extension (at most [`PathClasses::MAX_EXTENSION`] bytes, any case) packed
/// into an integer and placed in a small open-addressed table, so that a
/// lookup is one multiply and, almost always, one probe (a binary search
/// mispredicts a branch at every step, on every request). An extension in two
/// lists is of the first: pages, assets, manifests, segments.
#[derive(Debug, Clone)]
pub struct PathClasses {
    /// A power-of-two number of slots, at most half full; key 0 is empty.
    slots: Box<[(u64, PathClass)]>,
    shift: u32,
}

impl Default for PathClasses {
    fn default() -> Self {
        Self::new(&[], &[], &[], &[])
    }
}

impl PathClasses {
    /// Longer extensions name no class: such a path is a page.
    pub const MAX_EXTENSION: usize = 8;

    /// The lists in precedence order; extensions that cannot match (empty,
    /// too long, with a NUL byte) are left out (the config's validation
    /// refuses them).
    pub fn new(
        pages: &[String],
        assets: &[String],
        manifests: &[String],
        segments: &[String],
    ) -> Self {
        let mut entries: Vec<(u64, PathClass)> = Vec::new();
        for (list, class) in [
            (pages, PathClass::Page),
            (assets, PathClass::Asset),
            (manifests, PathClass::Manifest),
            (segments, PathClass::Segment),
        ] {
            for key in list.iter().filter_map(|e| extension_key(e.as_bytes())) {
                if !entries.iter().any(|(k, _)| *k == key) {
                    entries.push((key, class));
                }
            }
        }
        let len = (entries.len() * 2).next_power_of_two().max(16);
        let mut table = Self {
            slots: vec![(0, PathClass::Other); len].into_boxed_slice(),
            shift: 64 - len.trailing_zeros(),
        };
        for (key, class) in entries {
            let mut i = table.home(key);
            while table.slots[i].0 != 0 {
                i = (i + 1) & (len - 1);
            }
            table.slots[i] = (key, class);
        }
        table
    }

    fn home(&self, key: u64) -> usize {
        // Fibonacci hashing: the top bits of the product spread the keys.
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// Classifies a normalised path by the extension of its last segment; a
    /// path without one (`/films/la-traversee`, `/`) is a page.
    pub fn classify(&self, path: &str) -> PathClass {
        let path = path.as_bytes();
        let last = memchr::memrchr(b'/', path).map_or(path, |i| &path[i + 1..]);
        let Some(dot) = memchr::memrchr(b'.', last) else {
            return PathClass::Page;
        };
        let ext = &last[dot + 1..];
        if ext.is_empty() || ext.len() > Self::MAX_EXTENSION {
            return PathClass::Page;
        }
        let Some(key) = extension_key(ext) else {
            return PathClass::Other;
        };
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        // At most half the slots are taken, so an empty one ends the probe.
        loop {
            match self.slots.get(i) {
                Some((k, class)) if *k == key => return *class,
                Some((0, _)) | None => return PathClass::Other,
                Some(_) => i = (i + 1) & mask,
            }
        }
    }
}

/// An extension's bytes in lower case, packed little-endian into a `u64`:
/// never 0 for a non-empty extension without NUL bytes, and unique for those
/// (a NUL byte would make `js\0` pack as `js`, so such an extension has no
/// key and matches nothing).
fn extension_key(ext: &[u8]) -> Option<u64> {
    if ext.is_empty() || ext.len() > PathClasses::MAX_EXTENSION || ext.contains(&0) {
        return None;
    }
    let mut bytes = [0u8; 8];
    for (to, from) in bytes.iter_mut().zip(ext) {
        *to = from.to_ascii_lowercase();
    }
    Some(u64::from_le_bytes(bytes))
}

fn header_present(headers: &http::HeaderMap, name: http::HeaderName) -> bool {
    headers.get(name).is_some_and(|v| !v.is_empty())
}

/// Signals a request shows by its headers alone.
///
/// `secure` says whether the request reached rempart (or the trusted proxy
/// before it) over HTTPS: browsers send `sec-ch-ua` and `sec-fetch-*` only
/// to secure origins, so over plain HTTP their absence proves nothing and the
/// check is skipped rather than risk flagging every viewer. `browser` says
/// the user agent claims a browser: only then can its headers contradict it.
pub fn header_signals(
    headers: &http::HeaderMap,
    version: http::Version,
    user_agent: &[u8],
    secure: bool,
    browser: bool,
) -> SignalSet {
    let mut set = SignalSet::EMPTY;
    if version == http::Version::HTTP_10 || version == http::Version::HTTP_09 {
        set.insert(Signal::Http10);
    }
    let accept = headers.get(http::header::ACCEPT).filter(|v| !v.is_empty());
    if accept.is_none() {
        set.insert(Signal::NoAccept);
    }
    if !header_present(headers, http::header::ACCEPT_LANGUAGE) {
        set.insert(Signal::NoAcceptLanguage);
    }
    let family = Family::of(user_agent);
    // Fetch metadata and client hints mean something over HTTPS only.
    let fetch = secure && headers.keys().any(|k| k.as_str().starts_with("sec-fetch-"));
    let hints = secure && header_present(headers, crate::request::names::SEC_CH_UA);
    if secure && family == Family::Chromium && !hints && !fetch {
        set.insert(Signal::HeadlessChromium);
    }
    if browser && family != Family::Other {
        // Every request a browser makes carries Accept and Accept-Language
        // and is HTTP/1.1 or later; a navigation never accepts only `*/*`.
        let navigate = headers
            .get(crate::request::names::SEC_FETCH_MODE)
            .is_some_and(|v| v.as_bytes() == b"navigate");
        let mismatch = set.contains(Signal::Http10)
            || set.contains(Signal::NoAccept)
            || set.contains(Signal::NoAcceptLanguage)
            || set.contains(Signal::HeadlessChromium)
            // Firefox sends fetch metadata to secure origins since 90.
            || (secure && family == Family::Firefox && !fetch)
            || (navigate && accept.is_some_and(|a| a.as_bytes() == b"*/*"));
        if mismatch {
            set.insert(Signal::HeaderMismatch);
        }
    }
    set
}

/// The browser family a user agent claims, for the header checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    /// Chrome, Edge, Opera, Samsung Internet… version 90 or later (older
    /// ones predate client hints).
    Chromium,
    /// Firefox 90 or later (fetch metadata).
    Firefox,
    /// Safari and the WebKit browsers of iOS.
    WebKit,
    Other,
}

/// The product tokens the family test looks for, each searcher built once
/// (building one costs as much as a search through a user agent).
struct Products {
    chrome: Finder<'static>,
    firefox: Finder<'static>,
    webkit: Finder<'static>,
    safari: Finder<'static>,
}

static PRODUCTS: LazyLock<Products> = LazyLock::new(|| Products {
    chrome: Finder::new(b"Chrome/"),
    firefox: Finder::new(b"Firefox/"),
    webkit: Finder::new(b"AppleWebKit/"),
    safari: Finder::new(b"Safari/"),
});

impl Family {
    fn of(ua: &[u8]) -> Self {
        let p = &*PRODUCTS;
        let chrome = major_after(ua, &p.chrome);
        if chrome.is_some_and(|v| v >= 90) {
            Family::Chromium
        } else if major_after(ua, &p.firefox).is_some_and(|v| v >= 90) {
            Family::Firefox
        } else if p.webkit.find(ua).is_some()
            && p.safari.find(ua).is_some()
            && p.chrome.find(ua).is_none()
        {
            Family::WebKit
        } else {
            Family::Other
        }
    }
}

/// The major version after `token` (`Chrome/126.0` → 126).
fn major_after(ua: &[u8], token: &Finder<'_>) -> Option<u32> {
    let at = token.find(ua)? + token.needle().len();
    let digits = ua[at..].iter().take_while(|b| b.is_ascii_digit()).take(6);
    digits.fold(None, |acc, d| {
        Some(acc.unwrap_or(0) * 10 + u32::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes() -> PathClasses {
        let v = |l: &[&str]| -> Vec<String> { l.iter().map(|s| s.to_string()).collect() };
        PathClasses::new(
            &v(&["html", "htm", "php"]),
            &v(&["css", "js", "png", "woff2", "html"]),
            &v(&["m3u8", "mpd"]),
            &v(&["ts", "m4s", "mp4", "manifest"]),
        )
    }

    #[test]
    fn paths_are_classed_by_extension() {
        let c = classes();
        for (path, class) in [
            ("/", PathClass::Page),
            ("/films/la-traversee", PathClass::Page),
            ("/films/index.HTML", PathClass::Page),
            ("/films.v2/", PathClass::Page),
            ("/static/site.css", PathClass::Asset),
            ("/img/poster.PNG", PathClass::Asset),
            ("/vod/master.m3u8", PathClass::Manifest),
            ("/vod/manifest.mpd", PathClass::Manifest),
            ("/vod/seg-00042.ts", PathClass::Segment),
            ("/vod/chunk-1.m4s", PathClass::Segment),
            ("/catalogue.pdf", PathClass::Other),
            ("/a.verylongextension", PathClass::Page),
            // Eight bytes is the longest extension; the first list wins.
            ("/hls/x.MANIFEST", PathClass::Segment),
            ("/x.html", PathClass::Page),
            ("/x.", PathClass::Page),
            ("/x.js\u{0}", PathClass::Other),
            ("/dir.css/page", PathClass::Page),
            ("no-slash.css", PathClass::Asset),
        ] {
            assert_eq!(c.classify(path), class, "{path}");
        }
    }

    #[test]
    fn a_full_table_finds_every_extension_and_nothing_else() {
        // Far more extensions than a config lists, so that probes chain.
        let exts: Vec<String> = (0..200).map(|i| format!("e{i}")).collect();
        let c = PathClasses::new(&[], &exts, &[], &[]);
        assert!(c.slots.len() >= 400 && c.slots.len().is_power_of_two());
        for e in &exts {
            assert_eq!(
                c.classify(&format!("/a/b.{}", e.to_uppercase())),
                PathClass::Asset,
                "{e}"
            );
        }
        for miss in ["/x.e200", "/x.f1", "/x.e1\u{0}", "/x.\u{0}e1"] {
            assert_eq!(c.classify(miss), PathClass::Other, "{miss}");
        }
        assert_eq!(PathClasses::default().classify("/x.css"), PathClass::Other);
    }

    #[test]
    fn header_anomalies() {
        let chrome = b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
        let mut full = http::HeaderMap::new();
        full.insert("accept", "text/html".parse().unwrap());
        full.insert("accept-language", "fr-FR".parse().unwrap());
        full.insert("sec-ch-ua", "\"Chromium\";v=\"126\"".parse().unwrap());
        full.insert("sec-fetch-mode", "navigate".parse().unwrap());
        let v11 = http::Version::HTTP_11;
        assert!(header_signals(&full, v11, chrome, true, true).is_empty());

        let mut bare = http::HeaderMap::new();
        bare.insert("accept", "*/*".parse().unwrap());
        let s = header_signals(&bare, v11, chrome, true, true);
        assert_eq!(
            s.names(),
            ["headless-chromium", "no-accept-language", "header-mismatch"],
            "a Chromium UA with none of the headers Chromium sends"
        );
        // Over plain HTTP Chromium sends no client hints: no signal.
        let s = header_signals(&bare, v11, chrome, false, true);
        assert_eq!(s.names(), ["no-accept-language", "header-mismatch"]);
        // Firefox sends no client hints at all.
        let firefox = b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert!(!header_signals(&bare, v11, firefox, true, true).contains(Signal::HeadlessChromium));

        let empty = http::HeaderMap::new();
        let s = header_signals(&empty, http::Version::HTTP_10, b"curl/8.0", true, false);
        assert_eq!(s.names(), ["no-accept-language", "http10", "no-accept"]);
    }

    #[test]
    fn a_browser_user_agent_with_another_clients_headers() {
        let v11 = http::Version::HTTP_11;
        let chrome = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        let firefox = b"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
        let safari = b"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
        let map = |h: &[(&str, &str)]| {
            let mut m = http::HeaderMap::new();
            for (k, v) in h {
                m.append(
                    http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            m
        };
        // python-requests with a browser's user agent.
        let requests = map(&[
            ("accept", "*/*"),
            ("accept-encoding", "gzip, deflate"),
            ("connection", "keep-alive"),
        ]);
        for ua in [&chrome[..], firefox, safari] {
            assert!(
                header_signals(&requests, v11, ua, false, true).contains(Signal::HeaderMismatch)
            );
        }
        // Each browser's own navigation over HTTPS: nothing.
        let chrome_nav = map(&[
            ("sec-ch-ua", "\"Chromium\";v=\"131\""),
            ("user-agent", "x"),
            ("accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
            ("sec-fetch-mode", "navigate"),
            ("accept-language", "fr-FR,fr;q=0.9"),
        ]);
        assert!(header_signals(&chrome_nav, v11, chrome, true, true).is_empty());
        let firefox_nav = map(&[
            ("accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
            ("accept-language", "fr,en;q=0.5"),
            ("sec-fetch-mode", "navigate"),
        ]);
        assert!(header_signals(&firefox_nav, v11, firefox, true, true).is_empty());
        // Firefox over HTTPS without fetch metadata is not Firefox.
        let no_fetch = map(&[("accept", "text/html"), ("accept-language", "fr")]);
        assert!(
            header_signals(&no_fetch, v11, firefox, true, true).contains(Signal::HeaderMismatch)
        );
        // Over plain HTTP the same headers are what Firefox sends.
        assert!(header_signals(&no_fetch, v11, firefox, false, true).is_empty());
        // A navigation that accepts only */*.
        let star = map(&[
            ("accept", "*/*"),
            ("accept-language", "fr"),
            ("sec-fetch-mode", "navigate"),
            ("sec-ch-ua", "x"),
        ]);
        assert!(header_signals(&star, v11, chrome, true, true).contains(Signal::HeaderMismatch));
        // A script's fetch() accepts */* and is not a navigation: nothing.
        let fetch = map(&[
            ("accept", "*/*"),
            ("accept-language", "fr"),
            ("sec-fetch-mode", "cors"),
            ("sec-ch-ua", "x"),
        ]);
        assert!(header_signals(&fetch, v11, chrome, true, true).is_empty());
        // Not claiming a browser: no mismatch to speak of.
        assert!(
            !header_signals(&requests, v11, b"python-requests/2.32", false, false)
                .contains(Signal::HeaderMismatch)
        );
    }

    #[test]
    fn score_is_the_sum_of_weights() {
        let w = Weights::default();
        let set: SignalSet = [Signal::PageRate, Signal::NoAssets].into_iter().collect();
        assert_eq!(w.score(set), 70);
        assert_eq!(w.score(SignalSet::EMPTY), 0);
        let mut w2 = w;
        w2.set(Signal::RobotsIgnored, u16::MAX);
        assert_eq!(
            w2.score(
                SignalSet::EMPTY
                    .with(Signal::RobotsIgnored)
                    .with(Signal::Honeypot)
            ),
            u16::MAX
        );
    }
}
