//! HTTP plumbing: JSON and error responses, bounded request bodies,
//! queries.
//!
//! Every error leaves through [`error`], which renders the WME body
//! `{"status": N, "message": "..."}`, logs 5xx errors with their detail to
//! stderr, and sets `Retry-After` / `WWW-Authenticate` where they apply.

use futures::StreamExt;
use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::http::{HeaderValue, Request, Response, StatusCode};
use wikiedge_core::Error;

/// The response type of every route.
pub type Resp = Response<String>;

/// The largest request body accepted, in bytes (64 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A response with a body of the given content type.
pub fn response(status: u16, content_type: &'static str, body: String) -> Resp {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static(content_type));
    resp
}

/// A JSON response.
pub fn json<T: serde::Serialize>(status: u16, value: &T) -> Resp {
    match serde_json::to_string(value) {
        Ok(body) => response(status, "application/json", body),
        Err(e) => error(&Error::Internal(format!("serialising a response: {e}"))),
    }
}

/// The error response; 5xx detail goes to stderr only.
pub fn error(err: &Error) -> Resp {
    if !err.is_client_error() {
        eprintln!("{}: {err:?}", crate::name());
    }
    let body = String::from_utf8(err.body_json()).unwrap_or_default();
    let mut resp = response(err.status(), "application/json", body);
    if let Some(secs) = err.retry_after()
        && let Ok(value) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert("retry-after", value);
    }
    if err.status() == 401 {
        resp.headers_mut()
            .insert("www-authenticate", HeaderValue::from_static("Bearer"));
    }
    resp
}

/// The response of a route's result: the response, or the error response.
pub fn or_error(result: Result<Resp, Error>) -> Resp {
    match result {
        Ok(resp) => resp,
        Err(err) => error(&err),
    }
}

/// A request body already read whole: 413 past `limit` bytes, 400 when it
/// could not be read.
pub fn read_body<E: std::fmt::Debug>(
    read: Result<bytes::Bytes, E>,
    limit: usize,
) -> Result<Vec<u8>, Error> {
    match read {
        Ok(bytes) if bytes.len() > limit => Err(Error::PayloadTooLarge(format!(
            "request body must be at most {limit} bytes"
        ))),
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(e) => Err(Error::BadRequest(format!(
            "could not read the request body: {e:?}"
        ))),
    }
}

/// A 405 naming the allowed methods.
pub fn method_not_allowed(allow: &'static str) -> Resp {
    let mut resp = error(&Error::MethodNotAllowed("Method not allowed".into()));
    resp.headers_mut()
        .insert("allow", HeaderValue::from_static(allow));
    resp
}

/// A request header as text, if present and valid.
pub fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first value of a query parameter, percent-decoded.
pub fn query(req: &Request, name: &str) -> Option<String> {
    req.uri().query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

/// Reads a JSON request body: 415 unless `Content-Type` is JSON, 413 past
/// [`MAX_BODY_BYTES`], 400 when the body cannot be read.
pub async fn json_body(req: Request) -> Result<Vec<u8>, Error> {
    let content_type = header(&req, "content-type").unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(Error::UnsupportedMediaType(
            "Content-Type must be application/json".into(),
        ));
    }
    let too_large = || {
        Error::PayloadTooLarge(format!(
            "request body must be at most {MAX_BODY_BYTES} bytes"
        ))
    };
    if header(&req, "content-length")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut stream = req.into_body().stream();
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::BadRequest(format!("reading the body: {e:?}")))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(percent_decode("a%2Cb+c"), "a,b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
