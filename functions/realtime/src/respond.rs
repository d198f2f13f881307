//! The reply type: a status, headers and a whole body, with the WME error
//! body in one place. Streams build their response in [`crate::stream`].

use bytes::Bytes;
use spin_sdk::http::{BoxBody, FullBody, box_body};
use wikiedge_core::Error;

use crate::bindings::wikiedge::api::quota::Decision;

/// A response under construction.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// Headers in insertion order.
    pub headers: Vec<(&'static str, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// A reply with a JSON body.
    pub fn json(status: u16, body: Vec<u8>) -> Self {
        Reply {
            status,
            headers: vec![("content-type", "application/json".into())],
            body,
        }
    }

    /// The WME error body `{"status": N, "message": ...}`, with
    /// `Retry-After` where it applies. A 5xx logs its detail.
    pub fn error(err: &Error) -> Self {
        if !err.is_client_error() {
            eprintln!("realtime: {err:?}");
        }
        let mut reply = Reply::json(err.status(), err.body_json());
        if let Some(seconds) = err.retry_after() {
            reply = reply.header("retry-after", seconds.to_string());
        }
        reply
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Adds the `RateLimit` and `RateLimit-Policy` headers of a quota decision.
    pub fn rate_limit(self, decision: Option<&Decision>) -> Self {
        match decision {
            Some(d) => self
                .header("ratelimit", d.ratelimit.clone())
                .header("ratelimit-policy", d.ratelimit_policy.clone()),
            None => self,
        }
    }

    /// Converts to the HTTP response sent.
    pub fn into_response(self) -> http::Response<BoxBody> {
        let body = box_body(FullBody::new(Bytes::from(self.body)));
        response(self.status, &self.headers, body)
    }
}

/// Builds a response; header values that are not valid are dropped.
pub fn response(
    status: u16,
    headers: &[(&'static str, String)],
    body: BoxBody,
) -> http::Response<BoxBody> {
    let mut resp = http::Response::new(body);
    *resp.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in headers {
        if let Ok(value) = http::HeaderValue::from_str(value) {
            resp.headers_mut().append(*name, value);
        }
    }
    resp
}
