//! Per-agent counters: the exported series by agent, operator and action,
//! and what the console shows of each agent.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use prometheus::IntCounter;

use super::{metrics, ACTIONS, VERIFICATIONS};
use crate::model::{Action, Verification};

/// Per-agent counter handles, created on first use (so that an agent never
/// seen exports no series) and then lock-free.
pub struct AgentCounters {
    slots: Vec<OnceLock<AgentSlot>>,
}

/// One agent's exported counters, and how its requests were verified: the
/// console shows it, and a per-verification label on the exported series
/// would multiply them by four for that alone.
struct AgentSlot {
    name: String,
    operator: String,
    counters: [IntCounter; ACTIONS.len()],
    verified: [AtomicU64; VERIFICATIONS.len()],
}

/// What the console shows of one agent: its requests by action (the
/// exported counters, which outlive reloads) and by verification (since
/// the configuration in force was loaded).
#[derive(Debug, Clone, serde::Serialize)]
pub struct AgentRow {
    pub agent: String,
    pub operator: String,
    pub total: u64,
    pub actions: Vec<(&'static str, u64)>,
    pub verifications: Vec<(&'static str, u64)>,
}

impl AgentCounters {
    pub fn new(agents: usize) -> Self {
        Self {
            slots: (0..agents).map(|_| OnceLock::new()).collect(),
        }
    }

    pub fn inc(
        &self,
        agent: usize,
        name: &str,
        operator: &str,
        action: Action,
        verification: Verification,
    ) {
        let Some(slot) = self.slots.get(agent) else {
            return;
        };
        let slot = slot.get_or_init(|| {
            let vec = &metrics().agent_requests;
            AgentSlot {
                name: name.to_owned(),
                operator: operator.to_owned(),
                counters: ACTIONS.map(|a| vec.with_label_values(&[name, operator, a.as_str()])),
                verified: std::array::from_fn(|_| AtomicU64::new(0)),
            }
        });
        slot.counters[action as usize].inc();
        slot.verified[verification as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The agents seen, most requests first.
    pub fn rows(&self) -> Vec<AgentRow> {
        let mut rows: Vec<AgentRow> = self
            .slots
            .iter()
            .filter_map(OnceLock::get)
            .map(|s| {
                let actions: Vec<_> = ACTIONS
                    .iter()
                    .zip(&s.counters)
                    .map(|(a, c)| (a.as_str(), c.get()))
                    .collect();
                AgentRow {
                    agent: s.name.clone(),
                    operator: s.operator.clone(),
                    total: actions.iter().map(|(_, n)| n).sum(),
                    actions,
                    verifications: VERIFICATIONS
                        .iter()
                        .zip(&s.verified)
                        .map(|(v, n)| (v.as_str(), n.load(Ordering::Relaxed)))
                        .collect(),
                }
            })
            .collect();
        rows.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.agent.cmp(&b.agent)));
        rows
    }
}
