//! Counting a decided request in the metrics. What every request or a
//! frequent one counts (its action, purpose and verification, its agent, its
//! signals, a document served, a challenge step) is a handle resolved once:
//! one atomic add. Rare events (a malformed request, a signature, a refused
//! licence or payment, a charge, a log-only match) look their series up by
//! label.

use crate::decide::{Outcome, Payer};
use crate::identify::webbotauth::Signature;
use crate::licensing::licence::Credential;
use crate::metrics::metrics;
use crate::snapshot::Snapshot;

/// Counts what the decision says to count.
pub fn outcome(snap: &Snapshot, o: &Outcome) {
    let m = metrics();
    if let Some(bad) = o.malformed {
        m.bad_requests.with_label_values(&[bad.label()]).inc();
        return;
    }
    if o.signature != Signature::Absent {
        m.web_bot_auth
            .with_label_values(&[o.signature.label()])
            .inc();
    }
    if o.signature == Signature::Hostile {
        m.bad_requests
            .with_label_values(&["signature-headers"])
            .inc();
        return;
    }
    let counters = &m.signal_counters;
    for sig in o.conduct.signals.iter() {
        if let Some(c) = counters.get(sig as usize) {
            c.inc();
        }
    }
    if o.pass == crate::challenge::Pass::Invalid {
        count_challenge(crate::challenge::Event::InvalidPass);
    }
    if let Some(e) = o.challenge {
        count_challenge(e);
    }
    if let Some(c) = o.document.and_then(|d| m.document_counters.get(d as usize)) {
        c.inc();
    }
    if !licensing(snap, o) {
        return;
    }
    let id = &o.identity;
    m.count_request(o.action, id.purpose, id.verification);
    if id.network.hosting {
        m.count_hosting(o.action);
    }
    if let Some(r) = o.referred_by {
        snap.referrers.count(r);
    }
    agent(snap, o);
    if let Some((rule, would)) = o.decision.shadow {
        m.log_only
            .with_label_values(&[snap.policy.rule_name(Some(rule)), would.as_str()])
            .inc();
    }
}

/// The licence's counts: credentials refused, payments failed, charges,
/// the licensee's requests. False for a request over its licence's quota,
/// which is counted as that alone.
fn licensing(snap: &Snapshot, o: &Outcome) -> bool {
    let m = metrics();
    if o.credential == Credential::Invalid {
        m.licence_rejections.with_label_values(&["invalid"]).inc();
    }
    if o.over_quota {
        m.licence_rejections.with_label_values(&["quota"]).inc();
        return false;
    }
    if let Some(error) = o.payment_error {
        m.crawler_payment_errors.with_label_values(&[error]).inc();
    }
    if let Some(c) = o.charge {
        let payer = match c.payer {
            Payer::Licensee(i) => snap.licensees.get(i).map_or("unknown", |l| l.id.as_str()),
            Payer::Operator(a) => snap.catalogue.agent(a).operator.as_str(),
        };
        m.crawler_charges.with_label_values(&[payer]).inc();
        m.crawler_charged_euros
            .with_label_values(&[payer])
            .inc_by(c.micros as f64 / 1_000_000.0);
    }
    if let Some(l) = o.licensee.and_then(|i| snap.licensees.get(i)) {
        l.count_request();
    }
    true
}

/// The per-agent counts: a catalogue agent in its own slot, a bot that
/// declares itself without a catalogue entry in the slot after them.
fn agent(snap: &Snapshot, o: &Outcome) {
    let id = &o.identity;
    if let Some(agent) = id.agent {
        let a = snap.catalogue.agent(agent);
        snap.agent_counters.inc(
            agent.0 as usize,
            &a.name,
            &a.operator,
            o.action,
            id.verification,
        );
    } else if let Some(name) = id.agent_name(&snap.catalogue) {
        let slot = snap.catalogue.agents().len();
        snap.agent_counters
            .inc(slot, name, "unknown", o.action, id.verification);
    }
}

fn count_challenge(e: crate::challenge::Event) {
    if let Some(c) = metrics().challenges.get(e as usize) {
        c.inc();
    }
}

/// Counts in the ledger what it does not record one by one: a referred
/// visit, or an AI crawler's page let through.
pub fn ledger(snap: &Snapshot, o: &Outcome, ledger: &crate::evidence::Evidence) {
    if let Some(r) = o.referred_by {
        ledger.referred(snap.referrers.referrers.name(r));
        return;
    }
    let id = &o.identity;
    let crawled = o.action == crate::model::Action::Allow
        && o.document.is_none()
        && o.malformed.is_none()
        && id.purpose.is_some_and(|p| p.is_ai());
    if crawled {
        let operator = id
            .agent
            .map_or("unknown", |a| snap.catalogue.agent(a).operator.as_str());
        ledger.crawled_allowed(operator);
    }
}

#[cfg(test)]
mod tests {
    use crate::metrics::labels::DOCUMENTS;
    use crate::respond::own::Document;

    /// `outcome` counts a document by its position: the labels must be in
    /// the enum's order.
    #[test]
    fn each_document_is_counted_under_its_own_label() {
        for (i, d) in Document::ALL.iter().enumerate() {
            assert_eq!(*d as usize, i);
            assert_eq!(DOCUMENTS.get(i), Some(&d.name()), "{d:?}");
        }
        assert_eq!(DOCUMENTS.len(), Document::ALL.len());
        let m = crate::metrics::metrics();
        let before = m.served_documents.with_label_values(&["tdmrep.json"]).get();
        m.document_counters[Document::TdmRep as usize].inc();
        assert_eq!(
            m.served_documents.with_label_values(&["tdmrep.json"]).get(),
            before + 1
        );
    }
}
