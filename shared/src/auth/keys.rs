//! Key-value key names for auth records, in one place.
//!
//! Usernames are validated to `[a-z0-9._-]` and session ids are hex, so no
//! part can contain the `:` separator and keys cannot collide.

/// The account record: `account:{username}`.
pub fn account(username: &str) -> String {
    format!("account:{username}")
}

/// The session (refresh-token) record: `session:{id}`.
pub fn session(id: &str) -> String {
    format!("session:{id}")
}

/// The revocation marker of a session, cheap to check on every request:
/// `revoked:{session_id}`.
pub fn revocation(session_id: &str) -> String {
    format!("revoked:{session_id}")
}

/// An exceptional-access request: `access-request:{id}`.
pub fn access_request(id: &str) -> String {
    format!("access-request:{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_by_record_kind() {
        assert_eq!(account("alice"), "account:alice");
        assert_eq!(session("ab12"), "session:ab12");
        assert_eq!(revocation("ab12"), "revoked:ab12");
        assert_eq!(access_request("ar-1"), "access-request:ar-1");
    }
}
