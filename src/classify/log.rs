//! Reading replayed access-log lines: JSON lines (rempart's own access log,
//! nginx `escape=json` formats with its variable names, or the short
//! `{"ua", "ip", "path"}` form) and nginx/Apache `combined` lines, with an
//! optional X-Forwarded-For field after the user agent. A line that names no
//! client, user agent or path, or whose client is not an address, is not
//! understood: it is counted as such, never classified as an empty request.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::{Sample, TimeField};

/// Where a log line's client is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientFrom {
    /// The address the line was logged for (a log written at the edge).
    #[default]
    Peer,
    /// The last address of the line's X-Forwarded-For field: the one the CDN
    /// in front of the logging server appended (earlier ones are whatever
    /// the client sent). A line without one falls back to the peer.
    Xff,
}

/// The JSON keys each field goes by, first match wins: rempart's own access
/// log and the short form first, then nginx's variable names.
const UA: &[&str] = &["ua", "http_user_agent", "user_agent"];
const CLIENT: &[&str] = &["ip", "client", "remote_addr", "client_ip"];
const XFF: &[&str] = &["xff", "http_x_forwarded_for", "x_forwarded_for"];
const HOST: &[&str] = &["host", "http_host", "server_name"];
const METHOD: &[&str] = &["method", "request_method"];
const TIME: &[&str] = &[
    "ts",
    "time_iso8601",
    "time_local",
    "timestamp",
    "time",
    "msec",
];
const REFERER: &[&str] = &["referer", "http_referer"];

static COMBINED: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)]
    Regex::new(
        r#"^(\S+) \S+ \S+ \[([^\]]*)\] "(?:([A-Z]+) )?(\S*)[^"]*" \d{3} \S+(?: "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"(?: "((?:[^"\\]|\\.)*)")?)?"#,
    )
    .expect("static regex")
});

/// Parses one input line; `None` when it is not understood.
pub fn parse_line(line: &str, from: ClientFrom) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    let (sample, xff) = if line.starts_with('{') {
        json_line(line)?
    } else {
        combined_line(line)?
    };
    let sample = match (from, xff.as_deref().and_then(last_forwarded)) {
        (ClientFrom::Xff, Some(client)) => Sample {
            ip: Some(client.to_string()),
            ..sample
        },
        _ => sample,
    };
    let understood = !sample.ua.is_empty() || sample.ip.is_some() || sample.path.is_some();
    let client_ok = sample
        .ip
        .as_deref()
        .is_none_or(|ip| ip.trim().parse::<IpAddr>().is_ok());
    (understood && client_ok).then_some(sample)
}

/// The last address of an X-Forwarded-For value.
fn last_forwarded(xff: &str) -> Option<IpAddr> {
    xff.rsplit(',').next()?.trim().parse().ok()
}

/// A JSON line: its fields, and its X-Forwarded-For value.
fn json_line(line: &str) -> Option<(Sample, Option<String>)> {
    let Value::Object(mut obj) = serde_json::from_str::<Value>(line).ok()? else {
        return None;
    };
    // A tracing JSON line (rempart's access log before it was flat) keeps
    // the request's fields in `fields`.
    if let Some(Value::Object(fields)) = obj.remove("fields") {
        obj.extend(fields);
    }
    let mut headers = BTreeMap::new();
    if let Some(Value::Object(h)) = obj.get("headers") {
        for (k, v) in h {
            if let Some(v) = v.as_str() {
                headers.insert(k.to_ascii_lowercase(), v.to_owned());
            }
        }
    }
    if let Some(r) = text(&obj, REFERER) {
        headers.entry("referer".into()).or_insert(r);
    }
    let sample = Sample {
        ua: text(&obj, UA).unwrap_or_default(),
        ip: text(&obj, CLIENT),
        path: target(&obj),
        host: text(&obj, HOST),
        method: text(&obj, METHOD).or_else(|| request_line(&obj).map(|(m, _)| m)),
        headers,
        ts: time(&obj),
    };
    Some((sample, text(&obj, XFF)))
}

/// The first of `keys` with a value: strings as written, numbers as text;
/// nginx's `-` (no value) and empty strings are none.
fn text(obj: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match obj.get(*k)? {
        Value::String(s) if !s.is_empty() && s != "-" => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// The request target: `path` (with `query`), nginx's `request_uri`, `uri`
/// with `args`, or the target of the `request` line.
fn target(obj: &Map<String, Value>) -> Option<String> {
    let with_query = |path: String, keys: &[&str]| match text(obj, keys) {
        Some(q) => format!("{path}?{}", q.trim_start_matches('?')),
        None => path,
    };
    if let Some(p) = text(obj, &["path"]) {
        return Some(with_query(p, &["query"]));
    }
    if let Some(p) = text(obj, &["request_uri"]) {
        return Some(p);
    }
    if let Some(p) = text(obj, &["uri"]) {
        return Some(with_query(p, &["args", "query_string"]));
    }
    request_line(obj).map(|(_, t)| t)
}

/// nginx's `$request`: `GET /x HTTP/1.1` → (method, target).
fn request_line(obj: &Map<String, Value>) -> Option<(String, String)> {
    let line = text(obj, &["request"])?;
    let mut it = line.split_ascii_whitespace();
    let (method, target) = (it.next()?, it.next()?);
    Some((method.to_owned(), target.to_owned()))
}

/// The line's time: unix seconds (a number or nginx's `$msec` text), or a
/// text (RFC 3339 or the common log format's).
fn time(obj: &Map<String, Value>) -> Option<TimeField> {
    TIME.iter().find_map(|k| match obj.get(*k)? {
        Value::Number(n) => n.as_f64().map(TimeField::Unix),
        Value::String(s) => Some(match s.parse::<f64>() {
            Ok(secs) => TimeField::Unix(secs),
            Err(_) => TimeField::Text(s.clone()),
        }),
        _ => None,
    })
}

/// A combined (or common) log line, and its X-Forwarded-For field when the
/// format appends one after the user agent.
fn combined_line(line: &str) -> Option<(Sample, Option<String>)> {
    let caps = COMBINED.captures(line)?;
    let field = |i: usize| {
        caps.get(i)
            .map(|m| m.as_str().replace("\\\"", "\""))
            .filter(|s| !s.is_empty() && s != "-")
    };
    let mut headers = BTreeMap::new();
    if let Some(r) = field(5) {
        headers.insert("referer".to_owned(), r);
    }
    let sample = Sample {
        ip: field(1),
        ts: field(2).map(TimeField::Text),
        method: field(3),
        path: field(4),
        ua: field(6).unwrap_or_default(),
        headers,
        ..Sample::default()
    };
    Some((sample, field(7)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_short_json_form() {
        let s = parse_line(
            r#"{"ua":"GPTBot/1.2","ip":"1.2.3.4","path":"/x"}"#,
            ClientFrom::Peer,
        )
        .unwrap();
        assert_eq!(
            (s.ua.as_str(), s.ip.as_deref(), s.path.as_deref()),
            ("GPTBot/1.2", Some("1.2.3.4"), Some("/x"))
        );
        assert!(parse_line("{not json", ClientFrom::Peer).is_none());
        assert!(parse_line("   ", ClientFrom::Peer).is_none());
    }

    #[test]
    fn reads_nginx_json_variables() {
        let line = r#"{"time_iso8601":"2026-11-23T10:00:00+01:00","remote_addr":"10.1.2.3","request_method":"GET","request_uri":"/films/1?x=2","status":"200","http_referer":"-","http_user_agent":"Mozilla/5.0 (compatible; GPTBot/1.2)","http_x_forwarded_for":"203.0.113.9, 192.0.2.44","http_host":"www.example.com"}"#;
        let s = parse_line(line, ClientFrom::Peer).unwrap();
        assert_eq!(s.ip.as_deref(), Some("10.1.2.3"));
        assert_eq!(s.path.as_deref(), Some("/films/1?x=2"));
        assert_eq!(s.method.as_deref(), Some("GET"));
        assert_eq!(s.host.as_deref(), Some("www.example.com"));
        assert!(s.ua.contains("GPTBot"));
        assert!(
            !s.headers.contains_key("referer"),
            "nginx's '-' is no value"
        );
        assert_eq!(
            s.ts,
            Some(TimeField::Text("2026-11-23T10:00:00+01:00".into()))
        );
        let behind = parse_line(line, ClientFrom::Xff).unwrap();
        assert_eq!(
            behind.ip.as_deref(),
            Some("192.0.2.44"),
            "the address the CDN appended"
        );
    }

    #[test]
    fn reads_rempart_s_own_access_log() {
        let nested = r#"{"timestamp":"2026-11-23T09:00:00.5Z","level":"INFO","fields":{"client":"192.0.2.7","method":"GET","host":"a.example","path":"/x","status":403,"agent":"GPTBot"},"target":"rempart::access"}"#;
        let s = parse_line(nested, ClientFrom::Peer).unwrap();
        assert_eq!(
            (s.ip.as_deref(), s.path.as_deref()),
            (Some("192.0.2.7"), Some("/x"))
        );
        let flat = r#"{"ts":"2026-11-23T09:00:00Z","client":"192.0.2.8","method":"GET","host":"a.example","path":"/x","query":"page=2","ua":"curl/8.5","status":200}"#;
        let s = parse_line(flat, ClientFrom::Peer).unwrap();
        assert_eq!(s.path.as_deref(), Some("/x?page=2"));
        assert_eq!(s.ua, "curl/8.5");
    }

    #[test]
    fn a_line_that_names_nothing_or_a_bad_client_is_not_understood() {
        assert!(parse_line(r#"{"status":200,"bytes":512}"#, ClientFrom::Peer).is_none());
        assert!(parse_line(
            r#"{"remote_addr":"notanip","request_uri":"/"}"#,
            ClientFrom::Peer
        )
        .is_none());
        assert!(parse_line("[1,2,3]", ClientFrom::Peer).is_none());
    }

    #[test]
    fn reads_combined_lines_with_and_without_a_forwarded_field() {
        let line = r#"66.249.66.1 - - [23/Nov/2026:10:00:00 +0100] "GET /films/1?x=2 HTTP/1.1" 200 5120 "-" "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)""#;
        let s = parse_line(line, ClientFrom::Peer).unwrap();
        assert_eq!(s.ip.as_deref(), Some("66.249.66.1"));
        assert_eq!(s.path.as_deref(), Some("/films/1?x=2"));
        assert!(s.ua.contains("Googlebot/2.1"));
        let common = r#"10.0.0.1 - - [23/Nov/2026:10:00:00 +0100] "GET / HTTP/1.0" 304 -"#;
        let s = parse_line(common, ClientFrom::Peer).unwrap();
        assert_eq!((s.ua.as_str(), s.path.as_deref()), ("", Some("/")));
        let escaped = r#"1.1.1.1 - - [x] "GET / HTTP/1.1" 200 1 "-" "say \"hi\" bot""#;
        assert_eq!(
            parse_line(escaped, ClientFrom::Peer).unwrap().ua,
            "say \"hi\" bot"
        );
        assert!(parse_line("garbage line", ClientFrom::Peer).is_none());
        let cdn = r#"10.0.0.5 - - [23/Nov/2026:10:00:00 +0100] "GET /a HTTP/1.1" 200 1 "https://chatgpt.com/" "GPTBot/1.2" "1.2.3.4, 20.15.240.80""#;
        let s = parse_line(cdn, ClientFrom::Xff).unwrap();
        assert_eq!(s.ip.as_deref(), Some("20.15.240.80"));
        assert_eq!(
            s.headers.get("referer").map(String::as_str),
            Some("https://chatgpt.com/")
        );
        assert_eq!(
            parse_line(cdn, ClientFrom::Peer).unwrap().ip.as_deref(),
            Some("10.0.0.5")
        );
    }
}
