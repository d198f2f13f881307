//! The stored session record: a [`Session`] plus the account state that
//! token verification needs, so that verifying an access token costs exactly
//! one key-value read.
//!
//! The record lives under [`super::keys::session`] (`session:{id}`). Besides
//! the refresh-token fields it carries a copy of the account's `disabled`
//! flag, role and plan. The auth component keeps those copies current: an
//! admin `PATCH` of the account rewrites every session listed in the
//! account's [`super::session_index::SessionIndex`]. Verification then reads
//! only `session:{sid}` and learns from it whether the token's session was
//! revoked, has expired, or belongs to a disabled account, and the account's
//! current role and plan (a demoted admin loses admin rights at once, not
//! when the token expires).
//!
//! The extra fields are additive, so [`Session::from_json`] still parses the
//! record.

use serde::{Deserialize, Serialize};

use super::account::{Account, Role};
use super::jwt::Claims;
use super::token::Session;
use crate::{Error, Result};

/// Why a verified JWT is nevertheless refused by its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRefusal {
    /// No session record exists for the token's `sid` (for callers that
    /// map a missing record; [`SessionRecord::admit`] never returns it).
    Unknown,
    /// The session belongs to another account than the token's `sub`.
    Mismatch,
    /// The session (refresh token) was revoked.
    Revoked,
    /// The session has expired.
    Expired,
    /// The account is disabled.
    Disabled,
}

/// A session with the propagated account state, stored as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "FlatRecord")]
pub struct SessionRecord {
    /// The refresh-token record.
    #[serde(flatten)]
    pub session: Session,
    /// A copy of [`Account::disabled`].
    #[serde(default)]
    pub account_disabled: bool,
    /// A copy of [`Account::role`].
    #[serde(default)]
    pub role: Role,
    /// A copy of [`Account::plan`].
    #[serde(default)]
    pub plan: String,
}

/// The form a [`SessionRecord`] is read in: its JSON object is flat, the
/// session's fields beside the account state. Read through `flatten`, serde
/// kept a copy of every key and value of the record and looked each of the
/// session's fields up among them by comparing strings, on the one read
/// every authenticated request makes (BENCHMARKS.md, "Instructions per
/// request"). Unknown keys are ignored either way.
#[derive(Deserialize)]
struct FlatRecord {
    id: String,
    account: String,
    secret_hash: String,
    created: i64,
    expires: i64,
    refresh_count: u32,
    revoked: bool,
    #[serde(default)]
    account_disabled: bool,
    #[serde(default)]
    role: Role,
    #[serde(default)]
    plan: String,
}

impl From<FlatRecord> for SessionRecord {
    fn from(r: FlatRecord) -> SessionRecord {
        SessionRecord {
            session: Session {
                id: r.id,
                account: r.account,
                secret_hash: r.secret_hash,
                created: r.created,
                expires: r.expires,
                refresh_count: r.refresh_count,
                revoked: r.revoked,
            },
            account_disabled: r.account_disabled,
            role: r.role,
            plan: r.plan,
        }
    }
}

impl SessionRecord {
    /// A record for a new session of `account`.
    pub fn new(session: Session, account: &Account) -> SessionRecord {
        let mut record = SessionRecord {
            session,
            account_disabled: false,
            role: Role::User,
            plan: String::new(),
        };
        record.sync(account);
        record
    }

    /// Copies the account's current state into the record; returns whether
    /// anything changed (so an unchanged record need not be written).
    pub fn sync(&mut self, account: &Account) -> bool {
        let changed = self.account_disabled != account.disabled
            || self.role != account.role
            || self.plan != account.plan;
        self.account_disabled = account.disabled;
        self.role = account.role;
        self.plan.clone_from(&account.plan);
        changed
    }

    /// Copies only the account's plan (a plan change must not write back a
    /// `disabled` or role it read earlier: that would race a disable).
    /// Returns whether the plan changed.
    pub fn sync_plan(&mut self, plan: &str) -> bool {
        let changed = self.plan != plan;
        if changed {
            self.plan = plan.to_string();
        }
        changed
    }

    /// Parses a stored record; a corrupt one is our fault (500).
    pub fn from_json(bytes: &[u8]) -> Result<SessionRecord> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::Internal(format!("stored session record: {e}")))
    }

    /// The record as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Whether an access token with these (already verified) claims may be
    /// used at `now`. Revocation wins over expiry, expiry over disabling,
    /// so the most specific reason is reported.
    pub fn admit(&self, claims: &Claims, now: i64) -> std::result::Result<(), SessionRefusal> {
        if self.session.id != claims.sid || self.session.account != claims.sub {
            return Err(SessionRefusal::Mismatch);
        }
        if self.session.revoked {
            return Err(SessionRefusal::Revoked);
        }
        if now >= self.session.expires {
            return Err(SessionRefusal::Expired);
        }
        if self.account_disabled {
            return Err(SessionRefusal::Disabled);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::jwt::TokenType;
    use crate::auth::token::SESSION_RANDOM_LEN;

    const NOW: i64 = 1_700_000_000;

    fn record() -> SessionRecord {
        let account = Account::new("alice", "h".into(), Role::Admin, "paid", 0);
        let (session, _) = Session::create("alice", &[7; SESSION_RANDOM_LEN], NOW);
        SessionRecord::new(session, &account)
    }

    fn claims(record: &SessionRecord) -> Claims {
        Claims {
            iss: "i".into(),
            aud: "a".into(),
            sub: "alice".into(),
            exp: NOW + 10,
            iat: NOW,
            nbf: None,
            jti: "j".into(),
            sid: record.session.id.clone(),
            typ: TokenType::Access,
            role: Role::User,
            plan: "free".into(),
        }
    }

    #[test]
    fn a_new_record_copies_the_account_state_and_round_trips() {
        let r = record();
        assert_eq!(
            (r.role, r.plan.as_str(), r.account_disabled),
            (Role::Admin, "paid", false)
        );
        assert_eq!(SessionRecord::from_json(&r.to_json()), Ok(r.clone()));
        // The plain session still parses from the extended record.
        assert_eq!(Session::from_json(&r.to_json()), Ok(r.session.clone()));
        assert_eq!(
            SessionRecord::from_json(b"{").map_err(|e| e.status()),
            Err(500)
        );
    }

    #[test]
    fn a_flat_record_reads_with_defaults_and_ignores_unknown_keys() {
        // As stored before role and plan were copied into records, plus a
        // key this version does not know.
        let stored = br#"{"id":"0123456789abcdef0123456789abcdef","account":"bob",
            "secret_hash":"ab","created":1,"expires":2,"refresh_count":3,"revoked":true,
            "future":[1,2]}"#;
        let session = Session {
            id: "0123456789abcdef0123456789abcdef".into(),
            account: "bob".into(),
            secret_hash: "ab".into(),
            created: 1,
            expires: 2,
            refresh_count: 3,
            revoked: true,
        };
        assert_eq!(
            SessionRecord::from_json(stored),
            Ok(SessionRecord {
                session,
                account_disabled: false,
                role: Role::default(),
                plan: String::new(),
            })
        );
        // Every session field is still required.
        assert!(SessionRecord::from_json(br#"{"id":"x","account":"bob"}"#).is_err());
    }

    #[test]
    fn sync_reports_whether_anything_changed() {
        let mut r = record();
        let mut account = Account::new("alice", "h".into(), Role::Admin, "paid", 0);
        assert!(!r.sync(&account));
        account.disabled = true;
        assert!(r.sync(&account));
        assert!(r.account_disabled);
        account.role = Role::User;
        assert!(r.sync(&account));
        assert_eq!(r.role, Role::User);
    }

    #[test]
    fn a_plan_sync_touches_only_the_plan() {
        let mut r = record();
        // A disable the plan writer has not seen must survive it.
        r.account_disabled = true;
        let role = r.role;
        assert!(r.sync_plan("exceptional"));
        assert_eq!(r.plan, "exceptional");
        assert!(r.account_disabled);
        assert_eq!(r.role, role);
        assert!(!r.sync_plan("exceptional"));
    }

    #[test]
    fn admit_refuses_revoked_expired_disabled_and_foreign_sessions() {
        let r = record();
        let c = claims(&r);
        assert_eq!(r.admit(&c, NOW), Ok(()));
        let mut other = c.clone();
        other.sub = "bob".into();
        assert_eq!(r.admit(&other, NOW), Err(SessionRefusal::Mismatch));
        let mut other = c.clone();
        other.sid = "0".repeat(32);
        assert_eq!(r.admit(&other, NOW), Err(SessionRefusal::Mismatch));
        assert_eq!(r.admit(&c, r.session.expires), Err(SessionRefusal::Expired));
        let mut disabled = r.clone();
        disabled.account_disabled = true;
        assert_eq!(disabled.admit(&c, NOW), Err(SessionRefusal::Disabled));
        let mut revoked = disabled.clone();
        revoked.session.revoke();
        assert_eq!(revoked.admit(&c, NOW), Err(SessionRefusal::Revoked));
    }
}
