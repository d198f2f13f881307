//! The per-account session index: which sessions an account has, so that a
//! change to the account (disabling it, a new role or plan) can be copied
//! into every [`super::session_record::SessionRecord`].
//!
//! Stored as JSON under [`key`] (`sessions:{username}`) and updated with
//! compare-and-swap. Expired sessions are pruned whenever a session is
//! added, and an account keeps at most [`MAX_SESSIONS`] sessions: adding one
//! more evicts the oldest, which the caller must revoke, so the index (and
//! the work of a `PATCH`) stays bounded.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The most sessions one account may hold at once.
pub const MAX_SESSIONS: usize = 100;

/// The index key of an account: `sessions:{username}`.
pub fn key(username: &str) -> String {
    format!("sessions:{username}")
}

/// One session in the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The session id.
    pub id: String,
    /// When the session expires, unix seconds.
    pub expires: i64,
}

/// The sessions of one account, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionIndex {
    /// The entries, oldest first.
    pub sessions: Vec<IndexEntry>,
}

impl SessionIndex {
    /// Parses a stored index; a corrupt one is our fault (500).
    pub fn from_json(bytes: &[u8]) -> Result<SessionIndex> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::Internal(format!("stored session index: {e}")))
    }

    /// The index as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Adds a session at `now`, dropping expired ones; returns the ids of
    /// live sessions evicted to respect [`MAX_SESSIONS`] (revoke them).
    pub fn add(&mut self, id: &str, expires: i64, now: i64) -> Vec<String> {
        self.sessions.retain(|e| e.expires > now && e.id != id);
        self.sessions.push(IndexEntry {
            id: id.to_string(),
            expires,
        });
        let excess = self.sessions.len().saturating_sub(MAX_SESSIONS);
        self.sessions.drain(..excess).map(|e| e.id).collect()
    }

    /// The ids of the sessions still live at `now`.
    pub fn live_ids(&self, now: i64) -> Vec<String> {
        self.sessions
            .iter()
            .filter(|e| e.expires > now)
            .map(|e| e.id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_prunes_expired_sessions_and_keeps_order() {
        let mut index = SessionIndex::default();
        assert!(index.add("a", 10, 0).is_empty());
        assert!(index.add("b", 20, 0).is_empty());
        assert!(index.add("c", 30, 15).is_empty());
        let ids: Vec<&str> = index.sessions.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["b", "c"]);
        assert_eq!(index.live_ids(25), ["c"]);
        assert_eq!(key("alice"), "sessions:alice");
        assert_eq!(SessionIndex::from_json(&index.to_json()), Ok(index));
    }

    #[test]
    fn the_oldest_sessions_are_evicted_beyond_the_cap() {
        let mut index = SessionIndex::default();
        for i in 0..MAX_SESSIONS {
            assert!(index.add(&format!("s{i}"), 1_000, 0).is_empty());
        }
        assert_eq!(index.add("new", 1_000, 0), ["s0"]);
        assert_eq!(index.sessions.len(), MAX_SESSIONS);
        assert_eq!(
            SessionIndex::from_json(b"[").map_err(|e| e.status()),
            Err(500)
        );
    }
}
