//! The proxy seen as an HTTP server, as nginx's operators watch one:
//! responses by status and action, request and upstream durations, bytes
//! sent, and which build is running. Every series of a bounded label set
//! exists at zero from the start, and each request's counts are resolved
//! handles (one atomic add each), never a label lookup.

use std::sync::{LazyLock, OnceLock};
use std::time::Duration;

use prometheus::{
    exponential_buckets, register_histogram, register_int_counter_vec, register_int_gauge_vec,
    Histogram, IntCounter, IntCounterVec,
};

use super::ACTIONS;
use crate::model::Action;

/// Statuses counted under their own code; any other is counted by class
/// (`2xx` … `5xx`), so that an origin's odd codes cannot grow the series.
const STATUSES: [u16; 27] = [
    200, 201, 204, 206, 301, 302, 303, 304, 307, 308, 400, 401, 402, 403, 404, 405, 408, 409, 410,
    413, 416, 429, 431, 451, 500, 502, 503,
];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// Status slots: the codes, the classes, then `none` (no response written:
/// the client went away first).
const STATUS_SLOTS: usize = STATUSES.len() + CLASSES.len() + 1;
/// Action slots: the actions, then `none` (a request pingora refused before
/// rempart read it).
const ACTION_SLOTS: usize = ACTIONS.len() + 1;

/// The HTTP metrics.
pub struct HttpMetrics {
    /// By status and action; empty when responses are counted by host
    /// (then the snapshot's [`ByHost`] holds the handles).
    responses: Vec<IntCounter>,
    /// `rempart_http_responses_total` itself, for [`ByHost`] to resolve
    /// its handles from, when it has the `host` label.
    by_host: Option<IntCounterVec>,
    bytes: Vec<IntCounter>,
    request_seconds: Histogram,
    upstream_seconds: Histogram,
}

/// Whether `rempart_http_responses_total` has the `host` label: set once,
/// at start, before the metrics are first used (a family's label names are
/// fixed once it is exported).
static HOST_LABEL: OnceLock<bool> = OnceLock::new();

/// Gives `rempart_http_responses_total` its `host` label
/// (`metrics.host_label`). Call before anything counts; false if the
/// metrics were already registered the other way.
pub fn label_hosts(on: bool) -> bool {
    HOST_LABEL.set(on).is_ok() || HOST_LABEL.get() == Some(&on)
}

/// The process-wide HTTP metrics.
pub fn http() -> &'static HttpMetrics {
    static HTTP: LazyLock<HttpMetrics> = LazyLock::new(HttpMetrics::register);
    &HTTP
}

fn status_slot(status: u16) -> usize {
    if status == 0 {
        return STATUS_SLOTS - 1;
    }
    match STATUSES.binary_search(&status) {
        Ok(i) => i,
        Err(_) => STATUSES.len() + usize::from((status / 100).clamp(1, 5) - 1),
    }
}

fn status_label(slot: usize) -> String {
    match STATUSES.get(slot) {
        Some(code) => code.to_string(),
        None => CLASSES
            .get(slot - STATUSES.len())
            .map_or("none", |c| c)
            .to_owned(),
    }
}

fn action_slot(action: Option<Action>) -> usize {
    action.map_or(ACTIONS.len(), |a| a as usize)
}

fn action_label(slot: usize) -> &'static str {
    ACTIONS.get(slot).map_or("none", |a| a.as_str())
}

impl HttpMetrics {
    // Registering twice in one process is the only failure, and the
    // LazyLock above rules it out.
    #[allow(clippy::expect_used)]
    fn register() -> Self {
        const HELP: &str = "Responses sent to clients, by status (the code, or its class for uncommon codes; none when the client left first) and the action decided (and, with metrics.host_label, the host: one of metrics.hosts, or other).";
        let host_label = *HOST_LABEL.get_or_init(|| false);
        let (responses, by_host) = if host_label {
            let family = register_int_counter_vec!(
                "rempart_http_responses_total",
                HELP,
                &["host", "status", "action"]
            )
            .expect("register rempart_http_responses_total");
            (Vec::new(), Some(family))
        } else {
            let family = register_int_counter_vec!(
                "rempart_http_responses_total",
                HELP,
                &["status", "action"]
            )
            .expect("register rempart_http_responses_total");
            (
                slots(|status, action| family.with_label_values(&[status, action])),
                None,
            )
        };
        let bytes_vec = register_int_counter_vec!(
            "rempart_response_bytes_total",
            "Response body bytes sent to clients, by action.",
            &["action"]
        )
        .expect("register rempart_response_bytes_total");
        let bytes = (0..ACTION_SLOTS)
            .map(|a| bytes_vec.with_label_values(&[action_label(a)]))
            .collect();
        let buckets = || exponential_buckets(0.000_25, 2.0, 16).expect("buckets");
        let build = register_int_gauge_vec!(
            "rempart_build_info",
            "1, labelled with the running build's version and commit.",
            &["version", "commit"]
        )
        .expect("register rempart_build_info");
        build
            .with_label_values(&[env!("CARGO_PKG_VERSION"), env!("REMPART_COMMIT")])
            .set(1);
        // process_cpu_seconds_total, process_resident_memory_bytes,
        // process_open_fds …: the prometheus crate's `process` feature puts
        // its collector in the default registry by itself.
        HttpMetrics {
            responses,
            by_host,
            bytes,
            request_seconds: register_histogram!(
                "rempart_request_duration_seconds",
                "Time from the request's head read to the response's last byte written, per request (0.25 ms to 8 s buckets).",
                buckets()
            )
            .expect("register rempart_request_duration_seconds"),
            upstream_seconds: register_histogram!(
                "rempart_upstream_duration_seconds",
                "Time from the request sent to the origin to the origin's response head, per proxied request.",
                buckets()
            )
            .expect("register rempart_upstream_duration_seconds"),
        }
    }

    /// Counts one finished response; `host` is the snapshot's per-host
    /// handles and the request's slot in them (see [`ByHost::slot`]).
    pub fn count(
        &self,
        status: u16,
        action: Option<Action>,
        bytes: u64,
        took: Option<Duration>,
        host: Option<(&ByHost, usize)>,
    ) {
        let a = action_slot(action);
        let i = status_slot(status) * ACTION_SLOTS + a;
        let counter = match host {
            Some((by, slot)) if self.by_host.is_some() => {
                by.counters.get(slot * STATUS_SLOTS * ACTION_SLOTS + i)
            }
            _ => self.responses.get(i),
        };
        if let Some(c) = counter {
            c.inc();
        }
        if let Some(c) = self.bytes.get(a) {
            c.inc_by(bytes);
        }
        if let Some(t) = took {
            self.request_seconds.observe(t.as_secs_f64());
        }
    }

    /// Times the origin's answer.
    pub fn upstream(&self, took: Duration) {
        self.upstream_seconds.observe(took.as_secs_f64());
    }
}

/// One handle per status and action slot, in slot order.
fn slots(mut handle: impl FnMut(&str, &str) -> IntCounter) -> Vec<IntCounter> {
    let mut out = Vec::with_capacity(STATUS_SLOTS * ACTION_SLOTS);
    for s in 0..STATUS_SLOTS {
        let status = status_label(s);
        for a in 0..ACTION_SLOTS {
            out.push(handle(&status, action_label(a)));
        }
    }
    out
}

/// `rempart_http_responses_total`'s handles by host, resolved when a
/// snapshot is compiled: every configured host's series, then `other`'s,
/// exist at zero, and a response picks its host's by index (no label
/// lookup, no string built per request). Empty when the label is off.
#[derive(Default)]
pub struct ByHost {
    /// The configured hosts, lower case, in order.
    hosts: Vec<String>,
    counters: Vec<IntCounter>,
}

impl ByHost {
    /// The handles for `metrics.hosts`, when the family has the label.
    pub fn new(section: &crate::config::MetricsSection) -> Self {
        match &http().by_host {
            Some(family) => Self::resolve(family, section),
            None => Self::default(),
        }
    }

    fn resolve(family: &IntCounterVec, section: &crate::config::MetricsSection) -> Self {
        let hosts: Vec<String> = section
            .hosts
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        let mut counters = Vec::with_capacity((hosts.len() + 1) * STATUS_SLOTS * ACTION_SLOTS);
        for host in hosts.iter().map(String::as_str).chain(["other"]) {
            counters.extend(slots(|status, action| {
                family.with_label_values(&[host, status, action])
            }));
        }
        Self { hosts, counters }
    }

    /// The slot of a request's host (without port): its place in
    /// `metrics.hosts`, or the last (`other`).
    pub fn slot(&self, host: Option<&str>) -> usize {
        host.and_then(|h| self.hosts.iter().position(|c| c.eq_ignore_ascii_case(h)))
            .unwrap_or(self.hosts.len())
    }

    pub fn enabled(&self) -> bool {
        !self.counters.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_bounded() {
        assert!(
            STATUSES.windows(2).all(|w| w[0] < w[1]),
            "sorted for the search"
        );
        assert_eq!(status_label(status_slot(402)), "402");
        assert_eq!(status_label(status_slot(418)), "4xx");
        assert_eq!(status_label(status_slot(999)), "5xx");
        assert_eq!(status_label(status_slot(0)), "none");
        assert_eq!(action_label(action_slot(Some(Action::Offer))), "offer");
        assert_eq!(action_label(action_slot(None)), "none");
    }

    /// Configured hosts get their own series, any other host (or none)
    /// `other`, all at zero from the start; a response lands in its host's.
    #[test]
    fn hosts_are_bounded_to_the_configured_ones() {
        use prometheus::core::Collector;
        let family = IntCounterVec::new(
            prometheus::Opts::new("t_responses", "t"),
            &["host", "status", "action"],
        )
        .unwrap();
        let by = ByHost::resolve(
            &family,
            &crate::config::MetricsSection {
                host_label: true,
                hosts: vec!["WWW.example.com".into(), "media.example.com".into()],
            },
        );
        assert!(by.enabled());
        assert_eq!(by.slot(Some("www.EXAMPLE.com")), 0);
        assert_eq!(by.slot(Some("media.example.com")), 1);
        assert_eq!(by.slot(Some("evil.example")), 2);
        assert_eq!(by.slot(None), 2);
        let series = |host: &str| family.with_label_values(&[host, "402", "offer"]).get();
        assert_eq!(series("other"), 0);
        let slot = by.slot(Some("evil.example"));
        let i = slot * STATUS_SLOTS * ACTION_SLOTS
            + status_slot(402) * ACTION_SLOTS
            + action_slot(Some(Action::Offer));
        by.counters[i].inc();
        assert_eq!(series("other"), 1);
        assert_eq!(series("www.example.com"), 0);
        // Every host's series exist before any response.
        let hosts = family
            .collect()
            .iter()
            .flat_map(|m| m.get_metric().iter())
            .filter_map(|m| {
                m.get_label()
                    .iter()
                    .find(|l| l.name() == "host")
                    .map(|l| l.value().to_owned())
            })
            .collect::<std::collections::BTreeSet<_>>();
        assert_eq!(
            hosts.into_iter().collect::<Vec<_>>(),
            ["media.example.com", "other", "www.example.com"]
        );
        assert!(!ByHost::default().enabled());
    }
}
