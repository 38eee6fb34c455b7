//! The override file: the operator's quick decisions (let one agent in,
//! keep one agent out, put one rule in log-only), written by the console's
//! controls or by hand, and read with the config on every load.
//!
//! It is a config input like any other: parsed with serde, checked (errors
//! name the file, line and key), then compiled by [`crate::snapshot`] into
//! the policy's first rules, so that the one decision function applies
//! them. An override may end (`until_unix`): the compiled rule carries that
//! time and stops matching after it, without a reload.
//!
//! ```toml
//! [[override]]
//! agent = "GPTBot"
//! action = "allow"
//! until_unix = 1767225600
//! set_unix = 1767222000
//! set_by = "console"
//!
//! [[override]]
//! rule = "block-ai-training"
//! mode = "log-only"
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, Located};
use super::located;

/// What an agent override does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OverrideAction {
    Allow,
    Block,
}

impl OverrideAction {
    pub fn as_str(self) -> &'static str {
        match self {
            OverrideAction::Allow => "allow",
            OverrideAction::Block => "block",
        }
    }
}

/// One override as written: either `agent` with `action`, or `rule` with
/// `mode = "log-only"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideSpec {
    /// A catalogue agent's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<OverrideAction>,
    /// A policy rule's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Only `log-only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<crate::model::Mode>,
    /// When it stops applying (Unix seconds); none: until removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_unix: Option<u64>,
    /// When it was set (Unix seconds), for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_unix: Option<u64>,
    /// Who set it (`console`, or whatever the hand that wrote it says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_by: Option<String>,
}

/// What an override applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    Agent(&'a str, OverrideAction),
    LogOnly(&'a str),
}

impl OverrideSpec {
    /// Its target, once [`OverrideFile::parse`] checked it.
    pub fn target(&self) -> Option<Target<'_>> {
        match (&self.agent, self.action, &self.rule) {
            (Some(a), Some(action), None) => Some(Target::Agent(a, action)),
            (None, None, Some(r)) => Some(Target::LogOnly(r)),
            _ => None,
        }
    }

    /// Whether it no longer applies at `now` (Unix seconds).
    pub fn expired(&self, now: u64) -> bool {
        self.until_unix.is_some_and(|u| u <= now)
    }

    /// `agent GPTBot: allow` / `rule block-ai: log-only`, as listed.
    pub fn describe(&self) -> String {
        match self.target() {
            Some(Target::Agent(a, action)) => format!("agent {a}: {}", action.as_str()),
            Some(Target::LogOnly(r)) => format!("rule {r}: log-only"),
            None => "(invalid)".into(),
        }
    }
}

/// The file as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideFile {
    #[serde(default, rename = "override", skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<OverrideSpec>,
}

/// The override file in force: where it is, its text (hashed with the
/// config) and its entries.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub path: PathBuf,
    pub text: String,
    pub file: OverrideFile,
}

/// What the header of a written file says.
const HEADER: &str = "# rempart overrides: written by the admin console's controls \
(or by hand), read with the config on every load.\n\
# Each [[override]] is an agent with action = \"allow\" | \"block\", or a rule with \
mode = \"log-only\"; until_unix ends it.\n\n";

impl OverrideFile {
    /// Parses and checks the text of an override file: each entry is an
    /// agent with an action or a rule with `mode = "log-only"`, and no
    /// agent or rule has two entries. Names are checked against the
    /// catalogue and the rules when the snapshot is compiled.
    pub fn parse(path: &Path, text: &str) -> Result<Self, Located> {
        let file: OverrideFile = located::parse_toml(path, text)?;
        let at = |i: usize, key: &str, msg: String| {
            located::at_key(path, text, &format!("override[{i}].{key}"), msg)
        };
        for (i, o) in file.overrides.iter().enumerate() {
            match (&o.agent, &o.rule) {
                (Some(_), Some(_)) => {
                    return Err(at(i, "rule", "name an agent or a rule, not both".into()))
                }
                (None, None) => {
                    return Err(located::at_key(
                        path,
                        text,
                        &format!("override[{i}]"),
                        "name an agent (with action) or a rule (with mode = \"log-only\")",
                    ))
                }
                (Some(a), None) => {
                    if a.trim().is_empty() {
                        return Err(at(i, "agent", "an agent's name is empty".into()));
                    }
                    if o.action.is_none() {
                        return Err(at(
                            i,
                            "agent",
                            "an agent override needs action = \"allow\" or \"block\"".into(),
                        ));
                    }
                    if o.mode.is_some() {
                        return Err(at(i, "mode", "mode is for rule overrides".into()));
                    }
                }
                (None, Some(r)) => {
                    if r.trim().is_empty() {
                        return Err(at(i, "rule", "a rule's name is empty".into()));
                    }
                    if o.action.is_some() {
                        return Err(at(i, "action", "action is for agent overrides".into()));
                    }
                    if o.mode != Some(crate::model::Mode::LogOnly) {
                        return Err(at(
                            i,
                            "rule",
                            "a rule override needs mode = \"log-only\"".into(),
                        ));
                    }
                }
            }
            let twice = file.overrides[..i].iter().position(|p| {
                (p.agent.is_some() && p.agent == o.agent) || (p.rule.is_some() && p.rule == o.rule)
            });
            if let Some(j) = twice {
                let key = if o.agent.is_some() { "agent" } else { "rule" };
                return Err(at(i, key, format!("already overridden by override[{j}]")));
            }
        }
        Ok(file)
    }

    /// The file's text as the controls write it.
    pub fn render(&self) -> String {
        let body = toml::to_string(self).unwrap_or_default();
        format!("{HEADER}{body}")
    }

    /// The entry for the same agent or rule as `o`, if any.
    pub fn position_of(&self, target: Target<'_>) -> Option<usize> {
        self.overrides
            .iter()
            .position(|p| match (p.target(), target) {
                (Some(Target::Agent(a, _)), Target::Agent(b, _)) => a == b,
                (Some(Target::LogOnly(a)), Target::LogOnly(b)) => a == b,
                _ => false,
            })
    }
}

impl Overrides {
    /// Reads the override file at `path`; a missing file is no overrides.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        let file = OverrideFile::parse(path, &text)?;
        Ok(Self {
            path: path.to_owned(),
            text,
            file,
        })
    }

    /// An error located at `key` (`override[1].agent`) in this file.
    pub fn error_at(&self, key: &str, message: impl Into<String>) -> ConfigError {
        located::at_key(&self.path, &self.text, key, message).into()
    }
}

/// Writes `text` to `path` so that a reader sees the old file or the new
/// one, never half of one, and the new one survives a crash: a temporary
/// file beside it, synced, renamed over it, then the directory synced.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map_or_else(|| "overrides".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<OverrideFile, Located> {
        OverrideFile::parse(Path::new("overrides.toml"), text)
    }

    #[test]
    fn agents_and_rules_parse() {
        let f = parse(
            "[[override]]\nagent = 'GPTBot'\naction = 'allow'\nuntil_unix = 100\n\
             [[override]]\nrule = 'block-ai'\nmode = 'log-only'\n",
        )
        .unwrap();
        assert_eq!(
            f.overrides[0].target(),
            Some(Target::Agent("GPTBot", OverrideAction::Allow))
        );
        assert_eq!(f.overrides[1].target(), Some(Target::LogOnly("block-ai")));
        assert!(f.overrides[0].expired(100) && !f.overrides[0].expired(99));
        assert!(!f.overrides[1].expired(u64::MAX));
        assert!(parse("").unwrap().overrides.is_empty());
    }

    #[test]
    fn mistakes_name_file_line_and_key() {
        let e = parse("[[override]]\nagent = 'GPTBot'\naction = 'permit'\n").unwrap_err();
        assert_eq!(e.path, Path::new("overrides.toml"));
        assert_eq!((e.line, e.key.as_str()), (3, "override[0].action"), "{e}");
        let e = parse("[[override]]\nagent = 'GPTBot'\n\n[[override]]\nagnet = 'x'\n").unwrap_err();
        assert_eq!(e.line, 5, "{e}");
        assert!(e.key.starts_with("override[1]"), "{e}");
        let e = parse("[[override]]\nagent = 'GPTBot'\nmode = 'log-only'\n").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (2, "override[0].agent"), "{e}");
        let e = parse("[[override]]\nrule = 'r'\naction = 'block'\n").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (3, "override[0].action"), "{e}");
        let e = parse(
            "[[override]]\nagent = 'GPTBot'\naction = 'allow'\n\
             [[override]]\nagent = 'GPTBot'\naction = 'block'\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (5, "override[1].agent"), "{e}");
        assert!(e.message.contains("override[0]"), "{e}");
        assert!(e
            .to_string()
            .starts_with("overrides.toml:5:9: key `override[1].agent`"));
    }

    #[test]
    fn what_is_rendered_parses_back() {
        let f = OverrideFile {
            overrides: vec![OverrideSpec {
                agent: Some("GPTBot".into()),
                action: Some(OverrideAction::Block),
                rule: None,
                mode: None,
                until_unix: Some(5),
                set_unix: Some(1),
                set_by: Some("console".into()),
            }],
        };
        assert_eq!(parse(&f.render()).unwrap(), f);
    }

    #[test]
    fn writing_replaces_the_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/overrides.toml");
        write_atomically(&path, "a").unwrap();
        write_atomically(&path, "b").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "b");
        let left: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left");
    }
}
