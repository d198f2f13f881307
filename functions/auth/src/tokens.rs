//! `POST /v1/token-refresh` and `POST /v1/token-revoke`.
//!
//! Both update the session record with compare-and-swap, so concurrent
//! refreshes cannot exceed the 90-refresh limit and a revocation cannot be
//! lost to a concurrent refresh.

use wikiedge_core::auth::token::parse_refresh_token;
use wikiedge_core::auth::{RefreshRequest, RevokeRequest};
use wikiedge_core::{Error, Result};

use crate::kv::Kv;
use crate::respond::{self, Reply};
use crate::{config, records};

fn unauthorized() -> Error {
    Error::Unauthorized("Unauthorized".into())
}

/// Handles `POST /v1/token-refresh`.
pub async fn refresh(body: Vec<u8>) -> Result<Reply> {
    let request = RefreshRequest::parse(&body)?;
    let (id, _) = parse_refresh_token(&request.refresh_token)?;
    let signer = config::signer()?;
    let verifier = config::verifier()?;
    let now = wikiedge_fn::now();
    let mut kv = Kv::open().await?;
    let account = records::account(&kv, &request.username)
        .await?
        .ok_or_else(unauthorized)?;
    let record = records::update_session(&mut kv, id, |record| {
        if account.disabled {
            // Only a caller holding the refresh token learns that the
            // account is disabled.
            let own = record.session.matches(&request.refresh_token)
                && record.session.account == request.username;
            return Err(if own {
                Error::Forbidden("The account is disabled".into())
            } else {
                unauthorized()
            });
        }
        record
            .session
            .refresh(&request.refresh_token, &request.username, now)?;
        record.sync(&account);
        Ok(true)
    })?
    .ok_or_else(unauthorized)?;
    let tokens = verifier
        .issuer
        .refresh(signer, &account, &record.session, now);
    Ok(respond::json(200, &tokens))
}

/// Handles `POST /v1/token-revoke`: the session and every access token
/// minted from it stop working. Revoking twice is not an error.
pub async fn revoke(body: Vec<u8>) -> Result<Reply> {
    let request = RevokeRequest::parse(&body)?;
    let (id, _) = parse_refresh_token(&request.refresh_token)?;
    let mut kv = Kv::open().await?;
    records::update_session(&mut kv, id, |record| {
        if !record.session.matches(&request.refresh_token) {
            return Err(unauthorized());
        }
        let changed = !record.session.revoked;
        record.session.revoke();
        Ok(changed)
    })?
    .ok_or_else(unauthorized)?;
    Ok(respond::no_content())
}
