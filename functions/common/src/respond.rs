//! The reply a handler builds: status, headers and a body, kept as plain
//! data until the very end so that metering can see the body size and the
//! quota headers can be added on every path. The body is bytes by default;
//! a component with streamed bodies uses its own body type.

use bytes::Bytes;
use spin_sdk::http::{BoxBody, FullBody, box_body};
use wikiedge_core::Error;

use crate::bindings::wikiedge::quota::quota::Decision;
use spin_sdk::wasip3::http::types as wasi;
use spin_sdk::wasip3::http_compat::BodyWriter;

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
    /// Keep the body in this instance once it is sent, under this tag
    /// ([`crate::kept`]): set only where the body is a stored value as it
    /// was read.
    pub keep: Option<crate::kept::Tag>,
}

impl<B: From<Vec<u8>>> Reply<B> {
    /// A reply with a JSON body.
    pub fn json(status: u16, body: Vec<u8>) -> Self {
        Reply {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: B::from(body),
            keep: None,
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
            keep: None,
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
            keep: None,
        }
    }

    /// `Content-Length` for a reply whose whole body is in hand, so the
    /// host sends it with its length rather than in chunks, and a client
    /// knows the size before the body arrives. A 304 and a 204 carry none,
    /// and a reply that already has one (a `HEAD` answered with the length
    /// of what a `GET` would send) keeps its own.
    fn with_length(self) -> Self {
        let has_length = self
            .headers
            .iter()
            .any(|(name, _)| *name == "content-length");
        if matches!(self.status, 204 | 304) || has_length {
            return self;
        }
        let len = self.body.len().to_string();
        self.header("content-length", len)
    }

    /// Converts to the HTTP response sent, the whole body in one buffer.
    pub fn into_response(self) -> http::Response<Full> {
        let mut this = self.with_length();
        let body = Full::new(Bytes::from(std::mem::take(&mut this.body)));
        this.into_response_with(body, || {
            Full::new(Bytes::from(Error::Internal(String::new()).body_json()))
        })
    }

    /// Converts to the `wasi:http` response sent, the whole body in one
    /// buffer: what [`Reply::into_response`] and spin-sdk's conversion
    /// (`http_into_wasi_response`) make of it, without an `http::HeaderMap`
    /// in between. That map checked every name and value byte by byte and
    /// was then cloned and copied out header by header, dear work in a
    /// guest; here each value gets the same check a word at a time
    /// ([`crate::bytes::visible_ascii`]) and a value that fails it is
    /// dropped, as `into_response` drops it. The host checks the names.
    pub fn into_wasi(self) -> Result<wasi::Response, wasi::ErrorCode> {
        let this = self.with_length();
        let (response, writer) = streamed(this.status, this.headers)?;
        let (body, keep) = (this.body, this.keep);
        spin_sdk::wasip3::wit_bindgen::spawn(async move {
            let sent = send(writer, body).await;
            if let (Some(tag), Some(body)) = (keep, sent) {
                crate::kept::keep(tag, body);
            }
        });
        Ok(response)
    }

    /// Converts to the HTTP response sent, with a boxed body (for handlers
    /// that also answer with streams).
    pub fn into_box_response(self) -> http::Response<BoxBody> {
        let this = self.with_length();
        let body = box_body(FullBody::new(Bytes::from(this.body)));
        response(this.status, &this.headers, body)
    }
}

/// Chunks a download's reading task may queue ahead of the one being sent
/// ([`parts_body`]).
pub const PARTS_AHEAD: usize = 2;

/// The sending half of a [`parts_body`].
pub type PartsSender = futures::channel::mpsc::Sender<anyhow::Result<Bytes>>;

/// A response body fed with stored parts by a task of the caller's, which
/// runs at most [`PARTS_AHEAD`] chunks ahead of the client: a slow reader
/// holds that many, one more in the task and the one being sent, never the
/// whole download (spin-sdk's `body::stream` queues 1,024 frames). An
/// `Err` ends the body with an error; dropping the sender ends it. A send
/// fails once the client has gone.
pub fn parts_body() -> (PartsSender, BoxBody) {
    use futures::StreamExt;
    let (tx, rx) = futures::channel::mpsc::channel(PARTS_AHEAD);
    let frames = rx.map(|chunk: anyhow::Result<Bytes>| chunk.map(http_body::Frame::data));
    (tx, box_body(http_body_util::StreamBody::new(frames)))
}

/// A `wasi:http` response whose body the caller writes on the returned
/// writer (its stream, then the end of the body on its result), for a body
/// sent as it is made. A header value that is not visible ASCII is dropped,
/// as [`Reply::into_wasi`] drops it.
pub fn streamed(
    status: u16,
    headers: Vec<(&'static str, String)>,
) -> Result<(wasi::Response, BodyWriter), wasi::ErrorCode> {
    let fields: Vec<(String, Vec<u8>)> = headers
        .into_iter()
        .filter(|(_, value)| crate::bytes::visible_ascii(value.as_bytes()))
        .map(|(name, value)| (name.to_string(), value.into_bytes()))
        .collect();
    let headers = wasi::Fields::from_list(&fields)
        .map_err(|e| wasi::ErrorCode::InternalError(Some(format!("headers: {e:?}"))))?;
    let (writer, body, result) = BodyWriter::new();
    let (response, _sent) = wasi::Response::new(headers, Some(body), result);
    response
        .set_status_code(status)
        .map_err(|()| wasi::ErrorCode::InternalError(Some(format!("status {status}"))))?;
    Ok((response, writer))
}

/// Sends a whole body on a response's body stream, then the end of the
/// body (no trailers), as spin-sdk's `BodyWriter::send_http_body` does
/// with a body of one data frame (none when empty), and gives the body's
/// buffer back, bytes intact, for [`crate::kept`]. When the reader went
/// away first, nothing comes back, and the result is not written (the
/// reader sees the writer dropped), as with `send_http_body`.
async fn send(writer: BodyWriter, body: Vec<u8>) -> Option<Vec<u8>> {
    let BodyWriter {
        mut stream_writer,
        result_writer,
        ..
    } = writer;
    let (len, at) = (body.len(), body.as_ptr());
    // A zero-length write would wait for the reader: an empty body sends no
    // data, as an empty `Full` body yields no frame.
    let mut back = if len == 0 {
        Vec::new()
    } else {
        // The same vector comes back, the written bytes drained from its
        // front: empty once everything went.
        stream_writer.write_all(body).await
    };
    if !back.is_empty() {
        return None;
    }
    drop(stream_writer);
    let _ = result_writer.write(Ok(None)).await;
    if len == 0 || back.as_ptr() != at || back.capacity() < len {
        return None;
    }
    // SAFETY: `back` is the allocation `body` was (same pointer, capacity
    // at least `len`), and its first `len` bytes are still the body's:
    // sending only read them (the host copies them out of this memory), and
    // draining a vector's `u8`s from the front moves nothing when nothing
    // is left after them. So they are initialised, as `set_len` needs.
    #[allow(unsafe_code)]
    unsafe {
        back.set_len(len);
    }
    Some(back)
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

#[cfg(test)]
mod tests {
    use super::Reply;

    fn length(resp: &http::Response<impl Sized>) -> Vec<&str> {
        resp.headers()
            .get_all("content-length")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    #[test]
    fn a_whole_body_is_sent_with_its_length() {
        let reply: Reply = Reply::json(200, b"[{\"name\":\"Anarchism\"}]".to_vec());
        assert_eq!(length(&reply.clone().into_response()), ["22"]);
        assert_eq!(length(&reply.into_box_response()), ["22"]);
        let empty: Reply = Reply::json(200, Vec::new());
        assert_eq!(length(&empty.into_response()), ["0"]);
    }

    #[test]
    fn a_304_has_no_length_and_a_length_already_set_is_kept() {
        assert!(length(&Reply::not_modified("\"1\"").into_response()).is_empty());
        // A HEAD answer: no body, the length a GET would send.
        let head: Reply = Reply::json(200, Vec::new()).header("content-length", "1234");
        assert_eq!(length(&head.into_box_response()), ["1234"]);
    }
}
