//! The reply a handler builds: status, headers and a body, kept as plain
//! data until the very end so that metering can see the body size and the
//! quota headers can be added on every path. The body is bytes by default;
//! a component with streamed bodies uses its own body type.

use bytes::Bytes;
use spin_sdk::http::{BoxBody, FullBody, box_body};
use wikiedge_core::Error;

use crate::bindings::wikiedge::quota::quota::Decision;

/// The response body type of a whole body in one buffer.
pub type Full = FullBody<Bytes>;

/// A response under construction.
#[derive(Debug, Clone)]
pub struct Reply<B = Vec<u8>> {
    /// The HTTP status.
    pub status: u16,
    /// Headers in insertion order.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: B,
}

impl<B: From<Vec<u8>>> Reply<B> {
    /// A reply with a JSON body.
    pub fn json(status: u16, body: Vec<u8>) -> Self {
        Reply {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: B::from(body),
        }
    }

    /// The core's error response (`wikiedge_core::reply::error`): the WME
    /// body, `Retry-After`, `WWW-Authenticate` on a 401. A 5xx logs its
    /// detail.
    pub fn error(err: &Error) -> Self {
        if wikiedge_core::reply::logs(err) {
            eprintln!("{}: {err:?}", crate::name());
        }
        let (head, body) = wikiedge_core::reply::error(err);
        Reply {
            status: head.status,
            headers: head.headers,
            body: B::from(body),
        }
    }
}

impl<B> Reply<B> {
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

    /// Converts to the HTTP response sent, with `body` as its body; header
    /// values that are not valid are dropped rather than failing the response.
    pub fn into_response_with<T>(
        self,
        body: T,
        internal_error: impl FnOnce() -> T,
    ) -> http::Response<T> {
        let mut builder = http::Response::builder().status(self.status);
        for (name, value) in &self.headers {
            // Header values we build are ASCII; anything else is dropped
            // rather than failing the response.
            if let Ok(value) = http::HeaderValue::from_str(value) {
                builder = builder.header(*name, value);
            }
        }
        builder.body(body).unwrap_or_else(|_| {
            let mut resp = http::Response::new(internal_error());
            *resp.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            resp
        })
    }
}

impl Reply {
    /// A 304 Not Modified: no body.
    pub fn not_modified(etag: &str) -> Self {
        Reply {
            status: 304,
            headers: vec![("etag", etag.to_string())],
            body: Vec::new(),
        }
    }

    /// Converts to the HTTP response sent, the whole body in one buffer.
    pub fn into_response(mut self) -> http::Response<Full> {
        let body = Full::new(Bytes::from(std::mem::take(&mut self.body)));
        self.into_response_with(body, || {
            Full::new(Bytes::from(Error::Internal(String::new()).body_json()))
        })
    }

    /// Converts to the HTTP response sent, with a boxed body (for handlers
    /// that also answer with streams).
    pub fn into_box_response(self) -> http::Response<BoxBody> {
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
