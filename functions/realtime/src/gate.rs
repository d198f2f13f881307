//! Realtime's quota policy over the shared gate ([`wikiedge_fn::gate`]),
//! and the ingest credential check.
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
use wikiedge_fn::bindings::wikiedge::auth::auth::Principal;
use wikiedge_fn::bindings::wikiedge::quota::quota::Decision;
use wikiedge_fn::gate::{self, header};
use wikiedge_fn::respond::Reply;

use crate::config;

pub use wikiedge_fn::gate::authenticate;

/// The quota and metering product of a stream.
pub const PRODUCT: &str = "realtime";

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
    let principal = authenticate(headers)?;
    if principal.role == "admin" {
        Ok(())
    } else {
        Err(Error::Forbidden("ingest needs an admin".into()))
    }
}

/// Consumes one connection's unit of `realtime`. `Ok(decision)` may be a denial.
pub fn consume(principal: &Principal) -> Result<Decision, Error> {
    gate::consume(principal, PRODUCT)
}

/// Reads the current limits without consuming; `None` when quota cannot answer.
pub fn peek(principal: &Principal) -> Option<Decision> {
    gate::peek(principal, PRODUCT)
}

/// The answer to a denied decision: 403 when the plan does not include
/// realtime, else 429 with `Retry-After`.
pub fn denied(decision: &Decision) -> Reply {
    if decision.limit == 0 {
        Reply::error(&Error::Forbidden(
            "Your plan does not include realtime".into(),
        ))
        .rate_limit(Some(decision))
    } else {
        gate::denied(decision)
    }
}

/// An error answered before quota was consumed: not metered, with the
/// `RateLimit` headers of a peek.
pub fn unmetered_error(principal: &Principal, err: &Error) -> Reply {
    gate::unmetered_error(principal, PRODUCT, err)
}

/// Records one connection (or one denied attempt).
pub fn record(
    principal: &Principal,
    admitted: bool,
    status: u16,
    bytes: u64,
) -> Result<(), String> {
    gate::record(principal, PRODUCT, admitted, status, bytes)
}
