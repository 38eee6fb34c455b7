//! The two signed tokens of the challenge, both HMAC-SHA256 with the key
//! of the state directory and bound to the client (its address, or the /64
//! of an IPv6 one, and its user agent):
//!
//! - the nonce of an interstitial, `<issued ms, hex>.<mac>`: proves that
//!   rempart issued it, to this client, and when;
//! - the pass cookie, `<expiry s, hex>.<mac>`: lets this client through
//!   until it expires.
//!
//! Macs are the first 16 bytes, hex, compared in constant time. Tokens carry
//! no server-side state, so every replica with the same key accepts them.

use std::net::IpAddr;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

const MAC_BYTES: usize = 16;
/// Domain separation: a nonce can never pass as a cookie.
const NONCE: u8 = b'n';
const PASS: u8 = b'p';

/// The HMAC key (never printed).
#[derive(Clone)]
pub struct Key([u8; 32]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

/// Why a token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// Not of the token's shape.
    Malformed,
    /// A mac that this key did not make for this client.
    Forged,
    /// Past its lifetime (or dated in the future).
    Expired,
}

/// The part of the address a token is bound to: IPv4 whole, IPv6 by its
/// /64 (privacy addresses change within it).
fn bound(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => {
            let mut o = v6.octets();
            o[8..].fill(0);
            o
        }
    }
}

impl Key {
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    fn mac(&self, tag: u8, client: IpAddr, user_agent: &[u8], time: u64) -> [u8; MAC_BYTES] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(&[tag]);
        mac.update(&bound(client));
        mac.update(&time.to_be_bytes());
        mac.update(&(user_agent.len() as u64).to_be_bytes());
        mac.update(user_agent);
        let out = mac.finalize().into_bytes();
        let mut first = [0u8; MAC_BYTES];
        first.copy_from_slice(&out[..MAC_BYTES]);
        first
    }

    fn mint(&self, tag: u8, client: IpAddr, user_agent: &[u8], time: u64) -> String {
        format!(
            "{time:x}.{}",
            hex::encode(self.mac(tag, client, user_agent, time))
        )
    }

    /// The time a token carries, when its mac is this key's for this client.
    fn open(
        &self,
        tag: u8,
        client: IpAddr,
        user_agent: &[u8],
        token: &[u8],
    ) -> Result<u64, Rejected> {
        let dot = token
            .iter()
            .position(|&b| b == b'.')
            .ok_or(Rejected::Malformed)?;
        let (time, mac) = (&token[..dot], &token[dot + 1..]);
        if time.is_empty() || time.len() > 16 || mac.len() != 2 * MAC_BYTES {
            return Err(Rejected::Malformed);
        }
        let time = std::str::from_utf8(time)
            .ok()
            .and_then(|t| u64::from_str_radix(t, 16).ok())
            .ok_or(Rejected::Malformed)?;
        let mut given = [0u8; MAC_BYTES];
        hex::decode_to_slice(mac, &mut given).map_err(|_| Rejected::Malformed)?;
        let expected = self.mac(tag, client, user_agent, time);
        if bool::from(expected.ct_eq(&given)) {
            Ok(time)
        } else {
            Err(Rejected::Forged)
        }
    }

    /// The nonce of an interstitial issued now.
    pub fn nonce(&self, client: IpAddr, user_agent: &[u8], now_ms: u64) -> String {
        self.mint(NONCE, client, user_agent, now_ms)
    }

    /// The issue time of a nonce made for this client, issued at most
    /// `lifetime_ms` ago.
    pub fn check_nonce(
        &self,
        client: IpAddr,
        user_agent: &[u8],
        nonce: &[u8],
        now_ms: u64,
        lifetime_ms: u64,
    ) -> Result<u64, Rejected> {
        let issued = self.open(NONCE, client, user_agent, nonce)?;
        if issued > now_ms || now_ms - issued > lifetime_ms {
            return Err(Rejected::Expired);
        }
        Ok(issued)
    }

    /// A pass cookie value that expires at `expires` (seconds since the epoch).
    pub fn pass(&self, client: IpAddr, user_agent: &[u8], expires: u64) -> String {
        self.mint(PASS, client, user_agent, expires)
    }

    /// Whether a pass cookie is this key's, for this client, and unexpired;
    /// a pass expiring more than `lifetime` from now was not made under
    /// this configuration and is refused too.
    pub fn check_pass(
        &self,
        client: IpAddr,
        user_agent: &[u8],
        value: &[u8],
        now_secs: u64,
        lifetime: u64,
    ) -> Result<(), Rejected> {
        let expires = self.open(PASS, client, user_agent, value)?;
        if expires <= now_secs || expires - now_secs > lifetime {
            return Err(Rejected::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UA: &[u8] = b"Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0.0.0";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_valid_pass_is_accepted() {
        let k = Key::new([7; 32]);
        let c = k.pass(ip("198.51.100.7"), UA, 10_000);
        assert_eq!(
            k.check_pass(ip("198.51.100.7"), UA, c.as_bytes(), 9_000, 3600),
            Ok(())
        );
    }

    #[test]
    fn an_expired_pass_is_refused() {
        let k = Key::new([7; 32]);
        let c = k.pass(ip("198.51.100.7"), UA, 10_000);
        let check = |now| k.check_pass(ip("198.51.100.7"), UA, c.as_bytes(), now, 3600);
        assert_eq!(check(10_000), Err(Rejected::Expired));
        assert_eq!(check(20_000), Err(Rejected::Expired));
        // Longer than the configured lifetime: not made under this config.
        assert_eq!(check(1_000), Err(Rejected::Expired));
    }

    #[test]
    fn a_tampered_pass_is_refused() {
        let k = Key::new([7; 32]);
        let c = k.pass(ip("198.51.100.7"), UA, 10_000);
        // A later expiry with the same mac.
        let later = c.replacen("2710", "2711", 1);
        let check = |v: &str| k.check_pass(ip("198.51.100.7"), UA, v.as_bytes(), 9_000, 3600);
        assert_eq!(check(&later), Err(Rejected::Forged));
        let mut flipped = c.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            k.check_pass(ip("198.51.100.7"), UA, &flipped, 9_000, 3600),
            Err(Rejected::Forged)
        );
        // Another key's pass.
        let other = Key::new([8; 32]).pass(ip("198.51.100.7"), UA, 10_000);
        assert_eq!(check(&other), Err(Rejected::Forged));
        for junk in ["", ".", "2710.", "zz.00", "2710.abc", "\u{ff}.\u{ff}"] {
            assert_eq!(check(junk), Err(Rejected::Malformed), "{junk:?}");
        }
        // A nonce is not a pass, even with the same time.
        let nonce = k.nonce(ip("198.51.100.7"), UA, 10_000);
        assert_eq!(check(&nonce), Err(Rejected::Forged));
    }

    #[test]
    fn a_pass_is_bound_to_address_and_user_agent() {
        let k = Key::new([7; 32]);
        let c = k.pass(ip("198.51.100.7"), UA, 10_000);
        assert_eq!(
            k.check_pass(ip("198.51.100.8"), UA, c.as_bytes(), 9_000, 3600),
            Err(Rejected::Forged)
        );
        assert_eq!(
            k.check_pass(ip("198.51.100.7"), b"curl/8.0", c.as_bytes(), 9_000, 3600),
            Err(Rejected::Forged)
        );
        // IPv6: the same /64 passes, another does not.
        let c6 = k.pass(ip("2001:db8:1:2::10"), UA, 10_000);
        let v6 = |a| k.check_pass(ip(a), UA, c6.as_bytes(), 9_000, 3600);
        assert_eq!(v6("2001:db8:1:2:aaaa::1"), Ok(()));
        assert_eq!(v6("2001:db8:1:3::10"), Err(Rejected::Forged));
    }

    #[test]
    fn nonces_expire_and_are_bound() {
        let k = Key::new([7; 32]);
        let n = k.nonce(ip("192.0.2.1"), UA, 1_000_000);
        let check = |ip_s, now| k.check_nonce(ip(ip_s), UA, n.as_bytes(), now, 300_000);
        assert_eq!(check("192.0.2.1", 1_000_500), Ok(1_000_000));
        assert_eq!(check("192.0.2.1", 1_300_001), Err(Rejected::Expired));
        assert_eq!(check("192.0.2.1", 999_999), Err(Rejected::Expired));
        assert_eq!(check("192.0.2.2", 1_000_500), Err(Rejected::Forged));
    }
}
