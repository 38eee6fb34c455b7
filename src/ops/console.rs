//! The console of the admin listener: `GET /` is a small HTML page and
//! `GET /console.json` the same view as JSON, both read from the process's
//! own metric handles and the snapshot in force (never from the `/metrics`
//! text). Reading asks for no token; the admin listener's own guards
//! (loopback by default) still apply. The page's quick controls post to
//! `/controls/…` ([`crate::ops::controls`]) with the admin token the
//! operator types in, set by the script as an `Authorization` header.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus::core::Collector;
use serde_json::{json, Value};
use sha2::Digest;

use crate::config::overrides::Target;
use crate::metrics::{metrics, AgentRow, ACTIONS};
use crate::snapshot::Snapshot;

/// How far back "recent" requests reach, and so how many per-minute
/// samples the ring keeps (one more than the minutes).
const RECENT_MINUTES: usize = 15;
/// Agents listed, most requests first.
const TOP_AGENTS: usize = 20;

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.3em}h2{font-size:1.05em;margin-top:1.4em}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}\
th{background:#f3f3f3}p.note{color:#666}\
div.controls label{display:inline-block;margin:.2em .8em .2em 0}\
div.controls button{margin:.2em .4em .2em 0}#result{white-space:pre-wrap}";

/// Refreshes every table from `/console.json` every ten seconds; values go
/// in as text nodes, never as markup.
const SCRIPT: &str = "function r(){fetch('/console.json',{cache:'no-store'}).then(x=>x.json()).then(d=>{\
for(const t of d.tables){const b=document.getElementById(t.id);if(!b)continue;b.replaceChildren();\
for(const row of t.rows){const tr=document.createElement('tr');for(const c of row){\
const td=document.createElement('td');td.textContent=String(c);tr.appendChild(td)}b.appendChild(tr)}}\
document.getElementById('at').textContent=d.generated_unix;\
document.getElementById('live').textContent='live';}).catch(()=>{})}r();setInterval(r,10000);\
function v(id){const e=document.getElementById(id);return e?e.value.trim():''}\
function c(n,b){const o=document.getElementById('result');o.textContent='…';\
fetch('/controls/'+n,{method:'POST',cache:'no-store',headers:{'Content-Type':'application/json',\
'Authorization':'Bearer '+v('token')},body:JSON.stringify(b)}).then(x=>x.text().then(m=>{\
o.textContent=x.status+' '+m;o.dataset.status=String(x.status);r()})).catch(e=>{o.textContent=String(e)})}\
for(const [id,n,k] of [['allow','allow','agent'],['block','block','agent'],['log-only','log-only','rule'],\
['remove-agent','remove','agent'],['remove-rule','remove','rule']]){const e=document.getElementById(id);\
if(e)e.addEventListener('click',()=>{const b={};b[k]=v(k);const d=v('seconds');\
if(n!=='remove'&&d)b.seconds=Number(d);c(n,b)})}";

/// Totals by action at one instant: the ring's unit.
type Totals = [u64; ACTIONS.len()];

/// The console's state: a ring of per-minute samples of the request totals,
/// taken when the console is asked and a minute has passed since the last
/// one. Only the admin listener takes its lock; the request path only adds
/// to the counters.
pub struct Console {
    ring: Mutex<VecDeque<(Instant, Totals)>>,
}

impl Default for Console {
    fn default() -> Self {
        Self::new()
    }
}

impl Console {
    /// A console whose first sample is now (the process's start, or close).
    pub fn new() -> Self {
        let mut ring = VecDeque::with_capacity(RECENT_MINUTES + 1);
        ring.push_back((Instant::now(), metrics().requests_by_action()));
        Self {
            ring: Mutex::new(ring),
        }
    }

    /// Samples `totals` if a minute passed since the last sample, and returns
    /// the oldest sample of the recent window.
    fn recent_base(&self, now: Instant, totals: Totals) -> (Instant, Totals) {
        let Ok(mut ring) = self.ring.lock() else {
            return (now, totals);
        };
        let due = ring
            .back()
            .is_none_or(|(t, _)| now.duration_since(*t) >= Duration::from_secs(60));
        if due {
            ring.push_back((now, totals));
        }
        while ring.len() > RECENT_MINUTES + 1 {
            ring.pop_front();
        }
        let window = Duration::from_secs(60 * RECENT_MINUTES as u64);
        ring.iter()
            .find(|(t, _)| now.duration_since(*t) <= window)
            .copied()
            .unwrap_or((now, totals))
    }

    /// The whole view, as `/console.json` serves it; `controls` says
    /// whether the controls are on (an admin token is configured).
    pub fn view(&self, snap: &Snapshot, controls: bool) -> Value {
        snap.publish_ages();
        let m = metrics();
        let totals = m.requests_by_action();
        let (since, base) = self.recent_base(Instant::now(), totals);
        let recent: Totals = std::array::from_fn(|i| totals[i].saturating_sub(base[i]));
        let mut agents = snap.agent_counters.rows();
        agents.truncate(TOP_AGENTS);
        let mut v = json!({
            "generated_unix": std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            "requests": by_action(&totals),
            "recent": {
                "seconds": since.elapsed().as_secs(),
                "requests": by_action(&recent),
            },
            "agents": agents,
            "log_only": labelled(&m.log_only, &["rule", "action"]),
            "policy_rules": m.policy_rules.get(),
            "challenges": challenges(),
            "offers": {
                "requests": totals[crate::model::Action::Offer as usize],
                "pages_served": m.served_documents.with_label_values(&["offer"]).get(),
            },
            "evidence": evidence(),
            "config": config(),
            "ranges": labelled(&m.ipranges_age, &["source"]),
            "overrides": overrides(snap),
            "controls": {
                "enabled": controls,
                "how": if controls { Value::Null } else { json!(crate::ops::controls::NO_TOKEN) },
                "counts": labelled(&m.console_controls, &["control", "result"]),
            },
        });
        let tables = tables(&v, &agents_rows(&agents));
        v["tables"] = tables;
        v
    }

    /// `GET /console.json`.
    pub fn json(&self, snap: &Snapshot, controls: bool) -> http::Response<Vec<u8>> {
        let body = serde_json::to_vec_pretty(&self.view(snap, controls)).unwrap_or_default();
        respond("application/json", body)
    }

    /// `GET /`: the page, filled in on the server (it reads without its
    /// script) and refreshed by the script.
    pub fn page(&self, snap: &Snapshot, controls: bool) -> http::Response<Vec<u8>> {
        let view = self.view(snap, controls);
        respond(
            "text/html; charset=utf-8",
            render(&view, &choices(snap, controls)).into_bytes(),
        )
    }
}

/// The override file's entries, expired ones marked so.
fn overrides(snap: &Snapshot) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let rows: Vec<Value> = snap
        .overrides
        .file
        .overrides
        .iter()
        .map(|o| {
            let (kind, name, what) = match o.target() {
                Some(Target::Agent(a, action)) => ("agent", a, action.as_str()),
                Some(Target::LogOnly(r)) => ("rule", r, "log-only"),
                None => ("?", "", ""),
            };
            json!({
                "kind": kind,
                "name": name,
                "override": what,
                "until": o.until_unix.map_or_else(|| "until removed".to_owned(), crate::ops::controls::utc),
                "state": if o.expired(now) { "expired" } else { "in force" },
                "set": o.set_unix.map_or_else(String::new, crate::ops::controls::utc),
                "set_by": o.set_by.clone().unwrap_or_default(),
            })
        })
        .collect();
    json!({
        "file": snap.overrides.path.display().to_string(),
        "entries": rows,
    })
}

/// What the controls' fields offer: the catalogue's agents and the
/// configured rules (none when the controls are off).
struct Choices {
    controls: bool,
    agents: Vec<String>,
    rules: Vec<String>,
}

fn choices(snap: &Snapshot, controls: bool) -> Choices {
    Choices {
        controls,
        agents: if controls {
            snap.catalogue
                .agents()
                .iter()
                .map(|a| a.name.clone())
                .collect()
        } else {
            Vec::new()
        },
        rules: if controls {
            snap.policy
                .configured_rule_names()
                .map(str::to_owned)
                .collect()
        } else {
            Vec::new()
        },
    }
}

fn by_action(totals: &Totals) -> Value {
    let map: serde_json::Map<String, Value> = ACTIONS
        .iter()
        .zip(totals)
        .map(|(a, n)| (a.as_str().to_owned(), json!(n)))
        .collect();
    Value::Object(map)
}

/// Every series of a labelled counter or gauge: its labels by name, and its
/// value (counters and gauges alike).
fn labelled(c: &dyn Collector, names: &[&str]) -> Value {
    let mut out = Vec::new();
    for family in c.collect() {
        for metric in family.get_metric() {
            let mut row = serde_json::Map::new();
            for name in names {
                let value = metric
                    .get_label()
                    .iter()
                    .find(|l| l.name() == *name)
                    .map_or("", |l| l.value());
                row.insert((*name).to_owned(), json!(value));
            }
            let value = match family.get_field_type() {
                prometheus::proto::MetricType::GAUGE => metric.get_gauge().value(),
                _ => metric.get_counter().value(),
            };
            row.insert("value".to_owned(), json!(value));
            out.push(Value::Object(row));
        }
    }
    Value::Array(out)
}

fn challenges() -> Value {
    let map: serde_json::Map<String, Value> = crate::challenge::Event::ALL
        .iter()
        .zip(&metrics().challenges)
        .map(|(e, c)| (e.as_str().to_owned(), json!(c.get())))
        .collect();
    Value::Object(map)
}

fn evidence() -> Value {
    let m = metrics();
    json!({
        "records": m.evidence_records.get(),
        "dropped": m.evidence_dropped.get(),
        "limited": m.evidence_limited.get(),
        "bytes": m.evidence_bytes.get(),
        "max_bytes": m.evidence_max_bytes.get(),
        "budget_exhausted": m.evidence_budget_exhausted.get() == 1,
    })
}

fn config() -> Value {
    let m = metrics();
    let hash = labelled(&m.config_info, &["hash"])
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["value"] == json!(1.0)).cloned())
        .map_or(Value::Null, |r| r["hash"].clone());
    let reloads: serde_json::Map<String, Value> = ["ok", "unchanged", "error"]
        .iter()
        .map(|r| {
            let n = m.config_reloads.with_label_values(&[r]).get();
            ((*r).to_owned(), json!(n))
        })
        .collect();
    json!({
        "hash": hash,
        "last_reload_success": m.config_last_reload_success.get() == 1,
        "reloads": reloads,
    })
}

/// One agent a row: name, operator, total, then its actions and
/// verifications that are not zero.
fn agents_rows(agents: &[AgentRow]) -> Vec<Vec<String>> {
    let nonzero = |pairs: &[(&str, u64)]| {
        pairs
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    agents
        .iter()
        .map(|a| {
            vec![
                a.agent.clone(),
                a.operator.clone(),
                a.total.to_string(),
                nonzero(&a.verifications),
                nonzero(&a.actions),
            ]
        })
        .collect()
}

/// Flattens a JSON object into `key, value` rows.
fn pairs(v: &Value) -> Vec<Vec<String>> {
    v.as_object().map_or_else(Vec::new, |o| {
        o.iter().map(|(k, v)| vec![k.clone(), plain(v)]).collect()
    })
}

/// A JSON value as a cell's text.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "none".to_owned(),
        other => other.to_string(),
    }
}

/// Each array element's listed fields as a row.
fn rows_of(v: &Value, fields: &[&str]) -> Vec<Vec<String>> {
    v.as_array().map_or_else(Vec::new, |a| {
        a.iter()
            .map(|r| fields.iter().map(|f| plain(&r[*f])).collect())
            .collect()
    })
}

/// The page's tables: id, title, headings and rows, for the server's
/// rendering and the script's refresh alike.
fn tables(v: &Value, agents: &[Vec<String>]) -> Value {
    let recent = format!(
        "Recent: the last {} s (up to 15 minutes)",
        v["recent"]["seconds"]
    );
    let mut evidence = pairs(&v["evidence"]);
    evidence.extend(pairs(&v["config"]["reloads"]).into_iter().map(|mut r| {
        r[0] = format!("config reloads {}", r[0]);
        r
    }));
    evidence.push(vec!["config hash".into(), plain(&v["config"]["hash"])]);
    evidence.push(vec![
        "last reload succeeded".into(),
        plain(&v["config"]["last_reload_success"]),
    ]);
    json!([
        {"id": "requests", "title": "Requests by action (since start)", "head": ["action", "requests"], "rows": pairs(&v["requests"])},
        {"id": "recent", "title": recent, "head": ["action", "requests"], "rows": pairs(&v["recent"]["requests"])},
        {"id": "agents", "title": "Top agents", "head": ["agent", "operator", "requests", "verification", "actions"], "rows": agents},
        {"id": "rules", "title": "Log-only rules that fired (the only per-rule count kept)", "head": ["rule", "would", "matches"], "rows": rows_of(&v["log_only"], &["rule", "action", "value"])},
        {"id": "challenges", "title": "Challenges", "head": ["outcome", "count"], "rows": pairs(&v["challenges"])},
        {"id": "offers", "title": "Offers", "head": ["what", "count"], "rows": pairs(&v["offers"])},
        {"id": "state", "title": "Evidence ledger and configuration", "head": ["what", "value"], "rows": evidence},
        {"id": "ranges", "title": "Range lists", "head": ["source", "age (s)"], "rows": rows_of(&v["ranges"], &["source", "value"])},
        {"id": "overrides", "title": "Overrides (the override file, compiled before every rule)", "head": ["on", "name", "override", "until", "state", "set", "by"], "rows": rows_of(&v["overrides"]["entries"], &["kind", "name", "override", "until", "state", "set", "set_by"])},
    ])
}

/// The page: every value escaped, the style and script inline and allowed
/// by their hashes alone.
fn render(v: &Value, choices: &Choices) -> String {
    let mut html = String::with_capacity(16 * 1024);
    html.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    html.push_str("<title>rempart console</title><style>");
    html.push_str(STYLE);
    html.push_str("</style></head><body><h1>rempart console</h1>");
    html.push_str("<p class=\"note\">Generated at <span id=\"at\">");
    html.push_str(&escape(&plain(&v["generated_unix"])));
    html.push_str(
        "</span> (Unix time); <span id=\"live\">as served</span>, \
         refreshed every 10 s.</p>",
    );
    for t in v["tables"].as_array().map_or(&[][..], Vec::as_slice) {
        render_table(&mut html, t);
    }
    render_controls(&mut html, choices);
    html.push_str("<script>");
    html.push_str(SCRIPT);
    html.push_str("</script></body></html>");
    html
}

fn render_table(html: &mut String, t: &Value) {
    html.push_str("<h2>");
    html.push_str(&escape(&plain(&t["title"])));
    html.push_str("</h2><table><thead><tr>");
    for h in t["head"].as_array().map_or(&[][..], Vec::as_slice) {
        html.push_str("<th>");
        html.push_str(&escape(&plain(h)));
        html.push_str("</th>");
    }
    html.push_str("</tr></thead><tbody id=\"");
    html.push_str(&escape(&plain(&t["id"])));
    html.push_str("\">");
    for row in t["rows"].as_array().map_or(&[][..], Vec::as_slice) {
        html.push_str("<tr>");
        for cell in row.as_array().map_or(&[][..], Vec::as_slice) {
            html.push_str("<td>");
            html.push_str(&escape(&plain(cell)));
            html.push_str("</td>");
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table>");
}

/// The quick controls: fields and buttons the script posts from (no form
/// is submitted: the CSP's `form-action 'none'` holds), or how to turn
/// them on.
fn render_controls(html: &mut String, c: &Choices) {
    html.push_str("<h2>Controls</h2>");
    if !c.controls {
        html.push_str("<p class=\"note\" id=\"controls-off\">Controls are off: ");
        html.push_str(&escape(crate::ops::controls::NO_TOKEN));
        html.push_str(".</p>");
        return;
    }
    html.push_str(
        "<p class=\"note\">Each control writes the override file and reloads; \
         an override applies before every rule, survives restarts and is listed \
         by <code>rempart check</code>. The token stays in this page.</p>\
         <div class=\"controls\"><label>Admin token <input id=\"token\" type=\"password\" \
         autocomplete=\"off\"></label><label>For <select id=\"seconds\">\
         <option value=\"\">until removed</option><option value=\"3600\">1 hour</option>\
         <option value=\"86400\">1 day</option><option value=\"604800\">7 days</option>\
         </select></label><br><label>Agent <input id=\"agent\" list=\"agent-names\" \
         autocomplete=\"off\"></label><datalist id=\"agent-names\">",
    );
    for a in &c.agents {
        html.push_str("<option value=\"");
        html.push_str(&escape(a));
        html.push_str("\"></option>");
    }
    html.push_str(
        "</datalist><button type=\"button\" id=\"allow\">Allow agent</button>\
         <button type=\"button\" id=\"block\">Block agent</button>\
         <button type=\"button\" id=\"remove-agent\">Remove its override</button><br>\
         <label>Rule <select id=\"rule\">",
    );
    for r in &c.rules {
        html.push_str("<option>");
        html.push_str(&escape(r));
        html.push_str("</option>");
    }
    html.push_str(
        "</select></label><button type=\"button\" id=\"log-only\">Put rule in log-only</button>\
         <button type=\"button\" id=\"remove-rule\">Remove its override</button></div>\
         <p id=\"result\" role=\"status\"></p>",
    );
}

/// HTML-escapes text for an element's content or a quoted attribute: the
/// pages' own escaping.
pub use crate::respond::markdown::html_escape as escape;

/// The Content-Security-Policy: nothing but the inline style and script
/// (by hash) and the script's own fetch of `/console.json`.
fn policy() -> String {
    format!(
        "default-src 'none'; style-src '{}'; script-src '{}'; connect-src 'self'; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        csp_hash(STYLE),
        csp_hash(SCRIPT)
    )
}

fn csp_hash(text: &str) -> String {
    format!("sha256-{}", base64(&sha2::Sha256::digest(text.as_bytes())))
}

/// Standard base64 with padding (for CSP hashes; no dependency for it).
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn respond(content_type: &str, body: Vec<u8>) -> http::Response<Vec<u8>> {
    let mut resp = http::Response::new(body);
    let h = resp.headers_mut();
    let mut set = |name: http::header::HeaderName, value: &str| {
        if let Ok(v) = http::HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set(http::header::CONTENT_TYPE, content_type);
    set(http::header::CACHE_CONTROL, "no-store");
    set(http::header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(http::header::X_FRAME_OPTIONS, "DENY");
    set(http::header::CONTENT_SECURITY_POLICY, &policy());
    set(http::header::REFERRER_POLICY, "no-referrer");
    let len = resp.body().len();
    resp.headers_mut()
        .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn escape_neutralises_markup() {
        assert_eq!(
            escape("<script>\"a\"&'b'</script>"),
            "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;&lt;/script&gt;"
        );
    }
}
