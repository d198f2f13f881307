//! The per-month listing of accounts with usage
//! ([`crate::listing`]: `usage-accounts:{YYYY-MM}`), so that the admin
//! report reads the month's accounts page by page instead of scanning every
//! key. The metering component adds an account on its first event of a day
//! (an instance also remembers the accounts it has added).

use crate::listing::Listing;
use crate::quota::Month;

/// Accounts in a report page when the client does not say.
pub const DEFAULT_PAGE: u64 = 100;
/// The most accounts a report page may hold: each costs a read of 15
/// counters per day of the month (465 in a long month), so one page reads
/// at most 93,000 keys.
pub const MAX_PAGE: u64 = 200;

/// The listing of the accounts with usage in `month`.
pub fn accounts(month: Month) -> Listing {
    Listing::new(format!("usage-accounts:{month}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listing_is_named_by_its_month() {
        let march = accounts(Month {
            year: 2024,
            month: 3,
        });
        assert_eq!(march.entry_key(1), "usage-accounts:2024-03:#1");
        assert_eq!(march.marker_key("bob"), "usage-accounts:2024-03:@bob");
    }
}
