//! `POST /v1/login`: username and password in, the WME token set out.
//!
//! KV operations: a success costs 1 read of the throttle record, 1 read of
//! the account, 1 write of the session, 1 compare-and-swap of the session
//! index and 1 read of the account again (plus 1 delete when a throttle
//! record existed); a failure costs the 2 reads and 1 throttle write.

use wikiedge_core::auth::{LoginRequest, LoginThrottle, keys, password, username};
use wikiedge_core::{Error, Result};

use crate::config;
use crate::kv::Kv;
use crate::records;
use crate::respond::{self, Reply};

fn unauthorized() -> Error {
    Error::Unauthorized("Unauthorized".into())
}

/// Reads the throttle state of a username (a corrupt record counts as
/// clear: it must not lock anyone out forever) and whether one was stored.
pub async fn throttle(kv: &Kv, name: &str) -> Result<(LoginThrottle, bool)> {
    let stored = kv.get(&keys::throttle(name)).await?;
    let state = stored
        .as_deref()
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or_default();
    Ok((state, stored.is_some()))
}

/// Records a failed password check for a username.
pub async fn record_failure(kv: &Kv, name: &str, mut state: LoginThrottle, now: i64) -> Result<()> {
    state.record_failure(now);
    let json = serde_json::to_vec(&state).unwrap_or_default();
    kv.set(&keys::throttle(name), &json).await
}

/// Handles `POST /v1/login`.
pub async fn login(body: Vec<u8>) -> Result<Reply> {
    let request = LoginRequest::parse(&body)?;
    // Load the keys first, so a misconfiguration fails before any write.
    let signer = config::signer().await?;
    let verifier = config::verifier().await?;
    let now = records::now();
    let Ok(name) = username::validate(&request.username) else {
        // No account can have this name; spend the same time anyway.
        password::verify_dummy(&request.password);
        return Err(unauthorized());
    };
    let mut kv = Kv::open().await?;
    let (state, throttled_before) = throttle(&kv, &name).await?;
    state.check(now)?;
    let account = records::account(&kv, &name).await?;
    let matches = match &account {
        Some(account) => password::verify(&request.password, &account.password_hash)?,
        None => password::verify_dummy(&request.password),
    };
    let Some(account) = account.filter(|_| matches) else {
        record_failure(&kv, &name, state, now).await?;
        return Err(unauthorized());
    };
    if account.disabled {
        return Err(Error::Forbidden("The account is disabled".into()));
    }
    if account.unconfirmed {
        return Err(Error::Unauthorized("User is not confirmed.".into()));
    }
    if throttled_before {
        kv.delete(&keys::throttle(&name)).await?;
    }
    let (record, refresh_token) = records::start_session(&mut kv, &account, now).await?;
    let tokens = verifier
        .issuer
        .login(signer, &account, &record.session, refresh_token, now);
    Ok(respond::json(200, &tokens))
}
