//! Spin variables, read once per instance and cached.
//!
//! Instances are reused across requests, so parsing the keys and the plans
//! on every request would be waste. Each value is loaded on first use into
//! a `static OnceLock`; a failed load is not cached, so a fixed variable is
//! picked up by the next request.

use std::sync::OnceLock;

use ed25519_dalek::{SigningKey, VerifyingKey};
use wikiedge_core::Result;
use wikiedge_core::auth::{Issuer, signing};
use wikiedge_fn::config::variable_now;

/// What every token check needs: the public key and the expected claims.
pub struct Verifier {
    /// The Ed25519 public key (variable `jwt_public_key`).
    pub key: VerifyingKey,
    /// The expected `iss` and `aud`.
    pub issuer: Issuer,
}

static VERIFIER: OnceLock<Verifier> = OnceLock::new();
static SIGNER: OnceLock<SigningKey> = OnceLock::new();
static ADMIN_KEY: OnceLock<String> = OnceLock::new();

/// The token verifier (public key, issuer, audience).
pub fn verifier() -> Result<&'static Verifier> {
    if let Some(v) = VERIFIER.get() {
        return Ok(v);
    }
    let key = signing::verifying_key_from_config(&variable_now("jwt_public_key")?)?;
    let issuer = Issuer {
        iss: variable_now("token_issuer")?,
        aud: variable_now("token_audience")?,
    };
    Ok(VERIFIER.get_or_init(|| Verifier { key, issuer }))
}

/// The signing key (variable `jwt_private_key`). Only the auth component
/// is given it.
pub fn signer() -> Result<&'static SigningKey> {
    if let Some(k) = SIGNER.get() {
        return Ok(k);
    }
    let key = signing::signing_key_from_config(&variable_now("jwt_private_key")?)?;
    Ok(SIGNER.get_or_init(|| key))
}

/// The plans (shared with quota: [`wikiedge_fn::config::plans`]).
pub use wikiedge_fn::config::plans;

/// The admin API key (variable `admin_api_key`).
pub fn admin_key() -> Result<&'static str> {
    if let Some(k) = ADMIN_KEY.get() {
        return Ok(k);
    }
    let key = variable_now("admin_api_key")?;
    Ok(ADMIN_KEY.get_or_init(|| key))
}
