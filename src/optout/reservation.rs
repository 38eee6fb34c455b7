//! The reservation model: per host and path, whether text and data mining is
//! reserved, which usages are allowed or refused, and at what price. Every
//! machine-readable signal rempart emits (TDMRep headers and tdmrep.json, the
//! IETF AIPREF `Content-Usage` header and robots.txt line, Cloudflare's
//! `Content-Signal`, `X-Robots-Tag: noai`, the RSL licence and its `Link`
//! header) is generated from this one model, so they can never disagree.

use serde::Deserialize;

/// A usage a reservation allows or refuses (RSL's vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Usage {
    /// Indexing for search results.
    Search,
    /// Training AI models.
    AiTrain,
    /// Using content as input to an AI answer (grounding, RAG).
    AiInput,
    /// Building an AI index or embedding store.
    AiIndex,
}

impl Usage {
    pub fn as_str(self) -> &'static str {
        match self {
            Usage::Search => "search",
            Usage::AiTrain => "ai-train",
            Usage::AiInput => "ai-input",
            Usage::AiIndex => "ai-index",
        }
    }
}

/// Content Signals' `use` key: how much of the content an AI system may keep
/// and reuse, from least to most (Cloudflare's managed robots.txt, 2026). It
/// grants no crawl permission by itself; it bounds what may be done with what
/// is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContentUse {
    /// Interact with the content, but store and reuse nothing.
    Immediate,
    /// Index, excerpt and link back.
    Reference,
    /// Summarise and reproduce.
    Full,
}

impl ContentUse {
    pub fn as_str(self) -> &'static str {
        match self {
            ContentUse::Immediate => "immediate",
            ContentUse::Reference => "reference",
            ContentUse::Full => "full",
        }
    }
}

/// The `[reservation]` section as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReservationSpec {
    /// Public base URL of the site (`https://www.example.com`), used to make
    /// the policy and licence URLs absolute.
    pub base_url: String,
    /// Add the opt-out headers to every proxied response.
    #[serde(default = "yes")]
    pub headers: bool,
    /// TDM policy URL; default: the ODRL policy rempart serves at
    /// `/.well-known/tdm-policy.json`.
    #[serde(default)]
    pub policy_url: Option<String>,
    /// Where rempart serves the clause for the site's terms of use that
    /// exercises the reservation in words (always reachable).
    #[serde(default = "default_clause_path")]
    pub clause_path: String,
    /// An RSL licence server (`https://…`) named in every `<content
    /// server="…">` of license.xml; RSL 1.0 says a client must then obtain a
    /// licence from it, even a free one.
    #[serde(default)]
    pub license_server: Option<String>,
    /// Reservations by location, most specific first (the order of
    /// tdmrep.json); a request takes the first that matches.
    #[serde(default, rename = "location")]
    pub locations: Vec<LocationSpec>,
}

fn yes() -> bool {
    true
}

fn default_clause_path() -> String {
    CLAUSE_PATH.into()
}

/// One reserved (or not) location.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationSpec {
    /// A path, or a path prefix ending in `*` (`/films/*`).
    pub path: String,
    /// Hosts this applies to (`example.com`, `*.example.com`); all when empty.
    #[serde(default)]
    pub host: Vec<String>,
    /// TDM reserved (art. 4(3) of directive 2019/790).
    pub tdm_reserved: bool,
    #[serde(default)]
    pub allow: Vec<Usage>,
    #[serde(default)]
    pub refuse: Vec<Usage>,
    /// Price per crawl in euros, for the offer and pay-per-crawl.
    #[serde(default)]
    pub price_eur: Option<f64>,
    /// Content Signals' `use` level for this location; none when unset, so
    /// that the line says nothing the rights holder did not.
    #[serde(default, rename = "use")]
    pub content_use: Option<ContentUse>,
}

/// A contradiction or mistake, with the key inside `reservation`.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ReservationError {
    pub key: String,
    pub message: String,
}

/// A compiled location.
#[derive(Debug, Clone)]
pub struct Location {
    /// As written (`/films/*`), for the documents.
    pub pattern: String,
    /// The literal part; `prefix` says whether it is a prefix or the whole path.
    literal: String,
    prefix: bool,
    hosts: Vec<String>,
    pub tdm_reserved: bool,
    pub allow: Vec<Usage>,
    pub refuse: Vec<Usage>,
    pub price_eur: Option<f64>,
    /// Content Signals' `use` level, when the config sets one.
    pub content_use: Option<ContentUse>,
    /// The price in micro-euros, and as a `crawler-price` header value.
    pub price_micros: Option<u64>,
    pub price_header: Option<http::HeaderValue>,
    /// Pre-built header values for proxied responses.
    pub headers: LocationHeaders,
}

/// The header values one location adds to a response.
#[derive(Debug, Clone)]
pub struct LocationHeaders {
    pub tdm_reservation: http::HeaderValue,
    pub tdm_policy: http::HeaderValue,
    /// IETF AIPREF structured-field dictionary, e.g. `train-ai=n, search=y`.
    pub content_usage: Option<http::HeaderValue>,
    /// Whether `noai, noimageai` go into X-Robots-Tag.
    pub noai: bool,
}

/// The compiled reservation model.
#[derive(Debug, Clone)]
pub struct Reservation {
    pub base_url: String,
    pub headers_enabled: bool,
    pub policy_url: String,
    pub license_url: String,
    /// Path and absolute URL of the clause for the site's terms.
    pub clause_path: String,
    pub clause_url: String,
    /// The RSL licence server, when the config names one.
    pub license_server: Option<String>,
    pub link: http::HeaderValue,
    pub locations: Vec<Location>,
}

/// Where rempart serves the generated documents.
pub const TDMREP_PATH: &str = "/.well-known/tdmrep.json";
pub const POLICY_PATH: &str = "/.well-known/tdm-policy.json";
pub const LICENSE_PATH: &str = "/license.xml";
/// The default path of the clause for the site's terms.
pub const CLAUSE_PATH: &str = "/tdm-reservation";

/// Paths the clause cannot take: other documents rempart serves there.
const TAKEN: [&str; 4] = ["/robots.txt", TDMREP_PATH, POLICY_PATH, LICENSE_PATH];

/// A clause path is a plain absolute path, no pattern, not another
/// document's, so that `Document::find` can compare it as is.
fn check_clause_path(path: &str) -> Result<(), ReservationError> {
    let problem = if !path.starts_with('/') {
        Some("must start with '/'".to_owned())
    } else if path.contains(['*', '?', '#', ' ', '%']) || path.chars().any(char::is_control) {
        Some(format!(
            "{path:?} must be a plain path (no '*', '?', '#', '%' or spaces)"
        ))
    } else if TAKEN.contains(&path) {
        Some(format!("{path:?} is already another document of rempart's"))
    } else {
        None
    };
    match problem {
        Some(message) => Err(ReservationError {
            key: "clause_path".into(),
            message,
        }),
        None => Ok(()),
    }
}

impl Location {
    /// The hosts this location is scoped to (lower case); all when empty.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    fn matches(&self, host: Option<&str>, path: &str) -> bool {
        let path_ok = if self.prefix {
            path.starts_with(self.literal.as_str())
        } else {
            path == self.literal
        };
        path_ok
            && (self.hosts.is_empty()
                || host.is_some_and(|h| {
                    self.hosts.iter().any(|p| match p.strip_prefix('*') {
                        Some(suffix) => {
                            h.len() > suffix.len() && h.to_ascii_lowercase().ends_with(suffix)
                        }
                        None => h.eq_ignore_ascii_case(p),
                    })
                }))
    }

    /// The AIPREF value: `train-ai` from ai-train, `search` from search.
    pub fn content_usage(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.refuse.contains(&Usage::AiTrain)
            || (self.tdm_reserved && !self.allow.contains(&Usage::AiTrain))
        {
            parts.push("train-ai=n");
        } else if self.allow.contains(&Usage::AiTrain) {
            parts.push("train-ai=y");
        }
        if self.allow.contains(&Usage::Search) {
            parts.push("search=y");
        } else if self.refuse.contains(&Usage::Search) {
            parts.push("search=n");
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    /// Cloudflare's Content Signals value: `search=yes, ai-input=no,
    /// ai-train=no`, then `use=…` when the location sets a level.
    pub fn content_signal(&self) -> String {
        let say = |u: Usage, name: &str| -> Option<String> {
            if self.allow.contains(&u) {
                Some(format!("{name}=yes"))
            } else if self.refuse.contains(&u) || (self.tdm_reserved && u != Usage::Search) {
                Some(format!("{name}=no"))
            } else {
                None
            }
        };
        [
            say(Usage::Search, "search"),
            say(Usage::AiInput, "ai-input"),
            say(Usage::AiTrain, "ai-train"),
            self.content_use.map(|u| format!("use={}", u.as_str())),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// The licence server URL, checked: HTTPS only, since a crawler sends its
/// licence request (and later its token) there.
fn license_server(spec: &ReservationSpec) -> Result<Option<String>, ReservationError> {
    let Some(url) = &spec.license_server else {
        return Ok(None);
    };
    let ok = url
        .parse::<http::Uri>()
        .is_ok_and(|u| u.scheme_str() == Some("https") && u.authority().is_some());
    if !ok || url.contains(['"', '<', '>']) {
        return Err(ReservationError {
            key: "license_server".into(),
            message: format!("{url:?} is not an https:// URL"),
        });
    }
    Ok(Some(url.clone()))
}

fn header(value: &str, key: &str) -> Result<http::HeaderValue, ReservationError> {
    http::HeaderValue::from_str(value).map_err(|_| ReservationError {
        key: key.to_owned(),
        message: format!("{value:?} cannot be sent in a header"),
    })
}

impl Location {
    /// One written location, checked; `key` names its fields for errors.
    fn compile(
        l: &LocationSpec,
        policy_url: &str,
        key: &dyn Fn(&str) -> String,
    ) -> Result<Self, ReservationError> {
        let err = |field: &str, message: String| ReservationError {
            key: key(field),
            message,
        };
        if !l.path.starts_with('/') {
            return Err(err("path", format!("{:?} must start with '/'", l.path)));
        }
        let (literal, prefix) = match l.path.strip_suffix('*') {
            Some(lit) => (lit.to_owned(), true),
            None => (l.path.clone(), false),
        };
        if literal.contains(['*', '?']) {
            return Err(err("path", "only a trailing '*' is supported".into()));
        }
        let mut hosts: Vec<String> = l.host.iter().map(|h| h.to_ascii_lowercase()).collect();
        hosts.sort();
        if let Some(u) = l.allow.iter().find(|u| l.refuse.contains(u)) {
            return Err(err(
                "allow",
                format!("{} is both allowed and refused", u.as_str()),
            ));
        }
        if !l.tdm_reserved && !l.refuse.is_empty() {
            return Err(err(
                "refuse",
                "refusing a usage while tdm_reserved = false is contradictory".into(),
            ));
        }
        if let Some(p) = l.price_eur {
            if !(p.is_finite() && p > 0.0) {
                return Err(err("price_eur", format!("{p} is not a positive price")));
            }
            if !l.tdm_reserved {
                return Err(err("price_eur", "a price needs tdm_reserved = true".into()));
            }
        }
        let price_micros = l.price_eur.map(crate::licensing::payment::micros);
        let mut loc = Location {
            pattern: l.path.clone(),
            literal,
            prefix,
            hosts,
            tdm_reserved: l.tdm_reserved,
            allow: l.allow.clone(),
            refuse: l.refuse.clone(),
            price_eur: l.price_eur,
            content_use: l.content_use,
            price_micros,
            price_header: price_micros
                .map(|m| header(&crate::licensing::payment::format_price(m), "price_eur"))
                .transpose()?,
            headers: LocationHeaders {
                tdm_reservation: http::HeaderValue::from_static(if l.tdm_reserved {
                    "1"
                } else {
                    "0"
                }),
                tdm_policy: header(policy_url, "policy_url")?,
                content_usage: None,
                noai: l.tdm_reserved && !l.allow.contains(&Usage::AiTrain),
            },
        };
        loc.headers.content_usage = loc
            .content_usage()
            .map(|v| header(&v, "location"))
            .transpose()?;
        Ok(loc)
    }
}

impl Reservation {
    /// Validates and compiles the model; contradictions are errors.
    pub fn compile(spec: &ReservationSpec) -> Result<Self, ReservationError> {
        let err = |key: String, message: String| ReservationError { key, message };
        let base = spec.base_url.trim_end_matches('/').to_owned();
        if !(base.starts_with("https://") || base.starts_with("http://")) || base.len() < 10 {
            return Err(err(
                "base_url".into(),
                format!("{:?} is not an http(s) URL", spec.base_url),
            ));
        }
        let policy_url = spec
            .policy_url
            .clone()
            .unwrap_or_else(|| format!("{base}{POLICY_PATH}"));
        let license_url = format!("{base}{LICENSE_PATH}");
        check_clause_path(&spec.clause_path)?;
        let clause_url = format!("{base}{}", spec.clause_path);
        let link = header(
            &format!("<{license_url}>; rel=\"license\"; type=\"application/rsl+xml\""),
            "base_url",
        )?;
        let license_server = license_server(spec)?;
        if spec.locations.is_empty() {
            return Err(err(
                "location".into(),
                "declare at least one location (path = \"/*\")".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        let mut locations = Vec::with_capacity(spec.locations.len());
        for (i, l) in spec.locations.iter().enumerate() {
            let loc = Location::compile(l, &policy_url, &|field| format!("location[{i}].{field}"))?;
            if !seen.insert((loc.pattern.clone(), loc.hosts.clone())) {
                return Err(err(
                    format!("location[{i}].path"),
                    format!("{:?} is declared twice", l.path),
                ));
            }
            locations.push(loc);
        }
        // Most specific first, whatever the order written: longer literals,
        // then exact paths before prefixes, then host-scoped before global.
        locations.sort_by_key(|l| {
            (
                std::cmp::Reverse(l.literal.len()),
                l.prefix,
                l.hosts.is_empty(),
            )
        });
        Ok(Self {
            base_url: base,
            headers_enabled: spec.headers,
            policy_url,
            license_url,
            clause_path: spec.clause_path.clone(),
            clause_url,
            license_server,
            link,
            locations,
        })
    }

    /// The location in force for a request: the first that matches.
    pub fn lookup(&self, host: Option<&str>, path: &str) -> Option<usize> {
        self.locations.iter().position(|l| l.matches(host, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> ReservationSpec {
        toml::from_str(&format!("base_url = \"https://www.example.com/\"\n{text}")).unwrap()
    }

    const SHIPPED: &str = r#"
        [[location]]
        path = "/trailers/*"
        tdm_reserved = false
        allow = ["search", "ai-input"]
        [[location]]
        path = "/*"
        tdm_reserved = true
        allow = ["search"]
        refuse = ["ai-train", "ai-input", "ai-index"]
        price_eur = 0.01
    "#;

    #[test]
    fn first_matching_location_wins() {
        let r = Reservation::compile(&spec(SHIPPED)).unwrap();
        assert_eq!(r.lookup(None, "/trailers/x.mp4"), Some(0));
        assert_eq!(r.lookup(None, "/films/x"), Some(1));
        assert_eq!(
            r.policy_url,
            "https://www.example.com/.well-known/tdm-policy.json"
        );
        assert_eq!(
            r.link.to_str().unwrap(),
            "<https://www.example.com/license.xml>; rel=\"license\"; type=\"application/rsl+xml\""
        );
    }

    #[test]
    fn signals_follow_the_model() {
        let r = Reservation::compile(&spec(SHIPPED)).unwrap();
        let films = &r.locations[1];
        assert_eq!(
            films.content_usage().as_deref(),
            Some("train-ai=n, search=y")
        );
        assert_eq!(
            films.content_signal(),
            "search=yes, ai-input=no, ai-train=no"
        );
        assert_eq!(films.headers.tdm_reservation, "1");
        assert!(films.headers.noai);
        let trailers = &r.locations[0];
        assert_eq!(trailers.content_usage().as_deref(), Some("search=y"));
        assert_eq!(trailers.content_signal(), "search=yes, ai-input=yes");
        assert_eq!(trailers.headers.tdm_reservation, "0");
        assert!(!trailers.headers.noai);
    }

    #[test]
    fn contradictions_are_rejected() {
        let cases = [
            ("[[location]]\npath='/*'\ntdm_reserved=true\nallow=['ai-train']\nrefuse=['ai-train']\n", "location[0].allow"),
            ("[[location]]\npath='/*'\ntdm_reserved=false\nrefuse=['ai-train']\n", "location[0].refuse"),
            ("[[location]]\npath='/*'\ntdm_reserved=false\nprice_eur=1.0\n", "location[0].price_eur"),
            ("[[location]]\npath='/*'\ntdm_reserved=true\nprice_eur=-1.0\n", "location[0].price_eur"),
            ("[[location]]\npath='/*'\ntdm_reserved=true\n[[location]]\npath='/*'\ntdm_reserved=true\n", "location[1].path"),
            ("[[location]]\npath='films/*'\ntdm_reserved=true\n", "location[0].path"),
            ("[[location]]\npath='/a*/b'\ntdm_reserved=true\n", "location[0].path"),
            ("", "location"),
            ("clause_path='terms'\n[[location]]\npath='/*'\ntdm_reserved=true\n", "clause_path"),
            ("clause_path='/robots.txt'\n[[location]]\npath='/*'\ntdm_reserved=true\n", "clause_path"),
            ("clause_path='/terms/*'\n[[location]]\npath='/*'\ntdm_reserved=true\n", "clause_path"),
        ];
        for (text, key) in cases {
            let e = Reservation::compile(&spec(text)).unwrap_err();
            assert_eq!(e.key, key, "{text}: {e}");
        }
    }

    #[test]
    fn most_specific_first_whatever_the_order_written() {
        let r = Reservation::compile(&spec(
            "[[location]]\npath='/*'\ntdm_reserved=true\n[[location]]\npath='/films/*'\ntdm_reserved=true\n[[location]]\npath='/films/'\ntdm_reserved=false\n",
        ))
        .unwrap();
        let order: Vec<&str> = r.locations.iter().map(|l| l.pattern.as_str()).collect();
        assert_eq!(order, ["/films/", "/films/*", "/*"]);
        assert_eq!(r.lookup(None, "/films/x"), Some(1));
    }

    #[test]
    fn hosts_scope_a_location() {
        let r = Reservation::compile(&spec(
            "[[location]]\npath='/*'\nhost=['*.news.example']\ntdm_reserved=false\n[[location]]\npath='/*'\ntdm_reserved=true\n",
        ))
        .unwrap();
        assert_eq!(r.lookup(Some("www.news.example"), "/a"), Some(0));
        assert_eq!(r.lookup(Some("news.example"), "/a"), Some(1));
        assert_eq!(r.lookup(None, "/a"), Some(1));
    }
}
