//! `rempart evidence report`: what the ledger says, by operator and agent,
//! for a person who has to act on it (HTML with charts, CSV, or JSON).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use serde::Serialize;
use time::OffsetDateTime;

use super::record::{Body, ClientId, Line, RequestRecord};
use super::verify::verify;
use super::writer::{ledger_files, read_lines, rfc3339};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Html,
    Csv,
    Json,
    /// Pages crawled by AI operators beside the visits their products referred.
    ReferralsCsv,
}

/// One operator and agent.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub operator: String,
    pub agent: String,
    pub purpose: String,
    pub verification: String,
    pub requests: u64,
    pub actions: BTreeMap<String, u64>,
    pub signals: BTreeMap<String, u64>,
    pub distinct_paths: usize,
    pub top_paths: Vec<(String, u64)>,
    pub clients: usize,
    pub first_seen: String,
    pub last_seen: String,
    /// The first time this agent fetched robots.txt before a recorded request.
    pub robots_read_before: Option<String>,
    /// Recorded requests made after the agent had read robots.txt.
    pub requests_after_robots: u64,
}

/// A published document version.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    pub document: String,
    pub sha256: String,
    pub first_archived: String,
    pub bytes: usize,
}

/// A control of the admin console, as the report lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Control {
    /// When it was applied (the record's time).
    pub at: String,
    pub control: String,
    /// `agent GPTBot` or `rule spoofed-agents`.
    pub target: String,
    /// When the override stops applying, or `until removed`.
    pub until: String,
    pub result: String,
}

/// A bar of a chart, in SVG units.
#[derive(Debug, Clone, Serialize)]
pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub color: &'static str,
    pub title: String,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub generated_at: String,
    pub since: Option<String>,
    pub until: Option<String>,
    pub intact: bool,
    pub integrity: String,
    pub warnings: Vec<String>,
    pub records: u64,
    pub requests: u64,
    pub gaps_missing: u64,
    /// Request records of clients over the per-minute cap, counted not written.
    pub limited: u64,
    pub groups: Vec<Group>,
    pub published: Vec<Published>,
    /// The operator's quick controls in the period, in order.
    pub controls: Vec<Control>,
    pub days: Vec<String>,
    pub operators: Vec<(String, &'static str)>,
    pub day_bars: Vec<Bar>,
    pub day_max: u64,
    pub top_paths: Vec<(String, u64)>,
    /// Pages crawled by AI operators against visits referred, per operator and day.
    pub referrals: super::referrals::Referrals,
}

const COLORS: [&str; 8] = [
    "#1f5f99", "#c8553d", "#2e8b57", "#8e6c8a", "#d4a017", "#4a4a4a", "#0f8b8d", "#a23b72",
];

fn parse_ts(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// Parses `--since`/`--until`: a date (`2026-11-01`) or an RFC 3339 time. A
/// date as `until` means the end of that day.
pub fn parse_bound(s: &str, end_of_day: bool) -> anyhow::Result<OffsetDateTime> {
    if let Some(t) = parse_ts(s) {
        return Ok(t);
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(s, &fmt).map_err(|_| {
        anyhow::anyhow!("{s:?}: write a date (2026-11-01) or a time (2026-11-01T08:00:00Z)")
    })?;
    let t = d.midnight().assume_utc();
    Ok(if end_of_day {
        t + time::Duration::days(1) - time::Duration::nanoseconds(1)
    } else {
        t
    })
}

/// Builds the report from every ledger file in `dir`.
pub fn build(
    dir: &Path,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
) -> anyhow::Result<Report> {
    let check = verify(dir)?;
    let mut reading = Reading {
        since,
        until,
        ..Reading::default()
    };
    for path in ledger_files(dir)? {
        let (lines, _) = read_lines(&path)?;
        for bytes in lines {
            // A line that does not parse is the verifier's to report.
            if let Ok(line) = serde_json::from_slice::<Line>(&bytes) {
                reading.add(line);
            }
        }
    }
    let mut groups: Vec<Group> = reading.groups.into_values().map(GroupAcc::finish).collect();
    groups.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then_with(|| a.agent.cmp(&b.agent))
    });
    let chart = DayChart::of(&reading.per_day);
    Ok(Report {
        generated_at: rfc3339(OffsetDateTime::now_utc()),
        since: since.map(rfc3339),
        until: until.map(rfc3339),
        intact: check.is_intact(),
        integrity: integrity(&check),
        warnings: check.warnings,
        records: reading.records,
        requests: reading.requests,
        gaps_missing: reading.gaps,
        limited: reading.limited,
        groups,
        published: reading.published,
        controls: reading.controls,
        days: chart.days,
        operators: chart.operators,
        day_bars: chart.bars,
        day_max: chart.max,
        top_paths: top(&reading.all_paths, 10),
        referrals: reading.referrals.finish(),
    })
}

/// The chain's verdict in words; a pruned start is part of it, not a footnote.
fn integrity(check: &super::verify::Verification) -> String {
    let integrity = match (&check.broken, &check.first, &check.last) {
        (Some(b), _, _) => format!("BROKEN: {b}"),
        (None, Some((a, ta)), Some((z, tz))) => format!(
            "intact: {} records in {} files, seq {a} ({ta}) to {z} ({tz}); each record holds the \
             SHA-256 of the one before it, so none was edited, removed or inserted",
            check.records, check.files
        ),
        _ => "empty".into(),
    };
    match &check.pruned {
        Some(p) if check.is_intact() => format!("{integrity}; {p}"),
        _ => integrity,
    }
}

/// What the ledger's lines add up to, read in order.
#[derive(Default)]
struct Reading {
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
    groups: BTreeMap<(String, String), GroupAcc>,
    published: Vec<Published>,
    controls: Vec<Control>,
    /// Recorded requests per day (`YYYY-MM-DD`) and operator.
    per_day: BTreeMap<String, BTreeMap<String, u64>>,
    all_paths: HashMap<String, u64>,
    referrals: super::referrals::Acc,
    records: u64,
    requests: u64,
    gaps: u64,
    limited: u64,
}

impl Reading {
    fn add(&mut self, line: Line) {
        self.records += 1;
        // A request is placed at its own time; ledgers from before
        // `requested_at` existed have only the time it was written.
        let at = match &line.body {
            Body::Request(r) => r.requested_at.as_deref().unwrap_or(&line.ts),
            _ => &line.ts,
        }
        .to_owned();
        let in_range = parse_ts(&at).is_some_and(|t| {
            self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t <= u)
        });
        match line.body {
            // Every version ever published, whatever the period: what was
            // served before it is still what the period's crawlers had read.
            Body::Published(p)
                if !self
                    .published
                    .iter()
                    .any(|q| q.sha256 == p.sha256 && q.document == p.document) =>
            {
                self.published.push(Published {
                    document: p.document,
                    sha256: p.sha256,
                    first_archived: line.ts,
                    bytes: p.content.len(),
                });
            }
            Body::Control(c) if in_range => self.controls.push(Control {
                at: line.ts,
                control: c.control,
                target: match (c.agent, c.rule) {
                    (Some(a), _) => format!("agent {a}"),
                    (None, Some(r)) => format!("rule {r}"),
                    (None, None) => String::new(),
                },
                until: c.until.unwrap_or_else(|| "until removed".into()),
                result: c.result,
            }),
            Body::Gap { missing, .. } if in_range => self.gaps += missing,
            Body::Limited { records, .. } if in_range => self.limited += records,
            Body::Tally {
                period_start,
                referred,
                crawled_allowed,
                ..
            } if in_range => self
                .referrals
                .tally(&period_start, &referred, &crawled_allowed),
            Body::Request(r) if in_range => self.request(&at, &r),
            _ => {}
        }
    }

    fn request(&mut self, ts: &str, r: &RequestRecord) {
        self.requests += 1;
        self.referrals.request(ts, r);
        let operator = r.operator.clone().unwrap_or_else(|| "unidentified".into());
        let agent = r
            .agent
            .clone()
            .unwrap_or_else(|| match r.identity.as_str() {
                "browser" => "browser user agent".into(),
                _ => "unknown client".into(),
            });
        self.groups
            .entry((operator.clone(), agent.clone()))
            .or_insert_with(|| GroupAcc::new(operator.clone(), agent, r, ts))
            .count(ts, r);
        *self.all_paths.entry(r.path.clone()).or_default() += 1;
        let day = ts.get(..10).unwrap_or("").to_owned();
        *self
            .per_day
            .entry(day)
            .or_default()
            .entry(operator)
            .or_default() += 1;
    }
}

/// One operator and agent's group, while the ledger is read.
struct GroupAcc {
    g: Group,
    paths: HashMap<String, u64>,
    clients: BTreeSet<String>,
    verifications: HashMap<String, u64>,
}

impl GroupAcc {
    fn new(operator: String, agent: String, first: &RequestRecord, ts: &str) -> Self {
        Self {
            g: Group {
                operator,
                agent,
                purpose: first.purpose.clone().unwrap_or_else(|| "none".into()),
                verification: String::new(),
                requests: 0,
                actions: BTreeMap::new(),
                signals: BTreeMap::new(),
                distinct_paths: 0,
                top_paths: Vec::new(),
                clients: 0,
                first_seen: ts.to_owned(),
                last_seen: ts.to_owned(),
                robots_read_before: None,
                requests_after_robots: 0,
            },
            paths: HashMap::new(),
            clients: BTreeSet::new(),
            verifications: HashMap::new(),
        }
    }

    fn count(&mut self, ts: &str, r: &RequestRecord) {
        let g = &mut self.g;
        g.requests += 1;
        *g.actions.entry(r.decision.clone()).or_default() += 1;
        for s in &r.signals {
            *g.signals.entry(s.clone()).or_default() += 1;
        }
        g.last_seen = ts.to_owned();
        if let Some(rb) = &r.robots_txt {
            g.requests_after_robots += 1;
            let earlier = g
                .robots_read_before
                .as_deref()
                .and_then(parse_ts)
                .zip(parse_ts(&rb.fetched_at))
                .is_none_or(|(a, b)| b < a);
            if earlier {
                g.robots_read_before = Some(rb.fetched_at.clone());
            }
        }
        *self.paths.entry(r.path.clone()).or_default() += 1;
        self.clients.insert(match &r.client {
            ClientId::Ip(s) | ClientId::Pseudonym(s) => s.clone(),
        });
        *self
            .verifications
            .entry(r.verification.clone())
            .or_default() += 1;
    }

    fn finish(self) -> Group {
        let mut g = self.g;
        g.distinct_paths = self.paths.len();
        g.top_paths = top(&self.paths, 5);
        g.clients = self.clients.len();
        // The group's most frequent verification.
        g.verification = self
            .verifications
            .iter()
            .max_by_key(|(_, c)| **c)
            .map(|(v, _)| v.clone())
            .unwrap_or_default();
        g
    }
}

/// The `n` most frequent keys, the most frequent first (ties by name).
fn top(m: &HashMap<String, u64>, n: usize) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = m.iter().map(|(k, c)| (k.clone(), *c)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

/// Requests per day per operator, as stacked bars.
struct DayChart {
    days: Vec<String>,
    /// Every operator with its colour, by name.
    operators: Vec<(String, &'static str)>,
    bars: Vec<Bar>,
    /// The busiest day's requests.
    max: u64,
}

impl DayChart {
    const WIDTH: f64 = 760.0;
    const HEIGHT: f64 = 220.0;

    fn of(per_day: &BTreeMap<String, BTreeMap<String, u64>>) -> Self {
        // Sorted and deduplicated by the set.
        let operators: Vec<(String, &'static str)> = per_day
            .values()
            .flat_map(|m| m.keys().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .enumerate()
            .map(|(i, o)| (o, COLORS[i % COLORS.len()]))
            .collect();
        let days: Vec<String> = per_day.keys().cloned().collect();
        let max = per_day
            .values()
            .map(|m| m.values().sum::<u64>())
            .max()
            .unwrap_or(0);
        let slot = if days.is_empty() {
            Self::WIDTH
        } else {
            Self::WIDTH / days.len() as f64
        };
        let mut bars = Vec::new();
        for (i, (day, m)) in per_day.iter().enumerate() {
            let mut y = Self::HEIGHT;
            for (op, color) in &operators {
                let n = m.get(op).copied().unwrap_or(0);
                if n == 0 || max == 0 {
                    continue;
                }
                let h = n as f64 / max as f64 * (Self::HEIGHT - 10.0);
                y -= h;
                bars.push(Bar {
                    x: i as f64 * slot + slot * 0.15,
                    y,
                    w: slot * 0.7,
                    h,
                    color,
                    title: format!("{day}: {op}: {n} requests"),
                });
            }
        }
        Self {
            days,
            operators,
            bars,
            max,
        }
    }
}

/// Renders a report.
pub fn render(report: &Report, format: Format) -> anyhow::Result<String> {
    match format {
        Format::Json => Ok(serde_json::to_string_pretty(report)?),
        Format::ReferralsCsv => Ok(super::referrals::csv(&report.referrals, csv_field)),
        Format::Csv => {
            let mut out = String::from(
                "operator,agent,purpose,verification,requests,offer,block,ratelimit,allow,challenge,distinct_paths,clients,first_seen,last_seen,robots_read_before,requests_after_robots,top_path\n",
            );
            for g in &report.groups {
                let a = |k: &str| g.actions.get(k).copied().unwrap_or(0);
                let fields = [
                    g.operator.clone(),
                    g.agent.clone(),
                    g.purpose.clone(),
                    g.verification.clone(),
                    g.requests.to_string(),
                    a("offer").to_string(),
                    a("block").to_string(),
                    a("ratelimit").to_string(),
                    a("allow").to_string(),
                    a("challenge").to_string(),
                    g.distinct_paths.to_string(),
                    g.clients.to_string(),
                    g.first_seen.clone(),
                    g.last_seen.clone(),
                    g.robots_read_before.clone().unwrap_or_else(|| "no".into()),
                    g.requests_after_robots.to_string(),
                    g.top_paths.first().map(|p| p.0.clone()).unwrap_or_default(),
                ];
                let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
                out.push_str(&row.join(","));
                out.push('\n');
            }
            Ok(out)
        }
        Format::Html => {
            let mut env = minijinja::Environment::new();
            env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
            env.add_template("report.html", include_str!("report.html"))?;
            let path_max = report.top_paths.first().map_or(1, |p| p.1).max(1);
            Ok(env
                .get_template("report.html")?
                .render(minijinja::context! {
                    r => report,
                    path_max => path_max,
                })?)
        }
    }
}

/// A CSV field, quoted when needed; a leading formula character is
/// neutralised (the report is opened in spreadsheets).
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_line(ts: &str, requested_at: Option<&str>) -> Line {
        let mut v = serde_json::json!({
            "seq": 1, "ts": ts, "prev": super::super::record::GENESIS, "type": "request",
            "request_id": "r", "client": {"pseudonym": "hmac-sha256:00"}, "user_agent": "GPTBot/1.2",
            "agent": "GPTBot", "operator": "OpenAI", "purpose": "ai-training",
            "identity": "declared", "verification": "unverified", "verified_by": "none",
            "method": "GET", "host": null, "path": "/films/x", "decision": "offer",
            "status": 402, "rule": "ai-licensing-offer", "score": 0, "signals": [],
            "reservation": null, "robots_txt": null,
        });
        if let Some(at) = requested_at {
            v["requested_at"] = at.into();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_request_counts_at_its_own_time_not_when_it_was_written() {
        let day = |s: &str| parse_ts(s).unwrap();
        // Decided a moment before midnight, written just after.
        let mut r = Reading {
            until: Some(day("2026-12-01T23:59:59.999Z")),
            ..Reading::default()
        };
        r.add(request_line(
            "2026-12-02T00:00:00.700Z",
            Some("2026-12-01T23:59:59.900Z"),
        ));
        assert_eq!(r.requests, 1);
        assert_eq!(
            r.per_day.keys().collect::<Vec<_>>(),
            ["2026-12-01"],
            "charted on the day it came"
        );
        let g = r.groups.values().next().unwrap();
        assert_eq!(g.g.first_seen, "2026-12-01T23:59:59.900Z");

        // A ledger from before `requested_at`: the line's time, as before.
        r.add(request_line("2026-12-02T00:00:00.700Z", None));
        assert_eq!(r.requests, 1, "written after the period's end");
        r.until = None;
        r.add(request_line("2026-12-02T00:00:00.700Z", None));
        assert_eq!(r.requests, 2);
        assert!(r.per_day.contains_key("2026-12-02"));
    }
}
