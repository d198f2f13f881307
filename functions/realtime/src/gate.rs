//! Auth, quota and metering over the imported interfaces, and the ingest
//! credential check.
//!
//! Choices:
//! - A stream consumes one unit of `realtime` quota per connection. A plan
//!   without `realtime` gets 403 (quota answers `limit: 0`); an exhausted
//!   one 429 with `Retry-After`.
//! - A connection is metered once, with the bytes it sent, just before its
//!   body ends (the body is still open, so nothing is answered unmetered).
//! - Ingest accepts `X-Ingest-Key` (the secret variable `ingest_key`, when
//!   set), `X-Admin-Key` (`admin_api_key`), or an admin bearer token; all
//!   keys are compared in constant time.

use http::HeaderMap;
use wikiedge_core::Error;
use wikiedge_core::auth::verify::admin_key_matches;

use crate::bindings::wikiedge::api::auth::{self, AuthError, Principal};
use crate::bindings::wikiedge::api::metering::{self, UsageEvent};
use crate::bindings::wikiedge::api::quota::{self, Decision, QuotaError};
use crate::config;
use crate::respond::Reply;

/// The quota and metering product of a stream.
pub const PRODUCT: &str = "realtime";

/// Seconds a caller should wait after a dependency was unavailable.
const RETRY_UNAVAILABLE: u64 = 1;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Verifies the `Authorization` header through the auth component.
pub async fn authenticate(headers: &HeaderMap) -> Result<Principal, Error> {
    let authorization = header(headers, "authorization")
        .unwrap_or_default()
        .to_string();
    auth::verify(authorization).await.map_err(|err| match err {
        AuthError::Missing => Error::Unauthorized("missing bearer token".into()),
        AuthError::Invalid(reason) => Error::Unauthorized(format!("invalid token: {reason}")),
        AuthError::Expired => Error::Unauthorized("token expired".into()),
        AuthError::Revoked => Error::Unauthorized("token revoked".into()),
        AuthError::Disabled => Error::Forbidden("account disabled".into()),
        AuthError::Unavailable(detail) => {
            eprintln!("realtime: auth unavailable: {detail}");
            Error::Unavailable {
                message: "authentication is temporarily unavailable".into(),
                retry_after: RETRY_UNAVAILABLE,
            }
        }
    })
}

/// Whether the request may ingest events.
pub async fn authorize_ingest(headers: &HeaderMap) -> Result<(), Error> {
    let config = config::config().await;
    if let Some(key) = header(headers, "x-ingest-key") {
        if admin_key_matches(Some(key), &config.ingest_key) {
            return Ok(());
        }
        return Err(Error::Unauthorized("invalid ingest key".into()));
    }
    if let Some(key) = header(headers, "x-admin-key") {
        if admin_key_matches(Some(key), &config.admin_key) {
            return Ok(());
        }
        return Err(Error::Unauthorized("invalid admin key".into()));
    }
    let principal = authenticate(headers).await?;
    if principal.role == "admin" {
        Ok(())
    } else {
        Err(Error::Forbidden("ingest needs an admin".into()))
    }
}

fn quota_error(err: QuotaError) -> Error {
    match err {
        QuotaError::Invalid(detail) => Error::Internal(format!("quota rejected request: {detail}")),
        QuotaError::Unavailable(detail) => {
            eprintln!("realtime: quota unavailable: {detail}");
            Error::Unavailable {
                message: "quota service is temporarily unavailable".into(),
                retry_after: RETRY_UNAVAILABLE,
            }
        }
    }
}

/// Consumes one connection's unit of `realtime`. `Ok(decision)` may be a denial.
pub async fn consume(principal: &Principal) -> Result<Decision, Error> {
    quota::consume(
        principal.account.clone(),
        principal.plan.clone(),
        PRODUCT.to_string(),
        1,
    )
    .await
    .map_err(quota_error)
}

/// Reads the current limits without consuming; `None` when quota cannot answer.
pub async fn peek(principal: &Principal) -> Option<Decision> {
    quota::peek(
        principal.account.clone(),
        principal.plan.clone(),
        PRODUCT.to_string(),
    )
    .await
    .map_err(|err| eprintln!("realtime: quota peek failed: {err:?}"))
    .ok()
}

/// The answer to a denied decision: 403 when the plan does not include
/// realtime, else 429 with `Retry-After`.
pub fn denied(decision: &Decision) -> Reply {
    let err = if decision.limit == 0 {
        Error::Forbidden("Your plan does not include realtime".into())
    } else {
        Error::TooManyRequests {
            message: format!(
                "quota exceeded; retry after {} seconds",
                decision.retry_after.max(1)
            ),
            retry_after: decision.retry_after.max(1),
        }
    };
    Reply::error(&err).rate_limit(Some(decision))
}

/// An error answered before quota was consumed: not metered, with the
/// `RateLimit` headers of a peek.
pub async fn unmetered_error(principal: &Principal, err: &Error) -> Reply {
    let decision = peek(principal).await;
    Reply::error(err).rate_limit(decision.as_ref())
}

/// Records one connection (or one denied attempt).
pub async fn record(
    principal: &Principal,
    admitted: bool,
    status: u16,
    bytes: u64,
) -> Result<(), String> {
    metering::record_usage(UsageEvent {
        account: principal.account.clone(),
        product: PRODUCT.to_string(),
        admitted,
        status,
        bytes,
    })
    .await
}
