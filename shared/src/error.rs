//! The crate's error type and its one mapping to HTTP.
//!
//! Every variant knows whose fault it is: the caller's (4xx) or ours (5xx).
//! Handlers turn an [`Error`] into the WME error body
//! `{"status": <int>, "message": "<text>"}` with [`Error::body`]; a 5xx never
//! carries internals in its message (they go to the log instead).

use serde::Serialize;

/// Result alias used throughout the core library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the core library.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// The request is syntactically broken (bad JSON, wrong content type).
    #[error("{0}")]
    BadRequest(String),
    /// No or invalid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but not allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The method is not supported on this route.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The request conflicts with the current state (e.g. the account exists).
    #[error("{0}")]
    Conflict(String),
    /// The request body is larger than we accept.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The request content type is not one we accept.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Well-formed but invalid input (WME answers 422 for validation errors).
    #[error("{0}")]
    Unprocessable(String),
    /// Quota or rate limit reached; retry after the given number of seconds.
    #[error("{message}")]
    TooManyRequests {
        /// The human-readable reason.
        message: String,
        /// Seconds until a retry can succeed.
        retry_after: u64,
    },
    /// A bug or an unexpected state on our side; the text is for the log only.
    #[error("internal error: {0}")]
    Internal(String),
    /// An upstream (MediaWiki) failed or answered garbage.
    #[error("{0}")]
    BadGateway(String),
    /// A dependency (storage) is unavailable; retry after the given seconds.
    #[error("{message}")]
    Unavailable {
        /// The human-readable reason.
        message: String,
        /// Seconds until a retry is worthwhile.
        retry_after: u64,
    },
    /// An upstream did not answer in time.
    #[error("{0}")]
    GatewayTimeout(String),
}

/// The WME error body: `{"status": <int>, "message": "<text>"}`.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq, Clone)]
pub struct ErrorBody {
    /// The HTTP status code, repeated in the body as WME does.
    pub status: u16,
    /// A human-readable message without internals.
    pub message: String,
}

impl Error {
    /// The HTTP status this error maps to.
    pub fn status(&self) -> u16 {
        match self {
            Error::BadRequest(_) => 400,
            Error::Unauthorized(_) => 401,
            Error::Forbidden(_) => 403,
            Error::NotFound(_) => 404,
            Error::MethodNotAllowed(_) => 405,
            Error::Conflict(_) => 409,
            Error::PayloadTooLarge(_) => 413,
            Error::UnsupportedMediaType(_) => 415,
            Error::Unprocessable(_) => 422,
            Error::TooManyRequests { .. } => 429,
            Error::Internal(_) => 500,
            Error::BadGateway(_) => 502,
            Error::Unavailable { .. } => 503,
            Error::GatewayTimeout(_) => 504,
        }
    }

    /// Whether the caller caused this error (4xx) rather than us (5xx).
    pub fn is_client_error(&self) -> bool {
        self.status() < 500
    }

    /// Seconds for a `Retry-After` header, where one applies.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Error::TooManyRequests { retry_after, .. } | Error::Unavailable { retry_after, .. } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }

    /// The body to send. Internal errors get a generic message: their detail
    /// is for the log (`{err:?}`), never for the client.
    pub fn body(&self) -> ErrorBody {
        let message = match self {
            Error::Internal(_) => "Internal server error".to_string(),
            other => other.to_string(),
        };
        ErrorBody {
            status: self.status(),
            message,
        }
    }

    /// The body serialised as JSON bytes.
    pub fn body_json(&self) -> Vec<u8> {
        // Serialising a struct of a u16 and a String cannot fail.
        serde_json::to_vec(&self.body()).unwrap_or_default()
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::Unprocessable(format!("invalid JSON: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(err: Error, status: u16, message: &str) {
        let body = err.body();
        assert_eq!(body.status, status);
        assert_eq!(body.message, message);
    }

    #[test]
    fn client_errors_keep_their_message() {
        check(
            Error::Unprocessable("limit must be at most 10".into()),
            422,
            "limit must be at most 10",
        );
        check(
            Error::Unauthorized("token expired".into()),
            401,
            "token expired",
        );
    }

    #[test]
    fn internal_errors_hide_their_detail() {
        let err = Error::Internal("sqlite: disk I/O error at /var/x".into());
        check(err.clone(), 500, "Internal server error");
        assert!(!err.is_client_error());
    }

    #[test]
    fn retry_after_only_on_429_and_503() {
        let err = Error::TooManyRequests {
            message: "quota".into(),
            retry_after: 7,
        };
        assert_eq!(err.retry_after(), Some(7));
        assert_eq!(Error::NotFound("x".into()).retry_after(), None);
    }
}
