//! The decision: one function from a canonical request to one [`Outcome`]
//! that says everything about it — who is asking and how sure we are, how
//! the client behaves, which rule matched, what the licence, payment and
//! quota steps gave, what to answer (or that it goes upstream), what evidence
//! to keep and what to count.
//!
//! The live proxy, `rempart classify`, the benchmarks and the evidence
//! ledger all go through [`decide`]; nothing else decides. It touches the
//! network never and state only through the handles in [`State`] (behaviour
//! counts, refusals, the robots.txt versions served, licence quotas), so a
//! replayed log meets the same rules the proxy applies.

pub mod answer;
pub mod challenge;
pub mod policy;
pub mod steps;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::behaviour::shared::SharedStore;
use crate::behaviour::{Assessment, Tracker};
use crate::challenge::{Event, Pass};
use crate::identify::rdns::ReverseDns;
use crate::identify::referrer::Referrer;
use crate::identify::webbotauth::{KeyDirectories, Signature};
use crate::identify::Identity;
use crate::licensing::licence::Credential;
use crate::model::{Action, Lang};
use crate::optout::origin_robots::OriginRobots;
use crate::optout::published::Published;
use crate::request::{Malformed, Request};
use crate::respond::own::Document;
use crate::respond::pages::Page;
use crate::snapshot::Snapshot;

pub use answer::{Answer, Extra};
pub use policy::{Decision, RuleId};

/// The state a decision reads and updates, outside the snapshot (it
/// survives reloads).
pub struct State<'a> {
    pub tracker: &'a Tracker,
    pub published: &'a Published,
    pub directories: &'a Arc<KeyDirectories>,
    /// Reverse-DNS verification, when enabled.
    pub rdns: Option<&'a dyn ReverseDns>,
    /// The origin's robots.txt, when merging is on.
    pub origin_robots: Option<&'a OriginRobots>,
    /// The shared (Redis) behaviour store, when configured.
    pub shared: Option<&'a SharedStore>,
}

/// State owned by a tool that decides without the proxy (`rempart
/// classify`, benchmarks, tests): fresh behaviour state, no origin robots.txt,
/// no shared store, reverse DNS only when given.
pub struct LocalState {
    pub tracker: Tracker,
    pub published: Published,
    pub directories: Arc<KeyDirectories>,
    pub rdns: Option<Box<dyn ReverseDns>>,
}

impl LocalState {
    pub fn new(snap: &Snapshot) -> Self {
        Self {
            tracker: Tracker::for_settings(&snap.behaviour),
            published: Published::new(None),
            directories: Arc::new(KeyDirectories::default()),
            rdns: None,
        }
    }

    pub fn state(&self) -> State<'_> {
        State {
            tracker: &self.tracker,
            published: &self.published,
            directories: &self.directories,
            rdns: self.rdns.as_deref(),
            origin_robots: None,
            shared: None,
        }
    }
}

/// Who pays for a crawl charged under pay per crawl.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payer {
    /// A licensee, by the index of its entry.
    Licensee(usize),
    /// A signature-verified agent whose operator the config names as billable.
    Operator(crate::catalog::AgentId),
}

/// A crawl charged under pay per crawl.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge {
    pub micros: u64,
    pub payer: Payer,
}

/// Everything about one request, decided.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub identity: Identity,
    pub signature: Signature,
    pub conduct: Assessment,
    /// The policy's rule and any log-only shadow.
    pub decision: Decision,
    pub credential: Credential,
    /// The licensee whose credential let the request through.
    pub licensee: Option<usize>,
    pub charge: Option<Charge>,
    /// The `crawler-error` code of a refused payment.
    pub payment_error: Option<&'static str>,
    /// The licence's daily quota is used up (answered 429).
    pub over_quota: bool,
    /// What rempart does: the policy's action after licences and payment.
    pub action: Action,
    /// Which of rempart's own documents this is.
    pub document: Option<Document>,
    /// The reservation location in force for the path.
    pub location: Option<usize>,
    /// Whether the request goes into the evidence ledger.
    pub evidence: bool,
    /// A verified agent was refused (counts towards `refused-persist`).
    pub refused_verified: bool,
    /// Set when the request had no single reading.
    pub malformed: Option<Malformed>,
    pub lang: Lang,
    /// What the challenge's pass cookie gave.
    pub pass: Pass,
    /// The challenge step this request was (issued, passed, failed,
    /// admitted by a pass).
    pub challenge: Option<Event>,
    /// The AI product's operator that sent this visitor (see [`referral`]).
    pub referred_by: Option<Referrer>,
    pub answer: Answer,
}

/// The name a decision is counted and recorded under: `bad-request` for a
/// request that had no single reading, else the deciding rule's.
pub fn rule_name<'s>(snap: &'s Snapshot, decision: &Decision, malformed: bool) -> &'s str {
    if malformed {
        "bad-request"
    } else {
        snap.policy.rule_name(decision.rule)
    }
}

impl Outcome {
    /// The name of the rule that decided, as counted and recorded.
    pub fn rule_name<'s>(&self, snap: &'s Snapshot) -> &'s str {
        rule_name(snap, &self.decision, self.malformed.is_some())
    }

    /// The status rempart answers with, or `None` when the origin answers.
    pub fn status(&self) -> Option<u16> {
        match &self.answer {
            Answer::Upstream => None,
            Answer::Respond { status, .. } => Some(*status),
        }
    }
}

/// Decides a request that was read, or refuses one that could not be.
pub fn decide_read(
    snap: &Snapshot,
    state: &State<'_>,
    read: &Result<Request<'_>, Malformed>,
) -> Outcome {
    match read {
        Ok(req) => decide(snap, state, req),
        Err(m) => malformed(snap, *m),
    }
}

/// The decision for one canonical request.
pub fn decide(snap: &Snapshot, state: &State<'_>, req: &Request<'_>) -> Outcome {
    let (identity, signature) = steps::identify(snap, state, req);
    // The challenge's pass is part of who is asking: this client, already
    // checked as a browser.
    let pass = snap.challenge.pass(req);
    if signature == Signature::Hostile {
        return refused_outright(snap, identity, signature);
    }
    let document = Document::find(
        req.method,
        req.path(),
        &snap.offer_path,
        snap.reservation.as_ref().map(|r| r.clause_path.as_str()),
    );
    // robots.txt is chosen before deciding: the client's behaviour state
    // remembers which version it was served.
    let robots = (document == Some(Document::RobotsTxt))
        .then(|| crate::respond::own::robots_txt(&snap.pages, state.origin_robots));
    let conduct = steps::behaviour(snap, state, req, &identity, document, robots.as_ref());
    let place = policy::Place {
        host: req.host,
        path: req.path(),
    };
    let credential = steps::credential(snap, req, &identity, &signature);
    let waive = challenge::waived(snap, req, &identity, credential, pass, document);
    let decision = snap
        .policy
        .decide_waiving(&place, &identity, &conduct, waive);
    let location = snap
        .reservation
        .as_ref()
        .and_then(|r| r.lookup(req.host, req.path()));
    let settled = steps::settle(
        snap, req, &identity, &signature, credential, &decision, document, location,
    );
    let licensee = match credential {
        Credential::Licensed(i) => Some(i),
        _ => None,
    };
    let over_quota = document.is_none()
        && licensee.is_some_and(|i| !snap.licensees.take_quota(i, std::time::SystemTime::now()));
    let action = answer::applied_action(document, credential, &settled, decision.action);
    let refused_verified = matches!(action, Action::Block | Action::Offer)
        && identity.kind == crate::model::IdentityKind::Declared
        && identity.verification == crate::model::Verification::Verified;
    if refused_verified && snap.behaviour.enabled {
        state.tracker.note_refusal(conduct.client);
    }
    let refused_payment = matches!(settled, Some(steps::Settled::Refused { .. }));
    let evidence = document.is_none()
        && credential != Credential::Invalid
        && (action != Action::Allow || refused_payment || decision.shadow.is_some());
    let negotiated = answer::Negotiated::of(snap, req, document, action, credential, &settled);
    let challenged = (credential != Credential::Invalid && !over_quota)
        .then(|| challenge::answer(snap, req, document, action, negotiated.lang))
        .flatten();
    let challenge = match &challenged {
        Some((_, event)) => Some(*event),
        None if pass == Pass::Valid && decision.waived.is_some() => Some(Event::Admitted),
        None => None,
    };
    let answer = match challenged {
        Some((a, _)) => a,
        None => answer::build(
            snap,
            &negotiated,
            document,
            robots,
            credential,
            &settled,
            over_quota,
            action,
            location,
        ),
    };
    let referred_by = referral(snap, req, &identity, document, action, &answer);
    Outcome {
        identity,
        signature,
        conduct,
        decision,
        credential,
        licensee: licensee.filter(|_| !over_quota),
        charge: settled.and_then(|s| s.charge()),
        payment_error: match settled {
            Some(steps::Settled::Refused { error, .. }) => Some(error),
            _ => None,
        },
        over_quota,
        action: if over_quota {
            Action::RateLimit
        } else {
            action
        },
        document,
        location: location.filter(|_| snap.reservation.as_ref().is_some_and(|r| r.headers_enabled)),
        evidence,
        refused_verified,
        malformed: None,
        lang: negotiated.lang,
        pass,
        challenge,
        referred_by,
        answer,
    }
}

/// The operator whose AI product referred this request, when it counts as a
/// visit: a person's browser (not a catalogue agent, tool or unknown client)
/// asking `GET` for a page (not an asset, manifest or segment, not one of
/// rempart's own documents) that goes to the origin (allowed, not challenged).
/// Counted this way, one referral is one page a person came to read.
fn referral(
    snap: &Snapshot,
    req: &Request<'_>,
    identity: &Identity,
    document: Option<Document>,
    action: Action,
    answer: &Answer,
) -> Option<Referrer> {
    let visit = identity.kind == crate::model::IdentityKind::Browser
        && req.method == http::Method::GET
        && document.is_none()
        && action == Action::Allow
        && matches!(answer, Answer::Upstream)
        && snap.behaviour.classes.classify(req.path()) == crate::behaviour::PathClass::Page;
    if !visit {
        return None;
    }
    snap.referrers.referrers.find(req.referer, req.uri.query())
}

/// The outcome of a request with no single reading: 400, nothing forwarded.
pub fn malformed(snap: &Snapshot, m: Malformed) -> Outcome {
    let page = crate::respond::own::fixed::bad_request(m.status(), m.message());
    let mut out = refused_outright(snap, Identity::unidentified(), Signature::Absent);
    out.malformed = Some(m);
    out.answer = Answer::Respond {
        status: m.status(),
        page,
        extra: Extra::none(),
    };
    out
}

/// A request refused before any rule (hostile signature headers).
fn refused_outright(snap: &Snapshot, identity: Identity, signature: Signature) -> Outcome {
    Outcome {
        identity,
        signature,
        conduct: Assessment::default(),
        decision: Decision::default(),
        credential: Credential::None,
        licensee: None,
        charge: None,
        payment_error: None,
        over_quota: false,
        action: Action::Block,
        document: None,
        location: None,
        evidence: false,
        refused_verified: false,
        malformed: None,
        lang: snap.default_lang,
        pass: Pass::Absent,
        challenge: None,
        referred_by: None,
        answer: Answer::Respond {
            status: 400,
            page: Page::clone(&crate::respond::own::fixed::BAD_SIGNATURE),
            extra: Extra::one(
                "crawler-error",
                http::HeaderValue::from_static("InvalidSignature"),
            ),
        },
    }
}
