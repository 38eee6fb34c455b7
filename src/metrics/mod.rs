//! Prometheus metrics, registered once in the default registry (the one
//! pingora's own metrics use), and surviving every configuration reload.
//!
//! The per-request counters are resolved to handles up front, so the hot path
//! does one atomic add per counter and never hashes label values or takes the
//! metric family's lock.

use std::sync::LazyLock;

use prometheus::{
    exponential_buckets, register_histogram, register_int_counter_vec, register_int_gauge,
    register_int_gauge_vec, Histogram, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
};

use crate::model::{Action, Purpose, Verification};

mod agents;
pub mod http;
pub mod labels;

pub use agents::{AgentCounters, AgentRow};
pub use http::http;

/// The actions in the order of their discriminants (`Action as usize`).
pub const ACTIONS: [Action; 5] = [
    Action::Allow,
    Action::Block,
    Action::Offer,
    Action::RateLimit,
    Action::Challenge,
];
/// The verifications in the order of their discriminants.
pub const VERIFICATIONS: [Verification; 4] = [
    Verification::Verified,
    Verification::Spoofed,
    Verification::Unverifiable,
    Verification::None,
];
/// Purpose slots: the nine purposes, then "none" for browsers and unknowns.
const PURPOSE_SLOTS: usize = Purpose::ALL.len() + 1;

/// Every metric rempart exports.
pub struct Metrics {
    requests: Vec<IntCounter>,
    pub requests_vec: IntCounterVec,
    pub agent_requests: IntCounterVec,
    /// Browser page visits referred by an AI product, by operator (labels
    /// bounded by the referrers file).
    pub ai_referrals: IntCounterVec,
    pub log_only: IntCounterVec,
    pub decision_seconds: Histogram,
    pub upstream_errors: IntCounterVec,
    pub served_documents: IntCounterVec,
    /// `served_documents` resolved once, one per [`labels::DOCUMENTS`] label in its
    /// order (that of `respond::own::Document`): a document served is one
    /// atomic add.
    pub document_counters: Vec<IntCounter>,
    pub bad_requests: IntCounterVec,
    pub licensed_requests: IntCounterVec,
    pub licensed_bytes: IntCounterVec,
    pub licence_rejections: IntCounterVec,
    pub crawler_charges: IntCounterVec,
    pub crawler_charged_euros: prometheus::CounterVec,
    pub crawler_payment_errors: IntCounterVec,
    pub origin_robots_fetches: IntCounterVec,
    pub metering_dropped: IntCounter,
    pub access_log_dropped: IntCounter,
    pub key_directory_fetches: IntCounterVec,
    pub web_bot_auth: IntCounterVec,
    pub metering_errors: IntCounter,
    pub metering_pruned_files: IntCounter,
    pub behaviour_signals: IntCounterVec,
    /// `behaviour_signals` per signal, resolved once (indexed by `Signal as usize`).
    pub signal_counters: Vec<IntCounter>,
    pub behaviour_store_errors: IntCounterVec,
    pub behaviour_store_up: IntGauge,
    pub behaviour_store_flushes: IntCounter,
    pub evidence_records: IntCounter,
    pub evidence_dropped: IntCounter,
    pub evidence_errors: IntCounterVec,
    pub evidence_bytes: prometheus::IntGauge,
    pub evidence_max_bytes: prometheus::IntGauge,
    pub evidence_budget_exhausted: prometheus::IntGauge,
    pub evidence_limited: IntCounter,
    pub evidence_pruned_files: IntCounter,
    pub connections_refused: IntCounterVec,
    pub honeypot_links: IntCounter,
    /// `rempart_challenges_total` per outcome, resolved once (indexed by
    /// `challenge::Event as usize`).
    pub challenges: Vec<IntCounter>,
    pub config_reloads: IntCounterVec,
    /// The console's controls, by control and result.
    pub console_controls: IntCounterVec,
    pub config_last_reload_success: IntGauge,
    pub rdns: IntCounterVec,
    /// `rdns{result="hit"}`, resolved once: a claimed crawler's every
    /// request after the first is a cache hit.
    pub rdns_hit: IntCounter,
    pub config_info: IntGaugeVec,
    pub ipranges_refreshes: IntCounterVec,
    pub ipranges_age: prometheus::GaugeVec,
    pub catalog_agents: IntGauge,
    pub catalog_tokens: IntGauge,
    pub ipranges_prefixes: IntGaugeVec,
    pub policy_rules: IntGauge,
    /// `rempart_hosting_requests_total` per action, resolved once (indexed
    /// by `Action as usize`).
    pub hosting_requests: Vec<IntCounter>,
    pub network_ranges: IntGauge,
}

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
        let m = Metrics::register();
        m.initialise();
        m
    });
    &METRICS
}

fn slot(action: Action, purpose: Option<Purpose>, verification: Verification) -> usize {
    let a = action as usize;
    let p = purpose.map_or(Purpose::ALL.len(), |p| p as usize);
    let v = verification as usize;
    (a * PURPOSE_SLOTS + p) * VERIFICATIONS.len() + v
}

impl Metrics {
    fn register() -> Self {
        // Registering twice in one process is the only failure, and the
        // LazyLock above rules it out.
        #[allow(clippy::expect_used)]
        let requests_vec = register_int_counter_vec!(
            "rempart_requests_total",
            "Requests by the action taken, the purpose of the agent (none for browsers and unknown clients) and its verification.",
            &["action", "purpose", "verification"]
        )
        .expect("register rempart_requests_total");
        let mut requests = Vec::with_capacity(ACTIONS.len() * PURPOSE_SLOTS * VERIFICATIONS.len());
        for action in ACTIONS {
            for p in 0..PURPOSE_SLOTS {
                let purpose = Purpose::ALL.get(p).map_or("none", |p| p.as_str());
                for v in VERIFICATIONS {
                    requests.push(requests_vec.with_label_values(&[
                        action.as_str(),
                        purpose,
                        v.as_str(),
                    ]));
                }
            }
        }
        #[allow(clippy::expect_used)]
        let served_documents = register_int_counter_vec!(
            "rempart_served_documents_total",
            "Documents served by rempart itself (robots.txt, offer page).",
            &["document"]
        )
        .expect("register rempart_served_documents_total");
        let behaviour_signals = register_int_counter_vec!(
            "rempart_behaviour_signals_total",
            "Requests that showed a behaviour signal, by signal.",
            &["signal"]
        )
        .expect("register rempart_behaviour_signals_total");
        #[allow(clippy::expect_used)]
        let rdns = register_int_counter_vec!(
            "rempart_rdns_lookups_total",
            "Reverse-DNS verification: cache hits, lookups confirmed or not, and lookups skipped (busy).",
            &["result"]
        )
        .expect("register rempart_rdns_lookups_total");
        #[allow(clippy::expect_used)]
        Self {
            rdns_hit: rdns.with_label_values(&["hit"]),
            rdns,
            requests,
            requests_vec,
            agent_requests: register_int_counter_vec!(
                "rempart_agent_requests_total",
                "Requests from catalogue agents, by agent name and action (labels bounded by the catalogue).",
                &["agent", "operator", "action"]
            )
            .expect("register rempart_agent_requests_total"),
            ai_referrals: register_int_counter_vec!(
                "rempart_ai_referrals_total",
                "Browser page visits referred by an AI product (Referer host or utm_source), by operator.",
                &["operator"]
            )
            .expect("register rempart_ai_referrals_total"),
            log_only: register_int_counter_vec!(
                "rempart_log_only_total",
                "Matches of log-only rules: the action the rule would have taken, not enforced.",
                &["rule", "action"]
            )
            .expect("register rempart_log_only_total"),
            decision_seconds: register_histogram!(
                "rempart_decision_seconds",
                "Time to extract facts, identify and decide, per request.",
                exponential_buckets(0.000_000_25, 2.0, 14).expect("buckets")
            )
            .expect("register rempart_decision_seconds"),
            upstream_errors: register_int_counter_vec!(
                "rempart_upstream_errors_total",
                "Requests that failed towards the origin, by stage (connect, proxy).",
                &["stage"]
            )
            .expect("register rempart_upstream_errors_total"),
            document_counters: labels::DOCUMENTS
                .iter()
                .map(|d| served_documents.with_label_values(&[d]))
                .collect(),
            served_documents,
            bad_requests: register_int_counter_vec!(
                "rempart_bad_requests_total",
                "Requests refused as malformed before any decision, by reason.",
                &["reason"]
            )
            .expect("register rempart_bad_requests_total"),
            licensed_requests: register_int_counter_vec!(
                "rempart_licensed_requests_total",
                "Requests let through on a valid licence credential, by licensee.",
                &["licensee"]
            )
            .expect("register rempart_licensed_requests_total"),
            licensed_bytes: register_int_counter_vec!(
                "rempart_licensed_bytes_total",
                "Response body bytes sent to licensed crawlers, by licensee.",
                &["licensee"]
            )
            .expect("register rempart_licensed_bytes_total"),
            licence_rejections: register_int_counter_vec!(
                "rempart_licence_rejections_total",
                "Licensed crawlers refused: 401 for a wrong, expired or malformed credential (invalid), 429 past the daily quota (quota).",
                &["reason"]
            )
            .expect("register rempart_licence_rejections_total"),
            crawler_charges: register_int_counter_vec!(
                "rempart_crawler_charges_total",
                "Pay-per-crawl requests let through and charged, by licensee.",
                &["licensee"]
            )
            .expect("register rempart_crawler_charges_total"),
            crawler_charged_euros: prometheus::register_counter_vec!(
                "rempart_crawler_charged_euros_total",
                "Euros charged under pay per crawl, by licensee.",
                &["licensee"]
            )
            .expect("register rempart_crawler_charged_euros_total"),
            crawler_payment_errors: register_int_counter_vec!(
                "rempart_crawler_payment_errors_total",
                "Pay-per-crawl bids refused, by crawler-error code.",
                &["error"]
            )
            .expect("register rempart_crawler_payment_errors_total"),
            origin_robots_fetches: register_int_counter_vec!(
                "rempart_origin_robots_fetches_total",
                "Fetches of the origin's robots.txt, by result (ok, none, error).",
                &["result"]
            )
            .expect("register rempart_origin_robots_fetches_total"),
            access_log_dropped: prometheus::register_int_counter!(
                "rempart_access_log_dropped_total",
                "Access-log lines dropped because the writer's queue was full (a slow disk or a blocked stdout)."
            )
            .expect("register rempart_access_log_dropped_total"),
            metering_dropped: prometheus::register_int_counter!(
                "rempart_metering_dropped_total",
                "Metering records dropped because the writer's queue was full."
            )
            .expect("register rempart_metering_dropped_total"),
            metering_errors: prometheus::register_int_counter!(
                "rempart_metering_errors_total",
                "Metering records that could not be written (disk full, permissions)."
            )
            .expect("register rempart_metering_errors_total"),
            metering_pruned_files: prometheus::register_int_counter!(
                "rempart_metering_pruned_files_total",
                "Metering files removed past licensing.metering_retention_days."
            )
            .expect("register rempart_metering_pruned_files_total"),
            signal_counters: crate::behaviour::Signal::ALL
                .iter()
                .map(|sig| behaviour_signals.with_label_values(&[sig.as_str()]))
                .collect(),
            behaviour_signals,
            behaviour_store_errors: register_int_counter_vec!(
                "rempart_behaviour_store_errors_total",
                "Shared-state (Redis) failures, by kind (connect, write, queue-full); local state is used meanwhile.",
                &["kind"]
            )
            .expect("register rempart_behaviour_store_errors_total"),
            behaviour_store_up: register_int_gauge!(
                "rempart_behaviour_store_up",
                "1 when the last exchange with the shared-state store (Redis) succeeded."
            )
            .expect("register rempart_behaviour_store_up"),
            behaviour_store_flushes: prometheus::register_int_counter!(
                "rempart_behaviour_store_flushes_total",
                "Batches of page counts sent to the shared-state store."
            )
            .expect("register rempart_behaviour_store_flushes_total"),
            evidence_records: prometheus::register_int_counter!(
                "rempart_evidence_records_total",
                "Records written to the evidence ledger."
            )
            .expect("register rempart_evidence_records_total"),
            evidence_dropped: prometheus::register_int_counter!(
                "rempart_evidence_dropped_total",
                "Evidence records that could not be queued (recorded in the ledger as a gap)."
            )
            .expect("register rempart_evidence_dropped_total"),
            evidence_errors: register_int_counter_vec!(
                "rempart_evidence_write_errors_total",
                "Failed ledger writes (disk full, permissions), by operation; writing is retried.",
                &["op"]
            )
            .expect("register rempart_evidence_write_errors_total"),
            evidence_bytes: prometheus::register_int_gauge!(
                "rempart_evidence_bytes",
                "Bytes of the evidence ledger on disk, as written by this process."
            )
            .expect("register rempart_evidence_bytes"),
            evidence_max_bytes: prometheus::register_int_gauge!(
                "rempart_evidence_max_bytes",
                "The ledger's disk budget (evidence.max_bytes; 0: none)."
            )
            .expect("register rempart_evidence_max_bytes"),
            evidence_budget_exhausted: prometheus::register_int_gauge!(
                "rempart_evidence_budget_exhausted",
                "1 once the ledger reached evidence.max_bytes: request records are counted, not written."
            )
            .expect("register rempart_evidence_budget_exhausted"),
            evidence_limited: prometheus::register_int_counter!(
                "rempart_evidence_limited_total",
                "Request records of clients above evidence.max_records_per_client_minute, counted in `limited` records."
            )
            .expect("register rempart_evidence_limited_total"),
            evidence_pruned_files: prometheus::register_int_counter!(
                "rempart_evidence_pruned_files_total",
                "Closed ledger files removed by retention, each named first in a `pruned` record."
            )
            .expect("register rempart_evidence_pruned_files_total"),
            connections_refused: register_int_counter_vec!(
                "rempart_connections_closed_total",
                "Client connections refused or closed by a limit: total, client (per-address cap), header-timeout, idle-timeout, header-size, header-memory.",
                &["reason"]
            )
            .expect("register rempart_connections_closed_total"),
            config_reloads: register_int_counter_vec!(
                "rempart_config_reload_total",
                "Config reloads, by result (ok, unchanged, error).",
                &["result"]
            )
            .expect("register rempart_config_reload_total"),
            console_controls: register_int_counter_vec!(
                "rempart_console_controls_total",
                "The admin console's controls (allow, block, log-only, remove), by result (ok; forbidden: no token configured, another site or Host; unauthorized: no or a wrong token; invalid: a bad request, or a reload refused and the override file restored; error: the file could not be written).",
                &["control", "result"]
            )
            .expect("register rempart_console_controls_total"),
            config_last_reload_success: register_int_gauge!(
                "rempart_config_last_reload_success",
                "1 when the last config load (start or reload) succeeded, 0 while the last reload was refused."
            )
            .expect("register rempart_config_last_reload_success"),
            config_info: register_int_gauge_vec!(
                "rempart_config_info",
                "1 for the live configuration, labelled with its hash (config and data files).",
                &["hash"]
            )
            .expect("register rempart_config_info"),
            ipranges_refreshes: register_int_counter_vec!(
                "rempart_ipranges_refresh_total",
                "Range list refreshes, by source and result (updated, unchanged, fetch, parse, shrink, write).",
                &["source", "result"]
            )
            .expect("register rempart_ipranges_refresh_total"),
            ipranges_age: prometheus::register_gauge_vec!(
                "rempart_ipranges_age_seconds",
                "Age of the range list in force, per source (since its file was fetched or shipped).",
                &["source"]
            )
            .expect("register rempart_ipranges_age_seconds"),
            honeypot_links: prometheus::register_int_counter!(
                "rempart_honeypot_links_total",
                "HTML pages into which the hidden honeypot link was added."
            )
            .expect("register rempart_honeypot_links_total"),
            challenges: {
                let vec = register_int_counter_vec!(
                    "rempart_challenges_total",
                    "Browser challenges, by outcome: issued (interstitial served), passed (answer accepted, pass cookie set), failed (answer refused), admitted (a valid pass let a challenged page through), invalid-pass (a forged, expired or foreign pass cookie).",
                    &["outcome"]
                )
                .expect("register rempart_challenges_total");
                crate::challenge::Event::ALL
                    .iter()
                    .map(|e| vec.with_label_values(&[e.as_str()]))
                    .collect()
            },
            key_directory_fetches: register_int_counter_vec!(
                "rempart_key_directory_fetches_total",
                "Background fetches of Web Bot Auth key directories, by result.",
                &["result"]
            )
            .expect("register rempart_key_directory_fetches_total"),
            web_bot_auth: register_int_counter_vec!(
                "rempart_web_bot_auth_total",
                "Requests carrying Web Bot Auth signatures, by verdict (verified, unverifiable, invalid, hostile).",
                &["result"]
            )
            .expect("register rempart_web_bot_auth_total"),
            catalog_agents: register_int_gauge!(
                "rempart_catalog_agents",
                "Agents in the loaded catalogue."
            )
            .expect("register rempart_catalog_agents"),
            catalog_tokens: register_int_gauge!(
                "rempart_catalog_tokens",
                "User-agent tokens matched by the loaded catalogue."
            )
            .expect("register rempart_catalog_tokens"),
            ipranges_prefixes: register_int_gauge_vec!(
                "rempart_ipranges_prefixes",
                "Published prefixes loaded, per range source.",
                &["source"]
            )
            .expect("register rempart_ipranges_prefixes"),
            policy_rules: register_int_gauge!(
                "rempart_policy_rules",
                "Rules in the loaded policy."
            )
            .expect("register rempart_policy_rules"),
            hosting_requests: {
                let vec = register_int_counter_vec!(
                    "rempart_hosting_requests_total",
                    "Requests from addresses of hosting networks (cloud, VPS, dedicated servers), by action.",
                    &["action"]
                )
                .expect("register rempart_hosting_requests_total");
                ACTIONS
                    .iter()
                    .map(|a| vec.with_label_values(&[a.as_str()]))
                    .collect()
            },
            network_ranges: register_int_gauge!(
                "rempart_network_ranges",
                "IP-to-ASN ranges loaded (IPv4 and IPv6; 0 when [network] is off)."
            )
            .expect("register rempart_network_ranges"),
        }
    }

    /// Creates the series of bounded label sets at zero, so that dashboards
    /// and alerts (`increase(...) > 0`) see them before the first event.
    fn initialise(&self) {
        use labels::*;
        let zero = |vec: &IntCounterVec, values: &[&str]| {
            for v in values {
                vec.with_label_values(&[v]);
            }
        };
        zero(&self.config_reloads, RELOAD_RESULTS);
        zero(&self.upstream_errors, UPSTREAM_STAGES);
        zero(&self.evidence_errors, EVIDENCE_OPERATIONS);
        zero(&self.behaviour_store_errors, STORE_ERRORS);
        zero(&self.bad_requests, BAD_REQUEST_REASONS);
        zero(&self.connections_refused, CONNECTION_LIMITS);
        zero(&self.crawler_payment_errors, PAYMENT_ERRORS);
        zero(&self.key_directory_fetches, FETCH_RESULTS);
        zero(&self.licence_rejections, LICENCE_REJECTIONS);
        zero(&self.rdns, RDNS_RESULTS);
        zero(&self.served_documents, DOCUMENTS);
        zero(&self.web_bot_auth, SIGNATURE_RESULTS);
        for control in CONTROLS {
            for result in CONTROL_RESULTS {
                self.console_controls.with_label_values(&[control, result]);
            }
        }
    }

    /// Counts one request from a hosting network by its action.
    pub fn count_hosting(&self, action: Action) {
        if let Some(c) = self.hosting_requests.get(action as usize) {
            c.inc();
        }
    }

    /// Counts one request by action, purpose and verification.
    /// Creates every metric now, so that `/metrics` lists each documented
    /// series before its first event.
    pub fn touch() {
        let _ = metrics();
        let _ = http();
    }

    pub fn count_request(
        &self,
        action: Action,
        purpose: Option<Purpose>,
        verification: Verification,
    ) {
        if let Some(c) = self.requests.get(slot(action, purpose, verification)) {
            c.inc();
        }
    }
}

impl Metrics {
    /// Requests by action since the process started, in `ACTIONS` order
    /// (the sum of the resolved per-slot handles: no label lookup).
    pub fn requests_by_action(&self) -> [u64; ACTIONS.len()] {
        let per_action = PURPOSE_SLOTS * VERIFICATIONS.len();
        std::array::from_fn(|a| {
            self.requests
                .iter()
                .skip(a * per_action)
                .take(per_action)
                .map(IntCounter::get)
                .sum()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_distinct_and_in_range() {
        let mut seen = std::collections::HashSet::new();
        for a in ACTIONS {
            for p in Purpose::ALL.map(Some).into_iter().chain([None]) {
                for v in VERIFICATIONS {
                    let s = slot(a, p, v);
                    assert!(s < ACTIONS.len() * PURPOSE_SLOTS * VERIFICATIONS.len());
                    assert!(seen.insert(s));
                }
            }
        }
    }

    #[test]
    fn counting_reaches_the_labelled_series() {
        let m = metrics();
        let before = m
            .requests_vec
            .with_label_values(&["offer", "ai-search", "spoofed"])
            .get();
        m.count_request(
            Action::Offer,
            Some(Purpose::AiSearch),
            Verification::Spoofed,
        );
        let after = m
            .requests_vec
            .with_label_values(&["offer", "ai-search", "spoofed"])
            .get();
        assert_eq!(after, before + 1);
    }
}
