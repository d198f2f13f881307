//! Spin variables, read once per instance and cached.
//!
//! Instances are reused across requests, so parsing the keys and the plans
//! on every request would be waste. Each value is loaded on first use into
//! a `static OnceLock`; a failed load is not cached, so a fixed variable is
//! picked up by the next request.

use std::sync::OnceLock;

use ed25519_dalek::{SigningKey, VerifyingKey};
use wikiedge_core::auth::{Issuer, signing};
use wikiedge_core::quota::Plans;
use wikiedge_core::{Error, Result};

/// What every token check needs: the public key and the expected claims.
pub struct Verifier {
    /// The Ed25519 public key (variable `jwt_public_key`).
    pub key: VerifyingKey,
    /// The expected `iss` and `aud`.
    pub issuer: Issuer,
}

static VERIFIER: OnceLock<Verifier> = OnceLock::new();
static SIGNER: OnceLock<SigningKey> = OnceLock::new();
static PLANS: OnceLock<Plans> = OnceLock::new();
static ADMIN_KEY: OnceLock<String> = OnceLock::new();

/// A declared variable's value, through the synchronous `wasi:config/store`
/// (the `verify` export is a `func`: it cannot wait).
fn var(name: &str) -> Result<String> {
    wikiedge_fn::config::variable_now(name)?
        .ok_or_else(|| Error::Internal(format!("variable {name} is not declared")))
}

/// The token verifier (public key, issuer, audience).
pub fn verifier() -> Result<&'static Verifier> {
    if let Some(v) = VERIFIER.get() {
        return Ok(v);
    }
    let key = signing::verifying_key_from_config(&var("jwt_public_key")?)?;
    let issuer = Issuer {
        iss: var("token_issuer")?,
        aud: var("token_audience")?,
    };
    Ok(VERIFIER.get_or_init(|| Verifier { key, issuer }))
}

/// The signing key (variable `jwt_private_key`). Only the auth component
/// is given it.
pub fn signer() -> Result<&'static SigningKey> {
    if let Some(k) = SIGNER.get() {
        return Ok(k);
    }
    let key = signing::signing_key_from_config(&var("jwt_private_key")?)?;
    Ok(SIGNER.get_or_init(|| key))
}

/// The plans: the `plans` variable, or the built-in set when it is empty.
pub fn plans() -> Result<&'static Plans> {
    if let Some(p) = PLANS.get() {
        return Ok(p);
    }
    let json = var("plans")?;
    let plans = if json.trim().is_empty() {
        Plans::builtin()
    } else {
        // A bad `plans` variable is our misconfiguration, not the caller's.
        Plans::parse(&json).map_err(|e| Error::Internal(format!("variable plans: {e}")))?
    };
    Ok(PLANS.get_or_init(|| plans))
}

/// The admin API key (variable `admin_api_key`).
pub fn admin_key() -> Result<&'static str> {
    if let Some(k) = ADMIN_KEY.get() {
        return Ok(k);
    }
    let key = var("admin_api_key")?;
    Ok(ADMIN_KEY.get_or_init(|| key))
}
