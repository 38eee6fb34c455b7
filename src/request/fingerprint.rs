//! The request's header fingerprint: what a client's HTTP stack looks like,
//! whatever its address, in the spirit of JA4H.
//!
//! A fleet of scrapers spread over many addresses shares one HTTP library and
//! one configuration, so its requests share this value while each address
//! sends only a few of them. The fingerprint is built from what stays the
//! same across one client's page and asset requests — the relative order of
//! `Connection`, `User-Agent`, `Accept`, `Accept-Encoding` and
//! `Accept-Language`, whether client hints and fetch metadata are sent, the
//! protocol version, and the values of `Accept-Encoding`, `Accept-Language`
//! and `User-Agent` — and leaves out what changes from request to request
//! (`Accept`, which differs between a page and an image; `Cookie` and
//! `Referer`, which a person gains as they browse; forwarding headers, which
//! the proxies in front add).
//!
//! The hash is the same in every replica (XXH3 with fixed seeds: a public
//! function, as std's SipHash with its fixed keys was before it), so that
//! the shared store can count a fingerprint across replicas. That lets anyone
//! make a fingerprint's counts grow by sending its headers, which is no more
//! than sending those headers already does: the fingerprint only ever adds a
//! signal, and a person who shares a spiking fingerprint passes the challenge.

/// A stable 64-bit hash of a request's header set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Fingerprint(pub u64);

impl Fingerprint {
    /// As written in evidence records and shared-store keys.
    pub fn hex(self) -> String {
        format!("{:016x}", self.0)
    }
}

/// Header names whose relative order is part of the fingerprint.
#[derive(Debug, Clone, Copy)]
pub enum Ordered {
    Connection = 1,
    UserAgent = 2,
    Accept = 3,
    AcceptEncoding = 4,
    AcceptLanguage = 5,
}

/// What the header scan collects for the fingerprint.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shape<'h> {
    /// 3-bit codes of [`Ordered`] names, in the order first seen.
    order: u32,
    seen: u8,
    pub client_hints: bool,
    pub fetch_metadata: bool,
    pub accept_encoding: &'h [u8],
}

impl<'h> Shape<'h> {
    /// Notes one of the ordered names (only its first occurrence counts).
    pub fn saw(&mut self, name: Ordered) {
        let bit = 1u8 << (name as u8);
        if self.seen & bit == 0 {
            self.seen |= bit;
            self.order = (self.order << 3) | name as u32;
        }
    }

    /// The fingerprint of the request whose headers were scanned.
    pub fn finish(
        &self,
        version: http::Version,
        user_agent: &[u8],
        accept_language: &[u8],
    ) -> Fingerprint {
        // Unkeyed: the same value in every replica running this build. Each
        // value seeds the next one's hash, and XXH3 mixes in each length, so
        // moving bytes from one header to the next changes the result.
        use xxhash_rust::xxh3::xxh3_64_with_seed;
        let v: u64 = match version {
            http::Version::HTTP_09 | http::Version::HTTP_10 => 0,
            http::Version::HTTP_11 => 1,
            http::Version::HTTP_2 => 2,
            _ => 3,
        };
        let small = u64::from(self.order) << 8
            | u64::from(self.client_hints) << 4
            | u64::from(self.fetch_metadata) << 3
            | v;
        let h = xxh3_64_with_seed(self.accept_encoding, small);
        let h = xxh3_64_with_seed(accept_language, h);
        Fingerprint(xxh3_64_with_seed(user_agent, h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(order: &[Ordered], ae: &'static [u8]) -> Shape<'static> {
        let mut s = Shape {
            accept_encoding: ae,
            ..Shape::default()
        };
        for o in order {
            s.saw(*o);
        }
        s
    }

    #[test]
    fn order_and_values_count_repeats_do_not() {
        use Ordered::*;
        let v = http::Version::HTTP_11;
        let chrome = shape(
            &[
                Connection,
                UserAgent,
                Accept,
                AcceptEncoding,
                AcceptLanguage,
            ],
            b"gzip, deflate",
        );
        let again = shape(
            &[
                Connection,
                UserAgent,
                Accept,
                Accept,
                AcceptEncoding,
                AcceptLanguage,
            ],
            b"gzip, deflate",
        );
        let requests = shape(
            &[
                UserAgent,
                AcceptEncoding,
                Accept,
                Connection,
                AcceptLanguage,
            ],
            b"gzip, deflate",
        );
        let fp = |s: &Shape<'_>| s.finish(v, b"Mozilla/5.0", b"fr-FR");
        assert_eq!(fp(&chrome), fp(&again));
        assert_ne!(fp(&chrome), fp(&requests), "another library's header order");
        assert_ne!(fp(&chrome), chrome.finish(v, b"Mozilla/5.0", b"en-US"));
        assert_ne!(
            fp(&chrome),
            chrome.finish(http::Version::HTTP_2, b"Mozilla/5.0", b"fr-FR")
        );
        // Bytes moved from one header to the next make another fingerprint.
        assert_ne!(fp(&chrome), chrome.finish(v, b"Mozilla/5.0f", b"r-FR"));
        assert_ne!(
            fp(&shape(&[UserAgent], b"gzip")),
            shape(&[UserAgent], b"").finish(v, b"gzipMozilla/5.0", b"fr-FR")
        );
        // Stable: the same value in every process and every build (the
        // shared store's keys rely on it), pinned here.
        assert_eq!(fp(&chrome).hex(), "4c91e178ac8c2271");
        assert_eq!(fp(&chrome).hex().len(), 16);
    }
}
