//! The way in for licensed crawlers: licence credentials, pay per crawl, and
//! the metering that invoices them.

pub mod licence;
pub mod metering;
pub mod payment;
