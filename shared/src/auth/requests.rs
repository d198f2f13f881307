//! The auth request bodies and their validation.
//!
//! Every request body is parsed with [`parse_body`]: invalid JSON, missing
//! fields, wrong types and failed validation are all 422 with a message
//! saying what is wrong, as WME answers.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::account::{Account, Role};
use super::{password, username};
use crate::quota::{Grant, Plans};
use crate::{Error, Result};

/// Parses a JSON request body: malformed JSON, a missing field or a wrong
/// type is a 422 naming the problem.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::Unprocessable("request body is required".into()));
    }
    serde_json::from_slice(body)
        .map_err(|e| Error::Unprocessable(format!("invalid request body: {e}")))
}

fn required(name: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::Unprocessable(format!("{name} is required")));
    }
    Ok(())
}

/// `POST /v1/login`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LoginRequest {
    /// The username (any case).
    pub username: String,
    /// The password.
    pub password: String,
}

impl LoginRequest {
    /// Parses and validates the body; the username comes back normalised.
    pub fn parse(body: &[u8]) -> Result<LoginRequest> {
        let mut r: LoginRequest = parse_body(body)?;
        required("username", &r.username)?;
        required("password", &r.password)?;
        if r.password.chars().count() > password::MAX_LEN {
            return Err(Error::Unprocessable("password is too long".into()));
        }
        r.username = username::normalize(&r.username);
        Ok(r)
    }
}

/// `POST /v1/token-refresh`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RefreshRequest {
    /// The username the refresh token was issued to.
    pub username: String,
    /// The refresh token.
    pub refresh_token: String,
}

impl RefreshRequest {
    /// Parses and validates the body; the username comes back normalised.
    pub fn parse(body: &[u8]) -> Result<RefreshRequest> {
        let mut r: RefreshRequest = parse_body(body)?;
        required("username", &r.username)?;
        required("refresh_token", &r.refresh_token)?;
        r.username = username::normalize(&r.username);
        Ok(r)
    }
}

/// `POST /v1/token-revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RevokeRequest {
    /// The refresh token to revoke, with every access token minted from it.
    pub refresh_token: String,
}

impl RevokeRequest {
    /// Parses and validates the body.
    pub fn parse(body: &[u8]) -> Result<RevokeRequest> {
        let r: RevokeRequest = parse_body(body)?;
        required("refresh_token", &r.refresh_token)?;
        Ok(r)
    }
}

/// `POST /v1/change-password`, in WME's shape.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ChangePasswordRequest {
    /// The caller's access token (WME puts it in the body).
    pub access_token: String,
    /// The current password.
    pub previous_password: String,
    /// The new password; must meet the policy and differ from the current.
    pub proposed_password: String,
}

impl ChangePasswordRequest {
    /// Parses and validates the body.
    pub fn parse(body: &[u8]) -> Result<ChangePasswordRequest> {
        let r: ChangePasswordRequest = parse_body(body)?;
        required("access_token", &r.access_token)?;
        required("previous_password", &r.previous_password)?;
        password::validate_policy(&r.proposed_password)?;
        if r.proposed_password == r.previous_password {
            return Err(Error::Unprocessable(
                "proposed_password must differ from previous_password".into(),
            ));
        }
        Ok(r)
    }
}

/// Admin: create an account.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAccountRequest {
    /// The username; validated and normalised.
    pub username: String,
    /// The initial password; must meet the policy.
    pub password: String,
    /// The role, `user` by default.
    #[serde(default)]
    pub role: Role,
    /// The plan, `free` by default; must exist.
    #[serde(default = "free_plan")]
    pub plan: String,
}

fn free_plan() -> String {
    "free".to_string()
}

impl CreateAccountRequest {
    /// Parses and validates the body against the known plans.
    pub fn parse(body: &[u8], plans: &Plans) -> Result<CreateAccountRequest> {
        let mut r: CreateAccountRequest = parse_body(body)?;
        r.username = username::validate(&r.username)?;
        password::validate_policy(&r.password)?;
        plans.require(&r.plan)?;
        Ok(r)
    }
}

/// Admin: change an account. Absent fields stay as they are.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchAccountRequest {
    /// A new plan; must exist.
    #[serde(default)]
    pub plan: Option<String>,
    /// A new role.
    #[serde(default)]
    pub role: Option<Role>,
    /// Disable or re-enable the account.
    #[serde(default)]
    pub disabled: Option<bool>,
    /// A new password; must meet the policy (the caller hashes it).
    #[serde(default)]
    pub password: Option<String>,
    /// Replaces the account's grants.
    #[serde(default)]
    pub grants: Option<Vec<Grant>>,
}

impl PatchAccountRequest {
    /// Parses and validates the body; an empty patch is a 422.
    pub fn parse(body: &[u8], plans: &Plans) -> Result<PatchAccountRequest> {
        let r: PatchAccountRequest = parse_body(body)?;
        if r.plan.is_none()
            && r.role.is_none()
            && r.disabled.is_none()
            && r.password.is_none()
            && r.grants.is_none()
        {
            return Err(Error::Unprocessable("the patch changes nothing".into()));
        }
        if let Some(plan) = &r.plan {
            plans.require(plan)?;
        }
        if let Some(pw) = &r.password {
            password::validate_policy(pw)?;
        }
        Ok(r)
    }

    /// Applies the patch; `password_hash` is the hash of `self.password`
    /// when one was given.
    pub fn apply(&self, account: &mut Account, password_hash: Option<String>) {
        if let Some(plan) = &self.plan {
            account.plan.clone_from(plan);
        }
        if let Some(role) = self.role {
            account.role = role;
        }
        if let Some(disabled) = self.disabled {
            account.disabled = disabled;
        }
        if let Some(hash) = password_hash {
            account.password_hash = hash;
        }
        if let Some(grants) = &self.grants {
            account.grants.clone_from(grants);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: std::fmt::Debug>(got: Result<T>, expect: &str) {
        match got {
            Err(e) => {
                assert_eq!(e.status(), 422, "{e}");
                assert!(e.to_string().contains(expect), "{e} lacks {expect}");
            }
            Ok(v) => panic!("accepted {v:?}, wanted an error containing {expect}"),
        }
    }

    #[test]
    fn login_bodies_are_validated_like_wme() {
        let ok = LoginRequest::parse(br#"{"username":" Alice ","password":"pw"}"#).expect("ok");
        assert_eq!(ok.username, "alice");
        check(LoginRequest::parse(b""), "request body is required");
        check(LoginRequest::parse(b"{"), "invalid request body");
        check(
            LoginRequest::parse(br#"{"username":"a"}"#),
            "missing field `password`",
        );
        check(
            LoginRequest::parse(br#"{"username":"a","password":5}"#),
            "invalid type",
        );
        check(
            LoginRequest::parse(br#"{"username":"","password":"x"}"#),
            "username is required",
        );
        check(LoginRequest::parse(b"[]"), "invalid request body");
    }

    #[test]
    fn refresh_and_revoke_bodies_need_their_token() {
        check(
            RefreshRequest::parse(br#"{"username":"alice"}"#),
            "refresh_token",
        );
        check(
            RevokeRequest::parse(br#"{"refresh_token":""}"#),
            "refresh_token is required",
        );
        assert!(RevokeRequest::parse(br#"{"refresh_token":"x"}"#).is_ok());
    }

    #[test]
    fn a_password_change_needs_a_new_valid_password() {
        let body = |prev: &str, new: &str| {
            format!(
                r#"{{"access_token":"t","previous_password":"{prev}","proposed_password":"{new}"}}"#
            )
        };
        assert!(
            ChangePasswordRequest::parse(body("old-password", "new-password").as_bytes()).is_ok()
        );
        check(
            ChangePasswordRequest::parse(body("old-password", "short").as_bytes()),
            "8 to 256",
        );
        check(
            ChangePasswordRequest::parse(body("same-password", "same-password").as_bytes()),
            "differ",
        );
    }

    #[test]
    fn admin_create_defaults_to_a_free_user_and_checks_everything() {
        let plans = Plans::builtin();
        let r =
            CreateAccountRequest::parse(br#"{"username":"Bob","password":"longenough"}"#, &plans)
                .expect("ok");
        assert_eq!(
            (r.username.as_str(), r.role, r.plan.as_str()),
            ("bob", Role::User, "free")
        );
        check(
            CreateAccountRequest::parse(br#"{"username":"b","password":"longenough"}"#, &plans),
            "username",
        );
        check(
            CreateAccountRequest::parse(br#"{"username":"bob","password":"short"}"#, &plans),
            "password",
        );
        check(
            CreateAccountRequest::parse(
                br#"{"username":"bob","password":"longenough","plan":"gold"}"#,
                &plans,
            ),
            "unknown plan",
        );
        check(
            CreateAccountRequest::parse(
                br#"{"username":"bob","password":"longenough","role":"root"}"#,
                &plans,
            ),
            "unknown variant",
        );
        check(
            CreateAccountRequest::parse(
                br#"{"username":"bob","password":"longenough","admin":true}"#,
                &plans,
            ),
            "unknown field",
        );
    }

    #[test]
    fn admin_patch_changes_only_what_it_names() {
        let plans = Plans::builtin();
        let mut account = Account::new("bob", "hash".into(), Role::User, "free", 5);
        let patch =
            PatchAccountRequest::parse(br#"{"plan":"paid","disabled":true}"#, &plans).expect("ok");
        patch.apply(&mut account, None);
        assert_eq!(
            (account.plan.as_str(), account.disabled, account.role),
            ("paid", true, Role::User)
        );
        assert_eq!(account.password_hash, "hash");
        check(PatchAccountRequest::parse(b"{}", &plans), "changes nothing");
        check(
            PatchAccountRequest::parse(br#"{"plan":"gold"}"#, &plans),
            "unknown plan",
        );
        check(
            PatchAccountRequest::parse(br#"{"disabled":"yes"}"#, &plans),
            "invalid type",
        );
    }
}
