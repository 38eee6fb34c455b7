//! The console's quick controls: `POST /controls/allow`, `/controls/block`,
//! `/controls/log-only` and `/controls/remove` on the admin listener.
//!
//! A control decides nothing itself. It edits the override file
//! ([`crate::config::overrides`]) and reloads, exactly as `POST /reload`
//! does: the snapshot compiles the overrides into the policy's first rules,
//! and the one decision function applies them. So an override survives a
//! restart, shows in `rempart check`, and is refused with file, line and key
//! like any other config mistake; a refused reload puts the previous file
//! back and the previous configuration keeps serving.
//!
//! The admin listener lets a control through only with the admin token (no
//! token configured: no controls), from the same origin, with a JSON body
//! (a cross-site form cannot send one without a preflight). Each control
//! that reached the file is written to the evidence ledger.

/// Why the controls are off, for the answer and the console page.
pub const NO_TOKEN: &str = "the controls need the admin token: set admin.token_file to a file holding a secret, restart, and give the token to the console";

use std::path::Path;

use http::StatusCode;
use serde::Deserialize;

use crate::config::overrides::{
    write_atomically, OverrideAction, OverrideFile, OverrideSpec, Target,
};
use crate::evidence::{Body, ControlRecord};
use crate::metrics::metrics;
use crate::ops::reload::{short_hash, Outcome, Reloader};

/// A control's body is a few names and a number.
pub const MAX_BODY: usize = 4096;
/// The longest an override can be set for, through the controls.
const MAX_SECONDS: u64 = 366 * 86_400;

/// One of the controls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Allow,
    Block,
    LogOnly,
    Remove,
}

impl Control {
    /// The control a path names (`/controls/allow` …).
    pub fn from_path(path: &str) -> Option<Self> {
        match path.strip_prefix("/controls/")? {
            "allow" => Some(Control::Allow),
            "block" => Some(Control::Block),
            "log-only" => Some(Control::LogOnly),
            "remove" => Some(Control::Remove),
            _ => None,
        }
    }

    /// Its label in `rempart_console_controls_total` and the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            Control::Allow => "allow",
            Control::Block => "block",
            Control::LogOnly => "log-only",
            Control::Remove => "remove",
        }
    }
}

/// What a control asks, as the console's script sends it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlBody {
    /// A catalogue agent's name (allow, block, remove).
    #[serde(default)]
    pub agent: Option<String>,
    /// A policy rule's name (log-only, remove).
    #[serde(default)]
    pub rule: Option<String>,
    /// How long the override applies; none: until removed.
    #[serde(default)]
    pub seconds: Option<u64>,
}

/// A control's answer: its status, its result label and a line for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: StatusCode,
    pub result: &'static str,
    pub message: String,
}

impl Answer {
    fn new(status: StatusCode, result: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            result,
            message: message.into(),
        }
    }

    /// A request refused before it reached the file.
    pub fn refused(status: StatusCode, message: impl Into<String>) -> Self {
        let result = match status {
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            s if s.is_server_error() => "error",
            _ => "invalid",
        };
        Self::new(status, result, message)
    }
}

/// Counts a control's result.
pub fn count(control: Control, answer: &Answer) {
    metrics()
        .console_controls
        .with_label_values(&[control.as_str(), answer.result])
        .inc();
}

/// Reads a control's JSON body.
pub fn parse_body(bytes: &[u8]) -> Result<ControlBody, Answer> {
    let body: ControlBody = serde_json::from_slice(bytes).map_err(|e| {
        Answer::refused(
            StatusCode::BAD_REQUEST,
            format!("the body is not a control: {e}"),
        )
    })?;
    for name in [&body.agent, &body.rule].into_iter().flatten() {
        if name.trim().is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
            return Err(Answer::refused(
                StatusCode::BAD_REQUEST,
                "a name is empty, too long or has control characters",
            ));
        }
    }
    if body.seconds.is_some_and(|s| s == 0 || s > MAX_SECONDS) {
        return Err(Answer::refused(
            StatusCode::BAD_REQUEST,
            format!("seconds must be between 1 and {MAX_SECONDS}"),
        ));
    }
    Ok(body)
}

/// The override file with one control applied, or why it cannot be.
pub fn edit(
    mut file: OverrideFile,
    control: Control,
    body: &ControlBody,
    now: u64,
) -> Result<OverrideFile, Answer> {
    let bad = |m: &str| Answer::refused(StatusCode::BAD_REQUEST, m.to_owned());
    let until_unix = body.seconds.map(|s| now.saturating_add(s));
    let set = |agent: Option<String>, action, rule: Option<String>, mode| OverrideSpec {
        agent,
        action,
        rule,
        mode,
        until_unix,
        set_unix: Some(now),
        set_by: Some("console".into()),
    };
    let (target, spec) = match (control, &body.agent, &body.rule) {
        (Control::Allow | Control::Block, Some(agent), None) => {
            let action = if control == Control::Allow {
                OverrideAction::Allow
            } else {
                OverrideAction::Block
            };
            let spec = set(Some(agent.clone()), Some(action), None, None);
            (Target::Agent(agent, action), Some(spec))
        }
        (Control::Allow | Control::Block, _, _) => return Err(bad("name one agent")),
        (Control::LogOnly, None, Some(rule)) => {
            let mode = Some(crate::decide::policy::Mode::LogOnly);
            (
                Target::LogOnly(rule),
                Some(set(None, None, Some(rule.clone()), mode)),
            )
        }
        (Control::LogOnly, _, _) => return Err(bad("name one rule")),
        (Control::Remove, Some(agent), None) => (Target::Agent(agent, OverrideAction::Allow), None),
        (Control::Remove, None, Some(rule)) => (Target::LogOnly(rule), None),
        (Control::Remove, _, _) => return Err(bad("name one agent or one rule")),
    };
    let existing = file.position_of(target);
    match (spec, existing) {
        (Some(spec), Some(i)) => file.overrides[i] = spec,
        (Some(spec), None) => file.overrides.push(spec),
        (None, Some(i)) => {
            file.overrides.remove(i);
        }
        (None, None) => {
            return Err(Answer::refused(
                StatusCode::NOT_FOUND,
                "there is no such override",
            ))
        }
    }
    Ok(file)
}

/// Applies one control: edits the override file (atomically), reloads as
/// `POST /reload` does, and puts the previous file back if the reload is
/// refused. Blocking (file writes and a compile): run it off the runtime.
pub fn apply(reloader: &Reloader, control: Control, body: &ControlBody) -> Answer {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let path = reloader.overrides_path();
    let old = match std::fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Answer::refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read {}: {e}", path.display()),
            )
        }
    };
    let file = match OverrideFile::parse(&path, old.as_deref().unwrap_or("")) {
        Ok(f) => f,
        Err(e) => {
            return Answer::refused(
                StatusCode::CONFLICT,
                format!("the override file is not valid; correct or remove it first: {e}"),
            )
        }
    };
    let edited = match edit(file, control, body, now) {
        Ok(f) => f,
        Err(a) => return a,
    };
    let until = match control {
        Control::Remove => None,
        _ => body.seconds.map(|s| now.saturating_add(s)),
    };
    let answer = match write_atomically(&path, &edited.render()) {
        Err(e) => Answer::refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot write {}: {e}", path.display()),
        ),
        Ok(()) => match reloader.reload("console") {
            Ok(Outcome::Loaded { hash } | Outcome::Unchanged { hash }) => Answer::new(
                StatusCode::OK,
                "ok",
                format!(
                    "{}; loaded {}",
                    describe(control, body, until),
                    short_hash(&hash)
                ),
            ),
            Err(e) => restore(reloader, &path, old.as_deref(), &e),
        },
    };
    record(reloader, control, body, until, &answer);
    answer
}

/// Puts the previous override file back after a refused reload, and
/// reloads it (the configuration in force did not change: this reload says
/// so, and clears `rempart_config_last_reload_success`'s 0).
fn restore(reloader: &Reloader, path: &Path, old: Option<&str>, why: &str) -> Answer {
    let restored = match old {
        Some(text) => write_atomically(path, text),
        None => std::fs::remove_file(path).or_else(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Ok(()),
            _ => Err(e),
        }),
    };
    match restored {
        Ok(()) => {
            let _ = reloader.reload("console-restore");
            Answer::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                format!(
                    "refused; the override file was restored and the previous configuration keeps serving:\n{why}"
                ),
            )
        }
        Err(e) => Answer::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "error",
            format!(
                "refused, and {} could not be restored ({e}); the previous configuration keeps serving until the next reload:\n{why}",
                path.display()
            ),
        ),
    }
}

/// `GPTBot: allow until 2026-12-02T02:00:00Z`, for the answer.
fn describe(control: Control, body: &ControlBody, until: Option<u64>) -> String {
    let name = body.agent.as_deref().or(body.rule.as_deref()).unwrap_or("");
    let until = match (control, until) {
        (Control::Remove, _) => String::new(),
        (_, Some(u)) => format!(" until {}", utc(u)),
        (_, None) => " until removed".into(),
    };
    format!("{name}: {}{until}", control.as_str())
}

/// A Unix time as the ledger writes times (UTC, RFC 3339).
pub fn utc(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|u| time::OffsetDateTime::from_unix_timestamp(u).ok())
        .map_or_else(|| unix.to_string(), crate::evidence::writer::rfc3339)
}

/// Writes the control and its outcome to the evidence ledger.
fn record(
    reloader: &Reloader,
    control: Control,
    body: &ControlBody,
    until: Option<u64>,
    a: &Answer,
) {
    let Some(ledger) = reloader.published().ledger() else {
        return;
    };
    let ok = a.result == "ok";
    ledger.record(Body::Control(ControlRecord {
        control: control.as_str().to_owned(),
        agent: body.agent.clone(),
        rule: body.rule.clone(),
        until: until.map(utc),
        result: a.result.to_owned(),
        config: ok
            .then(|| reloader.live_hash())
            .map(|h| short_hash(&h).to_owned()),
        message: (!ok).then(|| a.message.clone()),
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(agent: Option<&str>, rule: Option<&str>, seconds: Option<u64>) -> ControlBody {
        ControlBody {
            agent: agent.map(str::to_owned),
            rule: rule.map(str::to_owned),
            seconds,
        }
    }

    #[test]
    fn controls_edit_one_entry_each() {
        let f = edit(
            OverrideFile::default(),
            Control::Allow,
            &body(Some("GPTBot"), None, Some(3600)),
            1000,
        )
        .unwrap();
        assert_eq!(
            f.overrides[0].target(),
            Some(Target::Agent("GPTBot", OverrideAction::Allow))
        );
        assert_eq!(f.overrides[0].until_unix, Some(4600));
        // Blocking the same agent replaces its entry.
        let f = edit(f, Control::Block, &body(Some("GPTBot"), None, None), 2000).unwrap();
        assert_eq!(f.overrides.len(), 1);
        assert_eq!(f.overrides[0].action, Some(OverrideAction::Block));
        assert_eq!(f.overrides[0].until_unix, None);
        let f = edit(
            f,
            Control::LogOnly,
            &body(None, Some("spoofed"), None),
            2000,
        )
        .unwrap();
        assert_eq!(f.overrides.len(), 2);
        // What is written parses back.
        let path = Path::new("overrides.toml");
        assert_eq!(OverrideFile::parse(path, &f.render()).unwrap(), f);
        let f = edit(f, Control::Remove, &body(Some("GPTBot"), None, None), 3000).unwrap();
        assert_eq!(f.overrides[0].target(), Some(Target::LogOnly("spoofed")));
        let e = edit(f, Control::Remove, &body(Some("GPTBot"), None, None), 3000).unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
    }

    #[test]
    fn malformed_controls_are_refused() {
        let e = edit(
            OverrideFile::default(),
            Control::Allow,
            &body(None, Some("r"), None),
            0,
        )
        .unwrap_err();
        assert_eq!((e.status, e.result), (StatusCode::BAD_REQUEST, "invalid"));
        assert!(parse_body(br#"{"agent":"GPTBot","seconds":0}"#).is_err());
        assert!(parse_body(br#"{"agent":"GPTBot","minutes":5}"#).is_err());
        assert!(parse_body(br#"{"agent":"  "}"#).is_err());
        assert!(parse_body(b"agent=GPTBot").is_err());
        let b = parse_body(br#"{"agent":"GPTBot","seconds":60}"#).unwrap();
        assert_eq!((b.agent.as_deref(), b.seconds), (Some("GPTBot"), Some(60)));
        assert_eq!(
            Control::from_path("/controls/log-only"),
            Some(Control::LogOnly)
        );
        assert_eq!(Control::from_path("/controls/other"), None);
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
    }
}
