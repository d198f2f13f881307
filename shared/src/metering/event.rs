//! Usage counter keys and the increments one metered event makes.
//!
//! Counters are per account, per UTC day, per product and per kind:
//! `usage:{account}:{YYYY-MM-DD}:{product}:{admitted|denied|bytes}`.
//! An admitted request adds 1 to `admitted` and its body size to `bytes`;
//! a denied one adds 1 to `denied`. The caller applies each pair with an
//! atomic increment, once per request, so nothing is counted twice.

use std::fmt;

use super::MeteredProduct;
use crate::quota::Date;

/// What a usage counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Requests admitted.
    Admitted,
    /// Requests denied by quota or rate limits.
    Denied,
    /// Response bytes sent for admitted requests.
    Bytes,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 3] = [Kind::Admitted, Kind::Denied, Kind::Bytes];

    /// The name used in keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Admitted => "admitted",
            Kind::Denied => "denied",
            Kind::Bytes => "bytes",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The key of one usage counter.
pub fn usage_key(account: &str, date: Date, product: MeteredProduct, kind: Kind) -> String {
    // Built by pieces rather than with `format!`: two keys per metered
    // request (BENCHMARKS.md).
    use fmt::Write;
    let product = product.as_str();
    let mut key = String::with_capacity(40 + account.len() + product.len());
    key.push_str("usage:");
    key.push_str(account);
    key.push(':');
    let _ = write!(key, "{date}");
    key.push(':');
    key.push_str(product);
    key.push(':');
    key.push_str(kind.as_str());
    key
}

/// What happened to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Admitted and served with this many body bytes.
    Admitted {
        /// Response body bytes.
        bytes: u64,
    },
    /// Denied by a quota or rate limit.
    Denied,
}

/// The `(key, delta)` increments to apply for one event at unix time `now`.
pub fn increments(
    account: &str,
    product: MeteredProduct,
    outcome: Outcome,
    now: i64,
) -> Vec<(String, i64)> {
    let date = Date::from_unix(now);
    match outcome {
        Outcome::Admitted { bytes } => {
            let mut out = vec![(usage_key(account, date, product, Kind::Admitted), 1)];
            if bytes > 0 {
                let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
                out.push((usage_key(account, date, product, Kind::Bytes), bytes));
            }
            out
        }
        Outcome::Denied => vec![(usage_key(account, date, product, Kind::Denied), 1)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-03-01T00:00:00Z.
    const MAR_1: i64 = 1_709_251_200;

    #[test]
    fn an_admitted_event_counts_the_request_and_its_bytes() {
        assert_eq!(
            increments(
                "alice",
                MeteredProduct::StructuredContents,
                Outcome::Admitted { bytes: 512 },
                MAR_1
            ),
            vec![
                (
                    "usage:alice:2024-03-01:structured-contents:admitted".to_string(),
                    1
                ),
                (
                    "usage:alice:2024-03-01:structured-contents:bytes".to_string(),
                    512
                ),
            ]
        );
    }

    #[test]
    fn a_denied_event_counts_only_the_denial_on_its_utc_day() {
        assert_eq!(
            increments("alice", MeteredProduct::Chunk, Outcome::Denied, MAR_1 - 1),
            vec![("usage:alice:2024-02-29:chunk:denied".to_string(), 1)]
        );
    }

    #[test]
    fn an_empty_body_adds_no_bytes_increment() {
        let incs = increments(
            "alice",
            MeteredProduct::Ondemand,
            Outcome::Admitted { bytes: 0 },
            MAR_1,
        );
        assert_eq!(incs.len(), 1);
    }
}
