//! `GET /v1/usage?from=YYYY-MM-DD&to=YYYY-MM-DD`: the date range.

use crate::quota::Date;
use crate::{Error, Result};

/// The longest range a query may span, in days (inclusive of both ends).
pub const MAX_DAYS: i64 = 366;

/// A validated, inclusive range of UTC days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageQuery {
    /// The first day.
    pub from: Date,
    /// The last day, inclusive.
    pub to: Date,
}

impl UsageQuery {
    /// Parses the query parameters. A missing `from` means the first day of
    /// `today`'s month, a missing `to` means `today`. Dates must be strict
    /// `YYYY-MM-DD`, `from <= to`, and the range at most [`MAX_DAYS`] days;
    /// anything else is a 422 saying which rule failed.
    pub fn parse(from: Option<&str>, to: Option<&str>, today: Date) -> Result<UsageQuery> {
        let from = match from {
            Some(text) => Date::parse(text)?,
            None => Date { day: 1, ..today },
        };
        let to = match to {
            Some(text) => Date::parse(text)?,
            None => today,
        };
        if from > to {
            return Err(Error::Unprocessable(format!(
                "from ({from}) must not be after to ({to})"
            )));
        }
        let span = to.days() - from.days() + 1;
        if span > MAX_DAYS {
            return Err(Error::Unprocessable(format!(
                "the range spans {span} days; at most {MAX_DAYS} are allowed"
            )));
        }
        Ok(UsageQuery { from, to })
    }

    /// The days of the range, in order.
    pub fn days(&self) -> impl Iterator<Item = Date> + use<> {
        (self.from.days()..=self.to.days()).map(Date::from_days)
    }

    /// The number of days in the range.
    pub fn len(&self) -> usize {
        usize::try_from(self.to.days() - self.from.days() + 1).unwrap_or(0)
    }

    /// Whether the range is empty (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> Date {
        Date::parse("2024-03-15").expect("date")
    }

    fn check(from: Option<&str>, to: Option<&str>, expect: Result<(&str, &str), &str>) {
        let got = UsageQuery::parse(from, to, today());
        match (got, expect) {
            (Ok(q), Ok((f, t))) => {
                assert_eq!((q.from.to_string(), q.to.to_string()), (f.into(), t.into()))
            }
            (Err(e), Err(needle)) => {
                assert_eq!(e.status(), 422);
                assert!(e.to_string().contains(needle), "{e} lacks {needle}");
            }
            (got, want) => panic!("{from:?}..{to:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn ranges_default_to_the_current_month_so_far() {
        check(None, None, Ok(("2024-03-01", "2024-03-15")));
        check(Some("2024-02-01"), None, Ok(("2024-02-01", "2024-03-15")));
    }

    #[test]
    fn ranges_are_validated() {
        check(
            Some("2024-03-02"),
            Some("2024-03-01"),
            Err("must not be after"),
        );
        check(
            Some("2024-3-01"),
            Some("2024-03-01"),
            Err("expected YYYY-MM-DD"),
        );
        check(Some("2023-02-29"), None, Err("no such day"));
        check(Some("2023-03-15"), Some("2024-03-15"), Err("367 days"));
        check(
            Some("2023-03-16"),
            Some("2024-03-15"),
            Ok(("2023-03-16", "2024-03-15")),
        );
        check(
            Some("2024-03-15"),
            Some("2024-03-15"),
            Ok(("2024-03-15", "2024-03-15")),
        );
    }

    #[test]
    fn days_iterate_across_month_ends() {
        let q = UsageQuery::parse(Some("2024-02-28"), Some("2024-03-01"), today()).expect("ok");
        let days: Vec<String> = q.days().map(|d| d.to_string()).collect();
        assert_eq!(days, ["2024-02-28", "2024-02-29", "2024-03-01"]);
        assert_eq!(q.len(), 3);
    }
}
