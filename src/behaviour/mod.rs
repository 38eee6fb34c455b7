//! Behaviour: what a client does, remembered in bounded memory and turned
//! into signals and a score that policy rules can act on.
//!
//! - [`signals`]: the signals, path classes and header anomalies;
//! - [`tracker`]: per-client state and the signals it gives;
//! - [`fingerprint`]: one header fingerprint across addresses, against its baseline;
//! - [`shared`]: optional Redis store so that replicas see one client together.
//!
//! The settings live in the snapshot (they change on reload); the tracker
//! lives beside it in the proxy (its state survives reloads).

pub mod assess;
pub mod fingerprint;
pub mod shared;
pub mod signals;
pub mod tracker;

use std::collections::BTreeMap;

use serde::Deserialize;

pub use signals::{PathClass, PathClasses, Signal, SignalSet, Weights};
pub use tracker::{Assessment, Clock, Observation, Tracker};

/// Defaults tuned for a kind of site.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// A catalogue site: pages, images, a few videos.
    #[default]
    Website,
    /// A VOD platform: players pull manifests and segments fast; media formats
    /// are widened and page limits are higher (catalogue browsing in apps).
    Vod,
}

/// Where counters live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Store {
    #[default]
    Local,
    Redis,
}

/// `[behaviour.honeypot]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HoneypotSpec {
    /// The trap path prefix: disallowed for every agent in robots.txt, so that
    /// only a client that ignores robots.txt ever fetches it. Empty: no trap.
    pub path: String,
    /// Add one invisible link to the trap before `</body>` of HTML pages.
    pub inject_link: bool,
}

impl Default for HoneypotSpec {
    fn default() -> Self {
        Self {
            path: "/catalogue-integral/".into(),
            inject_link: true,
        }
    }
}

/// `[behaviour.paths]`: file extensions per class; unset lists take the preset's.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PathsSpec {
    pub pages: Option<Vec<String>>,
    pub assets: Option<Vec<String>>,
    pub manifests: Option<Vec<String>>,
    pub segments: Option<Vec<String>>,
}

/// `[behaviour]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BehaviourSpec {
    pub enabled: bool,
    pub preset: Preset,
    /// Clients (IP + user agent) remembered; the least useful are evicted first.
    pub max_clients: usize,
    /// Length of the sliding window for page rates.
    pub window_seconds: u32,
    /// Pages per window above which a signal fires (preset when unset).
    pub page_limit: Option<u32>,
    pub ip_page_limit: Option<u32>,
    pub subnet_page_limit: Option<u32>,
    /// `no-assets` fires after this many pages...
    pub ratio_min_pages: u32,
    /// ...when fewer than this many assets per page were loaded.
    pub min_assets_per_page: f32,
    /// Refusals after which a verified AI crawler shows `refused-persist`.
    pub refusals_limit: u32,
    /// How long `honeypot` and `robots-ignored` stick to a client.
    pub memory_seconds: u32,
    /// `Retry-After` of a `ratelimit` answer (default: the window).
    pub retry_after_seconds: Option<u32>,
    /// Weights of the signals in the score; unset ones keep their default.
    pub weights: BTreeMap<Signal, u16>,
    pub honeypot: HoneypotSpec,
    pub paths: PathsSpec,
    pub store: Store,
    pub redis_url: String,
    /// How often page counts are sent to the shared store.
    pub flush_ms: u64,
    pub fingerprint: fingerprint::FingerprintSpec,
}

impl Default for BehaviourSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            preset: Preset::Website,
            max_clients: 200_000,
            window_seconds: 10,
            page_limit: None,
            ip_page_limit: None,
            subnet_page_limit: None,
            ratio_min_pages: 10,
            min_assets_per_page: 0.1,
            refusals_limit: 10,
            memory_seconds: 3_600,
            retry_after_seconds: None,
            weights: BTreeMap::new(),
            honeypot: HoneypotSpec::default(),
            paths: PathsSpec::default(),
            store: Store::Local,
            redis_url: "redis://127.0.0.1:6379/".into(),
            flush_ms: 200,
            fingerprint: fingerprint::FingerprintSpec::default(),
        }
    }
}

/// An invalid `[behaviour]` value; `key` is relative to the section.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SettingsError {
    pub key: String,
    pub message: String,
}

/// `[behaviour]`, compiled.
#[derive(Debug, Clone)]
pub struct Settings {
    pub enabled: bool,
    pub max_clients: usize,
    pub window_ms: u64,
    pub page_limit: u32,
    pub ip_page_limit: u32,
    pub subnet_page_limit: u32,
    pub ratio_min_pages: u32,
    pub min_assets_per_page: f32,
    pub refusals_limit: u32,
    pub memory_seconds: u32,
    pub retry_after: http::HeaderValue,
    pub weights: Weights,
    /// The trap path prefix, if any.
    pub honeypot: Option<String>,
    /// The hidden link added to HTML pages, if any.
    pub honeypot_link: Option<bytes::Bytes>,
    pub classes: PathClasses,
    pub store: Store,
    pub redis_url: String,
    pub flush_ms: u64,
    pub fingerprint: fingerprint::FingerprintSettings,
}

fn list(l: &[&str]) -> Vec<String> {
    l.iter().map(|s| (*s).to_owned()).collect()
}

impl Settings {
    pub fn compile(spec: &BehaviourSpec) -> Result<Self, SettingsError> {
        let err = |key: &str, message: String| SettingsError {
            key: key.to_owned(),
            message,
        };
        if spec.window_seconds == 0 || spec.window_seconds > 3_600 {
            return Err(err(
                "window_seconds",
                "must be between 1 and 3600 seconds".into(),
            ));
        }
        if spec.max_clients == 0 {
            return Err(err("max_clients", "must be at least 1".into()));
        }
        if !(0.0..=100.0).contains(&spec.min_assets_per_page) {
            return Err(err(
                "min_assets_per_page",
                "must be between 0 and 100".into(),
            ));
        }
        if spec.flush_ms == 0 {
            return Err(err("flush_ms", "must be at least 1".into()));
        }
        let vod = spec.preset == Preset::Vod;
        let (page, ip, subnet) = if vod { (30, 120, 600) } else { (20, 60, 300) };
        let limit = |v: Option<u32>, d: u32, key: &str| match v {
            Some(0) => Err(err(key, "must be at least 1".into())),
            Some(n) => Ok(n),
            None => Ok(d),
        };
        let mut weights = Weights::default();
        for (s, w) in &spec.weights {
            weights.set(*s, *w);
        }
        let classes = path_classes(&spec.paths, vod)?;
        let trap = spec.honeypot.path.trim();
        let honeypot = if trap.is_empty() {
            None
        } else {
            if !trap.starts_with('/') || trap == "/" || trap.contains(['"', '<', '>', ' ', '\'']) {
                return Err(err(
                    "honeypot.path",
                    format!("{trap:?}: a path below / such as \"/catalogue-integral/\""),
                ));
            }
            Some(trap.to_owned())
        };
        let honeypot_link = honeypot.as_ref().filter(|_| spec.honeypot.inject_link).map(|p| {
            bytes::Bytes::from(format!(
                "<a href=\"{p}\" rel=\"nofollow\" style=\"display:none\" aria-hidden=\"true\" tabindex=\"-1\">catalogue</a>"
            ))
        });
        let retry = spec.retry_after_seconds.unwrap_or(spec.window_seconds);
        let fingerprint = spec
            .fingerprint
            .compile()
            .map_err(|(key, message)| err(&format!("fingerprint.{key}"), message))?;
        Ok(Self {
            enabled: spec.enabled,
            max_clients: spec.max_clients,
            window_ms: u64::from(spec.window_seconds) * 1000,
            page_limit: limit(spec.page_limit, page, "page_limit")?,
            ip_page_limit: limit(spec.ip_page_limit, ip, "ip_page_limit")?,
            subnet_page_limit: limit(spec.subnet_page_limit, subnet, "subnet_page_limit")?,
            ratio_min_pages: spec.ratio_min_pages.max(1),
            min_assets_per_page: spec.min_assets_per_page,
            refusals_limit: spec.refusals_limit.max(1),
            memory_seconds: spec.memory_seconds,
            retry_after: http::HeaderValue::from(retry),
            weights,
            honeypot,
            honeypot_link,
            classes,
            store: spec.store,
            redis_url: spec.redis_url.clone(),
            flush_ms: spec.flush_ms,
            fingerprint,
        })
    }

    /// Whether a path is in the trap.
    pub fn is_honeypot(&self, path: &str) -> bool {
        self.honeypot
            .as_deref()
            .is_some_and(|t| path.starts_with(t) || path == t.trim_end_matches('/'))
    }
}

/// `[behaviour.paths]`: each class's extensions, the preset's where unset.
fn path_classes(p: &PathsSpec, vod: bool) -> Result<PathClasses, SettingsError> {
    let err = |key: &str, message: String| SettingsError {
        key: key.to_owned(),
        message,
    };
    let pick = |v: &Option<Vec<String>>, d: Vec<String>, key: &str| -> Result<_, SettingsError> {
        let v = v.clone().unwrap_or(d);
        for (i, e) in v.iter().enumerate() {
            if e.is_empty()
                || e.contains(['.', '/', ' '])
                || e.chars().any(char::is_control)
                || e.len() > PathClasses::MAX_EXTENSION
            {
                return Err(err(
                    &format!("paths.{key}[{i}]"),
                    format!(
                        "{e:?}: write an extension without the dot, of at most {} characters, like \"css\"",
                        PathClasses::MAX_EXTENSION
                    ),
                ));
            }
        }
        Ok(v)
    };
    let mut segments = list(&["ts", "m4s", "mp4", "m4a", "m4v", "aac", "vtt", "webm"]);
    if vod {
        segments.extend(list(&[
            "cmfv", "cmfa", "cmft", "mp3", "webvtt", "ttml", "dfxp", "key", "init", "mkv",
        ]));
    }
    let pages = pick(
        &p.pages,
        list(&["html", "htm", "php", "asp", "aspx", "jsp", "shtml"]),
        "pages",
    )?;
    let assets = pick(
        &p.assets,
        list(&[
            "css", "js", "mjs", "png", "jpg", "jpeg", "gif", "webp", "avif", "svg", "ico", "woff",
            "woff2", "ttf", "otf", "eot", "map",
        ]),
        "assets",
    )?;
    let manifests = pick(
        &p.manifests,
        list(&["m3u8", "mpd", "ism", "f4m"]),
        "manifests",
    )?;
    let segments = pick(&p.segments, segments, "segments")?;
    Ok(PathClasses::new(&pages, &assets, &manifests, &segments))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_overrides() {
        let web = Settings::compile(&BehaviourSpec::default()).unwrap();
        let vod = Settings::compile(&BehaviourSpec {
            preset: Preset::Vod,
            page_limit: Some(50),
            ..BehaviourSpec::default()
        })
        .unwrap();
        assert_eq!((web.page_limit, vod.page_limit), (20, 50));
        assert!(vod.ip_page_limit > web.ip_page_limit);
        assert_eq!(vod.classes.classify("/v/init.cmfv"), PathClass::Segment);
        assert_eq!(web.classes.classify("/v/init.cmfv"), PathClass::Other);
        assert!(web.is_honeypot("/catalogue-integral/films"));
        assert!(web.is_honeypot("/catalogue-integral"));
        assert!(!web.is_honeypot("/catalogue"));
    }

    #[test]
    fn bad_values_name_their_key() {
        for (spec, key) in [
            (
                BehaviourSpec {
                    window_seconds: 0,
                    ..Default::default()
                },
                "window_seconds",
            ),
            (
                BehaviourSpec {
                    page_limit: Some(0),
                    ..Default::default()
                },
                "page_limit",
            ),
            (
                BehaviourSpec {
                    honeypot: HoneypotSpec {
                        path: "trap".into(),
                        inject_link: true,
                    },
                    ..Default::default()
                },
                "honeypot.path",
            ),
            (
                BehaviourSpec {
                    paths: PathsSpec {
                        assets: Some(vec![".css".into()]),
                        ..Default::default()
                    },
                    ..Default::default()
                },
                "paths.assets[0]",
            ),
            (
                BehaviourSpec {
                    paths: PathsSpec {
                        segments: Some(vec!["ts".into(), "longerthan8".into()]),
                        ..Default::default()
                    },
                    ..Default::default()
                },
                "paths.segments[1]",
            ),
        ] {
            let e = Settings::compile(&spec).unwrap_err();
            assert_eq!(e.key, key);
        }
    }
}
