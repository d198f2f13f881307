//! Accounts as stored in key-value storage, and the get-user response.

use serde::{Deserialize, Serialize};

use crate::quota::Grant;
use crate::{Error, Result};

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An API user.
    #[default]
    User,
    /// An operator: may manage accounts, plans and access requests.
    Admin,
}

/// An account record, stored as JSON under [`super::keys::account`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The normalised username.
    pub username: String,
    /// The Argon2id PHC string of the password.
    pub password_hash: String,
    /// The account's role.
    pub role: Role,
    /// The plan name.
    pub plan: String,
    /// A disabled account cannot log in or use its tokens.
    #[serde(default)]
    pub disabled: bool,
    /// Creation time, unix seconds.
    pub created: i64,
    /// Expiring raises of the plan's limits (exceptional or paid access).
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// The address codes are mailed to (self-service accounts only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// A signed-up account that has not entered its emailed code yet: it
    /// cannot log in ([`super::signup`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unconfirmed: bool,
}

impl Account {
    /// A new enabled account without grants.
    pub fn new(username: &str, password_hash: String, role: Role, plan: &str, now: i64) -> Account {
        Account {
            username: username.to_string(),
            password_hash,
            role,
            plan: plan.to_string(),
            disabled: false,
            created: now,
            grants: Vec::new(),
            email: None,
            unconfirmed: false,
        }
    }

    /// `Ok` if the account may log in and use its tokens; a disabled
    /// account gets the same 401 as a wrong password, revealing nothing.
    pub fn ensure_enabled(&self) -> Result<()> {
        if self.disabled {
            return Err(Error::Unauthorized("Unauthorized".into()));
        }
        Ok(())
    }

    /// `Ok` for an admin, else a 403.
    pub fn require_admin(&self) -> Result<()> {
        if self.role != Role::Admin {
            return Err(Error::Forbidden(
                "This action requires the admin role".into(),
            ));
        }
        Ok(())
    }

    /// Parses a stored record; a corrupt one is our fault (500).
    pub fn from_json(bytes: &[u8]) -> Result<Account> {
        serde_json::from_slice(bytes).map_err(|e| Error::Internal(format!("stored account: {e}")))
    }

    /// The record as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// `POST /v1/get-user`: the caller's account without secrets, with limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GetUserResponse {
    /// The username.
    pub username: String,
    /// The role.
    pub role: Role,
    /// The plan name.
    pub plan: String,
    /// Whether the account is disabled.
    pub disabled: bool,
    /// Creation time, unix seconds.
    pub created: i64,
    /// The effective limits (see [`crate::quota::Limits::to_json`]).
    pub limits: serde_json::Value,
    /// A signed-up account still waiting for its emailed code (shown only
    /// when true).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unconfirmed: bool,
}

impl GetUserResponse {
    /// The response for an account and its effective limits.
    pub fn new(account: &Account, limits: serde_json::Value) -> GetUserResponse {
        GetUserResponse {
            username: account.username.clone(),
            role: account.role,
            plan: account.plan.clone(),
            disabled: account.disabled,
            created: account.created,
            limits,
            unconfirmed: account.unconfirmed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_round_trip_and_old_records_get_defaults() {
        let account = Account::new("bob", "hash".into(), Role::Admin, "free", 5);
        assert_eq!(Account::from_json(&account.to_json()), Ok(account));
        let old =
            br#"{"username":"bob","password_hash":"h","role":"user","plan":"free","created":1}"#;
        let parsed = Account::from_json(old).expect("old record");
        assert!(!parsed.disabled && parsed.grants.is_empty());
        assert_eq!(
            Account::from_json(b"garbage").map_err(|e| e.status()),
            Err(500)
        );
    }

    #[test]
    fn disabled_accounts_are_401_and_only_admins_pass_the_admin_check() {
        let mut account = Account::new("bob", "h".into(), Role::User, "free", 5);
        assert_eq!(account.ensure_enabled(), Ok(()));
        assert_eq!(account.require_admin().map_err(|e| e.status()), Err(403));
        account.disabled = true;
        assert_eq!(account.ensure_enabled().map_err(|e| e.status()), Err(401));
        account.role = Role::Admin;
        assert_eq!(account.require_admin(), Ok(()));
    }

    #[test]
    fn get_user_shows_no_password_hash() {
        let account = Account::new("bob", "secret-hash".into(), Role::User, "free", 5);
        let json = serde_json::to_string(&GetUserResponse::new(
            &account,
            serde_json::json!({"burst_per_second": 10}),
        ))
        .expect("json");
        assert!(!json.contains("secret-hash"));
        assert!(json.contains(r#""limits":{"burst_per_second":10}"#));
        assert!(!json.contains("unconfirmed"), "shown only when true");
        let mut pending = account.clone();
        pending.unconfirmed = true;
        let json = serde_json::to_string(&GetUserResponse::new(&pending, serde_json::Value::Null))
            .expect("json");
        assert!(json.contains(r#""unconfirmed":true"#), "{json}");
    }
}
