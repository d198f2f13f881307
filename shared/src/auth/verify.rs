//! Verifying a bearer token locally, over records already fetched.
//!
//! Components that serve their own HTTP routes (quota, metering) must not
//! import the `auth` interface: when `articles` composes them as
//! dependencies, that import would have nothing to satisfy it. They verify
//! the caller's access token themselves instead, in two steps:
//!
//! 1. [`verify_access_token`]: the JWT's form, EdDSA signature, `iss`,
//!    `aud`, validity period and `typ: access` (no storage needed);
//! 2. [`check_records`]: the records named by [`record_keys`], fetched by
//!    the component in one batch: the session record
//!    ([`SessionRecord`], which the auth component keeps in sync with the
//!    account's disabled flag, role and plan) and the session's revocation
//!    marker. A token is refused when its session is unknown, belongs to
//!    someone else, was revoked (flag or marker) or expired (401), or when
//!    the account is disabled (403).
//!
//! The principal's role and plan come from the session record, i.e. the
//! account as it is now, not from the token's claims: an admin who was
//! demoted, or an account moved to another plan, is treated as it is now
//! rather than as it was at login.
//!
//! [`admin_key_matches`] compares an `X-Admin-Key` header with the
//! configured admin key in constant time.

use ed25519_dalek::VerifyingKey;
use subtle::ConstantTimeEq;

use super::account::Role;
use super::jwt::{self, Claims, TokenType};
use super::keys;
use super::session_record::{SessionRecord, SessionRefusal};
use crate::{Error, Result};

/// Who made a request, after local verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The account's canonical username.
    pub account: String,
    /// The account's current role.
    pub role: Role,
    /// The account's current plan name.
    pub plan: String,
    /// The session (refresh token) the access token was minted from.
    pub session: String,
}

impl Principal {
    /// Whether the principal is an admin.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

fn unauthorized(message: &str) -> Error {
    Error::Unauthorized(message.to_string())
}

/// Extracts the token from an `Authorization: Bearer <token>` header value.
/// The scheme is case-insensitive (RFC 9110); a missing header, another
/// scheme or an empty token is a 401.
pub fn bearer_token(authorization: Option<&str>) -> Result<&str> {
    let value = authorization.ok_or_else(|| unauthorized("Missing bearer token"))?;
    let (scheme, token) = value
        .trim()
        .split_once(' ')
        .ok_or_else(|| unauthorized("Missing bearer token"))?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(unauthorized("Missing bearer token"));
    }
    Ok(token)
}

/// Verifies an access token's form, signature, issuer, audience, validity
/// period and type at `now`; every failure is a 401.
pub fn verify_access_token(
    token: &str,
    key: &VerifyingKey,
    issuer: &str,
    audience: &str,
    now: i64,
) -> Result<Claims> {
    jwt::verify_typed(token, key, issuer, audience, TokenType::Access, now).map_err(Error::from)
}

/// The keys [`check_records`] needs, in its argument order: the session
/// record and the session's revocation marker.
pub fn record_keys(claims: &Claims) -> [String; 2] {
    [keys::session(&claims.sid), keys::revocation(&claims.sid)]
}

/// Checks verified claims against the stored session record and revocation
/// marker (`None` when a key is missing) and returns the principal. A
/// corrupt record is a 500; a disabled account a 403; every other refusal
/// a 401.
pub fn check_records(
    claims: &Claims,
    session: Option<&[u8]>,
    revocation: Option<&[u8]>,
    now: i64,
) -> Result<Principal> {
    let record = session
        .map(SessionRecord::from_json)
        .transpose()?
        .ok_or_else(|| unauthorized("Token has been revoked"))?;
    if revocation.is_some() {
        return Err(unauthorized("Token has been revoked"));
    }
    match record.admit(claims, now) {
        Ok(()) => {}
        Err(SessionRefusal::Disabled) => {
            return Err(Error::Forbidden("The account is disabled".into()));
        }
        Err(SessionRefusal::Expired) => return Err(unauthorized("Token has expired")),
        Err(SessionRefusal::Unknown | SessionRefusal::Mismatch | SessionRefusal::Revoked) => {
            return Err(unauthorized("Token has been revoked"));
        }
    }
    Ok(Principal {
        account: record.session.account,
        role: record.role,
        plan: record.plan,
        session: record.session.id,
    })
}

/// Whether an `X-Admin-Key` header value equals the configured admin key,
/// compared in constant time. An empty configured key never matches.
pub fn admin_key_matches(provided: Option<&str>, configured: &str) -> bool {
    match provided {
        Some(provided) if !configured.is_empty() => {
            provided.as_bytes().ct_eq(configured.as_bytes()).into()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::auth::account::Account;
    use crate::auth::token::{Issuer, Session};

    const NOW: i64 = 1_700_000_000;
    const ISS: &str = "wikiedge";
    const AUD: &str = "wikiedge-api";

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn issuer() -> Issuer {
        Issuer {
            iss: ISS.into(),
            aud: AUD.into(),
        }
    }

    fn setup(role: Role) -> (SessionRecord, String) {
        let account = Account::new("alice", "h".into(), role, "free", NOW);
        let (session, refresh) = Session::create("alice", &[9; 48], NOW);
        let tokens = issuer().login(&key(), &account, &session, refresh, NOW);
        (SessionRecord::new(session, &account), tokens.access_token)
    }

    fn claims(token: &str) -> Claims {
        verify_access_token(token, &key().verifying_key(), ISS, AUD, NOW + 1).expect("valid token")
    }

    #[test]
    fn bearer_tokens_are_extracted_case_insensitively() {
        assert_eq!(bearer_token(Some("Bearer abc")), Ok("abc"));
        assert_eq!(bearer_token(Some("bearer  abc ")), Ok("abc"));
        for bad in [
            None,
            Some(""),
            Some("Basic abc"),
            Some("Bearer"),
            Some("Bearer "),
        ] {
            assert_eq!(
                bearer_token(bad).map_err(|e| e.status()),
                Err(401),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn only_access_tokens_of_our_issuer_and_audience_verify() {
        let account = Account::new("alice", "h".into(), Role::User, "free", NOW);
        let (session, refresh) = Session::create("alice", &[9; 48], NOW);
        let tokens = issuer().login(&key(), &account, &session, refresh, NOW);
        let public = key().verifying_key();
        assert!(verify_access_token(&tokens.access_token, &public, ISS, AUD, NOW).is_ok());
        let check = |token: &str, iss: &str, aud: &str, now: i64| {
            verify_access_token(token, &public, iss, aud, now).map_err(|e| e.status())
        };
        assert_eq!(check(&tokens.id_token, ISS, AUD, NOW), Err(401));
        assert_eq!(check(&tokens.access_token, "other", AUD, NOW), Err(401));
        assert_eq!(check(&tokens.access_token, ISS, "other", NOW), Err(401));
        assert_eq!(
            check(&tokens.access_token, ISS, AUD, NOW + 86_400),
            Err(401)
        );
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
        assert_eq!(
            verify_access_token(&tokens.access_token, &other, ISS, AUD, NOW)
                .map_err(|e| e.status()),
            Err(401)
        );
    }

    #[test]
    fn the_principal_takes_role_and_plan_from_the_session_record() {
        let (mut record, token) = setup(Role::User);
        let claims = claims(&token);
        let id = record.session.id.clone();
        assert_eq!(
            record_keys(&claims),
            [format!("session:{id}"), format!("revoked:{id}")]
        );
        let mut account = Account::new("alice", "h".into(), Role::Admin, "paid", NOW);
        record.sync(&account);
        let principal =
            check_records(&claims, Some(&record.to_json()), None, NOW + 1).expect("accepted");
        assert!(principal.is_admin());
        assert_eq!(
            (principal.account.as_str(), principal.plan.as_str()),
            ("alice", "paid")
        );
        assert_eq!(principal.session, id);
        account.role = Role::User;
        record.sync(&account);
        let principal =
            check_records(&claims, Some(&record.to_json()), None, NOW + 1).expect("accepted");
        assert!(!principal.is_admin());
    }

    fn check(record: Option<&SessionRecord>, revoked: bool, now: i64, expect: Option<u16>) {
        let (_, token) = setup(Role::User);
        let claims = claims(&token);
        let record = record.map(SessionRecord::to_json);
        let got = check_records(
            &claims,
            record.as_deref(),
            revoked.then_some(b"1".as_slice()),
            now,
        );
        assert_eq!(got.err().map(|e| e.status()), expect);
    }

    #[test]
    fn revoked_expired_unknown_or_foreign_sessions_and_disabled_accounts_are_refused() {
        let (record, _) = setup(Role::User);
        check(Some(&record), false, NOW, None);
        check(Some(&record), true, NOW, Some(401));
        check(None, false, NOW, Some(401));
        let mut revoked = record.clone();
        revoked.session.revoke();
        check(Some(&revoked), false, NOW, Some(401));
        check(Some(&record), false, record.session.expires, Some(401));
        let mut foreign = record.clone();
        foreign.session.account = "bob".into();
        check(Some(&foreign), false, NOW, Some(401));
        let mut disabled = record.clone();
        disabled.account_disabled = true;
        check(Some(&disabled), false, NOW, Some(403));
    }

    #[test]
    fn corrupt_records_are_our_fault() {
        let (_, token) = setup(Role::User);
        let got = check_records(&claims(&token), Some(b"garbage"), None, NOW);
        assert_eq!(got.err().map(|e| e.status()), Some(500));
    }

    #[test]
    fn the_admin_key_must_match_exactly_and_never_when_unset() {
        assert!(admin_key_matches(Some("s3cret"), "s3cret"));
        assert!(!admin_key_matches(Some("s3cre"), "s3cret"));
        assert!(!admin_key_matches(Some("s3cret "), "s3cret"));
        assert!(!admin_key_matches(None, "s3cret"));
        assert!(!admin_key_matches(Some(""), ""));
    }
}
