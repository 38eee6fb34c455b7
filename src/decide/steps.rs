//! The steps of a decision, in order: identity (catalogue, ranges, network,
//! bound signatures, reverse DNS), behaviour, licence credential, pay per crawl.
//! Each is small and takes what it needs; [`super::decide`] runs them.

use crate::behaviour::assess::{assess, RequestSide};
use crate::behaviour::signals::header_signals;
use crate::behaviour::tracker::SharedIncrement;
use crate::behaviour::{Assessment, SignalSet};
use crate::identify::webbotauth::{Binding, Signature};
use crate::identify::{identify as identify_ua, with_signature, Identity, VerifyMethod};
use crate::licensing::licence::Credential;
use crate::licensing::payment::{bid, settle as settle_bid, Settlement};
use crate::model::{Action, IdentityKind, Verification};
use crate::request::Request;
use crate::respond::own::Document;
use crate::respond::pages::Page;
use crate::snapshot::Snapshot;

use super::{Charge, Payer, State};

/// Who is asking: catalogue and ranges, then a signature bound to the claimed
/// agent, then forward-confirmed reverse DNS for operators that publish host
/// names.
pub fn identify(snap: &Snapshot, state: &State<'_>, req: &Request<'_>) -> (Identity, Signature) {
    let mut identity = identify_ua(&snap.catalogue, &snap.ranges, req.user_agent, req.client_ip);
    identity.network = snap.network.lookup(req.client_ip);
    let signature = state.directories.check(req, identity.agent, &snap.bindings);
    if let Signature::Verified {
        by: Binding::Agent, ..
    } = signature
    {
        identity = with_signature(identity);
    }
    if let (Some(rdns), Some(agent), Verification::Unverifiable, IdentityKind::Declared) = (
        state.rdns,
        identity.agent,
        identity.verification,
        identity.kind,
    ) {
        let suffixes = &snap.catalogue.agent(agent).rdns;
        if !suffixes.is_empty() {
            identity.verification = rdns.verify(req.client_ip, suffixes);
            if identity.verification != Verification::Unverifiable {
                identity.method = VerifyMethod::ReverseDns;
            }
        }
    }
    (identity, signature)
}

/// Counts the request in its client's behaviour and returns its signals.
pub fn behaviour(
    snap: &Snapshot,
    state: &State<'_>,
    req: &Request<'_>,
    identity: &Identity,
    document: Option<Document>,
    robots: Option<&Page>,
) -> Assessment {
    if !snap.behaviour.enabled {
        return Assessment::default();
    }
    let robots_served = robots.map(|p| state.published.robots(&p.body));
    let side = RequestSide {
        // A replayed log line has no header set to judge.
        header_signals: if req.replayed {
            SignalSet::EMPTY
        } else {
            header_signals(
                req.headers,
                req.version,
                req.user_agent,
                req.secure,
                identity.kind == IdentityKind::Browser,
            )
        },
        robots_served: robots_served.as_deref(),
        builtin: document.is_some(),
        now_ms: req.now_ms,
    };
    let mut send = state.shared.map(|store| move |inc| store.send(inc));
    let sink = send.as_mut().map(|f| f as &mut dyn FnMut(SharedIncrement));
    assess(
        snap,
        state.tracker,
        state.published,
        req,
        identity,
        side,
        sink,
    )
}

/// The licence credential: a token in `Authorization`, or a verified
/// signature by a key bound to a licensee.
pub fn credential(
    snap: &Snapshot,
    req: &Request<'_>,
    identity: &Identity,
    signature: &Signature,
) -> Credential {
    let now = std::time::SystemTime::now;
    match (req.authorization, signature) {
        (Some(auth), _) => {
            snap.licensees
                .check(Some(auth), identity.agent, req.host, req.path(), now())
        }
        (
            None,
            Signature::Verified {
                keyid,
                by: Binding::Licensee(i),
            },
        ) => snap
            .licensees
            .check_key(*i, keyid, identity.agent, req.host, req.path(), now()),
        (None, _) => Credential::None,
    }
}

/// What pay per crawl gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Charged(Charge),
    /// Refused with this status and `crawler-error` code; the price is
    /// offered again when the status is 402.
    Refused {
        status: u16,
        error: &'static str,
    },
}

impl Settled {
    pub fn charge(self) -> Option<Charge> {
        match self {
            Settled::Charged(c) => Some(c),
            Settled::Refused { .. } => None,
        }
    }
}

/// Who can be billed: a licensee, or a signature-verified agent whose
/// operator the config names as billable. Nobody else.
fn payer(
    snap: &Snapshot,
    identity: &Identity,
    signature: &Signature,
    credential: Credential,
) -> Option<Payer> {
    match credential {
        Credential::Licensed(i) | Credential::OutOfScope(i) => return Some(Payer::Licensee(i)),
        Credential::None | Credential::Invalid => {}
    }
    let agent = identity.agent?;
    let bound = matches!(
        signature,
        Signature::Verified {
            by: Binding::Agent,
            ..
        }
    );
    let operator = &snap.catalogue.agent(agent).operator;
    (bound
        && snap
            .billable_operators
            .iter()
            .any(|o| o.eq_ignore_ascii_case(operator)))
    .then_some(Payer::Operator(agent))
}

/// Pay per crawl, where it applies: on a priced path, for a crawler that
/// would get the offer or holds a licence. A bid never lifts a block or a
/// rate limit, and is charged only to a known payer.
#[allow(clippy::too_many_arguments)]
pub fn settle(
    snap: &Snapshot,
    req: &Request<'_>,
    identity: &Identity,
    signature: &Signature,
    credential: Credential,
    decision: &super::Decision,
    document: Option<Document>,
    location: Option<usize>,
) -> Option<Settled> {
    let licensed = matches!(credential, Credential::Licensed(_));
    if document.is_some() || !(licensed || decision.action == Action::Offer) {
        return None;
    }
    let price = location
        .and_then(|i| snap.reservation.as_ref()?.locations.get(i))
        .and_then(|l| l.price_micros)?;
    let n = &req.negotiation;
    let offered = bid(n.exact_price, n.max_price);
    let payer = payer(snap, identity, signature, credential);
    match settle_bid(price, offered, payer.is_some())? {
        Settlement::Charged(micros) => Some(Settled::Charged(Charge {
            micros,
            payer: payer?,
        })),
        Settlement::Refused { status, error } => Some(Settled::Refused { status, error }),
    }
}
