//! rempart: an edge reverse proxy that makes a rights holder's AI opt-out stick.
//!
//! A request flows one way through stages, one folder each:
//! [`request`] (read once, canonical) → [`identify`] (catalogue, ranges,
//! bound signatures, reverse DNS) → [`behaviour`] → [`decide`] (one function,
//! one [`decide::Outcome`]) → [`respond`] (pages and documents) →
//! [`evidence`] and [`metrics`] (after the response). [`optout`] expresses
//! the reservation, [`licensing`] lets licensed crawlers in, the compiled
//! configuration lives in one immutable [`snapshot`], [`proxy`] is the pingora
//! glue and [`ops`] runs the server.
//!
//! The decision can be used without the proxy, as `rempart classify` does:
//!
//! ```
//! use std::path::Path;
//! use rempart::decide::{decide_read, LocalState};
//! use rempart::model::{Action, Verification};
//! use rempart::request::{Received, Request};
//! use rempart::snapshot::Snapshot;
//!
//! let snapshot = Snapshot::load_offline(Path::new("config/rempart.toml"))?;
//! let (head, ()) = http::Request::builder()
//!     .uri("/films/la-traversee")
//!     .header("host", "catalogue.example")
//!     .header("user-agent", "Mozilla/5.0 (compatible; GPTBot/1.2; +https://openai.com/gptbot)")
//!     .body(())?
//!     .into_parts();
//! let peer = "132.196.86.1".parse()?; // in OpenAI's published GPTBot ranges
//! let read = Request::read(Received::of(&head, peer, 0), &snapshot.trusted, snapshot.read);
//! let local = LocalState::new(&snapshot);
//! let outcome = decide_read(&snapshot, &local.state(), &read);
//! assert_eq!(outcome.identity.verification, Verification::Verified);
//! assert_eq!(outcome.action, Action::Offer);
//! assert_eq!(outcome.status(), Some(402));
//! assert_eq!(outcome.rule_name(&snapshot), "ai-licensing-offer");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod behaviour;
pub mod catalog;
pub mod challenge;
pub mod classify;
pub mod config;
pub mod day;
pub mod decide;
pub mod dns;
pub mod evidence;
pub mod identify;
pub mod licensing;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod optout;
pub mod proxy;
pub mod queue;
pub mod request;
pub mod respond;
pub mod snapshot;
