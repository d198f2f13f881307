//! UTC calendar arithmetic: days, months, period keys and reset times.
//!
//! Quota months and metering days are UTC calendar periods. The core never
//! reads a clock: every function takes the current time as unix seconds.
//! The calendar arithmetic itself is [`crate::time`]'s.

use std::fmt;

pub use crate::time::{DAY, civil_from_days, days_from_civil, days_in_month, is_leap_year};
use crate::{Error, Result};

/// A UTC calendar day, the metering period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// The year, 0000 to 9999 when parsed.
    pub year: i64,
    /// The month, 1 to 12.
    pub month: u32,
    /// The day of the month, 1 to 31.
    pub day: u32,
}

impl Date {
    /// The UTC day containing the unix time `now`.
    pub fn from_unix(now: i64) -> Date {
        Date::from_days(now.div_euclid(DAY))
    }

    /// The day with the given number of days since 1970-01-01.
    pub fn from_days(days: i64) -> Date {
        let (year, month, day) = civil_from_days(days);
        Date { year, month, day }
    }

    /// Days since 1970-01-01.
    pub fn days(self) -> i64 {
        days_from_civil(self.year, self.month, self.day)
    }

    /// The unix time of this day's first second.
    pub fn start(self) -> i64 {
        self.days() * DAY
    }

    /// The following day.
    pub fn next(self) -> Date {
        Date::from_days(self.days() + 1)
    }

    /// The month this day belongs to.
    pub fn month(self) -> Month {
        Month {
            year: self.year,
            month: self.month,
        }
    }

    /// Parses a strict `YYYY-MM-DD` date: four-digit year, two-digit month
    /// and day, a day that exists in that month, nothing else.
    pub fn parse(text: &str) -> Result<Date> {
        let bad = || Error::Unprocessable(format!("invalid date '{text}': expected YYYY-MM-DD"));
        let b = text.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(bad());
        }
        let year = digits(&b[0..4]).ok_or_else(bad)?;
        let month = digits(&b[5..7]).ok_or_else(bad)? as u32;
        let day = digits(&b[8..10]).ok_or_else(bad)? as u32;
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return Err(Error::Unprocessable(format!(
                "invalid date '{text}': no such day"
            )));
        }
        Ok(Date { year, month, day })
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::time::write_date(f, self.year, self.month, Some(self.day))
    }
}

/// A UTC calendar month, the quota period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    /// The year.
    pub year: i64,
    /// The month, 1 to 12.
    pub month: u32,
}

impl Month {
    /// The UTC month containing the unix time `now`.
    pub fn from_unix(now: i64) -> Month {
        Date::from_unix(now).month()
    }

    /// The unix time of this month's first second.
    pub fn start(self) -> i64 {
        days_from_civil(self.year, self.month, 1) * DAY
    }

    /// The following month (December rolls over to January).
    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// The length of this month in seconds.
    pub fn seconds(self) -> i64 {
        i64::from(days_in_month(self.year, self.month)) * DAY
    }

    /// Parses a strict `YYYY-MM` month.
    pub fn parse(text: &str) -> Result<Month> {
        let bad = || Error::Unprocessable(format!("invalid month '{text}': expected YYYY-MM"));
        let b = text.as_bytes();
        if b.len() != 7 || b[4] != b'-' {
            return Err(bad());
        }
        let year = digits(&b[0..4]).ok_or_else(bad)?;
        let month = digits(&b[5..7]).ok_or_else(bad)? as u32;
        if !(1..=12).contains(&month) {
            return Err(bad());
        }
        Ok(Month { year, month })
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::time::write_date(f, self.year, self.month, None)
    }
}

/// Parses a run of ASCII digits (no sign, no spaces).
fn digits(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        bytes
            .iter()
            .fold(0, |acc, b| acc * 10 + i64::from(b - b'0')),
    )
}

/// The month key `YYYY-MM` of the unix time `now`.
pub fn month_key(now: i64) -> String {
    Month::from_unix(now).to_string()
}

/// The day key `YYYY-MM-DD` of the unix time `now`.
pub fn day_key(now: i64) -> String {
    Date::from_unix(now).to_string()
}

/// The second key of the unix time `now`: the decimal unix second.
pub fn second_key(now: i64) -> String {
    now.to_string()
}

/// Seconds from `now` until the start of the next UTC month, when monthly
/// quotas reset; always at least 1.
pub fn seconds_until_next_month(now: i64) -> u64 {
    let reset = Month::from_unix(now).next().start();
    u64::try_from(reset - now).unwrap_or(1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_months_are_written_as_padded_formatting_writes_them() {
        for year in [
            -12_345, -1, 0, 7, 99, 999, 1970, 2024, 9999, 10_000, 123_456,
        ] {
            for (month, day) in [(1, 1), (2, 29), (9, 30), (10, 9), (12, 31)] {
                let date = Date { year, month, day };
                assert_eq!(date.to_string(), format!("{year:04}-{month:02}-{day:02}"));
                let month = Month { year, month };
                assert_eq!(
                    month.to_string(),
                    format!("{:04}-{:02}", month.year, month.month)
                );
            }
        }
        assert_eq!(Date::from_unix(LEAP_DAY).to_string(), "2024-02-29");
        assert_eq!(Month::from_unix(LEAP_DAY).to_string(), "2024-02");
    }

    /// 2024-02-29T00:00:00Z.
    const LEAP_DAY: i64 = 1_709_164_800;

    fn check_date(now: i64, expect: &str) {
        assert_eq!(day_key(now), expect, "day key of {now}");
    }

    #[test]
    fn unix_times_map_to_their_utc_day() {
        check_date(0, "1970-01-01");
        check_date(-1, "1969-12-31");
        check_date(LEAP_DAY, "2024-02-29");
        check_date(LEAP_DAY - 1, "2024-02-28");
        check_date(951_782_400, "2000-02-29");
        check_date(1_735_689_599, "2024-12-31");
        check_date(1_735_689_600, "2025-01-01");
    }

    #[test]
    fn civil_conversion_round_trips_for_every_day_over_800_years() {
        for days in days_from_civil(1800, 1, 1)..days_from_civil(2600, 1, 1) {
            let (y, m, d) = civil_from_days(days);
            assert!(d >= 1 && d <= days_in_month(y, m));
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn leap_years_follow_the_gregorian_rules() {
        assert!(is_leap_year(2024));
        assert!(is_leap_year(2000));
        assert!(!is_leap_year(1900));
        assert!(!is_leap_year(2023));
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2100, 2), 28);
    }

    #[test]
    fn the_last_second_of_a_month_and_the_first_of_the_next_differ() {
        let jan = Month {
            year: 2025,
            month: 1,
        }
        .start();
        assert_eq!(month_key(jan - 1), "2024-12");
        assert_eq!(month_key(jan), "2025-01");
        assert_eq!(seconds_until_next_month(jan - 1), 1);
        assert_eq!(seconds_until_next_month(jan), 31 * DAY as u64);
    }

    #[test]
    fn december_rolls_over_to_january_of_the_next_year() {
        let dec = Month {
            year: 2024,
            month: 12,
        };
        assert_eq!(
            dec.next(),
            Month {
                year: 2025,
                month: 1
            }
        );
        assert_eq!(dec.next().start(), 1_735_689_600);
    }

    #[test]
    fn february_of_a_leap_year_resets_after_29_days() {
        let feb = Month {
            year: 2024,
            month: 2,
        }
        .start();
        assert_eq!(seconds_until_next_month(feb), 29 * DAY as u64);
        assert_eq!(
            Month {
                year: 2023,
                month: 2
            }
            .seconds(),
            28 * DAY
        );
    }

    fn check_parse(text: &str, expect: Option<&str>) {
        match (Date::parse(text), expect) {
            (Ok(d), Some(e)) => assert_eq!(d.to_string(), e),
            (Err(err), None) => assert_eq!(err.status(), 422, "{text}"),
            (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn dates_parse_strictly() {
        check_parse("2024-02-29", Some("2024-02-29"));
        check_parse("2023-02-29", None);
        check_parse("2024-04-31", None);
        check_parse("2024-13-01", None);
        check_parse("2024-00-10", None);
        check_parse("2024-1-01", None);
        check_parse("2024-01-01 ", None);
        check_parse("+024-01-01", None);
        check_parse("2024/01/01", None);
        check_parse("", None);
        check_parse("2024-01-1a", None);
    }

    #[test]
    fn months_parse_strictly() {
        assert_eq!(
            Month::parse("2024-12").map(|m| m.to_string()),
            Ok("2024-12".into())
        );
        for bad in [
            "2024-13",
            "2024-00",
            "2024-1",
            "24-01",
            "2024-01-01",
            "２０２４-01",
        ] {
            assert!(Month::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_step_across_month_and_year_ends() {
        let d = Date::parse("2024-12-31").map(Date::next);
        assert_eq!(d.map(|d| d.to_string()), Ok("2025-01-01".into()));
        let d = Date::parse("2023-02-28").map(Date::next);
        assert_eq!(d.map(|d| d.to_string()), Ok("2023-03-01".into()));
    }
}
