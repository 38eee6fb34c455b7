//! Running rempart: the pingora server and its services, the admin listener,
//! reloads, range refreshes, TLS, the PROXY protocol, and the demo origin.
//! Nothing here is on the request path but the PROXY-protocol hand-over.

pub mod access_log;
pub mod admin;
pub mod admin_client;
pub mod console;
pub mod controls;
pub mod demo;
pub mod fetch;
pub mod guard;
pub mod network;
pub mod pidfile;
pub mod proxy_protocol;
pub mod refresh;
pub mod reload;
pub mod resolve;
pub mod server;
pub mod tls;
