//! `rempart catalog diff`: what a refresh of one list would add, remove or
//! change in its generated file, agent by agent, before it is written.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::file::{AgentEntry, CatalogFile};

/// The agents of a file by lower-cased name.
fn by_name(file: &CatalogFile) -> BTreeMap<String, &AgentEntry> {
    file.agents
        .iter()
        .map(|a| (a.name.to_ascii_lowercase(), a))
        .collect()
}

fn tokens(a: &AgentEntry) -> Vec<String> {
    let mut t: Vec<String> = a.tokens.clone().unwrap_or_else(|| vec![a.name.clone()]);
    t.sort_by_key(|s| s.to_ascii_lowercase());
    t
}

fn describe(a: &AgentEntry) -> String {
    format!(
        "{} (tokens {}; operator {}; purpose {})",
        a.name,
        tokens(a).join(", "),
        a.operator.as_deref().unwrap_or("-"),
        a.purpose.map_or("-", |p| p.as_str()),
    )
}

/// The report: one line per agent added (`+`), removed (`-`) or changed
/// (`~`), then a summary line.
pub fn diff(committed: &CatalogFile, fresh: &CatalogFile) -> String {
    let (old, new) = (by_name(committed), by_name(fresh));
    let mut out = String::new();
    let (mut added, mut removed, mut changed, mut same) = (0, 0, 0, 0);
    for (key, a) in &new {
        let Some(b) = old.get(key) else {
            added += 1;
            let _ = writeln!(out, "+ {}", describe(a));
            continue;
        };
        let mut what = Vec::new();
        let (ta, tb) = (tokens(a), tokens(b));
        let plus: Vec<&String> = ta
            .iter()
            .filter(|t| !tb.iter().any(|u| u.eq_ignore_ascii_case(t)))
            .collect();
        let minus: Vec<&String> = tb
            .iter()
            .filter(|t| !ta.iter().any(|u| u.eq_ignore_ascii_case(t)))
            .collect();
        if !plus.is_empty() || !minus.is_empty() {
            let mut s = String::from("tokens");
            for t in plus {
                let _ = write!(s, " +{t}");
            }
            for t in minus {
                let _ = write!(s, " -{t}");
            }
            what.push(s);
        }
        if a.operator != b.operator {
            what.push(format!(
                "operator {} -> {}",
                b.operator.as_deref().unwrap_or("-"),
                a.operator.as_deref().unwrap_or("-")
            ));
        }
        if a.purpose != b.purpose {
            what.push(format!(
                "purpose {} -> {}",
                b.purpose.map_or("-", |p| p.as_str()),
                a.purpose.map_or("-", |p| p.as_str())
            ));
        }
        if what.is_empty() {
            same += 1;
        } else {
            changed += 1;
            let _ = writeln!(out, "~ {}: {}", a.name, what.join("; "));
        }
    }
    for (key, b) in &old {
        if !new.contains_key(key) {
            removed += 1;
            let _ = writeln!(out, "- {}", describe(b));
        }
    }
    let _ = writeln!(
        out,
        "{added} added, {removed} removed, {changed} changed, {same} unchanged"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_by_agent() {
        let old: CatalogFile = toml::from_str(
            "[[agent]]\nname='A'\noperator='o'\npurpose='seo'\n[[agent]]\nname='B'\noperator='o'\npurpose='seo'\n[[agent]]\nname='C'\noperator='o'\npurpose='seo'\n",
        )
        .unwrap();
        let new: CatalogFile = toml::from_str(
            "[[agent]]\nname='a'\noperator='o'\npurpose='seo'\n[[agent]]\nname='B'\ntokens=['B','B2']\noperator='p'\npurpose='ai-training'\n[[agent]]\nname='D'\noperator='o'\npurpose='tool'\n",
        )
        .unwrap();
        let report = diff(&old, &new);
        assert!(
            report.contains("+ D (tokens D; operator o; purpose tool)"),
            "{report}"
        );
        assert!(report.contains("- C "), "{report}");
        assert!(
            report.contains("~ B: tokens +B2; operator o -> p; purpose seo -> ai-training"),
            "{report}"
        );
        assert!(
            report.ends_with("1 added, 1 removed, 1 changed, 1 unchanged\n"),
            "{report}"
        );
    }
}
