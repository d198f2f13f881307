//! The per-month listing of accounts with usage, and its pages.
//!
//! The admin report must not scan every key, so the metering component
//! lists the accounts with usage in a month as an append-only sequence:
//!
//! - `usage-accounts:{YYYY-MM}:count`: a counter, the entries appended;
//! - `usage-accounts:{YYYY-MM}:#{seq}`: entry `seq` (from 1), an account name;
//! - `usage-listed:{YYYY-MM}:{account}`: the account's marker, the `seq` of
//!   its entry as decimal text.
//!
//! On an account's first event of a day (an instance also remembers the
//! accounts it has listed), the component reads the marker. Without one it
//! takes the next `seq` with an atomic increment, writes the entry, then the
//! marker. Each step is O(1), whatever the number of accounts: the earlier
//! index, one JSON array per month merged by compare-and-swap, rewrote every
//! name on each new account (quadratic over a month) and had every instance
//! read and parse all of it.
//!
//! The report reads a [`Page`] of entries by `seq` and keeps those whose
//! account's marker names that entry ([`listed`]). So an entry appended
//! twice by a race between two instances counts once (the marker written
//! last wins), and an entry whose marker was never written (a failure in
//! between) is skipped until the account's next first event of a day
//! appends it again. The listing never names an account without usage.

use std::collections::HashMap;

use crate::quota::Month;
use crate::{Error, Result};

/// Accounts in a report page when the client does not say.
pub const DEFAULT_PAGE: u64 = 100;
/// The most accounts a report page may hold: each costs a read of 15
/// counters per day of the month (465 in a long month), so one page reads
/// at most 93,000 keys.
pub const MAX_PAGE: u64 = 200;

/// The counter of entries appended in a month.
pub fn count_key(month: Month) -> String {
    format!("usage-accounts:{month}:count")
}

/// Entry `seq` of a month's listing.
pub fn entry_key(month: Month, seq: u64) -> String {
    format!("usage-accounts:{month}:#{seq}")
}

/// The marker of an account listed in a month.
pub fn marker_key(month: Month, account: &str) -> String {
    format!("usage-listed:{month}:{account}")
}

/// A marker's value: the `seq` of the account's entry.
pub fn encode_marker(seq: u64) -> Vec<u8> {
    seq.to_string().into_bytes()
}

fn parse_marker(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// One page of a month's listing: the entries after `after`, at most
/// `limit` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// The last `seq` of the previous page (0 for the first page).
    pub after: u64,
    /// Entries in this page.
    pub limit: u64,
}

impl Page {
    /// The page a client asked for with `after` and `limit` (both
    /// optional); a bad value is a 422.
    pub fn parse(after: Option<&str>, limit: Option<&str>) -> Result<Page> {
        let number = |name: &str, text: &str| {
            text.parse::<u64>()
                .map_err(|_| Error::Unprocessable(format!("{name} must be a non-negative integer")))
        };
        let after = after.map_or(Ok(0), |t| number("after", t))?;
        let limit = limit.map_or(Ok(DEFAULT_PAGE), |t| number("limit", t))?;
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(Error::Unprocessable(format!(
                "limit must be between 1 and {MAX_PAGE}"
            )));
        }
        Ok(Page { after, limit })
    }

    /// The entry keys of this page, given the entries appended so far.
    pub fn entry_keys(&self, month: Month, count: u64) -> Vec<String> {
        let last = self.after.saturating_add(self.limit).min(count);
        (self.after.saturating_add(1)..=last)
            .map(|seq| entry_key(month, seq))
            .collect()
    }

    /// The next page, if entries remain after this one.
    pub fn next(&self, count: u64) -> Option<Page> {
        let last = self.after.saturating_add(self.limit);
        (last < count).then_some(Page {
            after: last,
            limit: self.limit,
        })
    }
}

/// The accounts of a page, in `seq` order: each entry whose account's
/// marker names it. `entries` maps entry keys to account names (missing
/// entries are holes), `markers` maps marker keys to their values.
pub fn listed(
    month: Month,
    page: Page,
    count: u64,
    entries: &HashMap<String, Vec<u8>>,
    markers: &HashMap<String, Vec<u8>>,
) -> Vec<String> {
    let last = page.after.saturating_add(page.limit).min(count);
    (page.after.saturating_add(1)..=last)
        .filter_map(|seq| {
            let name = std::str::from_utf8(entries.get(&entry_key(month, seq))?).ok()?;
            let marker = markers.get(&marker_key(month, name))?;
            (parse_marker(marker) == Some(seq)).then(|| name.to_string())
        })
        .collect()
}

/// The marker keys to read for a page's entries.
pub fn marker_keys(month: Month, entries: &HashMap<String, Vec<u8>>) -> Vec<String> {
    let mut keys: Vec<String> = entries
        .values()
        .filter_map(|v| std::str::from_utf8(v).ok())
        .map(|name| marker_key(month, name))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARCH: Month = Month {
        year: 2024,
        month: 3,
    };

    fn store(pairs: &[(String, &str)]) -> HashMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn keys_name_the_month_the_entry_and_the_account() {
        assert_eq!(count_key(MARCH), "usage-accounts:2024-03:count");
        assert_eq!(entry_key(MARCH, 7), "usage-accounts:2024-03:#7");
        assert_eq!(marker_key(MARCH, "alice"), "usage-listed:2024-03:alice");
        assert_eq!(encode_marker(12), b"12");
    }

    #[test]
    fn pages_cover_every_entry_once_and_stop() {
        let page = Page::parse(None, Some("2")).expect("page");
        assert_eq!(
            page.entry_keys(MARCH, 5),
            [entry_key(MARCH, 1), entry_key(MARCH, 2)]
        );
        let mut seen = Vec::new();
        let mut next = Some(page);
        while let Some(p) = next {
            seen.extend(p.entry_keys(MARCH, 5));
            next = p.next(5);
        }
        let all: Vec<String> = (1..=5).map(|s| entry_key(MARCH, s)).collect();
        assert_eq!(seen, all);
        assert_eq!(Page { after: 4, limit: 2 }.next(6), None);
        assert_eq!(
            Page::parse(None, None)
                .expect("default")
                .entry_keys(MARCH, 0),
            Vec::<String>::new()
        );
    }

    #[test]
    fn bad_page_parameters_are_422() {
        for (after, limit) in [
            (Some("-1"), None),
            (Some("x"), None),
            (None, Some("0")),
            (None, Some("201")),
            (None, Some("1e3")),
        ] {
            assert_eq!(
                Page::parse(after, limit).map_err(|e| e.status()),
                Err(422),
                "{after:?} {limit:?}"
            );
        }
        assert_eq!(
            Page::parse(Some(&u64::MAX.to_string()), Some("200")).map(|p| p.next(u64::MAX)),
            Ok(None)
        );
    }

    #[test]
    fn an_entry_counts_only_when_its_accounts_marker_names_it() {
        // alice raced herself (entries 1 and 3; her marker names 3), bob's
        // marker was never written, entry 4 is a hole, carol is whole.
        let entries = store(&[
            (entry_key(MARCH, 1), "alice"),
            (entry_key(MARCH, 2), "bob"),
            (entry_key(MARCH, 3), "alice"),
            (entry_key(MARCH, 5), "carol"),
        ]);
        assert_eq!(
            marker_keys(MARCH, &entries),
            [
                marker_key(MARCH, "alice"),
                marker_key(MARCH, "bob"),
                marker_key(MARCH, "carol")
            ]
        );
        let markers = store(&[
            (marker_key(MARCH, "alice"), "3"),
            (marker_key(MARCH, "carol"), "5"),
        ]);
        let page = Page::parse(None, Some("10")).expect("page");
        assert_eq!(
            listed(MARCH, page, 5, &entries, &markers),
            ["alice", "carol"]
        );
        // A page sees only its own range.
        let first = Page { after: 0, limit: 2 };
        assert_eq!(
            listed(MARCH, first, 5, &entries, &markers),
            Vec::<String>::new()
        );
        let second = Page { after: 2, limit: 2 };
        assert_eq!(listed(MARCH, second, 5, &entries, &markers), ["alice"]);
    }
}
