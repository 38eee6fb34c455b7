//! What rempart says itself: the licensing offer, the block page, the error
//! page, robots.txt and the clause for the site's terms.
//!
//! Pages are rendered from template files once per configuration snapshot
//! (they depend only on the config), so answering a refused crawler costs a
//! header build and a reference-counted copy of bytes, not a template run.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use minijinja::Environment;

use super::clause::ClausePages;
use crate::catalog::Catalogue;
use crate::challenge::page::{Interstitial, Slot};
use crate::config::RightsHolder;
use crate::model::Lang;
use crate::optout::reservation::Reservation;

/// A response body with its media type.
#[derive(Debug, Clone)]
pub struct Page {
    pub content_type: &'static str,
    pub body: Bytes,
}

/// Every page rempart serves, rendered for one snapshot.
#[derive(Debug, Clone)]
pub struct Pages {
    offer_html: [Page; 2],
    block_html: [Page; 2],
    /// The challenge's interstitial, to be filled per request.
    challenge_html: [Interstitial; 2],
    pub offer_json: Page,
    pub block_json: Page,
    pub bad_gateway: Page,
    pub robots_txt: Page,
    /// rempart's parts of robots.txt, for merging with the origin's.
    pub robots: RobotsParts,
    /// Generated from the reservation model, when there is one.
    pub tdmrep_json: Option<Page>,
    pub tdm_policy: Option<Page>,
    pub license_xml: Option<Page>,
    /// The clause for the site's terms, in every language and format.
    pub clause: Option<ClausePages>,
}

impl Pages {
    pub fn offer(&self, lang: Lang) -> &Page {
        &self.offer_html[lang as usize]
    }
    pub fn block(&self, lang: Lang) -> &Page {
        &self.block_html[lang as usize]
    }
    pub fn challenge(&self, lang: Lang) -> &Interstitial {
        &self.challenge_html[lang as usize]
    }
}

/// A template that fails to load or render.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct TemplateError {
    pub path: PathBuf,
    pub message: String,
}

const HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json";

/// The template environment: HTML, JSON and Markdown auto-escaping by the
/// template's extension.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_keep_trailing_newline(true);
    // HTML escaping of the five special characters only: minijinja's default
    // also escapes '/', which mangles the URLs shown on the offer. Markdown
    // templates (the clause) get every value backslash-escaped, so that no
    // value becomes markup; the converter HTML-escapes it later.
    env.set_formatter(|out, state, value| match state.auto_escape() {
        minijinja::AutoEscape::Html if value.as_str().is_some() => {
            let s = value.as_str().unwrap_or_default();
            out.write_str(&super::markdown::html_escape(s))
                .map_err(minijinja::Error::from)
        }
        minijinja::AutoEscape::Custom(MARKDOWN) => {
            let text = if value.is_safe() {
                value.to_string()
            } else if value.is_none() || value.is_undefined() {
                String::new()
            } else {
                super::markdown::escape(&value.to_string())
            };
            out.write_str(&text).map_err(minijinja::Error::from)
        }
        _ => minijinja::escape_formatter(out, state, value),
    });
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".json") {
            minijinja::AutoEscape::Json
        } else if name.ends_with(".html") {
            minijinja::AutoEscape::Html
        } else if name.ends_with(".md") {
            minijinja::AutoEscape::Custom(MARKDOWN)
        } else {
            minijinja::AutoEscape::None
        }
    });
    env
}

/// The auto-escape of Markdown templates.
const MARKDOWN: &str = "markdown";

const NAMES: [&str; 11] = [
    "offer.en.html",
    "offer.fr.html",
    "block.en.html",
    "block.fr.html",
    "challenge.en.html",
    "challenge.fr.html",
    "challenge.head.html",
    "challenge.js",
    "offer.json",
    "block.json",
    "bad-gateway.html",
];

/// The clause templates, read only when there is a reservation to state.
const CLAUSE_NAMES: [&str; 2] = ["clause.en.md", "clause.fr.md"];

/// Reads the named templates of `dir` into `env`.
fn load(env: &mut Environment<'static>, dir: &Path, names: &[&str]) -> Result<(), TemplateError> {
    for name in names {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).map_err(|e| TemplateError {
            path: path.clone(),
            message: format!("cannot read template: {e}"),
        })?;
        env.add_template_owned(name.to_string(), text)
            .map_err(|e| TemplateError {
                path: path.clone(),
                message: e.to_string(),
            })?;
    }
    Ok(())
}

/// Renders one template; a JSON template must give valid JSON.
fn render_one(
    env: &Environment<'_>,
    dir: &Path,
    ctx: &minijinja::Value,
    name: &str,
    content_type: &'static str,
) -> Result<Page, TemplateError> {
    let path = dir.join(name);
    let located = |e: minijinja::Error| TemplateError {
        path: path.clone(),
        message: e.to_string(),
    };
    let body = env
        .get_template(name)
        .map_err(located)?
        .render(ctx)
        .map_err(located)?;
    if content_type == JSON {
        serde_json::from_str::<serde_json::Value>(&body).map_err(|e| TemplateError {
            path: path.clone(),
            message: format!("does not render to valid JSON: {e}"),
        })?;
    }
    Ok(Page {
        content_type,
        body: Bytes::from(body),
    })
}

/// The clause in both languages: its Markdown templates filled with the
/// reservation's facts (blocks trimmed, so that a `{% for %}` line leaves no
/// blank line inside a list), then every format.
pub(crate) fn render_clause(
    dir: &Path,
    holder: &RightsHolder,
    reservation: &Reservation,
) -> Result<ClausePages, TemplateError> {
    let mut env = environment();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    load(&mut env, dir, &CLAUSE_NAMES)?;
    let ctx = minijinja::context! {
        rights_holder => holder,
        clause => crate::optout::clause::facts(reservation, holder),
    };
    let source = |name: &str| -> Result<String, TemplateError> {
        let page = render_one(&env, dir, &ctx, name, "text/markdown")?;
        Ok(String::from_utf8_lossy(&page.body).into_owned())
    };
    Ok(ClausePages::new([
        source(CLAUSE_NAMES[0])?,
        source(CLAUSE_NAMES[1])?,
    ]))
}

/// Renders every page from the templates in `dir`.
pub fn render_pages(
    dir: &Path,
    holder: &RightsHolder,
    offer_status: u16,
    catalogue: &Catalogue,
    reservation: Option<&Reservation>,
    trap: Option<&str>,
) -> Result<Pages, TemplateError> {
    let mut env = environment();
    load(&mut env, dir, &NAMES)?;
    let ctx = minijinja::context! {
        rights_holder => holder,
        offer_status => offer_status,
        offer_path => holder.offer_path,
        clause_path => reservation.map(|r| r.clause_path.as_str()),
        challenge => minijinja::context! {
            nonce => Slot::Nonce.marker(),
            return_to => Slot::ReturnTo.marker(),
            difficulty => Slot::Difficulty.marker(),
            delay => Slot::Delay.marker(),
            verify_path => crate::challenge::VERIFY_PATH,
        },
    };
    let render =
        |name: &str, content_type: &'static str| render_one(&env, dir, &ctx, name, content_type);
    let mut robots = robots_parts(catalogue, holder, reservation);
    if let Some(t) = trap {
        robots.trap_line = format!("Disallow: {t}\n");
    }
    Ok(Pages {
        offer_html: [
            render("offer.en.html", HTML)?,
            render("offer.fr.html", HTML)?,
        ],
        block_html: [
            render("block.en.html", HTML)?,
            render("block.fr.html", HTML)?,
        ],
        challenge_html: [
            interstitial(render("challenge.en.html", HTML)?, dir, "challenge.en.html")?,
            interstitial(render("challenge.fr.html", HTML)?, dir, "challenge.fr.html")?,
        ],
        offer_json: render("offer.json", JSON)?,
        block_json: render("block.json", JSON)?,
        bad_gateway: render("bad-gateway.html", HTML)?,
        robots_txt: Page {
            content_type: "text/plain; charset=utf-8",
            body: Bytes::from(robots.generated()),
        },
        robots,
        tdmrep_json: reservation.map(|r| Page {
            content_type: JSON,
            body: Bytes::from(crate::optout::documents::tdmrep_json(r)),
        }),
        tdm_policy: reservation.map(|r| Page {
            content_type: "application/ld+json",
            body: Bytes::from(crate::optout::documents::tdm_policy(r, holder)),
        }),
        license_xml: reservation.map(|r| Page {
            content_type: "application/rsl+xml",
            body: Bytes::from(crate::optout::documents::license_xml(r, holder)),
        }),
        clause: reservation
            .map(|r| render_clause(dir, holder, r))
            .transpose()?,
    })
}

/// A rendered challenge page split at its slots; it must carry the nonce,
/// or no browser could pass.
fn interstitial(page: Page, dir: &Path, name: &str) -> Result<Interstitial, TemplateError> {
    let text = String::from_utf8_lossy(&page.body);
    let split = Interstitial::split(&text);
    if !split.uses(Slot::Nonce) {
        return Err(TemplateError {
            path: dir.join(name),
            message: "the challenge page must use {{ challenge.nonce }}".into(),
        });
    }
    Ok(split)
}

/// The pieces of robots.txt rempart contributes, kept apart so that they can
/// stand alone (the generated file) or be merged into the origin's file.
#[derive(Debug, Clone, Default)]
pub struct RobotsParts {
    /// Comment and `License:` lines, first in the file.
    pub header: String,
    /// Every AI agent token of the group (robots-only tokens included).
    pub ai_tokens: Vec<String>,
    /// The AI group: its `User-agent:` lines and `Disallow: /`.
    pub ai_group: String,
    /// `Content-Usage` and `Content-Signal` lines, for every agent.
    pub star_lines: String,
    /// `Disallow:` of the honeypot, for every group (empty without one).
    pub trap_line: String,
}

impl RobotsParts {
    /// The file served when the origin has none (or is not merged).
    pub fn generated(&self) -> String {
        format!(
            "{}{}\nUser-agent: *\nAllow: /\n{}{}",
            self.header, self.ai_group, self.trap_line, self.star_lines
        )
    }

    /// The origin's file with rempart's parts merged in.
    pub fn merged(&self, origin: &str) -> String {
        crate::optout::robots::merge(
            origin,
            &self.header,
            &self.ai_tokens,
            &self.ai_group,
            &self.star_lines,
            &self.trap_line,
        )
    }
}

/// robots.txt parts: one group naming every AI agent token (robots-only
/// tokens included, since robots.txt is the only place they work), disallowed
/// everywhere, with the reservation's `Content-Usage` and `Content-Signal`
/// lines for everyone and the RSL `License:` line.
pub fn robots_parts(
    catalogue: &Catalogue,
    holder: &RightsHolder,
    reservation: Option<&Reservation>,
) -> RobotsParts {
    let mut header = format!(
        "# robots.txt for {}, served by rempart.\n\
         # Text and data mining is reserved (art. 4 of directive (EU) 2019/790;\n\
         # art. L.122-5-3 of the French intellectual property code).\n\
         # Licensing: {} ({})\n",
        holder.name.replace('\n', " "),
        holder.terms_url.replace('\n', " "),
        holder.contact.replace('\n', " ")
    );
    if let Some(r) = reservation {
        header.push_str(&format!(
            "# The clause of the terms of use that reserves it: {}\n",
            r.clause_url
        ));
    }
    header.push('\n');
    let (license, star_lines) = reservation
        .map(crate::optout::documents::robots_lines)
        .unwrap_or_default();
    if !license.is_empty() {
        header.push_str(&license);
        header.push('\n');
    }
    let mut seen = std::collections::HashSet::new();
    let mut ai_tokens = Vec::new();
    let mut ai_group = String::with_capacity(8192);
    for agent in catalogue.agents().iter().filter(|a| a.purpose.is_ai()) {
        for token in &agent.tokens {
            // robots.txt product tokens carry no version or spaces.
            if token.contains(['/', ' ']) || !seen.insert(token.to_ascii_lowercase()) {
                continue;
            }
            ai_group.push_str("User-agent: ");
            ai_group.push_str(token);
            ai_group.push('\n');
            ai_tokens.push(token.clone());
        }
    }
    ai_group.push_str("Disallow: /\n");
    RobotsParts {
        header,
        ai_tokens,
        ai_group,
        star_lines,
        trap_line: String::new(),
    }
}
