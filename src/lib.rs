//! rempart: an edge reverse proxy that makes a rights holder's AI opt-out stick.
//!
//! A request flows one way through small stages:
//! [`facts`] → [`identify`] → [`policy`] → [`respond`], with the compiled
//! configuration in a [`snapshot`] and counts in [`metrics`]. [`proxy`] wires
//! the stages into pingora's phases; [`server`] assembles the services.
//!
//! The decision path can be used without the proxy, as `rempart classify` does:
//!
//! ```
//! use std::path::Path;
//! use rempart::config::Config;
//! use rempart::facts::{normalize_path, AddrSource, RequestFacts};
//! use rempart::model::{Action, Verification};
//! use rempart::snapshot::{CompileOptions, Snapshot};
//!
//! let config = Config::load(Path::new("config/rempart.toml"))?;
//! let snapshot = Snapshot::compile(&config, &CompileOptions { demo_origin: None, offline: true })?;
//! let facts = RequestFacts {
//!     client_ip: "132.196.86.1".parse()?, // in OpenAI's published GPTBot ranges
//!     addr_source: AddrSource::Peer,
//!     method: "GET",
//!     host: Some("catalogue.example"),
//!     path: normalize_path("/films/la-traversee"),
//!     user_agent: b"Mozilla/5.0 (compatible; GPTBot/1.2; +https://openai.com/gptbot)",
//! };
//! let verdict = snapshot.evaluate(&facts);
//! assert_eq!(verdict.identity.verification, Verification::Verified);
//! assert_eq!(verdict.decision.action, Action::Offer);
//! assert_eq!(snapshot.policy.rule_name(verdict.decision.rule), "ai-licensing-offer");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod admin;
pub mod behaviour;
pub mod catalog;
pub mod classify;
pub mod conduct;
pub mod config;
pub mod demo;
pub mod evidence;
pub mod facts;
pub mod fetch;
pub mod identify;
pub mod licence;
pub mod metering;
pub mod metrics;
pub mod model;
pub mod origin_robots;
pub mod payment;
pub mod policy;
pub mod proxy;
pub mod proxy_protocol;
pub mod published;
pub mod ranges;
pub mod rdns;
pub mod refresh;
pub mod reload;
pub mod reservation;
pub mod respond;
pub mod robots;
pub mod server;
pub mod signals;
pub mod snapshot;
pub mod tls;
pub mod webbotauth;
