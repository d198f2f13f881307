//! RFC 3339 timestamps as the Realtime API reads and writes them.
//!
//! Parsing accepts `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (a `t` or a
//! space for the `T`, a lower-case `z`), which covers Go's `time.RFC3339`
//! that WME documents. Output is always UTC with `Z`, to the second.

use crate::quota::period::{civil_from_days, days_from_civil, days_in_month};
use crate::{Error, Result};

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

/// Formats Unix milliseconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_millis(millis: i64) -> String {
    let seconds = millis.div_euclid(1000);
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let s = seconds.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
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
}
