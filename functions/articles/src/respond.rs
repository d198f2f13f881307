//! The reply a handler builds: status, headers and body bytes, kept as plain
//! data until the very end so that metering can see the body size and the
//! quota headers can be added on every path.

use bytes::Bytes;
use wikiedge_core::Error;

use crate::bindings::wikiedge::api::quota::Decision;

/// The response body type: the whole body in one buffer.
type Full = spin_sdk::http::FullBody<Bytes>;

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

    /// The WME error body `{"status": N, "message": ...}` for an error, with
    /// `Retry-After` where it applies. A 5xx logs its detail.
    pub fn error(err: &Error) -> Self {
        if !err.is_client_error() {
            eprintln!("articles: {err:?}");
        }
        let mut reply = Reply::json(err.status(), err.body_json());
        if let Some(seconds) = err.retry_after() {
            reply = reply.header("retry-after", seconds.to_string());
        }
        reply
    }

    /// A 304 Not Modified: no body.
    pub fn not_modified(etag: &str) -> Self {
        Reply {
            status: 304,
            headers: vec![("etag", etag.to_string())],
            body: Vec::new(),
        }
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
    pub fn into_response(self) -> http::Response<Full> {
        let mut builder = http::Response::builder().status(self.status);
        for (name, value) in &self.headers {
            // Header values we build are ASCII; anything else is dropped
            // rather than failing the response.
            if let Ok(value) = http::HeaderValue::from_str(value) {
                builder = builder.header(*name, value);
            }
        }
        builder
            .body(Full::new(Bytes::from(self.body)))
            .unwrap_or_else(|_| {
                let mut resp = http::Response::new(Full::new(Bytes::from(
                    Error::Internal(String::new()).body_json(),
                )));
                *resp.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                resp
            })
    }
}
