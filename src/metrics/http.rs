//! The proxy seen as an HTTP server, as nginx's operators watch one:
//! responses by status and action, request and upstream durations, bytes
//! sent, and which build is running. Every series of a bounded label set
//! exists at zero from the start, and each request's counts are resolved
//! handles (one atomic add each), never a label lookup.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{
    exponential_buckets, register_histogram, register_int_counter_vec, register_int_gauge_vec,
    Histogram, IntCounter,
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
    responses: Vec<IntCounter>,
    bytes: Vec<IntCounter>,
    request_seconds: Histogram,
    upstream_seconds: Histogram,
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
        let responses_vec = register_int_counter_vec!(
            "rempart_http_responses_total",
            "Responses sent to clients, by status (the code, or its class for uncommon codes; none when the client left first) and the action decided.",
            &["status", "action"]
        )
        .expect("register rempart_http_responses_total");
        let mut responses = Vec::with_capacity(STATUS_SLOTS * ACTION_SLOTS);
        for s in 0..STATUS_SLOTS {
            let status = status_label(s);
            for a in 0..ACTION_SLOTS {
                responses.push(responses_vec.with_label_values(&[&status, action_label(a)]));
            }
        }
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

    /// Counts one finished response.
    pub fn count(&self, status: u16, action: Option<Action>, bytes: u64, took: Option<Duration>) {
        let a = action_slot(action);
        if let Some(c) = self.responses.get(status_slot(status) * ACTION_SLOTS + a) {
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
}
