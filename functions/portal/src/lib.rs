//! The portal component: a small web application for people (sign-up,
//! confirmation, login, password reset, the account dashboard, exceptional
//! access, and the admin's review desk) and the OpenAPI 3.1 document of the
//! whole API.
//!
//! It holds no variables, stores or outbound hosts: the app in the browser
//! speaks only the public API, with the caller's own token. Every asset is
//! compiled in ([`assets`]), nothing comes from a third party, and every
//! answer carries a strict Content-Security-Policy (no inline script or
//! style; see docs/portal.md).
//!
//! Routes: `GET /portal`, `GET /portal/{index.html,app.js,app.css}` and
//! `GET /openapi.json`.

pub mod assets;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use spin_sdk::http::{FullBody, Method, Request, Response};
use spin_sdk::http_service;

/// The Content-Security-Policy of every answer: scripts, styles and API
/// calls from this origin only; no inline code, frames, forms to
/// elsewhere, plugins or base-URI tricks.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

fn respond(
    status: u16,
    content_type: &'static str,
    body: &'static [u8],
) -> Response<FullBody<Bytes>> {
    let mut resp = Response::new(FullBody::new(Bytes::from_static(body)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert("content-security-policy", HeaderValue::from_static(CSP));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// The request path: the matched route's fixed part plus `spin-path-info`,
/// or the URI path.
fn path(req: &Request) -> String {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    match (header("spin-matched-route"), header("spin-path-info")) {
        (Some(route), Some(info)) => format!("{}{info}", route.trim_end_matches("/...")),
        _ => req.uri().path().to_string(),
    }
}

#[http_service]
async fn handle(req: Request) -> Response<FullBody<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut resp = respond(
            405,
            "application/json",
            br#"{"status":405,"message":"Method not allowed"}"#,
        );
        resp.headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    match assets::find(&path(&req)) {
        Some(asset) => respond(200, asset.content_type, asset.body),
        None => respond(
            404,
            "application/json",
            br#"{"status":404,"message":"Not found"}"#,
        ),
    }
}
