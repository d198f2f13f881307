//! HTTP plumbing: JSON and error responses, bounded request bodies,
//! queries.
//!
//! Every error leaves through [`error`] (or [`crate::respond::Reply::error`]),
//! both rendering the core's one error response (`wikiedge_core::reply`):
//! the WME body, `Retry-After`, `WWW-Authenticate` on every 401; 5xx
//! detail goes to stderr only. Bodies are read under a limit, chunk by
//! chunk ([`read_bounded`]).

use http_body_util::BodyExt;
use spin_sdk::http::{HeaderValue, Request, Response, StatusCode};
use wikiedge_core::{Error, reply};

/// The response type of every route.
pub type Resp = Response<String>;

pub use wikiedge_core::reply::MAX_BODY_BYTES;

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
    if reply::logs(err) {
        eprintln!("{}: {err:?}", crate::name());
    }
    let (head, body) = reply::error(err);
    let mut resp = Response::new(String::from_utf8(body).unwrap_or_default());
    *resp.status_mut() =
        StatusCode::from_u16(head.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in head.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, value);
        }
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

/// The body of a `POST`, read under [`MAX_BODY_BYTES`]; none for any other
/// method. Nothing is read until the future is awaited, so a component can
/// authenticate the caller first (see [`crate::gate::admit`]).
pub async fn post_body<B>(method: &http::Method, body: B) -> Result<Vec<u8>, Error>
where
    B: http_body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if method == http::Method::POST {
        read_bounded(body, MAX_BODY_BYTES).await
    } else {
        Ok(Vec::new())
    }
}

/// Reads a request body under a limit: a 413 as soon as it passes `limit`
/// bytes (nothing past the limit is held), a 400 when it cannot be read.
pub async fn read_bounded<B>(body: B, limit: usize) -> Result<Vec<u8>, Error>
where
    B: http_body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(reply::too_large(limit)),
        Err(_) => Err(Error::BadRequest("could not read the request body".into())),
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

/// A query-string component: `+` is a space, then percent-decoding
/// (invalid escapes kept as they are, invalid UTF-8 replaced).
fn percent_decode(text: &str) -> String {
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
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
    let content_type = header(&req, "content-type").map(str::to_string);
    reply::check_json_head(content_type.as_deref(), header(&req, "content-length"))?;
    let body = read_bounded(req.into_body(), MAX_BODY_BYTES).await?;
    reply::check_json_body(content_type.as_deref(), &body)?;
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
