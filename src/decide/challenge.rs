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
        || !is_navigation(req.fetch, snap.behaviour.classes.classify(req.path()))
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
    (document.is_none() && action == Action::Challenge).then(|| {
        (
            interstitial(snap, req, lang, &return_to(req)),
            Event::Issued,
        )
    })
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;
    use crate::decide::{decide_read, LocalState};
    use crate::request::{Received, Request};
    use crate::snapshot::{CompileOptions, Snapshot};

    use super::*;

    const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    const NOW_MS: u64 = 1_800_000_000_000;

    /// The shipped config, with the scraper threshold lowered to the weight
    /// of `headless-chromium` alone, so that a rule after the challenge
    /// matches the same request.
    fn snapshot() -> Snapshot {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rempart.toml");
        let text = std::fs::read_to_string(&path).unwrap().replace(
            "name = \"scrapers\"\nmin_score = 60",
            "name = \"scrapers\"\nmin_score = 30",
        );
        let config = Config::parse(&path, text).unwrap();
        let opts = CompileOptions {
            demo_origin: None,
            offline: true,
        };
        Snapshot::compile(&config, &opts).unwrap()
    }

    /// A Chrome user agent without Chrome's client hints, over TLS.
    fn script(target: &str, cookie: Option<&str>) -> http::request::Parts {
        let mut b = http::Request::builder()
            .uri(target)
            .header("host", "catalogue.example")
            .header("user-agent", CHROME)
            .header("accept", "*/*");
        if let Some(c) = cookie {
            b = b.header("cookie", c);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn decide(
        snap: &Snapshot,
        local: &LocalState,
        p: &http::request::Parts,
    ) -> super::super::Outcome {
        let mut received = Received::of(p, "203.0.113.7".parse().unwrap(), NOW_MS);
        received.tls = true;
        let read = Request::read(received, &snap.trusted, snap.read);
        decide_read(snap, &local.state(), &read)
    }

    #[test]
    fn a_pass_waives_the_challenge_and_later_rules_still_apply() {
        let snap = snapshot();
        let local = LocalState::new(&snap);
        let first = decide(&snap, &local, &script("/films/x", None));
        assert_eq!(first.action, Action::Challenge);
        assert_eq!(first.rule_name(&snap), "suspicious-browsers");
        assert_eq!(
            (first.status(), first.challenge),
            (Some(403), Some(Event::Issued))
        );
        assert!(first.evidence, "an issued challenge is recorded");

        // The client solves it, as the page's script would.
        let nonce = {
            let p = script("/films/x", None);
            let mut r = Received::of(&p, "203.0.113.7".parse().unwrap(), NOW_MS);
            r.tls = true;
            snap.challenge
                .nonce(&Request::read(r, &snap.trusted, snap.read).unwrap())
        };
        let answer = crate::challenge::pow::solve(nonce.as_bytes(), snap.challenge.difficulty);
        let verify = format!("/.well-known/rempart/challenge?n={nonce}&a={answer}&r=%2Ffilms%2Fx");
        let passed = decide(&snap, &local, &script(&verify, None));
        assert_eq!(
            (passed.status(), passed.challenge),
            (Some(303), Some(Event::Passed))
        );
        let Answer::Respond { extra, .. } = &passed.answer else {
            panic!("answered by rempart")
        };
        let set_cookie = extra
            .iter()
            .find(|(k, _)| *k == "set-cookie")
            .map(|(_, v)| v.to_str().unwrap().to_owned())
            .unwrap();
        assert!(set_cookie.ends_with("; Secure"), "over TLS: {set_cookie}");
        let cookie = set_cookie.split(';').next().unwrap();

        // With the pass, the challenge rule is passed over: the scraper rule
        // after it decides.
        let again = decide(&snap, &local, &script("/films/x", Some(cookie)));
        assert_eq!(again.pass, Pass::Valid);
        assert_eq!(
            (again.action, again.rule_name(&snap)),
            (Action::RateLimit, "scrapers")
        );
        assert_eq!(again.challenge, Some(Event::Admitted));
    }
}
