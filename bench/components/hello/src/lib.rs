//! The trivial component for the benchmark's scenario (c): a small fixed
//! body, no key-value, no variables, so the measurement is the host's own
//! per-request cost (routing, instantiation or reuse, body plumbing).

use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_service;

/// The fixed response body.
const BODY: &str = "Hello from wikiedge-bench\n";

#[http_service]
async fn handle(_req: Request) -> impl IntoResponse {
    let mut resp = Response::new(BODY.to_string());
    resp.headers_mut().insert(
        "content-type",
        spin_sdk::http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
