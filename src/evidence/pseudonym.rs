//! Keyed pseudonyms for client addresses (HMAC-SHA256).
//!
//! The key lives beside the ledger (`ip-key`, mode 0600), created on first
//! start. With it, the operator can tell whether a given address is the one
//! in a record (`rempart evidence pseudonym IP`); without it, nobody can.

use std::net::IpAddr;
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The pseudonymisation key.
/// The key, held as the HMAC state it starts every pseudonym from: the key's
/// two padded blocks are hashed once, not for every record.
#[derive(Clone)]
pub struct PseudonymKey(Hmac<Sha256>);

impl std::fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PseudonymKey(..)")
    }
}

impl PseudonymKey {
    /// Reads the key file, creating it (32 random bytes, mode 0600) if absent.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        crate::challenge::key::load_or_create(path, "address key").map(|k| Self::from_bytes(&k))
    }

    fn from_bytes(k: &[u8; 32]) -> Self {
        Self(
            <Hmac<Sha256> as Mac>::new_from_slice(k)
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length")),
        )
    }

    #[cfg(test)]
    pub fn fixed(k: [u8; 32]) -> Self {
        Self::from_bytes(&k)
    }

    /// `hmac-sha256:` and the first 16 bytes, hex.
    pub fn pseudonym(&self, ip: IpAddr) -> String {
        let mut mac = self.0.clone();
        match ip {
            IpAddr::V4(v4) => mac.update(&v4.octets()),
            IpAddr::V6(v6) => mac.update(&v6.octets()),
        }
        let out = mac.finalize().into_bytes();
        format!("hmac-sha256:{}", hex::encode(&out[..16]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_keyed_and_stable() {
        let a = PseudonymKey::fixed([1; 32]);
        let b = PseudonymKey::fixed([2; 32]);
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(a.pseudonym(ip), a.pseudonym(ip));
        assert_ne!(a.pseudonym(ip), b.pseudonym(ip));
        assert_ne!(
            a.pseudonym(ip),
            a.pseudonym("198.51.100.8".parse().unwrap())
        );
        assert!(a.pseudonym(ip).starts_with("hmac-sha256:"));
        assert_eq!(a.pseudonym(ip).len(), "hmac-sha256:".len() + 32);
    }

    #[test]
    fn the_prepared_state_gives_the_pseudonyms_of_a_fresh_hmac() {
        // Ledgers written before keep their pseudonyms: same key, same value.
        let k = PseudonymKey::fixed([7; 32]);
        for ip in ["198.51.100.7", "2001:db8::1"] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&[7; 32]).unwrap();
            match ip {
                IpAddr::V4(v4) => mac.update(&v4.octets()),
                IpAddr::V6(v6) => mac.update(&v6.octets()),
            }
            let want = format!(
                "hmac-sha256:{}",
                hex::encode(&mac.finalize().into_bytes()[..16])
            );
            assert_eq!(k.pseudonym(ip), want);
            assert_eq!(k.pseudonym(ip), want, "twice from the same state");
        }
    }

    #[test]
    fn key_file_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ip-key");
        let k1 = PseudonymKey::load_or_create(&p).unwrap();
        let k2 = PseudonymKey::load_or_create(&p).unwrap();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(k1.pseudonym(ip), k2.pseudonym(ip));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
