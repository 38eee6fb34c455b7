//! rempart: an edge reverse proxy that makes a rights holder's AI opt-out stick.
//!
//! A request flows one way through small stages:
//! [`facts`] → [`identify`] → [`policy`] → [`respond`], with the compiled
//! configuration in a [`snapshot`] and counts in [`metrics`]. [`proxy`] wires
//! the stages into pingora's phases; [`server`] assembles the services.

pub mod admin;
pub mod catalog;
pub mod classify;
pub mod config;
pub mod demo;
pub mod facts;
pub mod identify;
pub mod metrics;
pub mod model;
pub mod policy;
pub mod proxy;
pub mod ranges;
pub mod respond;
pub mod server;
pub mod snapshot;
