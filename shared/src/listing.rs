//! Append-only listings: the members of a set that only grows (accounts;
//! a month's accounts with usage), kept so that adding a member is O(1)
//! whatever the set's size, and read back in bounded pages.
//!
//! A listing named `N` is three kinds of keys:
//!
//! - `N:count`: a counter, the entries appended;
//! - `N:#{seq}`: entry `seq` (from 1), a member's name;
//! - `N:@{member}`: the member's marker, the `seq` of its entry as decimal
//!   text.
//!
//! To add a member, read its marker; without one, take the next `seq` with
//! an atomic increment, write the entry, then the marker. No step rewrites
//! anything that grows with the set: the single JSON arrays these replace
//! (one per month of usage, one for the account directory) were rewritten
//! in full, by compare-and-swap, on each new member (quadratic in the set)
//! and read and parsed whole by every reader.
//!
//! A reader takes a [`Page`] of entries by `seq` and keeps those whose
//! member's marker names that entry ([`Listing::members`]). So an entry
//! appended twice by a race counts once (the marker written last wins),
//! and an entry whose marker was never written (a failure in between) is
//! skipped until the member is added again. A listing never names a member
//! that was not added.

use std::collections::HashMap;

use crate::{Error, Result};

/// A listing: its keys share the prefix `{name}:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    name: String,
}

impl Listing {
    /// The listing called `name`.
    pub fn new(name: impl Into<String>) -> Listing {
        Listing { name: name.into() }
    }

    /// The counter of entries appended.
    pub fn count_key(&self) -> String {
        format!("{}:count", self.name)
    }

    /// Entry `seq`.
    pub fn entry_key(&self, seq: u64) -> String {
        format!("{}:#{seq}", self.name)
    }

    /// A member's marker.
    pub fn marker_key(&self, member: &str) -> String {
        format!("{}:@{member}", self.name)
    }

    /// The entry keys of `page`, given the entries appended so far.
    pub fn entry_keys(&self, page: Page, count: u64) -> Vec<String> {
        page.seqs(count).map(|seq| self.entry_key(seq)).collect()
    }

    /// The marker keys to read for a page's entries.
    pub fn marker_keys(&self, entries: &HashMap<String, Vec<u8>>) -> Vec<String> {
        let mut keys: Vec<String> = entries
            .values()
            .filter_map(|v| std::str::from_utf8(v).ok())
            .map(|name| self.marker_key(name))
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// The members of a page, in `seq` order: each entry whose member's
    /// marker names it. `entries` maps entry keys to names (missing entries
    /// are holes), `markers` maps marker keys to their values.
    pub fn members(
        &self,
        page: Page,
        count: u64,
        entries: &HashMap<String, Vec<u8>>,
        markers: &HashMap<String, Vec<u8>>,
    ) -> Vec<String> {
        page.seqs(count)
            .filter_map(|seq| {
                let name = std::str::from_utf8(entries.get(&self.entry_key(seq))?).ok()?;
                let marker = markers.get(&self.marker_key(name))?;
                (parse_marker(marker) == Some(seq)).then(|| name.to_string())
            })
            .collect()
    }
}

/// A marker's value: the `seq` of the member's entry.
pub fn encode_marker(seq: u64) -> Vec<u8> {
    seq.to_string().into_bytes()
}

fn parse_marker(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// The `seq` an atomic increment of the count returned (a negative count
/// is corruption: 500).
pub fn seq(count: i64) -> Result<u64> {
    u64::try_from(count).map_err(|_| Error::Internal(format!("listing count {count}")))
}

/// One page of a listing: the entries after `after`, at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// The last `seq` of the previous page (0 for the first page).
    pub after: u64,
    /// Entries in this page.
    pub limit: u64,
}

impl Page {
    /// The page a client asked for with `after` and `limit` (both
    /// optional; `limit` defaults to `default` and may not exceed `max`);
    /// a bad value is a 422.
    pub fn parse(after: Option<&str>, limit: Option<&str>, default: u64, max: u64) -> Result<Page> {
        let number = |name: &str, text: &str| {
            text.parse::<u64>()
                .map_err(|_| Error::Unprocessable(format!("{name} must be a non-negative integer")))
        };
        let after = after.map_or(Ok(0), |t| number("after", t))?;
        let limit = limit.map_or(Ok(default), |t| number("limit", t))?;
        if !(1..=max).contains(&limit) {
            return Err(Error::Unprocessable(format!(
                "limit must be between 1 and {max}"
            )));
        }
        Ok(Page { after, limit })
    }

    fn seqs(&self, count: u64) -> std::ops::RangeInclusive<u64> {
        self.after.saturating_add(1)..=self.after.saturating_add(self.limit).min(count)
    }

    /// The next page, if entries remain after this one.
    pub fn next(&self, count: u64) -> Option<Page> {
        let last = self.after.saturating_add(self.limit);
        (last < count).then_some(Page {
            after: last,
            limit: self.limit,
        })
    }

    /// The `Link` header value to the next page of `path` (which carries
    /// its other query parameters, ending in `?` or `&`), if there is one.
    pub fn next_link(&self, path: &str, count: u64) -> Option<String> {
        self.next(count).map(|next| {
            format!(
                "<{path}limit={}&after={}>; rel=\"next\"",
                next.limit, next.after
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(pairs: &[(String, &str)]) -> HashMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn keys_share_the_listings_prefix() {
        let l = Listing::new("usage-accounts:2024-03");
        assert_eq!(l.count_key(), "usage-accounts:2024-03:count");
        assert_eq!(l.entry_key(7), "usage-accounts:2024-03:#7");
        assert_eq!(l.marker_key("alice"), "usage-accounts:2024-03:@alice");
        assert_eq!(encode_marker(12), b"12");
        assert_eq!(seq(3), Ok(3));
        assert_eq!(seq(-1).map_err(|e| e.status()), Err(500));
    }

    #[test]
    fn pages_cover_every_entry_once_and_stop() {
        let l = Listing::new("x");
        let page = Page::parse(None, Some("2"), 100, 200).expect("page");
        assert_eq!(l.entry_keys(page, 5), ["x:#1", "x:#2"]);
        let mut seen = Vec::new();
        let mut next = Some(page);
        while let Some(p) = next {
            seen.extend(l.entry_keys(p, 5));
            next = p.next(5);
        }
        assert_eq!(seen, ["x:#1", "x:#2", "x:#3", "x:#4", "x:#5"]);
        assert_eq!(Page { after: 4, limit: 2 }.next(6), None);
        let first = Page::parse(None, None, 100, 200).expect("default");
        assert_eq!(
            first,
            Page {
                after: 0,
                limit: 100
            }
        );
        assert_eq!(l.entry_keys(first, 0), Vec::<String>::new());
        assert_eq!(
            page.next_link("/v1/admin/usage?month=2024-03&", 5)
                .as_deref(),
            Some("</v1/admin/usage?month=2024-03&limit=2&after=2>; rel=\"next\"")
        );
        assert_eq!(Page { after: 4, limit: 2 }.next_link("/p?", 5), None);
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
                Page::parse(after, limit, 100, 200).map_err(|e| e.status()),
                Err(422),
                "{after:?} {limit:?}"
            );
        }
        let last = Page::parse(Some(&u64::MAX.to_string()), Some("200"), 100, 200);
        assert_eq!(last.map(|p| p.next(u64::MAX)), Ok(None));
    }

    #[test]
    fn an_entry_counts_only_when_its_members_marker_names_it() {
        // alice raced herself (entries 1 and 3; her marker names 3), bob's
        // marker was never written, entry 4 is a hole, carol is whole.
        let l = Listing::new("m");
        let entries = store(&[
            (l.entry_key(1), "alice"),
            (l.entry_key(2), "bob"),
            (l.entry_key(3), "alice"),
            (l.entry_key(5), "carol"),
        ]);
        assert_eq!(l.marker_keys(&entries), ["m:@alice", "m:@bob", "m:@carol"]);
        let markers = store(&[(l.marker_key("alice"), "3"), (l.marker_key("carol"), "5")]);
        let all = Page {
            after: 0,
            limit: 10,
        };
        assert_eq!(l.members(all, 5, &entries, &markers), ["alice", "carol"]);
        // A page sees only its own range.
        let first = Page { after: 0, limit: 2 };
        assert_eq!(
            l.members(first, 5, &entries, &markers),
            Vec::<String>::new()
        );
        let second = Page { after: 2, limit: 2 };
        assert_eq!(l.members(second, 5, &entries, &markers), ["alice"]);
    }
}
