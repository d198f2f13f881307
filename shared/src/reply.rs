//! How every component answers, decided once: the error response (status,
//! headers, WME body) and the rules for reading a JSON request body. The
//! components only turn these into their SDK's types.
//!
//! - An error is `{"status": N, "message": "..."}` as JSON, with
//!   `Retry-After` when the error carries a positive delay and
//!   `WWW-Authenticate: Bearer` on every 401 (RFC 6750 §3).
//! - A JSON body: a declared `Content-Length` over [`MAX_BODY_BYTES`] is a
//!   413 before anything is read, and so is a body that grows past it while
//!   being read (components read through a length limit); a declared `Content-Type` other than JSON
//!   is a 415; a non-empty body without a `Content-Type` is a 415 (an empty
//!   one is let through, so that the route can answer "request body is
//!   required" with its own 422).

use crate::Error;

/// The largest request body accepted, in bytes (64 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A response's status and headers (the body is separate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The HTTP status.
    pub status: u16,
    /// Headers, in order.
    pub headers: Vec<(&'static str, String)>,
}

/// The response to an error: its head and its WME JSON body. Nothing
/// internal is in the body ([`Error::body_json`]).
pub fn error(err: &Error) -> (Head, Vec<u8>) {
    let mut headers = vec![("content-type", "application/json".to_string())];
    if let Some(secs) = err.retry_after().filter(|s| *s > 0) {
        headers.push(("retry-after", secs.to_string()));
    }
    if err.status() == 401 {
        headers.push(("www-authenticate", "Bearer".to_string()));
    }
    (
        Head {
            status: err.status(),
            headers,
        },
        err.body_json(),
    )
}

/// Whether an error's detail goes to the log (server errors only; a
/// client's mistake is not the operator's news).
pub fn logs(err: &Error) -> bool {
    !err.is_client_error()
}

/// Whether a `Content-Type` value is JSON: `application/json`, any case,
/// with optional parameters such as `; charset=utf-8`.
pub fn is_json_content_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// The 413 of a body over `limit` bytes.
pub fn too_large(limit: usize) -> Error {
    Error::PayloadTooLarge(format!("request body must be at most {limit} bytes"))
}

fn unsupported() -> Error {
    Error::UnsupportedMediaType("Content-Type must be application/json".into())
}

/// Before reading a JSON body: its declared type and length.
pub fn check_json_head(
    content_type: Option<&str>,
    content_length: Option<&str>,
) -> Result<(), Error> {
    check_length(content_length, MAX_BODY_BYTES)?;
    if content_type.is_some_and(|ct| !is_json_content_type(ct)) {
        return Err(unsupported());
    }
    Ok(())
}

/// After reading a JSON body: a body needs a declared type.
pub fn check_json_body(content_type: Option<&str>, body: &[u8]) -> Result<(), Error> {
    if content_type.is_none() && !body.is_empty() {
        return Err(unsupported());
    }
    Ok(())
}

/// A declared `Content-Length` over `limit` is refused before reading.
pub fn check_length(content_length: Option<&str>, limit: usize) -> Result<(), Error> {
    if content_length
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > limit as u64)
    {
        return Err(too_large(limit));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types_with_parameters_are_accepted() {
        assert!(is_json_content_type("application/json"));
        assert!(is_json_content_type("application/json; charset=utf-8"));
        assert!(is_json_content_type("Application/JSON"));
        assert!(!is_json_content_type("text/plain"));
        assert!(!is_json_content_type("application/jsonx"));
    }

    fn header<'a>(head: &'a Head, name: &str) -> Option<&'a str> {
        head.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn every_401_names_the_bearer_scheme_and_only_401s_do() {
        let (head, body) = error(&Error::Unauthorized("no token".into()));
        assert_eq!(head.status, 401);
        assert_eq!(header(&head, "www-authenticate"), Some("Bearer"));
        assert_eq!(header(&head, "content-type"), Some("application/json"));
        let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(body["status"], 401);
        let (head, _) = error(&Error::Forbidden("no".into()));
        assert_eq!(header(&head, "www-authenticate"), None);
    }

    #[test]
    fn retry_after_only_when_positive() {
        let busy = |retry_after| Error::Unavailable {
            message: "busy".into(),
            retry_after,
        };
        assert_eq!(header(&error(&busy(3)).0, "retry-after"), Some("3"));
        assert_eq!(header(&error(&busy(0)).0, "retry-after"), None);
        assert!(logs(&busy(1)));
        assert!(!logs(&Error::BadRequest("x".into())));
    }

    #[test]
    fn json_body_rules() {
        assert!(check_json_head(Some("application/json"), Some("10")).is_ok());
        assert_eq!(
            check_json_head(Some("application/json"), Some("65537")).map_err(|e| e.status()),
            Err(413)
        );
        assert_eq!(
            check_json_head(Some("text/plain"), None).map_err(|e| e.status()),
            Err(415)
        );
        assert!(check_json_head(None, None).is_ok());
        assert!(check_json_body(None, b"").is_ok());
        assert_eq!(
            check_json_body(None, b"{}").map_err(|e| e.status()),
            Err(415)
        );
    }
}
