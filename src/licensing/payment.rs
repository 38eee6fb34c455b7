//! Pay per crawl, compatible with Cloudflare's scheme: an unpaid request to a
//! priced path gets 402 with `crawler-price: EUR 0.01`; an authenticated
//! crawler that retries with `crawler-exact-price` or `crawler-max-price`
//! covering the price gets the page and `crawler-charged`; mistakes are named
//! in `crawler-error` with Cloudflare's error codes.
//!
//! Amounts are whole micro-euros, so that comparing a price never depends on
//! floating-point rounding.

/// The only currency priced here.
pub const CURRENCY: &str = "EUR";

/// Longest price header accepted.
const MAX_PRICE_HEADER: usize = 64;

/// What the crawler offers to pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bid {
    None,
    Exact(u64),
    Max(u64),
    /// Both headers at once.
    Conflict,
    /// Not `EUR <amount>`, or oversized.
    Invalid,
    /// A well-formed amount in another currency.
    OtherCurrency {
        exact: bool,
    },
}

/// The outcome for a priced path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// Let through, charged this many micro-euros.
    Charged(u64),
    /// Refused with this status and `crawler-error` code.
    Refused { status: u16, error: &'static str },
}

/// Euros (as configured) to micro-euros.
pub fn micros(eur: f64) -> u64 {
    (eur * 1_000_000.0).round().max(0.0) as u64
}

/// `EUR 0.01` from micro-euros (at least two decimals, no trailing zeros beyond).
pub fn format_price(micros: u64) -> String {
    let whole = micros / 1_000_000;
    let frac = format!("{:06}", micros % 1_000_000);
    let trimmed = frac.trim_end_matches('0');
    let frac = if trimmed.len() < 2 {
        &frac[..2]
    } else {
        trimmed
    };
    format!("{CURRENCY} {whole}.{frac}")
}

/// Parses `EUR 0.01` into micro-euros; `Err(true)` for another currency.
fn parse_amount(raw: &[u8]) -> Result<u64, bool> {
    if raw.len() > MAX_PRICE_HEADER {
        return Err(false);
    }
    let s = std::str::from_utf8(raw).map_err(|_| false)?.trim();
    let (currency, amount) = s.split_once(' ').ok_or(false)?;
    let amount = amount.trim();
    let (whole, frac) = amount.split_once('.').unwrap_or((amount, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || whole.len() > 9 {
        return Err(false);
    }
    if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(false);
    }
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(false);
    }
    if currency != CURRENCY {
        return Err(true);
    }
    let whole: u64 = whole.parse().map_err(|_| false)?;
    let frac: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").parse().map_err(|_| false)?
    };
    Ok(whole * 1_000_000 + frac)
}

/// Reads the two price headers of a request.
pub fn bid(exact: Option<&[u8]>, max: Option<&[u8]>) -> Bid {
    match (exact, max) {
        (None, None) => Bid::None,
        (Some(_), Some(_)) => Bid::Conflict,
        (Some(e), None) => match parse_amount(e) {
            Ok(v) => Bid::Exact(v),
            Err(true) => Bid::OtherCurrency { exact: true },
            Err(false) => Bid::Invalid,
        },
        (None, Some(m)) => match parse_amount(m) {
            Ok(v) => Bid::Max(v),
            Err(true) => Bid::OtherCurrency { exact: false },
            Err(false) => Bid::Invalid,
        },
    }
}

/// Settles a bid against a price. `None` when the crawler made no bid.
pub fn settle(price: u64, bid: Bid, authenticated: bool) -> Option<Settlement> {
    let refuse = |status, error| Some(Settlement::Refused { status, error });
    match bid {
        Bid::None => None,
        Bid::Conflict => refuse(400, "ConflictingPriceHeaders"),
        Bid::Invalid => refuse(400, "InvalidCrawlerPriceValue"),
        // Anyone who cannot be billed gets the offer again.
        _ if !authenticated => refuse(402, "StrongAuthRequired"),
        Bid::OtherCurrency { exact: true } => refuse(402, "InvalidCrawlerExactPrice"),
        Bid::OtherCurrency { exact: false } => refuse(402, "InvalidCrawlerMaxPrice"),
        Bid::Exact(v) if v == price => Some(Settlement::Charged(price)),
        Bid::Exact(_) => refuse(402, "InvalidCrawlerExactPrice"),
        Bid::Max(v) if v >= price => Some(Settlement::Charged(price)),
        Bid::Max(_) => refuse(402, "InvalidCrawlerMaxPrice"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_round_trip() {
        assert_eq!(micros(0.01), 10_000);
        assert_eq!(format_price(10_000), "EUR 0.01");
        assert_eq!(format_price(1_500_000), "EUR 1.50");
        assert_eq!(format_price(1_234_567), "EUR 1.234567");
        assert_eq!(format_price(0), "EUR 0.00");
    }

    #[test]
    fn bids() {
        assert_eq!(bid(Some(b"EUR 0.01"), None), Bid::Exact(10_000));
        assert_eq!(bid(None, Some(b" EUR 1 ")), Bid::Max(1_000_000));
        assert_eq!(bid(Some(b"EUR 0.01"), Some(b"EUR 1")), Bid::Conflict);
        assert_eq!(
            bid(Some(b"USD 0.01"), None),
            Bid::OtherCurrency { exact: true }
        );
        for bad in [
            &b"0.01"[..],
            b"EUR",
            b"EUR -1",
            b"EUR 1e3",
            b"EUR 0.0000001",
            b"eur 0.01",
            b"\xff",
            b"EUR 99999999999",
        ] {
            assert_eq!(
                bid(Some(bad), None),
                Bid::Invalid,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let huge = vec![b'1'; 10_000];
        assert_eq!(bid(None, Some(&huge)), Bid::Invalid);
    }

    #[test]
    fn settlements() {
        let p = 10_000;
        assert_eq!(settle(p, Bid::None, true), None);
        assert_eq!(settle(p, Bid::Exact(p), true), Some(Settlement::Charged(p)));
        assert_eq!(
            settle(p, Bid::Max(50_000), true),
            Some(Settlement::Charged(p))
        );
        assert_eq!(
            settle(p, Bid::Max(5_000), true),
            Some(Settlement::Refused {
                status: 402,
                error: "InvalidCrawlerMaxPrice"
            })
        );
        assert_eq!(
            settle(p, Bid::Exact(20_000), true),
            Some(Settlement::Refused {
                status: 402,
                error: "InvalidCrawlerExactPrice"
            })
        );
        assert_eq!(
            settle(p, Bid::Exact(p), false),
            Some(Settlement::Refused {
                status: 402,
                error: "StrongAuthRequired"
            })
        );
        assert_eq!(
            settle(p, Bid::Conflict, true),
            Some(Settlement::Refused {
                status: 400,
                error: "ConflictingPriceHeaders"
            })
        );
        assert_eq!(
            settle(p, Bid::Invalid, false),
            Some(Settlement::Refused {
                status: 400,
                error: "InvalidCrawlerPriceValue"
            })
        );
    }
}
