//! The ordered policy: the first enforcing rule whose conditions all hold
//! gives the action; with none, the request passes.
//!
//! A rule in `log-only` mode is a shadow: when it matches, its would-be action
//! is recorded and counted, and evaluation goes on as if it were absent. So
//! adding a log-only rule never changes what a client gets, which is what makes
//! it safe to try a new rule on live traffic.
//!
//! The operator's overrides (the console's quick controls, see
//! [`crate::config::overrides`]) are compiled in by [`Policy::with_overrides`]:
//! an agent's `allow` or `block` as a rule before every configured one, a
//! rule's log-only as its mode. Either may carry an end, after which it no
//! longer applies; the clock is read only when such a rule matches.

use std::time::{Duration, SystemTime};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Deserialize;

use crate::behaviour::{Assessment, Signal, SignalSet};
use crate::catalog::{AgentId, Catalogue};
use crate::config::overrides::{OverrideAction, OverrideSpec, Target};
use crate::identify::Identity;
pub use crate::model::Mode;
use crate::model::{Action, IdentityKind, Purpose, Verification};

/// A rule as written in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    #[serde(default)]
    pub identity: Vec<IdentityKind>,
    #[serde(default)]
    pub agent: Vec<String>,
    #[serde(default)]
    pub operator: Vec<String>,
    #[serde(default)]
    pub purpose: Vec<Purpose>,
    #[serde(default)]
    pub verification: Vec<Verification>,
    #[serde(default)]
    pub host: Vec<String>,
    #[serde(default)]
    pub path_prefix: Vec<String>,
    #[serde(default)]
    pub path: Vec<String>,
    /// Behaviour signals, any of which makes the rule match.
    #[serde(default)]
    pub signal: Vec<Signal>,
    /// The behaviour score from which the rule matches.
    #[serde(default)]
    pub min_score: Option<u16>,
    pub action: Action,
    #[serde(default)]
    pub mode: Mode,
}

/// Index of a rule in the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleId(pub u16);

/// A rule that cannot be compiled; `field` is the key inside the rule.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct RuleError {
    pub rule: usize,
    pub field: String,
    pub message: String,
}

/// A small set of enum values as a bitmask; empty means "any".
#[derive(Debug, Clone, Copy, Default)]
struct Mask(u32);

impl Mask {
    fn of(bits: impl Iterator<Item = u32>) -> Self {
        Mask(bits.fold(0, |m, b| m | (1 << b)))
    }
    fn allows(self, bit: u32) -> bool {
        self.0 == 0 || self.0 & (1 << bit) != 0
    }
    fn allows_opt(self, bit: Option<u32>) -> bool {
        self.0 == 0 || bit.is_some_and(|b| self.0 & (1 << b) != 0)
    }
}

#[derive(Debug, Clone)]
enum HostPattern {
    Exact(String),
    /// `*.example.com`: any subdomain (not the apex).
    Suffix(String),
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    kinds: Mask,
    purposes: Mask,
    verifications: Mask,
    /// Sorted agent indices; `None` = any agent (or none).
    agents: Option<Vec<u32>>,
    hosts: Vec<HostPattern>,
    /// Exact paths: globs without metacharacters (`/robots.txt`).
    exact: Vec<String>,
    /// `path_prefix` entries, and globs that are a literal followed by one `*`.
    prefixes: Vec<String>,
    /// Everything else, compiled once.
    globs: Option<GlobSet>,
    /// Any of these signals; empty = no condition.
    signals: SignalSet,
    /// 0 = no condition.
    min_score: u16,
    action: Action,
    mode: Mode,
    /// An override's rule stops matching at this time (none: never).
    until: Option<SystemTime>,
    /// An override put this rule in log-only: until the inner time, or
    /// until the override is removed.
    forced_log_only: Option<Option<SystemTime>>,
    /// Added by an agent override.
    from_override: bool,
}

/// The name an agent override's rule is counted and recorded under.
pub fn override_rule_name(action: OverrideAction, agent: &str) -> String {
    format!("override-{}-{agent}", action.as_str())
}

/// Whether something that ends at `until` is still in force. The clock is
/// read only for a rule that matched and has an end: requests that meet no
/// ending override never read it.
fn in_force(until: Option<SystemTime>) -> bool {
    until.is_none_or(|t| SystemTime::now() < t)
}

/// Where a request goes: what path and host rules match on.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    /// Host without port (compared case-insensitively).
    pub host: Option<&'a str>,
    /// The canonical path.
    pub path: &'a str,
}

/// The outcome of the policy for one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decision {
    /// What the client gets.
    pub action: Action,
    /// The enforcing rule that gave it; `None` for the default (allow).
    pub rule: Option<RuleId>,
    /// The first log-only rule that matched, with the action it would have taken.
    pub shadow: Option<(RuleId, Action)>,
    /// The first `challenge` rule that matched and was passed over (the
    /// client holds a valid pass, or the request is not a page navigation).
    pub waived: Option<RuleId>,
}

/// The compiled, ordered rules.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: Vec<Rule>,
}

fn kind_bit(k: IdentityKind) -> u32 {
    k as u32
}
fn purpose_bit(p: Purpose) -> u32 {
    p as u32
}
fn verification_bit(v: Verification) -> u32 {
    v as u32
}

/// Which rule an error is about.
#[derive(Clone, Copy)]
struct At(usize);

impl At {
    fn err(self, field: &str, message: String) -> RuleError {
        RuleError {
            rule: self.0,
            field: field.to_owned(),
            message,
        }
    }
}

impl Rule {
    fn compile(at: At, spec: &RuleSpec, catalogue: &Catalogue) -> Result<Self, RuleError> {
        // A rule with several errors reports the first of: agents, hosts, paths.
        let agents = agents(at, spec, catalogue)?;
        let hosts = hosts(at, spec)?;
        let Paths {
            exact,
            prefixes,
            globs,
        } = paths(at, spec)?;
        Ok(Rule {
            name: spec.name.clone(),
            kinds: Mask::of(spec.identity.iter().map(|&k| kind_bit(k))),
            purposes: Mask::of(spec.purpose.iter().map(|&p| purpose_bit(p))),
            verifications: Mask::of(spec.verification.iter().map(|&v| verification_bit(v))),
            agents,
            hosts,
            exact,
            prefixes,
            globs,
            signals: spec.signal.iter().copied().collect(),
            min_score: spec.min_score.unwrap_or(0),
            action: spec.action,
            mode: spec.mode,
            until: None,
            forced_log_only: None,
            from_override: false,
        })
    }

    /// An agent override's rule: this agent, any identity, path and
    /// behaviour. An `allow` excludes a client caught claiming the agent's
    /// name from elsewhere (`spoofed`).
    fn for_agent(
        name: String,
        agent: u32,
        action: OverrideAction,
        until: Option<SystemTime>,
    ) -> Self {
        let (verifications, action) = match action {
            OverrideAction::Allow => (
                Mask::of(
                    [Verification::Verified, Verification::Unverifiable]
                        .into_iter()
                        .map(verification_bit),
                ),
                Action::Allow,
            ),
            OverrideAction::Block => (Mask::default(), Action::Block),
        };
        Rule {
            name,
            kinds: Mask::default(),
            purposes: Mask::default(),
            verifications,
            agents: Some(vec![agent]),
            hosts: Vec::new(),
            exact: Vec::new(),
            prefixes: Vec::new(),
            globs: None,
            signals: SignalSet::EMPTY,
            min_score: 0,
            action,
            mode: Mode::Enforce,
            until,
            forced_log_only: None,
            from_override: true,
        }
    }
}

/// The agents a rule names, directly or by operator, sorted; `None` when it
/// names none (any agent, or none).
fn agents(at: At, spec: &RuleSpec, catalogue: &Catalogue) -> Result<Option<Vec<u32>>, RuleError> {
    let mut agents: Option<Vec<u32>> = None;
    for (j, name) in spec.agent.iter().enumerate() {
        let id = catalogue.by_name(name).ok_or_else(|| {
            at.err(
                &format!("agent[{j}]"),
                format!("no agent {name:?} in the catalogue"),
            )
        })?;
        agents.get_or_insert_with(Vec::new).push(id.0);
    }
    for (j, op) in spec.operator.iter().enumerate() {
        let ids: Vec<u32> = catalogue
            .agents()
            .iter()
            .enumerate()
            .filter(|(_, a)| a.operator.eq_ignore_ascii_case(op))
            .map(|(k, _)| k as u32)
            .collect();
        if ids.is_empty() {
            return Err(at.err(
                &format!("operator[{j}]"),
                format!("no agent of operator {op:?} in the catalogue"),
            ));
        }
        agents.get_or_insert_with(Vec::new).extend(ids);
    }
    if let Some(a) = agents.as_mut() {
        a.sort_unstable();
        a.dedup();
    }
    Ok(agents)
}

/// A rule's hosts, lower-cased; `*.example.org` matches the subdomains.
fn hosts(at: At, spec: &RuleSpec) -> Result<Vec<HostPattern>, RuleError> {
    let mut hosts = Vec::with_capacity(spec.host.len());
    for (j, h) in spec.host.iter().enumerate() {
        let h = h.trim().to_ascii_lowercase();
        if h.is_empty() || h.contains(['/', ' ']) {
            return Err(at.err(&format!("host[{j}]"), format!("{h:?} is not a host name")));
        }
        hosts.push(match h.strip_prefix("*.") {
            Some(rest) => HostPattern::Suffix(format!(".{rest}")),
            None => HostPattern::Exact(h),
        });
    }
    Ok(hosts)
}

/// A rule's paths, as [`Rule`] keeps them.
struct Paths {
    exact: Vec<String>,
    prefixes: Vec<String>,
    globs: Option<GlobSet>,
}

/// A rule's paths: exact ones, prefixes (`path_prefix` and globs that are a
/// literal and one trailing `*`), and the real globs, compiled once.
fn paths(at: At, spec: &RuleSpec) -> Result<Paths, RuleError> {
    for (j, p) in spec.path_prefix.iter().enumerate() {
        if !p.starts_with('/') {
            return Err(at.err(
                &format!("path_prefix[{j}]"),
                format!("{p:?} must start with '/'"),
            ));
        }
    }
    let mut exact = Vec::new();
    let mut prefixes = spec.path_prefix.clone();
    let mut glob_builder: Option<GlobSetBuilder> = None;
    for (j, p) in spec.path.iter().enumerate() {
        if !p.starts_with('/') {
            return Err(at.err(&format!("path[{j}]"), format!("{p:?} must start with '/'")));
        }
        // Most path patterns are literals or literal prefixes: compare
        // those as strings and leave only real globs to globset.
        let is_meta = |c: char| matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\');
        match p.strip_suffix('*') {
            _ if !p.contains(is_meta) => exact.push(p.clone()),
            Some(lit) if !lit.contains(is_meta) => prefixes.push(lit.to_owned()),
            _ => {
                let glob = GlobBuilder::new(p)
                    .literal_separator(false)
                    .build()
                    .map_err(|e| at.err(&format!("path[{j}]"), format!("bad glob: {e}")))?;
                glob_builder
                    .get_or_insert_with(GlobSetBuilder::new)
                    .add(glob);
            }
        }
    }
    let globs = glob_builder
        .map(|b| b.build())
        .transpose()
        .map_err(|e| at.err("path", format!("bad glob: {e}")))?;
    Ok(Paths {
        exact,
        prefixes,
        globs,
    })
}

impl Policy {
    /// Compiles rule specs against a catalogue (agent and operator names must exist).
    pub fn compile(specs: &[RuleSpec], catalogue: &Catalogue) -> Result<Self, RuleError> {
        let mut rules = Vec::with_capacity(specs.len());
        let mut seen = std::collections::HashSet::new();
        for (i, spec) in specs.iter().enumerate() {
            let at = At(i);
            if spec.name.trim().is_empty() {
                return Err(at.err("name", "a rule needs a name".into()));
            }
            if !seen.insert(spec.name.as_str()) {
                return Err(at.err("name", format!("duplicate rule name {:?}", spec.name)));
            }
            rules.push(Rule::compile(at, spec, catalogue)?);
        }
        if rules.len() > u16::MAX as usize {
            return Err(At(rules.len()).err("", "too many rules".into()));
        }
        Ok(Self { rules })
    }

    /// Runs the rules in order.
    pub fn decide(&self, place: &Place<'_>, identity: &Identity, conduct: &Assessment) -> Decision {
        self.decide_waiving(place, identity, conduct, false)
    }

    /// Runs the rules in order; with `waive_challenge`, rules whose action is
    /// `challenge` are passed over (and the first one that matched is noted),
    /// so that a client with a valid pass still meets every later rule.
    pub fn decide_waiving(
        &self,
        place: &Place<'_>,
        identity: &Identity,
        conduct: &Assessment,
        waive_challenge: bool,
    ) -> Decision {
        let mut shadow = None;
        let mut waived = None;
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.matches(place, identity, conduct) {
                continue;
            }
            if rule.until.is_some() && !in_force(rule.until) {
                continue;
            }
            let id = RuleId(i as u16);
            if waive_challenge && rule.action == Action::Challenge {
                waived = waived.or(Some(id));
                continue;
            }
            match rule.mode() {
                Mode::LogOnly => {
                    if shadow.is_none() {
                        shadow = Some((id, rule.action));
                    }
                }
                Mode::Enforce => {
                    return Decision {
                        action: rule.action,
                        rule: Some(id),
                        shadow,
                        waived,
                    }
                }
            }
        }
        Decision {
            action: Action::Allow,
            rule: None,
            shadow,
            waived,
        }
    }

    /// The rule's name, or `default` for the implicit final allow.
    pub fn rule_name(&self, rule: Option<RuleId>) -> &str {
        rule.and_then(|r| self.rules.get(r.0 as usize))
            .map_or("default", |r| r.name.as_str())
    }

    /// The log-only rules (by configuration or by override), by name, with
    /// the action each would take.
    pub fn shadow_rules(&self) -> impl Iterator<Item = (&str, Action)> {
        self.rules
            .iter()
            .filter(|r| r.mode == Mode::LogOnly || r.forced_log_only.is_some())
            .map(|r| (r.name.as_str(), r.action))
    }

    /// Applies the operator's overrides (see [`crate::config::overrides`]):
    /// each agent override becomes a rule placed before every configured
    /// one, and each log-only override puts its rule in log-only. Those
    /// that ended by `now` are left out; the others carry their end, after
    /// which they no longer apply. `RuleError::rule` is the override's index.
    ///
    /// An `allow` applies to the agent as identified but not to a client
    /// caught claiming its name from elsewhere (`spoofed`): letting GPTBot
    /// in never lets in whoever writes "GPTBot" in a user agent.
    pub fn with_overrides(
        mut self,
        overrides: &[OverrideSpec],
        catalogue: &Catalogue,
        now: SystemTime,
    ) -> Result<Self, RuleError> {
        let mut first = Vec::new();
        for (i, o) in overrides.iter().enumerate() {
            let err = |field: &str, message: String| At(i).err(field, message);
            let until = o
                .until_unix
                .map(|u| SystemTime::UNIX_EPOCH + Duration::from_secs(u));
            let ended = until.is_some_and(|u| u <= now);
            match o.target() {
                Some(Target::Agent(name, action)) => {
                    let id = catalogue.by_name(name).ok_or_else(|| {
                        err("agent", format!("no agent {name:?} in the catalogue"))
                    })?;
                    if ended {
                        continue;
                    }
                    let name = override_rule_name(action, &catalogue.agents()[id.0 as usize].name);
                    if self.rules.iter().any(|r| r.name == name) {
                        return Err(err("agent", format!("a rule is already named {name:?}")));
                    }
                    first.push(Rule::for_agent(name, id.0, action, until));
                }
                Some(Target::LogOnly(name)) => {
                    let rule = self
                        .rules
                        .iter_mut()
                        .find(|r| r.name == name)
                        .ok_or_else(|| err("rule", format!("no rule named {name:?}")))?;
                    if rule.mode == Mode::LogOnly {
                        return Err(err("rule", format!("rule {name:?} is log-only already")));
                    }
                    if !ended {
                        rule.forced_log_only = Some(until);
                    }
                }
                None => return Err(err("", "name an agent or a rule".into())),
            }
        }
        if !first.is_empty() {
            first.append(&mut self.rules);
            self.rules = first;
        }
        if self.rules.len() > u16::MAX as usize {
            return Err(RuleError {
                rule: overrides.len(),
                field: String::new(),
                message: "too many rules".into(),
            });
        }
        Ok(self)
    }

    /// The rules of the config, without those the overrides added.
    pub fn configured_rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules
            .iter()
            .filter(|r| !r.from_override)
            .map(|r| r.name.as_str())
    }

    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.name.as_str())
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl Rule {
    /// The mode in force now: an override's log-only while it lasts, else
    /// the rule's own.
    fn mode(&self) -> Mode {
        match self.forced_log_only {
            Some(until) if in_force(until) => Mode::LogOnly,
            _ => self.mode,
        }
    }

    fn matches(&self, place: &Place<'_>, id: &Identity, conduct: &Assessment) -> bool {
        if conduct.score < self.min_score
            || (!self.signals.is_empty() && !self.signals.intersects(conduct.signals))
        {
            return false;
        }
        if !self.kinds.allows(kind_bit(id.kind))
            || !self.purposes.allows_opt(id.purpose.map(purpose_bit))
            || !self.verifications.allows(verification_bit(id.verification))
        {
            return false;
        }
        if let Some(agents) = &self.agents {
            match id.agent {
                Some(AgentId(a)) if agents.binary_search(&a).is_ok() => {}
                _ => return false,
            }
        }
        if !self.hosts.is_empty() {
            let Some(host) = place.host else { return false };
            let ok = self.hosts.iter().any(|p| match p {
                HostPattern::Exact(h) => host.eq_ignore_ascii_case(h),
                HostPattern::Suffix(s) => {
                    host.len() > s.len()
                        && host.is_char_boundary(host.len() - s.len())
                        && host[host.len() - s.len()..].eq_ignore_ascii_case(s)
                }
            });
            if !ok {
                return false;
            }
        }
        if !self.exact.is_empty() || !self.prefixes.is_empty() || self.globs.is_some() {
            let path = place.path;
            let hit = self.exact.iter().any(|p| p == path)
                || self.prefixes.iter().any(|p| path.starts_with(p.as_str()))
                || self.globs.as_ref().is_some_and(|g| g.is_match(path));
            if !hit {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::file::CatalogFile;
    use crate::identify::ranges::{RangeTable, SourceSet};
    use crate::identify::VerifyMethod;
    use std::path::PathBuf;

    fn catalogue() -> Catalogue {
        let file: CatalogFile = toml::from_str(
            "[[agent]]\nname='GPTBot'\noperator='OpenAI'\npurpose='ai-training'\n\
             [[agent]]\nname='Googlebot'\noperator='Google'\npurpose='search-engine'\n",
        )
        .unwrap();
        Catalogue::compile(
            vec![(PathBuf::from("a.toml"), file)],
            &RangeTable::default(),
        )
        .unwrap()
    }

    fn facts<'a>(host: Option<&'a str>, path: &'a str) -> Place<'a> {
        Place { host, path }
    }

    fn declared(agent: u32, purpose: Purpose, v: Verification) -> Identity {
        Identity {
            kind: IdentityKind::Declared,
            agent: Some(AgentId(agent)),
            purpose: Some(purpose),
            verification: v,
            method: VerifyMethod::IpRanges,
            operator_sources: SourceSet::EMPTY,
            network: Default::default(),
        }
    }

    fn browser() -> Identity {
        Identity {
            kind: IdentityKind::Browser,
            agent: None,
            purpose: None,
            verification: Verification::None,
            method: VerifyMethod::None,
            operator_sources: SourceSet::EMPTY,
            network: Default::default(),
        }
    }

    fn rules(toml_text: &str) -> Policy {
        #[derive(Deserialize)]
        struct R {
            rules: Vec<RuleSpec>,
        }
        let r: R = toml::from_str(toml_text).unwrap();
        Policy::compile(&r.rules, &catalogue()).unwrap()
    }

    const DEFAULT: &str = r#"
        [[rules]]
        name = "reachable"
        path = ["/robots.txt", "/.well-known/*"]
        action = "allow"
        [[rules]]
        name = "verified-search"
        purpose = ["search-engine"]
        verification = ["verified"]
        action = "allow"
        [[rules]]
        name = "ai-offer"
        purpose = ["ai-training", "ai-search", "ai-assistant"]
        action = "offer"
        [[rules]]
        name = "spoofed"
        verification = ["spoofed"]
        action = "block"
    "#;

    fn overridden(text: &str, now: SystemTime) -> Result<Policy, RuleError> {
        let file = crate::config::overrides::OverrideFile::parse(
            std::path::Path::new("overrides.toml"),
            text,
        )
        .unwrap();
        rules(DEFAULT).with_overrides(&file.overrides, &catalogue(), now)
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// Agent overrides come before every rule; an `allow` never reaches a
    /// client caught claiming the agent's name.
    #[test]
    fn agent_overrides_are_the_first_rules() {
        let gpt = declared(0, Purpose::AiTraining, Verification::Verified);
        let fake = declared(0, Purpose::AiTraining, Verification::Spoofed);
        let place = facts(None, "/films/x");
        let none = Assessment::default();
        assert_eq!(
            rules(DEFAULT).decide(&place, &gpt, &none).action,
            Action::Offer
        );
        let p = overridden("[[override]]\nagent = 'GPTBot'\naction = 'allow'\n", at(0)).unwrap();
        let d = p.decide(&place, &gpt, &none);
        assert_eq!(d.action, Action::Allow);
        assert_eq!(p.rule_name(d.rule), "override-allow-GPTBot");
        // The impostor meets the rules as without the override.
        assert_eq!(p.decide(&place, &fake, &none).action, Action::Offer);
        let google = declared(1, Purpose::SearchEngine, Verification::Verified);
        assert_eq!(p.decide(&place, &google, &none).action, Action::Allow);
        let p = overridden(
            "[[override]]\nagent = 'Googlebot'\naction = 'block'\n",
            at(0),
        )
        .unwrap();
        let d = p.decide(&place, &google, &none);
        assert_eq!(
            (d.action, p.rule_name(d.rule)),
            (Action::Block, "override-block-Googlebot")
        );
        assert_eq!(p.decide(&place, &gpt, &none).action, Action::Offer);
    }

    /// A log-only override makes its rule a shadow: the request goes on to
    /// the next rules, and the would-be action is noted.
    #[test]
    fn a_log_only_override_shadows_its_rule() {
        let fake = declared(1, Purpose::SearchEngine, Verification::Spoofed);
        let place = facts(None, "/films/x");
        let p = overridden("[[override]]\nrule = 'spoofed'\nmode = 'log-only'\n", at(0)).unwrap();
        let d = p.decide(&place, &fake, &Assessment::default());
        assert_eq!(d.action, Action::Allow);
        assert_eq!(d.shadow, Some((RuleId(3), Action::Block)));
        assert!(p.shadow_rules().any(|r| r == ("spoofed", Action::Block)));
    }

    /// An override applies until its end, then no longer, without a new
    /// compile; one that ended before the compile is left out.
    #[test]
    fn overrides_end_on_time() {
        let gpt = declared(0, Purpose::AiTraining, Verification::Verified);
        let place = facts(None, "/films/x");
        let none = Assessment::default();
        let now = SystemTime::now();
        let soon = now + Duration::from_millis(300);
        let until = soon
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1;
        let text = format!(
            "[[override]]\nagent = 'GPTBot'\naction = 'allow'\nuntil_unix = {until}\n\
             [[override]]\nrule = 'ai-offer'\nmode = 'log-only'\nuntil_unix = {until}\n"
        );
        let p = overridden(&text, now).unwrap();
        assert_eq!(p.decide(&place, &gpt, &none).action, Action::Allow);
        assert_eq!(p.len(), 5);
        let end = SystemTime::UNIX_EPOCH + Duration::from_secs(until);
        while SystemTime::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
        let d = p.decide(&place, &gpt, &none);
        assert_eq!((d.action, d.shadow), (Action::Offer, None));
        // Compiled after its end: not there at all.
        let p = overridden(&text, end).unwrap();
        assert_eq!(p.len(), 4);
        assert!(p.shadow_rules().next().is_none());
    }

    #[test]
    fn overrides_name_what_is_not_there() {
        let e = overridden(
            "[[override]]\nagent = 'NoSuchBot'\naction = 'allow'\n",
            at(0),
        )
        .unwrap_err();
        assert_eq!((e.rule, e.field.as_str()), (0, "agent"));
        let e = overridden(
            "[[override]]\nagent = 'GPTBot'\naction = 'allow'\n[[override]]\nrule = 'nope'\nmode = 'log-only'\n",
            at(0),
        )
        .unwrap_err();
        assert_eq!((e.rule, e.field.as_str()), (1, "rule"));
        // An unknown agent is an error even once its override ended.
        let e = overridden(
            "[[override]]\nagent = 'NoSuchBot'\naction = 'allow'\nuntil_unix = 1\n",
            at(10),
        )
        .unwrap_err();
        assert_eq!(e.field, "agent");
    }

    #[test]
    fn first_matching_rule_wins() {
        let p = rules(DEFAULT);
        let gpt = declared(0, Purpose::AiTraining, Verification::Spoofed);
        let d = p.decide(&facts(None, "/films/1"), &gpt, &Assessment::default());
        assert_eq!((d.action, p.rule_name(d.rule)), (Action::Offer, "ai-offer"));
        let d = p.decide(&facts(None, "/robots.txt"), &gpt, &Assessment::default());
        assert_eq!(
            (d.action, p.rule_name(d.rule)),
            (Action::Allow, "reachable")
        );
        let d = p.decide(
            &facts(None, "/.well-known/tdmrep.json"),
            &gpt,
            &Assessment::default(),
        );
        assert_eq!(d.action, Action::Allow);
        let fake_google = declared(1, Purpose::SearchEngine, Verification::Spoofed);
        let d = p.decide(&facts(None, "/"), &fake_google, &Assessment::default());
        assert_eq!((d.action, p.rule_name(d.rule)), (Action::Block, "spoofed"));
        let google = declared(1, Purpose::SearchEngine, Verification::Verified);
        assert_eq!(
            p.decide(&facts(None, "/"), &google, &Assessment::default())
                .action,
            Action::Allow
        );
        let d = p.decide(&facts(None, "/"), &browser(), &Assessment::default());
        assert_eq!((d.action, d.rule), (Action::Allow, None));
        assert_eq!(p.rule_name(None), "default");
    }

    #[test]
    fn log_only_records_and_passes() {
        let p = rules(
            r#"
            [[rules]]
            name = "try-block-browsers"
            identity = ["browser"]
            action = "block"
            mode = "log-only"
            [[rules]]
            name = "gpt"
            agent = ["gptbot"]
            action = "offer"
            "#,
        );
        let d = p.decide(&facts(None, "/"), &browser(), &Assessment::default());
        assert_eq!(d.action, Action::Allow);
        assert_eq!(d.shadow, Some((RuleId(0), Action::Block)));
        let d = p.decide(
            &facts(None, "/"),
            &declared(0, Purpose::AiTraining, Verification::Spoofed),
            &Assessment::default(),
        );
        assert_eq!((d.action, d.shadow), (Action::Offer, None));
    }

    #[test]
    fn behaviour_conditions() {
        let p = rules(
            r#"
            [[rules]]
            name = "trap"
            signal = ["honeypot", "robots-ignored"]
            action = "block"
            [[rules]]
            name = "fast"
            min_score = 60
            action = "ratelimit"
            "#,
        );
        let with = |signals: &[Signal]| {
            let set: SignalSet = signals.iter().copied().collect();
            Assessment {
                signals: set,
                score: crate::behaviour::Weights::default().score(set),
                ..Assessment::default()
            }
        };
        let decide = |a: Assessment| {
            let d = p.decide(&facts(None, "/"), &browser(), &a);
            (d.action, p.rule_name(d.rule).to_owned())
        };
        assert_eq!(decide(with(&[])), (Action::Allow, "default".into()));
        assert_eq!(
            decide(with(&[Signal::Honeypot])),
            (Action::Block, "trap".into())
        );
        assert_eq!(
            decide(with(&[Signal::RobotsIgnored])),
            (Action::Block, "trap".into())
        );
        assert_eq!(
            decide(with(&[Signal::PageRate])),
            (Action::Allow, "default".into()),
            "40 is under 60"
        );
        assert_eq!(
            decide(with(&[Signal::PageRate, Signal::NoAssets])),
            (Action::RateLimit, "fast".into())
        );
    }

    #[test]
    fn hosts_prefixes_and_operators() {
        let p = rules(
            r#"
            [[rules]]
            name = "films"
            host = ["*.example.com", "example.org"]
            path_prefix = ["/films/"]
            operator = ["openai"]
            action = "block"
            "#,
        );
        let gpt = declared(0, Purpose::AiTraining, Verification::Verified);
        assert_eq!(
            p.decide(
                &facts(Some("WWW.Example.com"), "/films/x"),
                &gpt,
                &Assessment::default()
            )
            .action,
            Action::Block
        );
        assert_eq!(
            p.decide(
                &facts(Some("example.org"), "/films/x"),
                &gpt,
                &Assessment::default()
            )
            .action,
            Action::Block
        );
        assert_eq!(
            p.decide(
                &facts(Some("example.com"), "/films/x"),
                &gpt,
                &Assessment::default()
            )
            .action,
            Action::Allow
        );
        assert_eq!(
            p.decide(
                &facts(Some("www.example.com"), "/news"),
                &gpt,
                &Assessment::default()
            )
            .action,
            Action::Allow
        );
        assert_eq!(
            p.decide(&facts(None, "/films/x"), &gpt, &Assessment::default())
                .action,
            Action::Allow
        );
        let google = declared(1, Purpose::SearchEngine, Verification::Verified);
        assert_eq!(
            p.decide(
                &facts(Some("example.org"), "/films/x"),
                &google,
                &Assessment::default()
            )
            .action,
            Action::Allow
        );
    }

    #[test]
    fn literal_prefix_and_real_globs() {
        let p = rules(
            r#"
            [[rules]]
            name = "paths"
            path = ["/robots.txt", "/films/*", "/series/*/stills/*.jpg"]
            action = "block"
            "#,
        );
        let b = browser();
        let hit = |path: &str| {
            p.decide(&facts(None, path), &b, &Assessment::default())
                .action
                == Action::Block
        };
        assert!(hit("/robots.txt"));
        assert!(!hit("/robots.txt.bak"));
        assert!(hit("/films/x/y"));
        assert!(!hit("/film"));
        assert!(hit("/series/a/stills/1.jpg"));
        assert!(!hit("/series/a/stills/1.png"));
    }

    #[test]
    fn bad_rules_name_the_field() {
        #[derive(Deserialize)]
        struct R {
            rules: Vec<RuleSpec>,
        }
        let r: R =
            toml::from_str("[[rules]]\nname='x'\nagent=['NoSuchBot']\naction='block'\n").unwrap();
        let e = Policy::compile(&r.rules, &catalogue()).unwrap_err();
        assert_eq!((e.rule, e.field.as_str()), (0, "agent[0]"));
        let r: R = toml::from_str(
            "[[rules]]\nname='x'\naction='block'\n[[rules]]\nname='x'\naction='allow'\n",
        )
        .unwrap();
        let e = Policy::compile(&r.rules, &catalogue()).unwrap_err();
        assert_eq!((e.rule, e.field.as_str()), (1, "name"));
        let r: R =
            toml::from_str("[[rules]]\nname='x'\npath=['films/*']\naction='block'\n").unwrap();
        assert!(Policy::compile(&r.rules, &catalogue()).is_err());
    }
}
