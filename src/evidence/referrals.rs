//! Pages taken against visitors sent back, per operator and day: the figure
//! rights holders negotiate with. Pages crawled are the request records of
//! AI agents (offered, refused) and the `tally` records' AI crawler pages let
//! through; visits referred are the `tally` records' browser page visits an
//! operator's AI product sent (see `decide::referral` for what counts).

use std::collections::BTreeMap;

use serde::Serialize;

use super::record::RequestRecord;
use super::report::Bar;

/// One operator's pages crawled and visits referred over one period.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Row {
    /// A day (`2026-12-01`), or `all` for the report's whole period.
    pub period: String,
    pub operator: String,
    /// AI crawler pages let through.
    pub allowed: u64,
    /// AI crawler pages answered with the licence offer.
    pub offered: u64,
    /// AI crawler pages blocked, rate-limited or challenged.
    pub refused: u64,
    pub crawled: u64,
    /// Browser page visits the operator's AI products referred.
    pub referred: u64,
    /// Pages crawled per visit referred; `None` when nothing was referred.
    pub pages_per_visit: Option<f64>,
}

/// The whole table and its chart.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Referrals {
    /// Per operator and day, oldest first.
    pub by_day: Vec<Row>,
    /// Per operator over the report's period, most crawled first.
    pub totals: Vec<Row>,
    /// Two bars per operator (pages crawled, visits referred), 760 units wide.
    pub bars: Vec<Bar>,
    pub max: u64,
}

/// What the report reads from the ledger, as it goes.
#[derive(Default)]
pub struct Acc {
    rows: BTreeMap<(String, String), Row>,
}

/// The day of an RFC 3339 time.
fn day(ts: &str) -> String {
    ts.get(..10).unwrap_or("").to_owned()
}

impl Acc {
    fn row(&mut self, period: String, operator: &str) -> &mut Row {
        self.rows
            .entry((period.clone(), operator.to_owned()))
            .or_insert_with(|| Row {
                period,
                operator: operator.to_owned(),
                ..Row::default()
            })
    }

    /// A request record: counted when an AI agent made it.
    pub fn request(&mut self, ts: &str, r: &RequestRecord) {
        let ai = matches!(
            r.purpose.as_deref(),
            Some("ai-training" | "ai-search" | "ai-assistant")
        );
        if !ai {
            return;
        }
        let operator = r.operator.as_deref().unwrap_or("unknown");
        let row = self.row(day(ts), operator);
        match r.decision.as_str() {
            "allow" => row.allowed += 1,
            "offer" => row.offered += 1,
            _ => row.refused += 1,
        }
    }

    /// A `tally` record's counts.
    pub fn tally(
        &mut self,
        period_start: &str,
        referred: &BTreeMap<String, u64>,
        crawled_allowed: &BTreeMap<String, u64>,
    ) {
        for (op, n) in referred {
            self.row(day(period_start), op).referred += n;
        }
        for (op, n) in crawled_allowed {
            self.row(day(period_start), op).allowed += n;
        }
    }

    /// The table, the totals and the chart.
    pub fn finish(self) -> Referrals {
        let mut totals: BTreeMap<String, Row> = BTreeMap::new();
        let mut by_day: Vec<Row> = self.rows.into_values().map(complete).collect();
        for r in &by_day {
            let t = totals.entry(r.operator.clone()).or_insert_with(|| Row {
                period: "all".into(),
                operator: r.operator.clone(),
                ..Row::default()
            });
            t.allowed += r.allowed;
            t.offered += r.offered;
            t.refused += r.refused;
            t.referred += r.referred;
        }
        let mut totals: Vec<Row> = totals.into_values().map(complete).collect();
        totals.sort_by(|a, b| {
            b.crawled
                .cmp(&a.crawled)
                .then_with(|| b.referred.cmp(&a.referred))
                .then_with(|| a.operator.cmp(&b.operator))
        });
        by_day.sort_by(|a, b| {
            a.period
                .cmp(&b.period)
                .then_with(|| a.operator.cmp(&b.operator))
        });
        let (bars, max) = chart(&totals);
        Referrals {
            by_day,
            totals,
            bars,
            max,
        }
    }
}

/// Fills in the sums and the ratio.
fn complete(mut r: Row) -> Row {
    r.crawled = r.allowed + r.offered + r.refused;
    r.pages_per_visit = (r.referred > 0).then(|| r.crawled as f64 / r.referred as f64);
    r
}

/// Two bars per operator on one linear scale: pages crawled, visits referred.
fn chart(totals: &[Row]) -> (Vec<Bar>, u64) {
    let max = totals
        .iter()
        .map(|r| r.crawled.max(r.referred))
        .max()
        .unwrap_or(0);
    let (width, height) = (760.0, 200.0);
    let slot = width / totals.len().max(1) as f64;
    let mut bars = Vec::new();
    if max == 0 {
        return (bars, 0);
    }
    for (i, r) in totals.iter().enumerate() {
        for (k, (n, color, what)) in [
            (r.crawled, "#1f5f99", "pages crawled"),
            (r.referred, "#c8553d", "visits referred"),
        ]
        .into_iter()
        .enumerate()
        {
            let h = n as f64 / max as f64 * (height - 10.0);
            bars.push(Bar {
                x: i as f64 * slot + slot * (0.1 + 0.4 * k as f64),
                y: height - h,
                w: slot * 0.38,
                h,
                color,
                title: format!("{}: {n} {what}", r.operator),
            });
        }
    }
    (bars, max)
}

/// The CSV table (`--format referrals-csv`): one row per operator and day,
/// then one per operator for the whole period (`period` = `all`).
pub fn csv(r: &Referrals, field: fn(&str) -> String) -> String {
    let mut out = String::from(
        "period,operator,pages_crawled,allowed,offered,refused,visits_referred,pages_per_visit\n",
    );
    for row in r.by_day.iter().chain(&r.totals) {
        let ratio = row
            .pages_per_visit
            .map_or_else(|| "none".to_owned(), |x| format!("{x:.1}"));
        let fields = [
            field(&row.period),
            field(&row.operator),
            row.crawled.to_string(),
            row.allowed.to_string(),
            row.offered.to_string(),
            row.refused.to_string(),
            row.referred.to_string(),
            ratio,
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_sum_the_days_and_the_ratio_is_none_without_a_visit() {
        let mut acc = Acc::default();
        let referred = BTreeMap::from([("OpenAI".to_owned(), 2)]);
        let allowed = BTreeMap::from([("OpenAI".to_owned(), 5), ("Cohere".to_owned(), 4)]);
        acc.tally("2026-12-01T10:00:00Z", &referred, &allowed);
        acc.tally("2026-12-02T10:00:00Z", &referred, &BTreeMap::new());
        let r = acc.finish();
        assert_eq!(r.by_day.len(), 3);
        let openai = r.totals.iter().find(|t| t.operator == "OpenAI").unwrap();
        assert_eq!((openai.crawled, openai.referred), (5, 4));
        assert_eq!(openai.pages_per_visit, Some(1.25));
        let cohere = r.totals.iter().find(|t| t.operator == "Cohere").unwrap();
        assert_eq!(cohere.pages_per_visit, None);
        let csv = csv(&r, |s| s.to_owned());
        assert!(csv.contains("\nall,Cohere,4,4,0,0,0,none\n"), "{csv}");
        assert_eq!(r.bars.len(), 4);
    }
}
