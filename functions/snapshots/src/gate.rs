//! Auth, quota and metering: the three imported interfaces, mapped to
//! [`Error`]s and reply headers in one place.
//!
//! Choices:
//! - Auth failures map as the WIT says: 401, except `disabled` (403) and
//!   `unavailable` (503 with `Retry-After`). They carry no `RateLimit`
//!   headers: there is no account to read limits for.
//! - A request answered before quota is consumed (metadata, HEAD, a bad
//!   body, an unsatisfiable range) costs no quota and is not metered; it
//!   gets the `RateLimit` headers of a `peek` at the `snapshot` quota.
//! - Metering is durable before the response leaves. If metering fails for
//!   an admitted request, the content is withheld and the caller gets 503:
//!   nothing answered goes unmetered.

use http::HeaderMap;
use wikiedge_core::Error;

use crate::bindings::wikiedge::api::auth::{self, AuthError, Principal};
use crate::bindings::wikiedge::api::metering::{self, UsageEvent};
use crate::bindings::wikiedge::api::quota::{self, Decision, QuotaError};
use crate::respond::Reply;

/// Seconds a caller should wait after a dependency was unavailable.
const RETRY_UNAVAILABLE: u64 = 1;

/// Verifies the `Authorization` header through the auth component.
pub async fn authenticate(headers: &HeaderMap) -> Result<Principal, Error> {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    auth::verify(authorization).await.map_err(|err| match err {
        AuthError::Missing => Error::Unauthorized("missing bearer token".into()),
        AuthError::Invalid(reason) => Error::Unauthorized(format!("invalid token: {reason}")),
        AuthError::Expired => Error::Unauthorized("token expired".into()),
        AuthError::Revoked => Error::Unauthorized("token revoked".into()),
        AuthError::Disabled => Error::Forbidden("account disabled".into()),
        AuthError::Unavailable(detail) => {
            eprintln!("snapshots: auth unavailable: {detail}");
            Error::Unavailable {
                message: "authentication is temporarily unavailable".into(),
                retry_after: RETRY_UNAVAILABLE,
            }
        }
    })
}

fn quota_error(err: QuotaError) -> Error {
    match err {
        // We send fixed products and one unit: an `invalid` is our bug.
        QuotaError::Invalid(detail) => Error::Internal(format!("quota rejected request: {detail}")),
        QuotaError::Unavailable(detail) => {
            eprintln!("snapshots: quota unavailable: {detail}");
            Error::Unavailable {
                message: "quota service is temporarily unavailable".into(),
                retry_after: RETRY_UNAVAILABLE,
            }
        }
    }
}

/// Consumes one unit of `product`. `Ok(decision)` may be a denial.
pub async fn consume(principal: &Principal, product: &str) -> Result<Decision, Error> {
    quota::consume(
        principal.account.clone(),
        principal.plan.clone(),
        product.to_string(),
        1,
    )
    .await
    .map_err(quota_error)
}

/// Reads the current limits without consuming; `None` when quota cannot
/// answer (the headers are then left out rather than failing the request).
pub async fn peek(principal: &Principal, product: &str) -> Option<Decision> {
    quota::peek(
        principal.account.clone(),
        principal.plan.clone(),
        product.to_string(),
    )
    .await
    .map_err(|err| eprintln!("snapshots: quota peek failed: {err:?}"))
    .ok()
}

/// The 429 for a denied decision, with `Retry-After` and the quota headers.
pub fn denied(decision: &Decision) -> Reply {
    Reply::error(&Error::TooManyRequests {
        message: format!(
            "quota exceeded; retry after {} seconds",
            decision.retry_after.max(1)
        ),
        retry_after: decision.retry_after.max(1),
    })
    .rate_limit(Some(decision))
}

/// An error answered before quota was consumed: not metered, with the
/// `RateLimit` headers of a peek at the snapshot quota.
pub async fn unmetered_error(principal: &Principal, err: &Error) -> Reply {
    let decision = peek(principal, "snapshot").await;
    Reply::error(err).rate_limit(decision.as_ref())
}

/// Records one answered request of `bytes` body bytes and returns the reply
/// to send. An admitted request whose usage cannot be recorded is answered
/// 503 instead: the body is only streamed after this returned.
pub async fn metered(
    principal: &Principal,
    product: &str,
    admitted: bool,
    bytes: u64,
    reply: Reply,
) -> Reply {
    let event = UsageEvent {
        account: principal.account.clone(),
        product: product.to_string(),
        admitted,
        status: reply.status,
        bytes,
    };
    match metering::record_usage(event).await {
        Ok(()) => reply,
        Err(detail) if admitted => {
            eprintln!("snapshots: metering failed, withholding the response: {detail}");
            let headers: Vec<_> = reply
                .headers
                .into_iter()
                .filter(|(name, _)| name.starts_with("ratelimit"))
                .collect();
            let mut out = Reply::error(&Error::Unavailable {
                message: "usage metering is temporarily unavailable".into(),
                retry_after: RETRY_UNAVAILABLE,
            });
            out.headers.extend(headers);
            out
        }
        Err(detail) => {
            eprintln!("snapshots: metering a denied request failed: {detail}");
            reply
        }
    }
}
