//! Calendar days (UTC) as licences, metering and the command line write them,
//! `YYYY-MM-DD`, read and written by the `time` crate: a day that does not
//! exist (`2026-02-31`, `2026-13-99`) is an error, never rolled over into the
//! next month. Instants are written as RFC 3339 ([`rfc3339`]).

use std::fmt;
use std::str::FromStr;

use time::macros::format_description;
use time::{Date, OffsetDateTime};

/// An instant as the ledger and the logs write it (RFC 3339, UTC).
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// A unix time in milliseconds as the ledger writes a request's time:
/// RFC 3339, UTC, always three decimals (so that the lines of one second
/// sort as text).
pub fn rfc3339_ms(unix_ms: u64) -> String {
    let fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| unix_ms.to_string())
}

/// One UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(Date);

/// A text that is not a `YYYY-MM-DD` day of the calendar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a date: write YYYY-MM-DD (UTC), a day that exists")]
pub struct NotADay(String);

impl FromStr for Day {
    type Err = NotADay;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fmt = format_description!("[year repr:full padding:zero]-[month]-[day]");
        Date::parse(s, &fmt)
            .ok()
            .filter(|d| (1970..=9999).contains(&d.year()))
            .map(Day)
            .ok_or_else(|| NotADay(s.to_owned()))
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = (self.0.year(), u8::from(self.0.month()), self.0.day());
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl Day {
    /// The day a unix time (seconds) falls on.
    pub fn of_unix(secs: u64) -> Day {
        let t = i64::try_from(secs)
            .ok()
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        Day(t.date())
    }

    /// The unix time at which this day starts (00:00:00 UTC).
    pub fn start_unix(self) -> u64 {
        u64::try_from(self.0.midnight().assume_utc().unix_timestamp()).unwrap_or(0)
    }

    /// The unix time at which this day ends: the next day's midnight, so that
    /// a licence that expires on a day is valid through all of it.
    pub fn end_unix(self) -> u64 {
        self.start_unix() + 86_400
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_times_keep_three_decimals() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_800_000_000_007), "2027-01-15T08:00:00.007Z");
        assert_eq!(rfc3339_ms(1_800_000_000_120), "2027-01-15T08:00:00.120Z");
        // Read back as the ledger's other times are.
        let t = OffsetDateTime::parse(
            &rfc3339_ms(1_800_000_000_999),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert_eq!(t.unix_timestamp_nanos(), 1_800_000_000_999_000_000);
    }

    #[test]
    fn reads_and_writes_days_of_the_calendar_only() {
        let d: Day = "2026-02-28".parse().unwrap();
        assert_eq!(d.to_string(), "2026-02-28");
        assert_eq!("1970-01-01".parse::<Day>().unwrap().end_unix(), 86_400);
        for bad in [
            "2026-02-31",
            "2026-13-99",
            "2026-13-01",
            "tomorrow",
            "2026-1-5",
            "",
            "1969-12-31",
        ] {
            assert!(bad.parse::<Day>().is_err(), "{bad}");
        }
        assert!("2028-02-29".parse::<Day>().is_ok());
        assert!("2026-02-29".parse::<Day>().is_err());
    }

    #[test]
    fn a_unix_time_falls_on_its_day() {
        assert_eq!(Day::of_unix(0).to_string(), "1970-01-01");
        assert_eq!(Day::of_unix(1_795_392_000).to_string(), "2026-11-23");
        assert_eq!(
            Day::of_unix(1_795_392_000 + 86_399).to_string(),
            "2026-11-23"
        );
        let d: Day = "2025-11-23".parse().unwrap();
        assert_eq!(Day::of_unix(d.start_unix()), d);
    }
}
