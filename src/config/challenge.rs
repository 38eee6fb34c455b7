//! `[challenge]`: the interstitial that a browser passes by itself, as
//! written. [`crate::challenge::Settings`] is its compiled form.

use std::path::PathBuf;

use serde::Deserialize;

/// The browser challenge, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChallengeSection {
    /// Off: rules whose action is `challenge` are passed over, as if absent.
    pub enabled: bool,
    /// How long a pass cookie lets its client through.
    pub pass_lifetime_seconds: u64,
    /// Leading zero bits of the proof of work's SHA-256.
    pub difficulty: u8,
    /// How long an interstitial may be answered after it was issued.
    pub nonce_lifetime_seconds: u64,
    /// Delay of the `<noscript>` meta refresh: a browser without JavaScript
    /// passes once it has waited this long.
    pub noscript_delay_seconds: u64,
    /// Status of the interstitial: 403 (the default) or 429.
    pub status: u16,
    /// The HMAC key of nonces and pass cookies (32 bytes, created at first
    /// start, mode 0600).
    pub key_file: PathBuf,
}

impl Default for ChallengeSection {
    fn default() -> Self {
        Self {
            enabled: true,
            pass_lifetime_seconds: 3600,
            difficulty: 14,
            nonce_lifetime_seconds: 300,
            noscript_delay_seconds: 2,
            status: 403,
            key_file: "state/challenge-key".into(),
        }
    }
}

impl ChallengeSection {
    /// The first key with an unusable value, and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(60..=7 * 86_400).contains(&self.pass_lifetime_seconds) {
            return Err((
                "challenge.pass_lifetime_seconds",
                "must be between 60 and 604800 (one week)".into(),
            ));
        }
        if !(1..=24).contains(&self.difficulty) {
            return Err((
                "challenge.difficulty",
                "must be between 1 and 24 bits: beyond that a phone takes seconds".into(),
            ));
        }
        if !(10..=3600).contains(&self.nonce_lifetime_seconds) {
            return Err((
                "challenge.nonce_lifetime_seconds",
                "must be between 10 and 3600".into(),
            ));
        }
        if self.noscript_delay_seconds == 0
            || self.noscript_delay_seconds >= self.nonce_lifetime_seconds
        {
            return Err((
                "challenge.noscript_delay_seconds",
                "must be at least 1 and shorter than nonce_lifetime_seconds".into(),
            ));
        }
        if !matches!(self.status, 403 | 429) {
            return Err((
                "challenge.status",
                format!("{} is not allowed: use 403 or 429", self.status),
            ));
        }
        Ok(())
    }
}
