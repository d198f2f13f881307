//! Access-token verification: the exported `wikiedge:auth/auth#verify`, and
//! the same check for this component's own Bearer-authenticated routes.
//!
//! Cost: no key-value access for a token refused by its form, signature,
//! algorithm, issuer, audience, type or expiry (the public key is cached
//! per instance), and exactly one read, `session:{sid}`, otherwise.
//!
//! Instances are reused for many requests, and a client sends the same
//! access token for up to 24 hours, so each instance remembers the claims of
//! tokens whose signature it has already verified ([`SignatureCache`]). Only
//! a byte-identical token hits the cache; expiry is checked again on every
//! use, and revocation is never cached (the session record is read every
//! time). This skips the Ed25519 verification, the largest part of a
//! verification's CPU cost.

use wikiedge_core::auth::jwt::{self, TokenError, TokenType};
use wikiedge_core::auth::session_record::SessionRefusal;
use wikiedge_core::auth::verify::bearer_token;
use wikiedge_core::{Error, Result};

use crate::exports::wikiedge::auth::auth::{AuthError, Principal};
use crate::{config, records};

/// Logs an internal failure and reports it as `unavailable`: the WIT
/// contract has no other case for "our fault", and the caller answers 503.
fn internal(err: &Error) -> AuthError {
    eprintln!("auth: verify failed: {err:?}");
    AuthError::Unavailable("authentication is unavailable".into())
}

/// Verifies an `Authorization` header value.
pub fn verify_header(authorization: &str) -> Result<Principal, AuthError> {
    let token = bearer_token(Some(authorization)).map_err(|_| AuthError::Missing)?;
    verify_token(token)
}

/// Claims of tokens this instance has verified, by the hash of the exact
/// token; an entry counts only if its token is the same, byte for byte.
///
/// A token is about 450 bytes, sent with every request. Looking it up in a
/// map keyed by the token itself compared it with wasi-libc's `memcmp`, one
/// byte at a time, about 10,000 instructions per request
/// (bench/instructions.sh); [`wikiedge_fn::bytes::same`] compares eight
/// bytes at a time.
struct SignatureCache {
    hasher: std::collections::hash_map::RandomState,
    entries: std::collections::HashMap<u64, (Box<str>, jwt::Claims)>,
}

/// At most this many tokens are remembered; the cache is emptied when full.
const CACHE_CAPACITY: usize = 1024;

thread_local! {
    static CACHE: std::cell::RefCell<SignatureCache> =
        std::cell::RefCell::new(SignatureCache {
            hasher: std::collections::hash_map::RandomState::new(),
            entries: std::collections::HashMap::new(),
        });
}

/// The claims of a token verified before, if still within its validity.
fn cached_claims(token: &str, now: i64) -> Option<Result<jwt::Claims, AuthError>> {
    use std::hash::BuildHasher;
    CACHE.with(|c| {
        let cache = c.borrow();
        let (known, claims) = cache.entries.get(&cache.hasher.hash_one(token))?;
        if !wikiedge_fn::bytes::same(known.as_bytes(), token.as_bytes()) {
            return None;
        }
        if now >= claims.exp {
            return Some(Err(AuthError::Expired));
        }
        if claims.nbf.is_some_and(|nbf| now < nbf) {
            return None;
        }
        Some(Ok(claims.clone()))
    })
}

fn remember(token: &str, claims: &jwt::Claims) {
    use std::hash::BuildHasher;
    CACHE.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.entries.len() >= CACHE_CAPACITY {
            cache.entries.clear();
        }
        let key = cache.hasher.hash_one(token);
        cache.entries.insert(key, (token.into(), claims.clone()));
    });
}

/// Verifies a bare access token.
///
/// Synchronous, as the `verify` export is: the session is read through
/// `wasi:keyvalue` and the variables through `wasi:config/store`.
pub fn verify_token(token: &str) -> Result<Principal, AuthError> {
    let verifier = config::verifier().map_err(|e| internal(&e))?;
    let now = wikiedge_fn::now();
    let claims = match cached_claims(token, now) {
        Some(result) => result?,
        None => {
            let claims = jwt::verify_typed(
                token,
                &verifier.key,
                &verifier.issuer.iss,
                &verifier.issuer.aud,
                TokenType::Access,
                now,
            )
            .map_err(|e| match e {
                TokenError::Expired => AuthError::Expired,
                other => AuthError::Invalid(other.to_string()),
            })?;
            remember(token, &claims);
            claims
        }
    };
    let bucket = wikiedge_fn::kv::open().map_err(|e| internal(&e))?;
    let record = records::session(&bucket, &claims.sid)
        .map_err(|e| internal(&e))?
        .ok_or(AuthError::Revoked)?;
    record
        .admit(&claims, now)
        .map_err(|refusal| match refusal {
            SessionRefusal::Unknown | SessionRefusal::Revoked => AuthError::Revoked,
            SessionRefusal::Mismatch => AuthError::Invalid("token session is not valid".into()),
            SessionRefusal::Expired => AuthError::Expired,
            SessionRefusal::Disabled => AuthError::Disabled,
        })?;
    let role = match record.role {
        wikiedge_core::auth::Role::Admin => "admin",
        wikiedge_core::auth::Role::User => "user",
    };
    Ok(Principal {
        account: claims.sub,
        role: role.to_string(),
        plan: record.plan,
        session: claims.sid,
    })
}

/// The HTTP error for a refused credential.
pub fn to_error(err: AuthError) -> Error {
    match err {
        AuthError::Missing => Error::Unauthorized("Missing bearer token".into()),
        AuthError::Invalid(message) => Error::Unauthorized(message),
        AuthError::Expired => Error::Unauthorized("token has expired".into()),
        AuthError::Revoked => Error::Unauthorized("token has been revoked".into()),
        AuthError::Disabled => Error::Forbidden("The account is disabled".into()),
        AuthError::Unavailable(message) => Error::Unavailable {
            message,
            retry_after: 1,
        },
    }
}

/// Verifies the request's `Authorization` header for an HTTP route.
pub fn principal(authorization: Option<&str>) -> Result<Principal> {
    verify_header(authorization.unwrap_or("")).map_err(to_error)
}
