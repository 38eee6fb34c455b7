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

/// The path a `Content-Usage` line applies to (`/` when it names none), as
/// draft-ietf-aipref-attach writes it: `Content-Usage: [path] preferences`.
/// `None` for any other line.
pub fn content_usage_path(line: &str) -> Option<&str> {
    let content = line.split('#').next().unwrap_or("").trim();
    let (key, value) = content.split_once(':')?;
    if !key.trim().eq_ignore_ascii_case("content-usage") {
        return None;
    }
    let value = value.trim();
    Some(match value.split_once(char::is_whitespace) {
        Some((path, _)) if path.starts_with('/') => path,
        _ if value.starts_with('/') => value,
        _ => "/",
    })
}

/// True for a `Content-Signal` line.
fn is_content_signal(line: &str) -> bool {
    let content = line.split('#').next().unwrap_or("").trim();
    content
        .split_once(':')
        .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("content-signal"))
}

/// Whether an origin line in its `*` group gives way to rempart's: a
/// `Content-Usage` line for a path rempart also speaks for, or a
/// `Content-Signal` line when rempart adds one. The config is the source of
/// truth, as for headers, and a crawler never reads two answers for one
/// path; the origin's lines for other paths stay.
fn overridden(line: &str, ours: &HashSet<&str>, our_signal: bool) -> bool {
    match content_usage_path(line) {
        Some(path) => ours.contains(path),
        None => our_signal && is_content_signal(line),
    }
}

/// A group starting at `start`: its user-agent lines (index, agent), with
/// the comments between them, and where it ends (the next user-agent line
/// after its members, or the end of the file).
fn group_at(lines: &[&str], start: usize) -> (Vec<(usize, String)>, usize) {
    let mut i = start;
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
    (agents, end)
}

/// A group whose every agent rempart governs: its rules go (they would
/// merge with rempart's group), its comments, globals and unparsed lines stay.
fn push_without_rules(out: &mut String, group: &[&str]) {
    for line in group {
        if matches!(classify(line), Kind::Other | Kind::Global) {
            out.push_str(line);
            out.push('\n');
        }
    }
}

/// Appends `text` after the group's last line, before its trailing blank
/// lines, so that it stays a member of that group.
fn push_before_blank_lines(out: &mut String, text: &str) {
    let trimmed = out.trim_end_matches('\n').len();
    out.truncate(trimmed);
    out.push('\n');
    out.push_str(text);
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
    let ours: HashSet<&str> = star_lines.lines().filter_map(content_usage_path).collect();
    let our_signal = star_lines.lines().any(is_content_signal);
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
                let (agents, end) = group_at(&lines, start);
                let kept: Vec<usize> = agents
                    .iter()
                    .filter(|(_, a)| !governed.contains(&a.to_ascii_lowercase()))
                    .map(|(n, _)| *n)
                    .collect();
                let is_star = agents.iter().any(|(_, a)| a == "*");
                if kept.is_empty() {
                    push_without_rules(&mut out, &lines[start..end]);
                } else {
                    let last_agent = agents.last().map_or(start, |(k, _)| *k);
                    for (n, line) in lines.iter().enumerate().take(end).skip(start) {
                        let drop = (agents.iter().any(|(k, _)| *k == n) && !kept.contains(&n))
                            || (is_star && overridden(line, &ours, our_signal));
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
                        push_before_blank_lines(&mut out, star_lines);
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

    /// The origin's own `Content-Usage` lines are read: the one for a path
    /// rempart also speaks for gives way (one answer per path), the others
    /// stay, and each line left parses as a path and a dictionary.
    #[test]
    fn the_origins_content_usage_lines_are_read() {
        let origin = "User-agent: *\nContent-Usage: train-ai=y\nContent-Usage: /blog/ train-ai=y, search=y\nContent-Signal: ai-train=yes\nDisallow: /admin/\n\nUser-agent: Googlebot\nContent-Usage: search=y\n";
        let m = merge(
            origin,
            "",
            &[],
            "User-agent: GPTBot\nDisallow: /\n",
            "Content-Usage: /trailers/ search=y\nContent-Usage: train-ai=n, search=y\nContent-Signal: search=yes, ai-train=no, use=reference\n",
            "",
        );
        let star = &m[m.find("User-agent: *").unwrap()..m.find("User-agent: Googlebot").unwrap()];
        let usage: Vec<(&str, sfv::Dictionary)> = star
            .lines()
            .filter_map(|l| Some((l, content_usage_path(l)?)))
            .map(|(l, path)| {
                let value = l.split_once(':').unwrap().1.trim();
                let prefs = value.strip_prefix(path).unwrap_or(value).trim();
                (
                    path,
                    sfv::Parser::new(prefs).parse_dictionary().expect("sfv"),
                )
            })
            .collect();
        let paths: Vec<&str> = usage.iter().map(|(p, _)| *p).collect();
        assert_eq!(paths, ["/blog/", "/trailers/", "/"], "{m}");
        let root = &usage[2].1;
        assert_eq!(
            root.get("train-ai").and_then(|e| match e {
                sfv::ListEntry::Item(i) => i.bare_item.as_token().map(|t| t.as_str().to_owned()),
                sfv::ListEntry::InnerList(_) => None,
            }),
            Some("n".to_owned()),
            "the config's answer for / wins: {m}"
        );
        assert!(!star.contains("ai-train=yes"), "one Content-Signal: {m}");
        assert!(star.contains("Disallow: /admin/"));
        // Another group's lines are that group's, kept as written.
        assert!(
            m.contains("User-agent: Googlebot\nContent-Usage: search=y\n"),
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
