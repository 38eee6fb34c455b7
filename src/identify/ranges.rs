//! Operators' published crawler IP ranges, compiled into one lookup table.
//!
//! Every range file (OpenAI's `gptbot.json`, Google's `common-crawlers.json`, …)
//! becomes a *source* with a bit in a 64-bit set. All prefixes of all sources
//! are flattened once into sorted, disjoint intervals, each carrying the set of
//! sources that cover it, with a block index ([`super::interval`]), so one
//! short search answers "which operators' lists contain this address": no
//! allocation, no lock. Verifying a claimed agent is then a bit test against
//! the sources of that agent.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

use super::interval::{Addr, Ranges};

/// The most range sources one table can hold (one bit each in [`SourceSet`]).
pub const MAX_SOURCES: usize = 64;

/// A set of range sources, one bit per source index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceSet(u64);

impl SourceSet {
    pub const EMPTY: SourceSet = SourceSet(0);

    pub fn with(self, index: usize) -> SourceSet {
        SourceSet(self.0 | (1u64 << index))
    }
    pub fn intersects(self, other: SourceSet) -> bool {
        self.0 & other.0 != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Indices of the sources in the set, lowest first.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..MAX_SOURCES).filter(move |i| self.0 & (1u64 << i) != 0)
    }
}

/// Errors loading range files. Each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum RangeError {
    #[error("{path}: cannot read range file: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: not a range file (expected {{\"prefixes\": [{{\"ipv4Prefix\": …}}]}}): {source}"
    )]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: prefix #{index} {value:?} is not an IP network")]
    Prefix {
        path: PathBuf,
        index: usize,
        value: String,
    },
    #[error("{path}: prefix #{index} has neither ipv4Prefix nor ipv6Prefix")]
    EmptyPrefix { path: PathBuf, index: usize },
    #[error("{dir}: more than {MAX_SOURCES} range files")]
    TooMany { dir: PathBuf },
}

/// The vendor format shared by every operator's file.
#[derive(Deserialize)]
struct VendorFile {
    #[serde(rename = "creationTime", default)]
    creation_time: Option<String>,
    prefixes: Vec<VendorPrefix>,
}

#[derive(Deserialize)]
struct VendorPrefix {
    #[serde(rename = "ipv4Prefix", default)]
    ipv4: Option<String>,
    #[serde(rename = "ipv6Prefix", default)]
    ipv6: Option<String>,
}

/// One parsed range file.
#[derive(Debug, Clone)]
pub struct RangeSource {
    /// File stem, the name agents refer to (`gptbot`).
    pub name: String,
    pub path: PathBuf,
    pub creation_time: Option<String>,
    pub prefixes: Vec<IpNet>,
    /// When the file was written (fetched, or shipped), for freshness.
    pub modified: Option<std::time::SystemTime>,
}

impl RangeSource {
    /// Parses one vendor range file held in memory.
    pub fn parse(name: &str, path: &Path, text: &str) -> Result<Self, RangeError> {
        let file: VendorFile = serde_json::from_str(text).map_err(|source| RangeError::Parse {
            path: path.to_owned(),
            source,
        })?;
        let mut prefixes = Vec::with_capacity(file.prefixes.len());
        for (index, p) in file.prefixes.into_iter().enumerate() {
            let value = p.ipv4.or(p.ipv6).ok_or_else(|| RangeError::EmptyPrefix {
                path: path.to_owned(),
                index,
            })?;
            let net = value
                .trim()
                .parse::<IpNet>()
                .or_else(|_| value.trim().parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| RangeError::Prefix {
                    path: path.to_owned(),
                    index,
                    value: value.clone(),
                })?;
            prefixes.push(net.trunc());
        }
        Ok(Self {
            name: name.to_owned(),
            path: path.to_owned(),
            creation_time: file.creation_time,
            prefixes,
            modified: None,
        })
    }

    /// Reads one file from disk.
    pub fn load(path: &Path) -> Result<Self, RangeError> {
        let text = std::fs::read_to_string(path).map_err(|source| RangeError::Read {
            path: path.to_owned(),
            source,
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut source = Self::parse(&name, path, &text)?;
        source.modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        Ok(source)
    }

    /// [`RangeSource::load_dir`], with each file replaced by its copy in
    /// `state` (a refreshed list) when there is one that parses. A state
    /// copy that does not parse is skipped with a warning: the shipped list
    /// is better than none.
    pub fn load_dir_overlay(dir: &Path, state: &Path) -> Result<Vec<Self>, RangeError> {
        let mut sources = Self::load_dir(dir)?;
        for source in &mut sources {
            let Some(file) = source.path.file_name() else {
                continue;
            };
            let copy = state.join(file);
            if !copy.exists() {
                continue;
            }
            match Self::load(&copy) {
                Ok(fresh) => *source = fresh,
                Err(e) => {
                    tracing::warn!(error = %e, "refreshed range list unreadable; the shipped one is used")
                }
            }
        }
        Ok(sources)
    }

    /// Reads every `*.json` file of a directory, sorted by name.
    pub fn load_dir(dir: &Path) -> Result<Vec<Self>, RangeError> {
        let entries = std::fs::read_dir(dir).map_err(|source| RangeError::Read {
            path: dir.to_owned(),
            source,
        })?;
        let mut paths = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| RangeError::Read {
                path: dir.to_owned(),
                source,
            })?;
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json") {
                paths.push(path);
            }
        }
        paths.sort();
        if paths.len() > MAX_SOURCES {
            return Err(RangeError::TooMany {
                dir: dir.to_owned(),
            });
        }
        paths.iter().map(|p| Self::load(p)).collect()
    }
}

/// Flattens possibly overlapping inclusive `(start, end, source)` intervals
/// of one family into disjoint ranges, each with the set of sources that
/// cover it; contiguous ranges with the same set are merged.
fn flatten<A: Addr>(mut spans: Vec<(A, A, usize)>) -> Ranges<A, SourceSet> {
    // Sweep over boundaries: +1 at start, -1 just past the end.
    let mut events: Vec<(A, bool, usize)> = Vec::with_capacity(spans.len() * 2);
    for &(start, end, source) in &spans {
        events.push((start, true, source));
        if let Some(after) = end.succ() {
            events.push((after, false, source));
        }
    }
    spans.clear();
    events.sort_unstable_by_key(|&(pos, _, _)| pos);
    let mut counts = [0u32; MAX_SOURCES];
    let mut table = Ranges::<A, SourceSet>::default();
    let mut i = 0;
    while i < events.len() {
        let pos = events[i].0;
        while i < events.len() && events[i].0 == pos {
            let (_, open, source) = events[i];
            if open {
                counts[source] += 1;
            } else {
                counts[source] -= 1;
            }
            i += 1;
        }
        let set = counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .fold(SourceSet::EMPTY, |s, (idx, _)| s.with(idx));
        let end = match events.get(i) {
            Some(&(next, _, _)) => next.pred(),
            None => A::MAX,
        };
        if set.is_empty() {
            continue;
        }
        match table.last() {
            Some((last_end, last_set)) if last_set == set && last_end.succ() == Some(pos) => {
                table.extend_last(end)
            }
            _ => table.push(pos, end, set),
        }
    }
    table.index();
    table
}

/// Every operator range, compiled for lookup.
#[derive(Debug, Clone, Default)]
pub struct RangeTable {
    sources: Vec<RangeSource>,
    v4: Ranges<u32, SourceSet>,
    v6: Ranges<u128, SourceSet>,
}

impl RangeTable {
    /// Compiles the sources (at most [`MAX_SOURCES`]) into one table.
    pub fn new(sources: Vec<RangeSource>) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (idx, source) in sources.iter().enumerate().take(MAX_SOURCES) {
            for net in &source.prefixes {
                match net {
                    IpNet::V4(n) => v4.push((n.network().into(), n.broadcast().into(), idx)),
                    IpNet::V6(n) => {
                        v6.push((u128::from(n.network()), u128::from(n.broadcast()), idx))
                    }
                }
            }
        }
        Self {
            sources,
            v4: flatten(v4),
            v6: flatten(v6),
        }
    }

    /// The sources whose published ranges contain `ip`. IPv4-mapped IPv6
    /// addresses are looked up as IPv4.
    pub fn lookup(&self, ip: IpAddr) -> SourceSet {
        match ip {
            IpAddr::V4(v4) => self.v4.find(v4.into()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => self.v4.find(v4.into()),
                None => self.v6.find(v6.into()),
            },
        }
        .unwrap_or(SourceSet::EMPTY)
    }

    /// Index of the source with this name.
    pub fn source_index(&self, name: &str) -> Option<usize> {
        self.sources.iter().position(|s| s.name == name)
    }

    pub fn sources(&self) -> &[RangeSource] {
        &self.sources
    }

    /// Total prefixes as published (before flattening).
    pub fn prefix_count(&self) -> usize {
        self.sources.iter().map(|s| s.prefixes.len()).sum()
    }

    /// Disjoint intervals after flattening (what a lookup searches).
    pub fn interval_count(&self) -> usize {
        self.v4.len() + self.v6.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(name: &str, json: &str) -> RangeSource {
        RangeSource::parse(name, Path::new(name), json).unwrap()
    }

    fn table() -> RangeTable {
        RangeTable::new(vec![
            source(
                "a",
                r#"{"creationTime":"x","prefixes":[{"ipv4Prefix":"10.0.0.0/8"},{"ipv6Prefix":"2001:db8::/32"}]}"#,
            ),
            source(
                "b",
                r#"{"prefixes":[{"ipv4Prefix":"10.1.0.0/16"},{"ipv4Prefix":"192.0.2.7"}],"_source":"x"}"#,
            ),
        ])
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn overlapping_prefixes_carry_every_source() {
        let t = table();
        let a = t.source_index("a").unwrap();
        let b = t.source_index("b").unwrap();
        assert_eq!(t.lookup(ip("10.2.3.4")), SourceSet::EMPTY.with(a));
        assert_eq!(t.lookup(ip("10.1.3.4")), SourceSet::EMPTY.with(a).with(b));
        assert_eq!(t.lookup(ip("10.255.255.255")), SourceSet::EMPTY.with(a));
        assert_eq!(t.lookup(ip("11.0.0.0")), SourceSet::EMPTY);
        assert_eq!(t.lookup(ip("9.255.255.255")), SourceSet::EMPTY);
        assert_eq!(t.lookup(ip("192.0.2.7")), SourceSet::EMPTY.with(b));
        assert_eq!(t.lookup(ip("192.0.2.8")), SourceSet::EMPTY);
        assert_eq!(t.lookup(ip("2001:db8::1")), SourceSet::EMPTY.with(a));
        assert_eq!(t.lookup(ip("2001:db9::1")), SourceSet::EMPTY);
        assert_eq!(
            t.lookup(ip("::ffff:10.1.0.1")),
            SourceSet::EMPTY.with(a).with(b)
        );
        assert_eq!(t.prefix_count(), 4);
    }

    #[test]
    fn bad_files_name_their_fault() {
        let err = RangeSource::parse(
            "x",
            Path::new("x.json"),
            r#"{"prefixes":[{"ipv4Prefix":"10.0.0.0/33"}]}"#,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("x.json") && err.to_string().contains("10.0.0.0/33"),
            "{err}"
        );
        let err = RangeSource::parse("x", Path::new("x.json"), "[1,2]").unwrap_err();
        assert!(err.to_string().starts_with("x.json:"), "{err}");
        let err = RangeSource::parse("x", Path::new("x.json"), r#"{"prefixes":[{}]}"#).unwrap_err();
        assert!(err.to_string().contains("neither"), "{err}");
    }

    #[test]
    fn whole_address_space_is_handled() {
        let t = RangeTable::new(vec![source(
            "all",
            r#"{"prefixes":[{"ipv6Prefix":"::/0"},{"ipv4Prefix":"0.0.0.0/0"}]}"#,
        )]);
        assert!(!t.lookup(ip("ffff::1")).is_empty());
        assert!(!t.lookup(ip("255.255.255.255")).is_empty());
        assert!(!t.lookup(ip("0.0.0.0")).is_empty());
    }
    #[test]
    fn the_table_answers_as_a_scan_of_every_prefix() {
        // Overlapping, nested and adjacent prefixes of three sources, across
        // blocks; every boundary (and a step either side) is probed.
        let nets: [&[&str]; 3] = [
            &[
                "10.0.0.0/8",
                "10.1.0.0/16",
                "192.0.2.0/25",
                "0.0.0.0/24",
                "2001:db8::/32",
            ],
            &[
                "10.1.2.0/24",
                "10.1.3.0/24",
                "192.0.2.128/25",
                "255.255.255.0/24",
            ],
            &[
                "10.0.0.0/7",
                "172.16.0.0/12",
                "2001:db8:1::/48",
                "2600::/16",
            ],
        ];
        let sources: Vec<RangeSource> = nets
            .iter()
            .enumerate()
            .map(|(i, list)| RangeSource {
                name: format!("s{i}"),
                path: PathBuf::from(format!("s{i}.json")),
                creation_time: None,
                prefixes: list.iter().map(|n| n.parse().unwrap()).collect(),
                modified: None,
            })
            .collect();
        let t = RangeTable::new(sources.clone());
        let slow = |ip: IpAddr| {
            sources
                .iter()
                .enumerate()
                .filter(|(_, s)| s.prefixes.iter().any(|n| n.contains(&ip)))
                .fold(SourceSet::EMPTY, |set, (i, _)| set.with(i))
        };
        for net in sources.iter().flat_map(|s| s.prefixes.iter()) {
            for edge in [net.network(), net.broadcast()] {
                let probes: Vec<IpAddr> = match edge {
                    IpAddr::V4(a) => {
                        let a = u32::from(a);
                        [a.wrapping_sub(1), a, a.wrapping_add(1)]
                            .map(|a| IpAddr::from(std::net::Ipv4Addr::from(a)))
                            .to_vec()
                    }
                    IpAddr::V6(a) => {
                        let a = u128::from(a);
                        [a.wrapping_sub(1), a, a.wrapping_add(1)]
                            .map(|a| IpAddr::from(std::net::Ipv6Addr::from(a)))
                            .to_vec()
                    }
                };
                for ip in probes {
                    assert_eq!(t.lookup(ip), slow(ip), "{ip}");
                }
            }
        }
    }
}
