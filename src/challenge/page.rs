//! The interstitial page: rendered from its template once per snapshot with
//! markers where the per-request values go, then split there, so that
//! issuing a challenge is one concatenation, not a template run.

use bytes::Bytes;

/// The values the page is filled with, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The signed nonce (hex and a dot: safe anywhere).
    Nonce,
    /// The page to return to, percent-encoded (safe in attributes and
    /// script strings).
    ReturnTo,
    /// The proof of work's difficulty in bits.
    Difficulty,
    /// The `<noscript>` refresh delay in seconds.
    Delay,
}

impl Slot {
    const ALL: [Slot; 4] = [Slot::Nonce, Slot::ReturnTo, Slot::Difficulty, Slot::Delay];

    /// What the template is rendered with in the slot's place.
    pub const fn marker(self) -> &'static str {
        match self {
            Slot::Nonce => "@@rempart-nonce@@",
            Slot::ReturnTo => "@@rempart-return@@",
            Slot::Difficulty => "@@rempart-difficulty@@",
            Slot::Delay => "@@rempart-delay@@",
        }
    }
}

/// A rendered interstitial, split at its slots.
#[derive(Debug, Clone)]
pub struct Interstitial {
    /// Text, then the slot that follows it (none after the last piece).
    pieces: Vec<(Bytes, Option<Slot>)>,
    len: usize,
}

impl Interstitial {
    /// Splits a rendered page at every marker.
    pub fn split(rendered: &str) -> Self {
        let mut pieces = Vec::new();
        let mut rest = rendered;
        loop {
            let next = Slot::ALL
                .iter()
                .filter_map(|s| rest.find(s.marker()).map(|at| (at, *s)))
                .min_by_key(|(at, _)| *at);
            match next {
                Some((at, slot)) => {
                    pieces.push((Bytes::copy_from_slice(&rest.as_bytes()[..at]), Some(slot)));
                    rest = &rest[at + slot.marker().len()..];
                }
                None => {
                    pieces.push((Bytes::copy_from_slice(rest.as_bytes()), None));
                    break;
                }
            }
        }
        let len = pieces.iter().map(|(b, _)| b.len()).sum();
        Self { pieces, len }
    }

    /// Whether the template uses this slot (the page needs the nonce).
    pub fn uses(&self, slot: Slot) -> bool {
        self.pieces.iter().any(|(_, s)| *s == Some(slot))
    }

    /// The page filled with one request's values.
    pub fn fill(&self, value: impl Fn(Slot) -> String) -> Bytes {
        let mut out = Vec::with_capacity(self.len + 256);
        for (text, slot) in &self.pieces {
            out.extend_from_slice(text);
            if let Some(s) = slot {
                out.extend_from_slice(value(*s).as_bytes());
            }
        }
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_filled_in_order() {
        let page = Interstitial::split(&format!(
            "a{}b{}c{}d{}",
            Slot::Nonce.marker(),
            Slot::ReturnTo.marker(),
            Slot::Nonce.marker(),
            Slot::Difficulty.marker()
        ));
        assert!(page.uses(Slot::Nonce) && !page.uses(Slot::Delay));
        let body = page.fill(|s| format!("<{s:?}>"));
        assert_eq!(&body[..], b"a<Nonce>b<ReturnTo>c<Nonce>d<Difficulty>");
        assert_eq!(
            &Interstitial::split("plain").fill(|_| String::new())[..],
            b"plain"
        );
    }
}
