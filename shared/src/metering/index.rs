//! The per-month index of accounts with usage.
//!
//! The admin report must not scan every key, so the metering component
//! keeps `usage-accounts:{YYYY-MM}`: a JSON array of account names, sorted
//! and without duplicates. On an account's first event of a month (it can
//! remember this per instance), the component reads the index, calls
//! [`merge`], and writes the result back if it changed. The index may
//! briefly miss an account under concurrent writers; re-merging on later
//! events repairs it, and it never lists an account without usage.

use std::collections::BTreeSet;

use crate::quota::Month;
use crate::{Error, Result};

/// The index key for a month: `usage-accounts:{YYYY-MM}`.
pub fn accounts_key(month: Month) -> String {
    format!("usage-accounts:{month}")
}

/// Parses a stored index (missing = empty); corruption is a 500.
pub fn parse(stored: Option<&[u8]>) -> Result<BTreeSet<String>> {
    match stored {
        None => Ok(BTreeSet::new()),
        Some(bytes) => serde_json::from_slice::<Vec<String>>(bytes)
            .map(|names| names.into_iter().collect())
            .map_err(|e| Error::Internal(format!("stored usage index: {e}"))),
    }
}

/// Adds `account` to a stored index. Returns the bytes to write, or `None`
/// when the account is already listed and nothing needs writing.
pub fn merge(stored: Option<&[u8]>, account: &str) -> Result<Option<Vec<u8>>> {
    let mut names = parse(stored)?;
    if !names.insert(account.to_string()) {
        return Ok(None);
    }
    let json =
        serde_json::to_vec(&names).map_err(|e| Error::Internal(format!("usage index: {e}")))?;
    Ok(Some(json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_the_index_sorted_and_unique() {
        let first = merge(None, "carol").expect("merge").expect("changed");
        let second = merge(Some(&first), "alice")
            .expect("merge")
            .expect("changed");
        assert_eq!(second, br#"["alice","carol"]"#);
        assert_eq!(merge(Some(&second), "carol"), Ok(None));
        let names = parse(Some(&second)).expect("parse");
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["alice", "carol"]);
    }

    #[test]
    fn the_index_key_names_the_month_and_garbage_is_an_error() {
        assert_eq!(
            accounts_key(Month {
                year: 2024,
                month: 3
            }),
            "usage-accounts:2024-03"
        );
        assert_eq!(merge(Some(b"{}"), "x").map_err(|e| e.status()), Err(500));
    }
}
