//! Reading requests and writing responses: the JSON body rules (415, 413),
//! the WME error body, and the 500 that logs but never tells.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde::Serialize;
use spin_sdk::http::{FullBody, Request, Response};
use wikiedge_core::reply::{self, MAX_BODY_BYTES};
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

/// The core's error response for `err` (`wikiedge_core::reply::error`, the
/// same as every component's); a 5xx is logged with its detail first, and
/// its body says nothing internal.
pub fn error(err: &Error) -> Reply {
    if reply::logs(err) {
        eprintln!("auth: {err:?}");
    }
    let (head, body) = reply::error(err);
    let mut resp = build(head.status, body, false);
    for (name, value) in head.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, value);
        }
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

/// Reads a JSON request body by the core's rules
/// (`wikiedge_core::reply`: 413 over 64 KiB, declared or read; 415 for
/// another type; an empty body without a type is let through, so that it
/// gets the route's 422 "request body is required").
pub async fn json_body(req: Request) -> Result<Vec<u8>> {
    let content_type = header(&req, CONTENT_TYPE.as_str()).map(str::to_string);
    reply::check_json_head(
        content_type.as_deref(),
        header(&req, CONTENT_LENGTH.as_str()),
    )?;
    let body = Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                reply::too_large(MAX_BODY_BYTES)
            } else {
                Error::BadRequest("could not read the request body".into())
            }
        })?
        .to_bytes();
    reply::check_json_body(content_type.as_deref(), &body)?;
    Ok(body.to_vec())
}
