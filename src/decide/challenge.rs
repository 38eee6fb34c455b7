//! The challenge's part of a decision: whether `challenge` rules apply to
//! this request, and the answers of the challenge (the interstitial, the
//! verification path's redirect).

use bytes::Bytes;

use crate::challenge::page::Slot;
use crate::challenge::{encode_return, is_navigation, return_to, Event, Pass, Verdict};
use crate::identify::Identity;
use crate::licensing::licence::Credential;
use crate::model::{Action, IdentityKind, Lang, Purpose, Verification};
use crate::request::Request;
use crate::respond::own::Document;
use crate::respond::pages::Page;
use crate::snapshot::Snapshot;

use super::answer::{Answer, Extra};

/// Whether `challenge` rules are passed over: the challenge is off, the
/// client holds a valid pass, the request is not a page navigation, or the
/// client is never challenged (rempart's own documents, verified search
/// engines, licensed crawlers).
pub fn waived(
    snap: &Snapshot,
    req: &Request<'_>,
    identity: &Identity,
    credential: Credential,
    pass: Pass,
    document: Option<Document>,
) -> bool {
    let verified_search = identity.kind == IdentityKind::Declared
        && identity.purpose == Some(Purpose::SearchEngine)
        && identity.verification == Verification::Verified;
    !snap.challenge.enabled
        || pass == Pass::Valid
        || document.is_some()
        || verified_search
        || matches!(credential, Credential::Licensed(_))
        || !is_navigation(req, snap.behaviour.classes.classify(req.path()))
}

/// The challenge's answer, when it gives one: the verification path's
/// verdict, or the interstitial for a challenged request. `None` leaves the
/// answer to [`super::answer::build`] (refusals of credentials and quotas
/// come first).
pub fn answer(
    snap: &Snapshot,
    req: &Request<'_>,
    document: Option<Document>,
    action: Action,
    lang: Lang,
) -> Option<(Answer, Event)> {
    if !snap.challenge.enabled {
        return None;
    }
    if document == Some(Document::ChallengeVerify) {
        return Some(match snap.challenge.verify(req) {
            Verdict::Passed {
                set_cookie,
                location,
            } => (redirect(&set_cookie, &location), Event::Passed),
            Verdict::Failed { return_to } => (
                interstitial(snap, req, lang, &encode_return(&return_to)),
                Event::Failed,
            ),
        });
    }
    (document.is_none() && action == Action::Challenge)
        .then(|| (interstitial(snap, req, lang, &return_to(req)), Event::Issued))
}

/// The interstitial, with a fresh nonce. Its status is a refusal's (403 by
/// default), never a soft 200, and `X-Robots-Tag: noindex` keeps it out of
/// any index; rempart's answers are all `Cache-Control: no-store`.
fn interstitial(snap: &Snapshot, req: &Request<'_>, lang: Lang, return_to: &str) -> Answer {
    let s = &snap.challenge;
    let nonce = s.nonce(req);
    let body = snap.pages.challenge(lang).fill(|slot| match slot {
        Slot::Nonce => nonce.clone(),
        Slot::ReturnTo => return_to.to_owned(),
        Slot::Difficulty => s.difficulty.to_string(),
        Slot::Delay => s.noscript_delay_secs.to_string(),
    });
    Answer::Respond {
        status: s.status,
        page: Page {
            content_type: "text/html; charset=utf-8",
            body,
        },
        extra: Extra::one(
            "x-robots-tag",
            http::HeaderValue::from_static("noindex, nofollow"),
        ),
    }
}

/// 303 to the page, setting the pass.
fn redirect(set_cookie: &str, location: &str) -> Answer {
    let root = || http::HeaderValue::from_static("/");
    let location = http::HeaderValue::from_str(location).unwrap_or_else(|_| root());
    let extra = match http::HeaderValue::from_str(set_cookie) {
        Ok(cookie) => Extra::two(("location", location), ("set-cookie", cookie)),
        Err(_) => Extra::one("location", location),
    };
    Answer::Respond {
        status: 303,
        page: Page {
            content_type: "text/plain; charset=utf-8",
            body: Bytes::from_static(b"303 See Other: the check passed.\n"),
        },
        extra,
    }
}
