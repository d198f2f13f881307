//! The account directory: the sorted list of usernames, so that listing
//! accounts does not scan the whole key-value store (which also holds the
//! article cache). Stored as JSON under [`KEY`] and updated with
//! compare-and-swap when an account is created.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The directory's key.
pub const KEY: &str = "account-directory";

/// The usernames of every account, sorted and unique.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    /// The usernames.
    pub usernames: Vec<String>,
}

impl Directory {
    /// Parses a stored directory; a corrupt one is our fault (500).
    pub fn from_json(bytes: &[u8]) -> Result<Directory> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::Internal(format!("stored account directory: {e}")))
    }

    /// The directory as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Inserts a username in order; returns whether it was new.
    pub fn insert(&mut self, username: &str) -> bool {
        match self
            .usernames
            .binary_search_by(|u| u.as_str().cmp(username))
        {
            Ok(_) => false,
            Err(at) => {
                self.usernames.insert(at, username.to_string());
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_stay_sorted_and_unique() {
        let mut d = Directory::default();
        assert!(d.insert("carol"));
        assert!(d.insert("alice"));
        assert!(!d.insert("carol"));
        assert!(d.insert("bob"));
        assert_eq!(d.usernames, ["alice", "bob", "carol"]);
        assert_eq!(Directory::from_json(&d.to_json()), Ok(d));
        assert_eq!(Directory::from_json(b"x").map_err(|e| e.status()), Err(500));
    }
}
