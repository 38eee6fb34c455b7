//! The `[network]` section: where the IP-to-ASN data and the hosting-network
//! list are. Off unless the section turns it on, so a config written before
//! it behaves as it did.

use std::path::PathBuf;

use serde::Deserialize;

/// The network context (the client address's AS, hosting networks).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSection {
    /// Look the client address up in the table. With `true`, a missing or
    /// broken data file is a config error (the proxy does not start, a
    /// reload keeps the running snapshot): a signal silently gone would
    /// weaken the policy unseen.
    pub enabled: bool,
    /// `first,last,asn` ranges, gzipped (`rempart network import` writes it).
    pub ranges_file: PathBuf,
    /// `asn,name` AS organisation names, gzipped.
    pub names_file: PathBuf,
    /// The hosting-network ASNs (`asn,operator,category,source`).
    pub hosting_file: PathBuf,
}

impl Default for NetworkSection {
    fn default() -> Self {
        Self {
            enabled: false,
            ranges_file: "network/asn-ranges.csv.gz".into(),
            names_file: "network/as-names.csv.gz".into(),
            hosting_file: "network/hosting-asns.csv".into(),
        }
    }
}
