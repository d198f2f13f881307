//! Usage rows built from counters, the admin monthly report, and CSV.
//!
//! The component lists the keys to read ([`query_keys`], [`month_keys`]),
//! fetches them, decodes each with [`super::decode_counter`], and passes a
//! lookup to [`build_rows`] / [`monthly_rows`]. Missing counters count as
//! 0, and rows that are all zero are omitted. [`to_csv`] renders rows for
//! `Accept: text/csv` with a header line and RFC 4180 quoting.

use serde::{Deserialize, Serialize};

use super::event::{Kind, usage_key};
use super::{MeteredProduct, UsageQuery};
use crate::quota::{Date, Month};

/// One account's usage of one product on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRow {
    /// The day, `YYYY-MM-DD`.
    pub date: String,
    /// The product.
    pub product: MeteredProduct,
    /// Requests admitted.
    pub admitted: u64,
    /// Requests denied.
    pub denied: u64,
    /// Response bytes sent.
    pub bytes: u64,
}

/// One account's usage of one product over a month (admin report).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountUsageRow {
    /// The account's username.
    pub account: String,
    /// The month, `YYYY-MM`.
    pub month: String,
    /// The product.
    pub product: MeteredProduct,
    /// Requests admitted.
    pub admitted: u64,
    /// Requests denied.
    pub denied: u64,
    /// Response bytes sent.
    pub bytes: u64,
}

/// Totals of the three kinds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Totals {
    admitted: u64,
    denied: u64,
    bytes: u64,
}

impl Totals {
    fn add(
        &mut self,
        account: &str,
        date: Date,
        product: MeteredProduct,
        lookup: &impl Fn(&str) -> Option<i64>,
    ) {
        let get = |kind| {
            let value = lookup(&usage_key(account, date, product, kind)).unwrap_or(0);
            u64::try_from(value).unwrap_or(0)
        };
        self.admitted = self.admitted.saturating_add(get(Kind::Admitted));
        self.denied = self.denied.saturating_add(get(Kind::Denied));
        self.bytes = self.bytes.saturating_add(get(Kind::Bytes));
    }

    fn is_zero(&self) -> bool {
        *self == Totals::default()
    }
}

fn keys_for_days(account: &str, days: impl Iterator<Item = Date>) -> Vec<String> {
    let mut keys = Vec::new();
    for date in days {
        for product in MeteredProduct::ALL {
            for kind in Kind::ALL {
                keys.push(usage_key(account, date, product, kind));
            }
        }
    }
    keys
}

/// Every counter key a usage query reads, in a stable order.
pub fn query_keys(account: &str, query: &UsageQuery) -> Vec<String> {
    keys_for_days(account, query.days())
}

/// Every counter key of one account in one month.
pub fn month_keys(account: &str, month: Month) -> Vec<String> {
    keys_for_days(account, days_of(month))
}

fn days_of(month: Month) -> impl Iterator<Item = Date> {
    let first = Date::from_unix(month.start()).days();
    let next = Date::from_unix(month.next().start()).days();
    (first..next).map(Date::from_days)
}

/// The daily rows of a query, by day then product; all-zero rows omitted.
/// `lookup` returns a counter's value, `None` when it is missing.
pub fn build_rows(
    account: &str,
    query: &UsageQuery,
    lookup: impl Fn(&str) -> Option<i64>,
) -> Vec<UsageRow> {
    let mut rows = Vec::new();
    for date in query.days() {
        for product in MeteredProduct::ALL {
            let mut totals = Totals::default();
            totals.add(account, date, product, &lookup);
            if !totals.is_zero() {
                rows.push(UsageRow {
                    date: date.to_string(),
                    product,
                    admitted: totals.admitted,
                    denied: totals.denied,
                    bytes: totals.bytes,
                });
            }
        }
    }
    rows
}

/// The admin report for a month: one row per account and product, summed
/// over the month's days; all-zero rows omitted.
pub fn monthly_rows<'a>(
    accounts: impl IntoIterator<Item = &'a str>,
    month: Month,
    lookup: impl Fn(&str) -> Option<i64>,
) -> Vec<AccountUsageRow> {
    let mut rows = Vec::new();
    for account in accounts {
        for product in MeteredProduct::ALL {
            let mut totals = Totals::default();
            for date in days_of(month) {
                totals.add(account, date, product, &lookup);
            }
            if !totals.is_zero() {
                rows.push(AccountUsageRow {
                    account: account.to_string(),
                    month: month.to_string(),
                    product,
                    admitted: totals.admitted,
                    denied: totals.denied,
                    bytes: totals.bytes,
                });
            }
        }
    }
    rows
}

/// A row that can be rendered as CSV.
pub trait CsvRow {
    /// The header line's field names.
    const HEADER: &'static [&'static str];
    /// The row's fields, unquoted.
    fn fields(&self) -> Vec<String>;
}

impl CsvRow for UsageRow {
    const HEADER: &'static [&'static str] = &["date", "product", "admitted", "denied", "bytes"];

    fn fields(&self) -> Vec<String> {
        vec![
            self.date.clone(),
            self.product.to_string(),
            self.admitted.to_string(),
            self.denied.to_string(),
            self.bytes.to_string(),
        ]
    }
}

impl CsvRow for AccountUsageRow {
    const HEADER: &'static [&'static str] =
        &["account", "month", "product", "admitted", "denied", "bytes"];

    fn fields(&self) -> Vec<String> {
        vec![
            self.account.clone(),
            self.month.clone(),
            self.product.to_string(),
            self.admitted.to_string(),
            self.denied.to_string(),
            self.bytes.to_string(),
        ]
    }
}

/// Quotes a CSV field per RFC 4180 when it holds a comma, a double quote,
/// CR or LF; inner double quotes are doubled.
pub fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// Renders rows as CSV: a header line, then one line per row, each ended
/// by CRLF as RFC 4180 prescribes.
pub fn to_csv<R: CsvRow>(rows: &[R]) -> String {
    let mut out = R::HEADER.join(",");
    out.push_str("\r\n");
    for row in rows {
        let fields: Vec<String> = row.fields().iter().map(|f| csv_field(f)).collect();
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn store(entries: &[(&str, i64)]) -> HashMap<String, i64> {
        entries.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn today() -> Date {
        Date::parse("2024-03-15").expect("date")
    }

    #[test]
    fn rows_come_from_counters_with_missing_as_zero_and_zero_rows_omitted() {
        let s = store(&[
            ("usage:alice:2024-02-29:ondemand:admitted", 3),
            ("usage:alice:2024-02-29:ondemand:bytes", 3000),
            ("usage:alice:2024-03-01:chunk:denied", 2),
            ("usage:alice:2024-03-01:snapshot:admitted", 0),
            ("usage:bob:2024-03-01:chunk:admitted", 9),
        ]);
        let q = UsageQuery::parse(Some("2024-02-28"), Some("2024-03-01"), today()).expect("query");
        let rows = build_rows("alice", &q, |k| s.get(k).copied());
        let expect = vec![
            UsageRow {
                date: "2024-02-29".into(),
                product: MeteredProduct::Ondemand,
                admitted: 3,
                denied: 0,
                bytes: 3000,
            },
            UsageRow {
                date: "2024-03-01".into(),
                product: MeteredProduct::Chunk,
                admitted: 0,
                denied: 2,
                bytes: 0,
            },
        ];
        assert_eq!(rows, expect);
    }

    #[test]
    fn query_keys_cover_every_day_product_and_kind() {
        let q = UsageQuery::parse(Some("2024-03-01"), Some("2024-03-02"), today()).expect("query");
        let keys = query_keys("alice", &q);
        assert_eq!(keys.len(), 2 * 5 * 3);
        assert_eq!(keys[0], "usage:alice:2024-03-01:ondemand:admitted");
        assert_eq!(keys[29], "usage:alice:2024-03-02:realtime:bytes");
        assert_eq!(
            month_keys(
                "alice",
                Month {
                    year: 2024,
                    month: 2
                }
            )
            .len(),
            29 * 15
        );
    }

    #[test]
    fn the_monthly_report_sums_days_per_account_and_product() {
        let s = store(&[
            ("usage:alice:2024-02-01:ondemand:admitted", 1),
            ("usage:alice:2024-02-29:ondemand:admitted", 2),
            ("usage:alice:2024-03-01:ondemand:admitted", 100),
            ("usage:bob:2024-02-10:realtime:bytes", 7),
        ]);
        let rows = monthly_rows(
            ["alice", "bob", "carol"],
            Month {
                year: 2024,
                month: 2,
            },
            |k| s.get(k).copied(),
        );
        let summary: Vec<(&str, MeteredProduct, u64, u64)> = rows
            .iter()
            .map(|r| (r.account.as_str(), r.product, r.admitted, r.bytes))
            .collect();
        assert_eq!(
            summary,
            [
                ("alice", MeteredProduct::Ondemand, 3, 0),
                ("bob", MeteredProduct::Realtime, 0, 7)
            ]
        );
    }

    #[test]
    fn csv_has_a_header_crlf_lines_and_rfc_4180_quoting() {
        let rows = vec![AccountUsageRow {
            account: "a,\"b\"".into(),
            month: "2024-02".into(),
            product: MeteredProduct::StructuredContents,
            admitted: 1,
            denied: 2,
            bytes: 3,
        }];
        assert_eq!(
            to_csv(&rows),
            "account,month,product,admitted,denied,bytes\r\n\"a,\"\"b\"\"\",2024-02,structured-contents,1,2,3\r\n"
        );
        assert_eq!(
            to_csv::<UsageRow>(&[]),
            "date,product,admitted,denied,bytes\r\n"
        );
        assert_eq!(csv_field("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
