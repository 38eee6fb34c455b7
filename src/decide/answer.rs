//! What a decided request is answered with: the origin's page, or one of
//! rempart's (a document, the offer, a refusal, a limit), with its status and
//! extra headers.

use crate::licensing::licence::Credential;
use crate::model::{Action, Lang};
use crate::request::Request;
use crate::respond::clause::Format;
use crate::respond::negotiate::{choose_lang, choose_text_format, prefers_json};
use crate::respond::own::{fixed, Document};
use crate::respond::pages::Page;
use crate::snapshot::Snapshot;

use super::steps::Settled;

/// Up to two extra response headers, without an allocation.
#[derive(Debug, Clone, Default)]
pub struct Extra([Option<(&'static str, http::HeaderValue)>; 2]);

impl Extra {
    pub fn none() -> Self {
        Self::default()
    }
    pub fn one(name: &'static str, value: http::HeaderValue) -> Self {
        Self([Some((name, value)), None])
    }
    pub fn two(a: (&'static str, http::HeaderValue), b: (&'static str, http::HeaderValue)) -> Self {
        Self([Some(a), Some(b)])
    }
    pub fn iter(&self) -> impl Iterator<Item = &(&'static str, http::HeaderValue)> {
        self.0.iter().flatten()
    }
}

/// Where the response comes from.
#[derive(Debug, Clone)]
pub enum Answer {
    /// The request goes to the origin.
    Upstream,
    /// rempart answers itself, keeping the connection open.
    Respond {
        status: u16,
        page: Page,
        extra: Extra,
    },
}

/// The language and format of rempart's own pages for this client.
#[derive(Debug, Clone, Copy)]
pub struct Negotiated {
    pub lang: Lang,
    pub json: bool,
    /// The clause's format (HTML unless `Accept` asks for text or Markdown).
    pub format: Format,
}

impl Negotiated {
    /// Only refusals and rempart's own pages read the two headers.
    pub fn of(
        snap: &Snapshot,
        req: &Request<'_>,
        document: Option<Document>,
        action: Action,
        credential: Credential,
        settled: &Option<Settled>,
    ) -> Self {
        let needed = document.is_some()
            || action != Action::Allow
            || credential == Credential::Invalid
            || matches!(settled, Some(Settled::Refused { .. }));
        if !needed {
            return Self {
                lang: snap.default_lang,
                json: false,
                format: Format::Html,
            };
        }
        let format = match document {
            Some(Document::Clause) => choose_text_format(req.negotiation.accept),
            _ => Format::Html,
        };
        Self {
            lang: choose_lang(req.negotiation.accept_language, snap.default_lang),
            json: prefers_json(req.negotiation.accept),
            format,
        }
    }
}

/// The action after licences and payment: rempart's documents, a covering
/// licence and a paid crawl pass; a refused payment is an offer (402) or a
/// block.
pub fn applied_action(
    document: Option<Document>,
    credential: Credential,
    settled: &Option<Settled>,
    policy: Action,
) -> Action {
    match settled {
        _ if document.is_some() => Action::Allow,
        _ if matches!(credential, Credential::Licensed(_)) => Action::Allow,
        Some(Settled::Charged(_)) => Action::Allow,
        Some(Settled::Refused { status: 402, .. }) => Action::Offer,
        Some(Settled::Refused { .. }) => Action::Block,
        None => policy,
    }
}

fn respond(status: u16, page: &Page, extra: Extra) -> Answer {
    Answer::Respond {
        status,
        page: page.clone(),
        extra,
    }
}

/// One of rempart's own documents, 200, or 404 when this snapshot has none.
fn document_answer(
    pages: &crate::respond::pages::Pages,
    n: &Negotiated,
    d: Document,
    robots: Option<&Page>,
    offer: &Page,
) -> Answer {
    let page = match d {
        Document::RobotsTxt => robots.or(Some(&pages.robots_txt)),
        Document::OfferPage => Some(offer),
        Document::TdmRep => pages.tdmrep_json.as_ref(),
        Document::TdmPolicy => pages.tdm_policy.as_ref(),
        Document::License => pages.license_xml.as_ref(),
        Document::Clause => pages.clause.as_ref().map(|c| c.get(n.lang, n.format)),
        // Answered by the challenge step; here only when it is off.
        Document::ChallengeVerify => None,
    };
    // The clause is the one document whose words change with the language.
    let extra = match d {
        Document::Clause => Extra::one(
            "content-language",
            http::HeaderValue::from_static(n.lang.as_str()),
        ),
        _ => Extra::none(),
    };
    match page {
        Some(p) => respond(200, p, extra),
        None => respond(404, &fixed::NOT_FOUND, Extra::none()),
    }
}

/// Builds the answer.
#[allow(clippy::too_many_arguments)]
pub fn build(
    snap: &Snapshot,
    n: &Negotiated,
    document: Option<Document>,
    robots: Option<Page>,
    credential: Credential,
    settled: &Option<Settled>,
    over_quota: bool,
    action: Action,
    location: Option<usize>,
) -> Answer {
    let pages = &snap.pages;
    let offer = || {
        if n.json {
            &pages.offer_json
        } else {
            pages.offer(n.lang)
        }
    };
    let block = || {
        if n.json {
            &pages.block_json
        } else {
            pages.block(n.lang)
        }
    };
    let price = || {
        location
            .and_then(|i| snap.reservation.as_ref()?.locations.get(i))
            .and_then(|l| l.price_header.clone())
            .map(|h| ("crawler-price", h))
    };
    if let Some(d) = document {
        return document_answer(pages, n, d, robots.as_ref(), offer());
    }
    if credential == Credential::Invalid {
        let challenge = http::HeaderValue::from_static("License error=\"invalid_token\"");
        return respond(401, block(), Extra::one("www-authenticate", challenge));
    }
    if over_quota {
        let secs = 86_400 - crate::licensing::metering::now_secs() % 86_400;
        let retry = http::HeaderValue::from(secs);
        return respond(
            429,
            &fixed::QUOTA_EXCEEDED,
            Extra::one("retry-after", retry),
        );
    }
    if let Some(Settled::Refused { status, error }) = settled {
        let error = ("crawler-error", http::HeaderValue::from_static(error));
        return match (*status, price()) {
            (402, Some(p)) => respond(402, offer(), Extra::two(error, p)),
            (402, None) => respond(402, offer(), Extra::one(error.0, error.1)),
            (s, _) => respond(s, block(), Extra::one(error.0, error.1)),
        };
    }
    match action {
        Action::Allow => Answer::Upstream,
        Action::RateLimit => respond(
            429,
            &fixed::RATE_LIMITED,
            Extra::one("retry-after", snap.behaviour.retry_after.clone()),
        ),
        Action::Block => respond(403, block(), Extra::none()),
        // Answered by the challenge step, which fills the page per request.
        Action::Challenge => respond(403, block(), Extra::none()),
        Action::Offer => {
            let extra = price().map_or_else(Extra::none, |(k, v)| Extra::one(k, v));
            respond(snap.offer_status, offer(), extra)
        }
    }
}
