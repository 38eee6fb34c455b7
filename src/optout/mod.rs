//! The opt-out in every machine-readable form: the reservation model, the
//! documents generated from it (tdmrep.json, the TDM policy, license.xml,
//! robots.txt lines), the origin's robots.txt merged with rempart's, and the
//! archive of every robots.txt version served.

pub mod clause;
pub mod documents;
pub mod origin_robots;
pub mod published;
pub mod reservation;
pub mod robots;
