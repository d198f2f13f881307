//! The incoming request as an [`http::Request`], without Spin's `spin-*`
//! headers, for a component that reads none of them.
//!
//! Spin adds eight headers to every request it hands a component
//! (`spin-full-url`, `spin-path-info`, `spin-matched-route`,
//! `spin-base-path`, `spin-raw-component-route`, `spin-component-route`,
//! `spin-client-addr`, and one per path parameter). spin-sdk's conversion
//! (`wasip3::http_compat::http_from_wasi_request`) turns every header into
//! an `http::HeaderMap` entry, checking each name and value byte by byte,
//! and a guest's byte loop is dear. A data function that reads none of
//! them (the route is in the URI) converts the request here instead: the
//! same request, built the same way from the same host calls, except that
//! the `spin-*` headers are left out, and that the request's `options`
//! (for outgoing requests only) are not carried.

use spin_sdk::http::Request;
use spin_sdk::wasip3::http::types::{self, ErrorCode};
use spin_sdk::wasip3::http_compat::IncomingRequestBody;

/// The prefix of the headers Spin adds.
const SPIN: &[u8] = b"spin-";

/// `req` as an [`http::Request`], without its `spin-*` headers.
pub fn request(req: types::Request) -> Result<Request, ErrorCode> {
    let mut uri = http::Uri::builder();
    if let Some(scheme) = req.get_scheme() {
        uri = uri.scheme(scheme);
    }
    if let Some(authority) = req.get_authority() {
        uri = uri.authority(authority);
    }
    if let Some(path_and_query) = req.get_path_with_query() {
        uri = uri.path_and_query(path_and_query);
    }
    let uri = uri.build().map_err(|_| ErrorCode::HttpRequestUriInvalid)?;
    let mut builder = http::Request::builder().method(req.get_method()).uri(uri);
    for (name, value) in req.get_headers().copy_all() {
        if is_spin(&name) {
            continue;
        }
        builder = builder.header(name, value);
    }
    let body = IncomingRequestBody::new(req)?;
    builder
        .body(body)
        .map_err(|e| ErrorCode::InternalError(Some(e.to_string())))
}

/// Whether header `name` is one of those Spin adds.
fn is_spin(name: &str) -> bool {
    name.as_bytes()
        .get(..SPIN.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(SPIN))
}

#[cfg(test)]
mod tests {
    use super::is_spin;

    #[test]
    fn only_spin_headers_are_left_out() {
        for name in [
            "spin-full-url",
            "spin-path-info",
            "Spin-Matched-Route",
            "spin-path-match-username",
            "spin-client-addr",
        ] {
            assert!(is_spin(name), "{name} kept");
        }
        for name in [
            "authorization",
            "if-none-match",
            "spin",
            "spinach",
            "x-spin-full-url",
            "",
        ] {
            assert!(!is_spin(name), "{name} left out");
        }
    }
}
