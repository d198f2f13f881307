//! Auth, quota and metering: the three imported interfaces, mapped to
//! [`Error`]s and reply headers in one place.
//!
//! Choices:
//! - Auth failures map as the WIT says: 401, except `disabled` (403) and
//!   `unavailable` (503 with `Retry-After`). They carry no `RateLimit`
//!   headers: there is no account to read limits for.
//! - A request that fails validation before quota is consumed costs no
//!   quota and is not metered; it gets the `RateLimit` headers of a `peek`.
//! - Metering is durable before the response leaves. If metering fails for
//!   an admitted request, the content is withheld and the caller gets 503:
//!   nothing answered goes unmetered.

use http::HeaderMap;
use wikiedge_core::Error;

use crate::bindings::wikiedge::auth::auth::{self, AuthError, Principal};
use crate::bindings::wikiedge::metering::metering::{self, UsageEvent};
use crate::bindings::wikiedge::quota::quota::{self, Decision, QuotaError};
use crate::name;
use crate::respond::Reply;

/// Seconds a caller should wait after a dependency was unavailable.
const RETRY_UNAVAILABLE: u64 = 1;

/// A request header as text, if present and valid: visible ASCII and
/// tabs only, `HeaderValue::to_str`'s rule.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let bytes = headers.get(name)?.as_bytes();
    if !crate::bytes::visible_ascii(bytes) {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

/// Verifies the `Authorization` header through the auth component.
pub fn authenticate(headers: &HeaderMap) -> Result<Principal, Error> {
    let authorization = header(headers, "authorization").unwrap_or_default();
    auth::verify(authorization).map_err(|err| match err {
        AuthError::Missing => Error::Unauthorized("missing bearer token".into()),
        AuthError::Invalid(reason) => Error::Unauthorized(format!("invalid token: {reason}")),
        AuthError::Expired => Error::Unauthorized("token expired".into()),
        AuthError::Revoked => Error::Unauthorized("token revoked".into()),
        AuthError::Disabled => Error::Forbidden("account disabled".into()),
        AuthError::Unavailable(detail) => {
            eprintln!("{}: auth unavailable: {detail}", name());
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
            eprintln!("{}: quota unavailable: {detail}", name());
            Error::Unavailable {
                message: "quota service is temporarily unavailable".into(),
                retry_after: RETRY_UNAVAILABLE,
            }
        }
    }
}

/// Consumes one unit of `product`. `Ok(decision)` may be a denial.
pub fn consume(principal: &Principal, product: &str) -> Result<Decision, Error> {
    quota::consume(&principal.account, &principal.plan, product, 1).map_err(quota_error)
}

/// Reads the current limits without consuming; `None` when quota cannot
/// answer (the headers are then left out rather than failing the request).
pub fn peek(principal: &Principal, product: &str) -> Option<Decision> {
    quota::peek(&principal.account, &principal.plan, product)
        .map_err(|err| eprintln!("{}: quota peek failed: {err:?}", name()))
        .ok()
}

/// The 429 for a denied decision, with `Retry-After` and the quota headers.
pub fn denied<B: From<Vec<u8>>>(decision: &Decision) -> Reply<B> {
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
/// `RateLimit` headers of a peek at `product`.
pub fn unmetered_error<B: From<Vec<u8>>>(
    principal: &Principal,
    product: &str,
    err: &Error,
) -> Reply<B> {
    let decision = peek(principal, product);
    Reply::error(err).rate_limit(decision.as_ref())
}

/// Authenticates the caller, then reads the body (an anonymous client
/// cannot make a component read one): the principal and the body, or the
/// reply to send instead. A body that cannot be read is answered unmetered
/// with `product`'s `RateLimit` headers.
pub async fn admit<B: From<Vec<u8>>>(
    headers: &HeaderMap,
    product: &str,
    body: impl Future<Output = Result<Vec<u8>, Error>>,
) -> Result<(Principal, Vec<u8>), Reply<B>> {
    let principal = match authenticate(headers) {
        Ok(principal) => principal,
        Err(err) => return Err(Reply::error(&err)),
    };
    match body.await {
        Ok(body) => Ok((principal, body)),
        Err(err) => Err(unmetered_error(&principal, product, &err)),
    }
}

/// Records one answered request (or one denied attempt) of `bytes` body
/// bytes.
pub fn record(
    principal: &Principal,
    product: &str,
    admitted: bool,
    status: u16,
    bytes: u64,
) -> Result<(), String> {
    metering::record_usage(&UsageEvent {
        account: principal.account.clone(),
        product: product.to_string(),
        admitted,
        status,
        bytes,
    })
}

/// Records one answered request of `bytes` body bytes and returns the reply
/// to send. An admitted request whose usage cannot be recorded is answered
/// 503 instead.
pub fn metered<B: From<Vec<u8>>>(
    principal: &Principal,
    product: &str,
    admitted: bool,
    bytes: u64,
    reply: Reply<B>,
) -> Reply<B> {
    match record(principal, product, admitted, reply.status, bytes) {
        Ok(()) => reply,
        Err(detail) if admitted => {
            eprintln!(
                "{}: metering failed, withholding the response: {detail}",
                name()
            );
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
            eprintln!("{}: metering a denied request failed: {detail}", name());
            reply
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_is_text_only_when_to_str_would_give_it() {
        for raw in [
            &b"Bearer abc.def"[..],
            b"\tleading tab and more than eight bytes",
            b"caf\xc3\xa9 is not visible ASCII",
            b"obs-text \xff here",
        ] {
            let mut headers = HeaderMap::new();
            let value =
                http::HeaderValue::from_bytes(raw).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
            headers.insert("authorization", value.clone());
            assert_eq!(
                header(&headers, "authorization"),
                value.to_str().ok(),
                "{raw:?}"
            );
        }
        assert_eq!(header(&HeaderMap::new(), "authorization"), None);
    }
}
