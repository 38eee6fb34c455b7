//! The clause for the site's terms of use that exercises the text and data
//! mining reservation in words (art. 4 (3) of directive (EU) 2019/790,
//! art. L.122-5-3 CPI). Its wording is a template the rights holder's lawyer
//! edits (`clause.fr.md`, `clause.en.md`); what it states of the works, paths,
//! usages, contact and price comes from here, taken from the one reservation
//! model, so that the words can never disagree with the machine-readable
//! signals.

use serde::Serialize;

use crate::config::RightsHolder;
use crate::optout::documents::refused;
use crate::optout::reservation::{Location, Reservation};

/// What the clause template is filled with (`clause.*` in the template).
#[derive(Debug, Clone, Serialize)]
pub struct ClauseFacts {
    pub base_url: String,
    /// Where the clause itself is served.
    pub clause_url: String,
    pub policy_url: String,
    pub license_url: String,
    /// The licensing offer page.
    pub offer_url: String,
    /// The locations where mining is reserved, most specific first.
    pub reserved: Vec<ClauseLocation>,
    /// The locations left open to mining.
    pub open: Vec<ClauseLocation>,
    /// The lowest price per crawl of any location, in euros.
    pub price_eur: Option<String>,
}

/// One location as the clause states it.
#[derive(Debug, Clone, Serialize)]
pub struct ClauseLocation {
    /// The path as written (`/films/*`).
    pub path: String,
    /// The hosts it is scoped to; every host of the site when empty.
    pub hosts: Vec<String>,
    /// Usages refused and allowed (`ai-train`, `search`...): the template
    /// names them in its own words.
    pub refused: Vec<&'static str>,
    pub allowed: Vec<&'static str>,
    pub price_eur: Option<String>,
}

/// A price as the clause shows it: no float noise (`0.01`, not `0.010000`).
fn price(p: f64) -> String {
    format!("{p}")
}

fn location(l: &Location) -> ClauseLocation {
    ClauseLocation {
        path: l.pattern.clone(),
        hosts: l.hosts().to_vec(),
        refused: refused(l).into_iter().map(|u| u.as_str()).collect(),
        allowed: l.allow.iter().map(|u| u.as_str()).collect(),
        price_eur: l.price_eur.map(price),
    }
}

/// The facts of the clause, from the model and the rights holder.
pub fn facts(r: &Reservation, holder: &RightsHolder) -> ClauseFacts {
    let (reserved, open): (Vec<&Location>, Vec<&Location>) =
        r.locations.iter().partition(|l| l.tdm_reserved);
    let lowest = r
        .locations
        .iter()
        .filter_map(|l| l.price_eur)
        .fold(None, |m: Option<f64>, p| Some(m.map_or(p, |m| m.min(p))));
    ClauseFacts {
        base_url: r.base_url.clone(),
        clause_url: r.clause_url.clone(),
        policy_url: r.policy_url.clone(),
        license_url: r.license_url.clone(),
        offer_url: format!("{}{}", r.base_url, holder.offer_path),
        reserved: reserved.into_iter().map(location).collect(),
        open: open.into_iter().map(location).collect(),
        price_eur: lowest.map(price),
    }
}
