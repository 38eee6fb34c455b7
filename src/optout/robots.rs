//! Merging rempart's opt-out into the origin's own robots.txt.
//!
//! The parse follows RFC 9309's line grammar (`key: value # comment`, groups
//! opened by one or more `user-agent` lines), but only as far as merging
//! needs: every line is kept as written, in order, except the `user-agent`
//! lines naming an agent that rempart's AI group governs (and the rules of a
//! group left with no agent), so that the origin cannot re-open to an AI
//! crawler what the reservation closes (RFC 9309 merges groups naming the
//! same agent, and an `Allow` would win a tie). Lines that do not parse are
//! kept verbatim. Parsers on crates.io (texting_robots, robotstxt) answer
//! "may this agent fetch this path"; none rewrites a file line for line,
//! which is the job here.

use std::collections::HashSet;

/// One line of robots.txt, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    UserAgent(String),
    /// A rule or other member of the current group (allow, disallow, crawl-delay, …).
    Member,
    /// A line outside groups that stays where it is (sitemap).
    Global,
    /// Blank lines, comments, and lines that do not parse.
    Other,
}

fn classify(line: &str) -> Kind {
    let content = line.split('#').next().unwrap_or("").trim();
    if content.is_empty() {
        return Kind::Other;
    }
    let Some((key, value)) = content.split_once(':') else {
        return Kind::Other;
    };
    match key.trim().to_ascii_lowercase().as_str() {
        "user-agent" => Kind::UserAgent(value.trim().to_owned()),
        "sitemap" => Kind::Global,
        "allow" | "disallow" | "crawl-delay" | "content-usage" | "content-signal"
        | "request-rate" | "visit-time" | "clean-param" | "host" => Kind::Member,
        _ => Kind::Other,
    }
}

/// Merges `origin` (the origin's robots.txt) with rempart's generated parts.
///
/// - `header`: comment and `License:` lines placed first;
/// - `ai_tokens`: the agents of rempart's AI group (lower-cased comparison);
/// - `ai_group`: rempart's group, appended after the origin's content;
/// - `star_lines`: lines for every agent (`Content-Usage`, `Content-Signal`),
///   added to the origin's `User-agent: *` group, or in a new one.
pub fn merge(
    origin: &str,
    header: &str,
    ai_tokens: &[String],
    ai_group: &str,
    star_lines: &str,
    trap_line: &str,
) -> String {
    let governed: HashSet<String> = ai_tokens.iter().map(|t| t.to_ascii_lowercase()).collect();
    let mut out = String::with_capacity(origin.len() + header.len() + ai_group.len() + 256);
    out.push_str(header);
    out.push_str(
        "# --- the origin's robots.txt; the AI agents are governed by rempart's group below ---\n",
    );

    let lines: Vec<&str> = origin.lines().collect();
    // Walk groups: a run of user-agent lines, then its members.
    let mut i = 0;
    let mut star_done = star_lines.is_empty();
    while i < lines.len() {
        match classify(lines[i]) {
            Kind::UserAgent(_) => {
                let start = i;
                let mut agents = Vec::new();
                while i < lines.len() {
                    match classify(lines[i]) {
                        Kind::UserAgent(a) => agents.push((i, a)),
                        Kind::Other if lines[i].trim().starts_with('#') => {}
                        _ => break,
                    }
                    i += 1;
                }
                let mut end = i;
                while end < lines.len() && !matches!(classify(lines[end]), Kind::UserAgent(_)) {
                    end += 1;
                }
                let kept: Vec<usize> = agents
                    .iter()
                    .filter(|(_, a)| !governed.contains(&a.to_ascii_lowercase()))
                    .map(|(n, _)| *n)
                    .collect();
                let is_star = agents.iter().any(|(_, a)| a == "*");
                if kept.is_empty() {
                    // Every agent of this group is governed by rempart: drop its
                    // rules, keep its comments, globals and unparsed lines.
                    for line in &lines[start..end] {
                        if matches!(classify(line), Kind::Other | Kind::Global) {
                            out.push_str(line);
                            out.push('\n');
                        }
                    }
                } else {
                    let last_agent = agents.last().map_or(start, |(k, _)| *k);
                    for (n, line) in lines.iter().enumerate().take(end).skip(start) {
                        let drop = agents.iter().any(|(k, _)| *k == n) && !kept.contains(&n);
                        if !drop {
                            // Signals for everyone go at the end of the * group's rules.
                            out.push_str(line);
                            out.push('\n');
                        }
                        // The honeypot is disallowed for every group.
                        if n == last_agent {
                            out.push_str(trap_line);
                        }
                    }
                    if is_star && !star_done {
                        // Insert before trailing blank lines of the group.
                        let trimmed = out.trim_end_matches('\n').len();
                        out.truncate(trimmed);
                        out.push('\n');
                        out.push_str(star_lines);
                        star_done = true;
                    }
                }
                i = end;
            }
            _ => {
                out.push_str(lines[i]);
                out.push('\n');
                i += 1;
            }
        }
    }
    if !out.ends_with("\n\n") {
        out.push('\n');
    }
    out.push_str("# --- added by rempart: AI agents (text and data mining reserved) ---\n");
    out.push_str(ai_group);
    if !star_done {
        out.push_str("\nUser-agent: *\n");
        out.push_str(trap_line);
        out.push_str(star_lines);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "\
# Catalogue robots
Sitemap: https://films.example/sitemap.xml

User-agent: *
Disallow: /admin/
Allow: /admin/public/

User-agent: GPTBot
User-agent: Bingbot
Allow: /

User-agent: CCBot
Disallow: /private/
this line is not robots.txt
Sitemap: https://films.example/sitemap-2.xml
";

    fn merged() -> String {
        merge(
            ORIGIN,
            "License: https://films.example/license.xml\n\n",
            &["GPTBot".into(), "ccbot".into()],
            "User-agent: GPTBot\nUser-agent: CCBot\nDisallow: /\n",
            "Content-Usage: train-ai=n\n",
            "Disallow: /trap/\n",
        )
    }

    #[test]
    fn the_trap_is_disallowed_for_every_group() {
        let m = merged();
        let text = bytes::Bytes::from(m.clone());
        let p = crate::optout::published::Published::new(None);
        let v = p.robots(&text);
        for token in [None, Some("Bingbot"), Some("GPTBot"), Some("CCBot")] {
            assert!(v.disallows(token, "/trap/x"), "{token:?}\n{m}");
        }
        assert!(!v.disallows(Some("Bingbot"), "/films/x"));
    }

    #[test]
    fn keeps_the_origins_groups_and_sitemaps() {
        let m = merged();
        assert!(m.starts_with("License: https://films.example/license.xml\n"));
        assert!(m.contains("Sitemap: https://films.example/sitemap.xml\n"));
        assert!(m.contains("Sitemap: https://films.example/sitemap-2.xml\n"));
        assert!(m.contains("User-agent: *\nDisallow: /trap/\nDisallow: /admin/\nAllow: /admin/public/\nContent-Usage: train-ai=n\n"), "{m}");
        assert!(
            m.contains("User-agent: Bingbot\nDisallow: /trap/\nAllow: /\n"),
            "{m}"
        );
        assert!(
            m.contains("this line is not robots.txt\n"),
            "unparsed lines are kept: {m}"
        );
    }

    #[test]
    fn governed_agents_leave_the_origins_groups() {
        let m = merged();
        let origin_part = &m[..m.find("# --- added by rempart").unwrap()];
        assert!(!origin_part.contains("User-agent: GPTBot"), "{m}");
        assert!(!origin_part.contains("User-agent: CCBot"), "{m}");
        assert!(
            !origin_part.contains("Disallow: /private/"),
            "the CCBot-only group's rules go: {m}"
        );
        assert!(
            m.ends_with("User-agent: GPTBot\nUser-agent: CCBot\nDisallow: /\n"),
            "{m}"
        );
    }

    #[test]
    fn without_a_star_group_one_is_added() {
        let m = merge(
            "User-agent: Googlebot\nDisallow: /tmp/\n",
            "",
            &[],
            "User-agent: GPTBot\nDisallow: /\n",
            "Content-Signal: search=yes\n",
            "",
        );
        assert!(m.contains("User-agent: Googlebot\nDisallow: /tmp/\n"));
        assert!(
            m.ends_with("\nUser-agent: *\nContent-Signal: search=yes\n"),
            "{m}"
        );
    }

    #[test]
    fn hostile_input_is_kept_and_never_panics() {
        for text in [
            "",
            "\u{0}\u{1}:::",
            "User-agent:",
            "user-agent: *\n\n\n",
            &"Disallow: /x\n".repeat(10_000),
            "ÿþ:é\nUser-agent: GPTBot # me\n",
        ] {
            let m = merge(
                text,
                "",
                &["gptbot".into()],
                "User-agent: GPTBot\nDisallow: /\n",
                "",
                "Disallow: /trap/\n",
            );
            assert!(m.ends_with("User-agent: GPTBot\nDisallow: /\n"));
        }
    }
}
