//! The account directory: every account's username, so that listing
//! accounts does not scan the whole key-value store (which also holds the
//! article cache). It is the append-only [`listing`] `accounts`: creating
//! an account adds it in O(1), and `GET /v1/admin/accounts` reads it in
//! pages, in the order accounts were created.
//!
//! Before, the directory was one sorted JSON array under [`LEGACY_KEY`],
//! rewritten in full by compare-and-swap on every new account (quadratic
//! in the accounts) and read whole by every listing. A store that still
//! has one is moved into the listing once ([`legacy_usernames`]).

use crate::listing::Listing;
use crate::{Error, Result};

/// Accounts in a page when the client does not say.
pub const DEFAULT_PAGE: u64 = 100;
/// The most accounts a page may hold (each is one read).
pub const MAX_PAGE: u64 = 200;

/// The key of the directory as a single JSON array (before the listing).
pub const LEGACY_KEY: &str = "account-directory";

/// The listing of every account.
pub fn listing() -> Listing {
    Listing::new("accounts")
}

/// The usernames of a stored legacy directory; a corrupt one is our fault
/// (500).
pub fn legacy_usernames(bytes: &[u8]) -> Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Legacy {
        usernames: Vec<String>,
    }
    serde_json::from_slice::<Legacy>(bytes)
        .map(|d| d.usernames)
        .map_err(|e| Error::Internal(format!("stored account directory: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_legacy_directory_reads_back_and_the_listing_has_its_own_keys() {
        assert_eq!(
            legacy_usernames(br#"{"usernames":["alice","bob"]}"#),
            Ok(vec!["alice".to_string(), "bob".to_string()])
        );
        assert_eq!(legacy_usernames(b"x").map_err(|e| e.status()), Err(500));
        assert_eq!(listing().marker_key("alice"), "accounts:@alice");
        assert_ne!(listing().count_key(), LEGACY_KEY);
    }
}
