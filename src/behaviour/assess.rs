//! The behaviour stage of the pipeline: one request and its identity in,
//! the client's signals and score out. Shared by the proxy and by
//! `rempart classify`, which replays a log through the same state.

use crate::behaviour::tracker::SharedIncrement;
use crate::behaviour::{Assessment, Clock, Observation, PathClass, Signal, SignalSet, Tracker};
use crate::identify::Identity;
use crate::model::{IdentityKind, Verification};
use crate::optout::published::{Published, RobotsVersion};
use crate::request::Request;
use crate::snapshot::Snapshot;

/// What the decision knows about the request beyond the request itself.
#[derive(Debug, Clone, Copy)]
pub struct RequestSide<'a> {
    /// Signals of the headers alone (none when replaying a log).
    pub header_signals: SignalSet,
    /// The request is robots.txt, served as this version.
    pub robots_served: Option<&'a RobotsVersion>,
    /// The request is one of rempart's own documents.
    pub builtin: bool,
    pub now_ms: u64,
}

/// Signals of the client address's network: a browser-shaped user agent
/// from a hosting network. Replayed log lines get it too (the address is
/// known), unlike the header signals.
pub fn network_signals(identity: &Identity) -> SignalSet {
    if identity.kind == IdentityKind::Browser && identity.network.hosting {
        SignalSet::EMPTY.with(Signal::HostingNetwork)
    } else {
        SignalSet::EMPTY
    }
}

/// Counts the request in its client's state and returns the signals and score.
pub fn assess(
    snap: &Snapshot,
    tracker: &Tracker,
    published: &Published,
    req: &Request<'_>,
    identity: &Identity,
    side: RequestSide<'_>,
    shared: Option<&mut dyn FnMut(SharedIncrement)>,
) -> Assessment {
    let s = &snap.behaviour;
    if !s.enabled {
        return Assessment::default();
    }
    let path = req.path();
    let obs = Observation {
        ip: req.client_ip,
        user_agent: req.user_agent,
        class: if side.builtin {
            PathClass::Other
        } else {
            s.classes.classify(path)
        },
        clock: Clock::at(side.now_ms, s.window_ms),
        header_signals: side.header_signals.union(network_signals(identity)),
        honeypot: s.is_honeypot(path),
        robots_served: side.robots_served.map(|v| v.id),
        verified_agent: identity.kind == IdentityKind::Declared
            && identity.verification == Verification::Verified,
        // A declared agent is decided by who it is; a replayed log line has
        // no header set to fingerprint.
        fingerprint: (identity.kind != IdentityKind::Declared && !req.replayed)
            .then_some(req.fingerprint.0),
    };
    let mut a = tracker.observe(s, &obs, shared);
    // The strongest signal: robots.txt read, then a path it disallows taken.
    if let (Some((_, version)), false, false) = (
        a.robots,
        side.builtin,
        a.signals.contains(Signal::RobotsIgnored),
    ) {
        // The client's group: its catalogue product token, or `*`.
        let token = identity
            .agent
            .map(|id| snap.catalogue.agent(id))
            .and_then(|agent| agent.tokens.iter().find(|t| !t.contains(['/', ' '])))
            .map(String::as_str);
        if published
            .get(version)
            .is_some_and(|v| v.disallows(token, path))
        {
            tracker.mark_robots_ignored(s, &mut a, obs.clock.now_secs);
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identify::network::NetworkFacts;

    fn identity(kind: IdentityKind, hosting: bool) -> Identity {
        let mut id = Identity::unidentified();
        id.kind = kind;
        id.network = NetworkFacts {
            asn: std::num::NonZeroU32::new(16509),
            hosting,
        };
        id
    }

    #[test]
    fn only_a_browser_from_a_hosting_network_is_signalled() {
        let hosting = SignalSet::EMPTY.with(Signal::HostingNetwork);
        assert_eq!(
            network_signals(&identity(IdentityKind::Browser, true)),
            hosting
        );
        assert!(network_signals(&identity(IdentityKind::Browser, false)).is_empty());
        // Declared agents and tools are judged by who they say they are.
        assert!(network_signals(&identity(IdentityKind::Declared, true)).is_empty());
        assert!(network_signals(&identity(IdentityKind::Tool, true)).is_empty());
    }

    #[test]
    fn alone_it_stays_below_the_shipped_threshold() {
        let w = crate::behaviour::Weights::default();
        assert!(w.score(SignalSet::EMPTY.with(Signal::HostingNetwork)) < 60);
        let with_headless = SignalSet::EMPTY
            .with(Signal::HostingNetwork)
            .with(Signal::HeadlessChromium);
        assert!(w.score(with_headless) >= 60);
    }
}
