//! Time, once: UTC calendar arithmetic, RFC 3339 timestamps and HTTP
//! dates. The core never reads a clock; every function takes the time.
//!
//! - The day/civil-date conversion is Howard Hinnant's `days_from_civil` /
//!   `civil_from_days` (<https://howardhinnant.github.io/date_algorithms.html>),
//!   exact for the proleptic Gregorian calendar.
//! - RFC 3339 parsing accepts `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (a
//!   `t` or a space for the `T`, a lower-case `z`), which covers Go's
//!   `time.RFC3339` that WME documents. Output is always UTC with `Z`, to
//!   the second.
//! - HTTP dates (RFC 9110 IMF-fixdate) through the `httpdate` crate.

use std::fmt::Write;

use crate::{Error, Result};

/// Seconds in one day.
pub const DAY: i64 = 86_400;

/// Days since 1970-01-01 for a proleptic Gregorian civil date.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Both values are small and positive by construction (1..=31, 1..=12).
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Whether `year` is a Gregorian leap year.
pub fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}
/// The number of days in a month of a year.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
}

/// Parses an RFC 3339 timestamp into Unix milliseconds.
pub fn parse_millis(text: &str) -> Result<i64> {
    let bad = || {
        Error::Unprocessable(format!(
            "invalid timestamp '{text}': expected RFC 3339, e.g. 2006-01-02T15:04:05Z"
        ))
    };
    let b = text.trim().as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let year = digits(&b[0..4]).ok_or_else(bad)?;
    let month = digits(&b[5..7]).ok_or_else(bad)? as u32;
    let day = digits(&b[8..10]).ok_or_else(bad)? as u32;
    let hour = digits(&b[11..13]).ok_or_else(bad)?;
    let minute = digits(&b[14..16]).ok_or_else(bad)?;
    let second = digits(&b[17..19]).ok_or_else(bad)?;
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad());
    }
    let mut rest = &b[19..];
    let mut millis = 0i64;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let len = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if len == 0 {
            return Err(bad());
        }
        let first3: Vec<u8> = fraction[..len]
            .iter()
            .copied()
            .chain(std::iter::repeat(b'0'))
            .take(3)
            .collect();
        millis = digits(&first3).ok_or_else(bad)?;
        rest = &fraction[len..];
    }
    let offset_seconds = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = digits(&[*h1, *h2]).ok_or_else(bad)?;
            let m = digits(&[*m1, *m2]).ok_or_else(bad)?;
            if h > 23 || m > 59 {
                return Err(bad());
            }
            let s = h * 3600 + m * 60;
            if *sign == b'-' { -s } else { s }
        }
        _ => return Err(bad()),
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Ok(seconds * 1000 + millis)
}

/// Writes `YYYY-MM` or `YYYY-MM-DD` (`{year:04}-{month:02}[-{day:02}]`).
/// Every usage counter's key holds a date, so this runs on every metered
/// request: the digits are placed by
/// hand for the years 0 to 9999 rather than through `{:04}`'s padding,
/// which cost a guest several thousand instructions per request
/// (BENCHMARKS.md); other years go the long way, with the same result.
pub fn write_date(
    f: &mut impl std::fmt::Write,
    year: i64,
    month: u32,
    day: Option<u32>,
) -> std::fmt::Result {
    let digit = |n: u32| b'0' + (n % 10) as u8;
    let (Ok(y @ 0..=9999), 0..=99, 0..=99) = (u32::try_from(year), month, day.unwrap_or(0)) else {
        return match day {
            Some(day) => write!(f, "{year:04}-{month:02}-{day:02}"),
            None => write!(f, "{year:04}-{month:02}"),
        };
    };
    let mut text = [
        digit(y / 1000),
        digit(y / 100),
        digit(y / 10),
        digit(y),
        b'-',
        digit(month / 10),
        digit(month),
        b'-',
        b'0',
        b'0',
    ];
    let len = match day {
        Some(day) => {
            text[8] = digit(day / 10);
            text[9] = digit(day);
            10
        }
        None => 7,
    };
    f.write_str(std::str::from_utf8(&text[..len]).unwrap_or_default())
}

/// Formats Unix milliseconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_millis(millis: i64) -> String {
    let seconds = millis.div_euclid(1000);
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let s = seconds.rem_euclid(86_400);
    let mut out = String::with_capacity(20);
    let _ = write_date(&mut out, year, month, Some(day));
    let _ = write!(out, "T{:02}:{:02}:{:02}Z", s / 3600, (s / 60) % 60, s % 60);
    out
}

/// Unix seconds as RFC 3339 UTC (`2024-08-29T00:03:26Z`).
pub fn rfc3339(unix: i64) -> String {
    format_millis(unix.saturating_mul(1000))
}

/// An RFC 3339 timestamp as Unix seconds (fractions dropped); `None` when it
/// is not one.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    parse_millis(text).ok().map(|ms| ms.div_euclid(1000))
}

/// Unix seconds as an HTTP date (`Thu, 29 Aug 2024 00:03:26 GMT`); times
/// before 1970 are given as 1970.
pub fn http_date(unix: i64) -> String {
    let secs = u64::try_from(unix).unwrap_or(0);
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// An HTTP date as Unix seconds; `None` when it is not one.
pub fn parse_http_date(text: &str) -> Option<i64> {
    let t = httpdate::parse_http_date(text.trim()).ok()?;
    let secs = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utc_offsets_and_fractions() {
        assert_eq!(parse_millis("1970-01-01T00:00:00Z").ok(), Some(0));
        assert_eq!(
            parse_millis("2024-10-04T15:09:55Z").ok(),
            Some(1_728_054_595_000)
        );
        assert_eq!(
            parse_millis("2024-10-04T17:09:55.25+02:00").ok(),
            Some(1_728_054_595_250)
        );
        for bad in [
            "",
            "yesterday",
            "2024-10-04",
            "2024-13-04T00:00:00Z",
            "2024-02-30T00:00:00Z",
            "2024-10-04T00:00:00",
            "2024-10-04T00:00:00+0200",
        ] {
            assert!(parse_millis(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_as_utc_seconds() {
        assert_eq!(format_millis(1_728_054_595_250), "2024-10-04T15:09:55Z");
        assert_eq!(
            parse_millis(&format_millis(1_728_054_595_000)).ok(),
            Some(1_728_054_595_000)
        );
    }

    #[test]
    fn seconds_and_http_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        let t = 1_724_889_806;
        assert_eq!(rfc3339(t), "2024-08-29T00:03:26Z");
        assert_eq!(http_date(t), "Thu, 29 Aug 2024 00:03:26 GMT");
        assert_eq!(parse_http_date("Thu, 29 Aug 2024 00:03:26 GMT"), Some(t));
        assert_eq!(parse_http_date("yesterday"), None);
        assert_eq!(parse_rfc3339("2024-08-29T00:03:26.941150359Z"), Some(t));
        assert_eq!(parse_rfc3339("2024-08-29"), None);
        assert_eq!(parse_rfc3339("2024-13-29T00:03:26Z"), None);
    }
}
