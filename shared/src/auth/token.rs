//! Issuing the WME token set, and sessions (refresh-token records).
//!
//! Access and id tokens are EdDSA JWTs ([`super::jwt`]) living 24 hours.
//! Refresh tokens are *opaque*, not JWTs: `"{session_id}.{secret}"`, where
//! the session id is 16 random bytes in hex and the secret 32 random bytes
//! in base64url. Only the SHA-256 of the secret is stored, in the
//! [`Session`] record under `session:{id}`, and it is compared in constant
//! time. Opaque tokens were chosen because a refresh token must be checked
//! against stored state anyway (refresh count, revocation), so a signature
//! would add nothing, while a leaked store still does not yield usable
//! tokens. Sessions live 90 days and allow at most 90 refreshes; the 91st
//! is refused with WME's 429 "Refresh tokens limit has been exceeded".
//!
//! Every access and id token carries the session id as `sid`: revoking the
//! session revokes every token minted from it (the verifying component
//! checks the session or the `revoked:{sid}` marker).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::account::Account;
use super::jwt::{self, Claims, TokenType};
use crate::{Error, Result};

/// Lifetime of access and id tokens, in seconds (24 hours).
pub const ACCESS_TTL: i64 = 86_400;
/// Lifetime of a refresh token, in seconds (90 days).
pub const REFRESH_TTL: i64 = 90 * 86_400;
/// How many times one refresh token may be used.
pub const MAX_REFRESHES: u32 = 90;
/// WME's message when the refresh limit is reached.
pub const REFRESH_LIMIT_MESSAGE: &str = "Refresh tokens limit has been exceeded";
/// The random bytes [`Session::create`] needs: 16 for the id, 32 for the secret.
pub const SESSION_RANDOM_LEN: usize = 48;

/// `POST /v1/login` response, in WME's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginResponse {
    /// The id token (JWT).
    pub id_token: String,
    /// The access token (JWT).
    pub access_token: String,
    /// The opaque refresh token.
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

/// `POST /v1/token-refresh` response, in WME's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshResponse {
    /// The id token (JWT).
    pub id_token: String,
    /// The access token (JWT).
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

fn unauthorized() -> Error {
    Error::Unauthorized("Unauthorized".into())
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A refresh-token record, stored as JSON under `session:{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The session id (32 lowercase hex characters).
    pub id: String,
    /// The username it belongs to.
    pub account: String,
    /// SHA-256 (hex) of the refresh token's secret part.
    pub secret_hash: String,
    /// Creation time, unix seconds.
    pub created: i64,
    /// Expiry, unix seconds (invalid from this second on).
    pub expires: i64,
    /// How many refreshes have been made with it.
    pub refresh_count: u32,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// Splits a refresh token into `(session_id, secret)`, checking its form.
pub fn parse_refresh_token(token: &str) -> Result<(&str, &str)> {
    let (id, secret) = token.split_once('.').ok_or_else(unauthorized)?;
    let id_ok = id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let secret_ok = secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if id_ok && secret_ok {
        Ok((id, secret))
    } else {
        Err(unauthorized())
    }
}

impl Session {
    /// Creates a session for `account` from caller-provided randomness and
    /// returns it with the refresh token to hand to the client (the only
    /// place the secret ever appears).
    pub fn create(account: &str, random: &[u8; SESSION_RANDOM_LEN], now: i64) -> (Session, String) {
        let id: String = random[..16].iter().map(|b| format!("{b:02x}")).collect();
        let secret = URL_SAFE_NO_PAD.encode(&random[16..]);
        let session = Session {
            id: id.clone(),
            account: account.to_string(),
            secret_hash: sha256_hex(secret.as_bytes()),
            created: now,
            expires: now + REFRESH_TTL,
            refresh_count: 0,
            revoked: false,
        };
        (session, format!("{id}.{secret}"))
    }

    /// Parses a stored record; a corrupt one is our fault (500).
    pub fn from_json(bytes: &[u8]) -> Result<Session> {
        serde_json::from_slice(bytes).map_err(|e| Error::Internal(format!("stored session: {e}")))
    }

    /// The record as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Whether the refresh token matches this session, in constant time.
    pub fn matches(&self, refresh_token: &str) -> bool {
        let Ok((id, secret)) = parse_refresh_token(refresh_token) else {
            return false;
        };
        let hash = sha256_hex(secret.as_bytes());
        let same_secret: bool = hash.as_bytes().ct_eq(self.secret_hash.as_bytes()).into();
        same_secret && id == self.id
    }

    /// Whether tokens minted from this session are still good at `now`.
    pub fn is_active(&self, now: i64) -> bool {
        !self.revoked && now < self.expires
    }

    /// Uses the session for one refresh by `username` presenting
    /// `refresh_token`: 401 if the token does not match, belongs to someone
    /// else, is expired or revoked; 429 on the 91st refresh. On success the
    /// refresh count is incremented (store the session again).
    pub fn refresh(&mut self, refresh_token: &str, username: &str, now: i64) -> Result<()> {
        if !self.matches(refresh_token) || self.account != username || !self.is_active(now) {
            return Err(unauthorized());
        }
        if self.refresh_count >= MAX_REFRESHES {
            return Err(Error::TooManyRequests {
                message: REFRESH_LIMIT_MESSAGE.into(),
                retry_after: 0,
            });
        }
        self.refresh_count += 1;
        Ok(())
    }

    /// Revokes the session (and with it every token minted from it).
    pub fn revoke(&mut self) {
        self.revoked = true;
    }
}

/// Who issues tokens, and for whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    /// The `iss` claim.
    pub iss: String,
    /// The `aud` claim.
    pub aud: String,
}

impl Issuer {
    fn claims(&self, account: &Account, session: &Session, typ: TokenType, now: i64) -> Claims {
        let label = match typ {
            TokenType::Access => "access",
            TokenType::Id => "id",
            TokenType::Refresh => "refresh",
        };
        Claims {
            iss: self.iss.clone(),
            aud: self.aud.clone(),
            sub: account.username.clone(),
            // An access token never outlives its session.
            exp: (now + ACCESS_TTL).min(session.expires),
            iat: now,
            nbf: None,
            jti: format!("{}.{}.{label}", session.id, session.refresh_count),
            sid: session.id.clone(),
            typ,
            role: account.role,
            plan: account.plan.clone(),
        }
    }

    fn pair(
        &self,
        key: &SigningKey,
        account: &Account,
        session: &Session,
        now: i64,
    ) -> (String, String, i64) {
        let access = self.claims(account, session, TokenType::Access, now);
        let id = self.claims(account, session, TokenType::Id, now);
        let expires_in = access.exp - now;
        (jwt::sign(&id, key), jwt::sign(&access, key), expires_in)
    }

    /// The login response for a freshly created session.
    pub fn login(
        &self,
        key: &SigningKey,
        account: &Account,
        session: &Session,
        refresh_token: String,
        now: i64,
    ) -> LoginResponse {
        let (id_token, access_token, expires_in) = self.pair(key, account, session, now);
        LoginResponse {
            id_token,
            access_token,
            refresh_token,
            expires_in,
        }
    }

    /// The refresh response after [`Session::refresh`] succeeded.
    pub fn refresh(
        &self,
        key: &SigningKey,
        account: &Account,
        session: &Session,
        now: i64,
    ) -> RefreshResponse {
        let (id_token, access_token, expires_in) = self.pair(key, account, session, now);
        RefreshResponse {
            id_token,
            access_token,
            expires_in,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::account::Role;

    const NOW: i64 = 1_700_000_000;

    fn random(seed: u8) -> [u8; SESSION_RANDOM_LEN] {
        std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
    }

    fn issuer() -> Issuer {
        Issuer {
            iss: "https://wikiedge.example".into(),
            aud: "wikiedge".into(),
        }
    }

    #[test]
    fn login_issues_24h_tokens_and_an_opaque_refresh_token() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let account = Account::new("alice", "h".into(), Role::User, "free", 0);
        let (session, refresh) = Session::create("alice", &random(1), NOW);
        let resp = issuer().login(&key, &account, &session, refresh.clone(), NOW);
        assert_eq!(resp.expires_in, 86_400);
        assert!(session.matches(&resp.refresh_token));
        assert!(
            !session
                .secret_hash
                .contains(refresh.split('.').nth(1).unwrap_or(""))
        );
        let public = key.verifying_key();
        let access = jwt::verify_typed(
            &resp.access_token,
            &public,
            "https://wikiedge.example",
            "wikiedge",
            TokenType::Access,
            NOW,
        )
        .expect("access token");
        assert_eq!(
            (access.sub.as_str(), access.sid.as_str(), access.exp),
            ("alice", session.id.as_str(), NOW + 86_400)
        );
        let id = jwt::verify_typed(
            &resp.id_token,
            &public,
            "https://wikiedge.example",
            "wikiedge",
            TokenType::Id,
            NOW,
        )
        .expect("id token");
        assert_ne!(id.jti, access.jti);
        let json = serde_json::to_value(&resp).expect("json");
        let keys: Vec<&str> = json
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(
            keys,
            ["access_token", "expires_in", "id_token", "refresh_token"]
        );
    }

    #[test]
    fn a_refresh_token_allows_exactly_90_refreshes() {
        let (mut session, token) = Session::create("alice", &random(2), NOW);
        for i in 0..90 {
            assert_eq!(
                session.refresh(&token, "alice", NOW + i),
                Ok(()),
                "refresh {}",
                i + 1
            );
        }
        assert_eq!(
            session.refresh(&token, "alice", NOW + 90),
            Err(Error::TooManyRequests {
                message: "Refresh tokens limit has been exceeded".into(),
                retry_after: 0
            })
        );
        assert_eq!(session.refresh_count, 90);
    }

    #[test]
    fn expired_revoked_foreign_or_wrong_refresh_tokens_are_401() {
        let (session, token) = Session::create("alice", &random(3), NOW);
        let (_, other_token) = Session::create("alice", &random(4), NOW);
        let cases: [(&str, &str, i64, bool); 6] = [
            (&token, "alice", NOW + REFRESH_TTL - 1, true),
            (&token, "alice", NOW + REFRESH_TTL, false),
            (&token, "bob", NOW, false),
            (&other_token, "alice", NOW, false),
            ("garbage", "alice", NOW, false),
            ("", "alice", NOW, false),
        ];
        for (t, user, now, ok) in cases {
            let mut s = session.clone();
            let got = s.refresh(t, user, now).map_err(|e| e.status());
            assert_eq!(got.is_ok(), ok, "{t} {user} {now}: {got:?}");
            if !ok {
                assert_eq!(got, Err(401));
            }
        }
        let mut revoked = session.clone();
        revoked.revoke();
        assert_eq!(
            revoked
                .refresh(&token, "alice", NOW)
                .map_err(|e| e.status()),
            Err(401)
        );
        assert!(!revoked.is_active(NOW));
    }

    #[test]
    fn a_tampered_secret_with_the_right_session_id_does_not_match() {
        let (session, token) = Session::create("alice", &random(5), NOW);
        let mut chars: Vec<char> = token.chars().collect();
        let last = chars.len() - 1;
        chars[last] = if chars[last] == 'A' { 'B' } else { 'A' };
        assert!(!session.matches(&chars.into_iter().collect::<String>()));
        assert!(session.matches(&token));
    }

    #[test]
    fn tokens_never_outlive_their_session() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let account = Account::new("alice", "h".into(), Role::User, "free", 0);
        let (session, _) = Session::create("alice", &random(6), NOW);
        let late = session.expires - 100;
        assert_eq!(
            issuer().refresh(&key, &account, &session, late).expires_in,
            100
        );
    }

    #[test]
    fn sessions_round_trip_through_json() {
        let (session, _) = Session::create("alice", &random(7), NOW);
        assert_eq!(Session::from_json(&session.to_json()), Ok(session));
    }
}
