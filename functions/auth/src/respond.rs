//! Reading requests and writing responses: the JSON body rules (415, 413),
//! the WME error body, and the 500 that logs but never tells.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde::Serialize;
use spin_sdk::http::{FullBody, Request, Response};
use wikiedge_core::auth::wire::{MAX_BODY_BYTES, is_json_content_type};
use wikiedge_core::{Error, Result};

/// Every response this component sends.
pub type Reply = Response<FullBody<Bytes>>;

fn build(status: u16, body: Vec<u8>, json: bool) -> Reply {
    let mut resp = Response::new(FullBody::new(Bytes::from(body)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if json {
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    resp
}

/// A JSON response.
pub fn json<T: Serialize>(status: u16, value: &T) -> Reply {
    match serde_json::to_vec(value) {
        Ok(body) => build(status, body, true),
        Err(e) => error(&Error::Internal(format!("serialising response: {e}"))),
    }
}

/// `204 No Content`.
pub fn no_content() -> Reply {
    build(204, Vec::new(), false)
}

/// The WME error body for `err`; a 5xx is logged with its detail first,
/// and its body says nothing internal ([`Error::body`]).
pub fn error(err: &Error) -> Reply {
    // Storage failures were logged with their detail where they happened.
    if !err.is_client_error() && !matches!(err, Error::Unavailable { .. }) {
        eprintln!("auth: {err:?}");
    }
    let mut resp = build(err.status(), err.body_json(), true);
    if let Some(secs) = err.retry_after().filter(|s| *s > 0)
        && let Ok(value) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(RETRY_AFTER, value);
    }
    resp
}

/// `405` naming the allowed methods.
pub fn method_not_allowed(allow: &'static str) -> Reply {
    let mut resp = error(&Error::MethodNotAllowed("Method not allowed".into()));
    resp.headers_mut()
        .insert(http::header::ALLOW, HeaderValue::from_static(allow));
    resp
}

/// A request header as text, if present and visible ASCII.
pub fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Reads a JSON request body of at most 64 KiB: another content type is a
/// 415 (an empty body without one is let through, so that it gets the 422
/// "request body is required"), a larger body a 413.
pub async fn json_body(req: Request) -> Result<Vec<u8>> {
    let content_type = header(&req, CONTENT_TYPE.as_str()).map(str::to_string);
    let declared = header(&req, CONTENT_LENGTH.as_str()).and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    if content_type
        .as_deref()
        .is_some_and(|ct| !is_json_content_type(ct))
    {
        return Err(unsupported());
    }
    let body = Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                Error::BadRequest("could not read the request body".into())
            }
        })?
        .to_bytes();
    if content_type.is_none() && !body.is_empty() {
        return Err(unsupported());
    }
    Ok(body.to_vec())
}

fn too_large() -> Error {
    Error::PayloadTooLarge(format!(
        "request body must be at most {MAX_BODY_BYTES} bytes"
    ))
}

fn unsupported() -> Error {
    Error::UnsupportedMediaType("Content-Type must be application/json".into())
}
