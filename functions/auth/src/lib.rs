//! The auth function: accounts, login, token refresh and revocation, and
//! the token verifier every other function imports.
//!
//! It is two things in one component:
//! - an HTTP handler (`#[http_service]`) for `/v1/login`,
//!   `/v1/token-refresh`, `/v1/token-revoke`, `/v1/change-password`,
//!   `/v1/get-user` and the admin API under `/v1/admin/accounts` (including
//!   `POST /v1/admin/accounts/{username}/unlock`, which clears the login
//!   throttle of a username);
//! - the export `wikiedge:auth/auth@0.1.0` (world `auth-provider`), whose
//!   `verify` is also what the HTTP routes use for their Bearer checks.
//!
//! The decisions live in `wikiedge-core`; this crate parses requests, reads
//! and writes key-value records (layout in [`records`]) and maps outcomes
//! to responses.
//!
//! Layout:
//! - [`config`]: Spin variables, cached per instance.
//! - [`kv`]: key-value reads, writes and compare-and-swap updates.
//! - [`records`]: the record layout and the storage operations on it.
//! - [`verify`]: access-token verification (one KV read).
//! - [`respond`]: body limits, content types, error bodies.
//! - [`login`], [`tokens`], [`user`], [`admin`]: the routes.
//! - [`selfserve`], [`mail`]: sign-up, confirmation, password reset and
//!   the delivery of their codes (docs/signup.md).

use respond::Reply;
use spin_sdk::http::{Method, Request};
use spin_sdk::http_service;
use wikiedge_core::Result;

pub mod admin;
pub mod config;
pub mod kv;
pub mod login;
pub mod mail;
pub mod records;
pub mod respond;
pub mod selfserve;
pub mod tokens;
pub mod user;
pub mod verify;

/// The generated WIT bindings and the `wikiedge:auth/auth` export. The
/// generated glue needs `unsafe`, which the workspace denies elsewhere.
#[allow(unsafe_code)]
mod wit {
    use spin_sdk::wit_bindgen;

    wit_bindgen::generate!({
        runtime_path: "::spin_sdk::wit_bindgen::rt",
        world: "auth-provider",
        path: "../../wit",
        generate_all,
    });

    use exports::wikiedge::auth::auth::{AuthError, Guest, Principal};

    struct Auth;

    impl Guest for Auth {
        fn verify(authorization: String) -> Result<Principal, AuthError> {
            crate::verify::verify_header(&authorization)
        }
    }

    export!(Auth);
}

pub use wit::exports;

/// The request path relative to the application: the matched route's fixed
/// part plus `spin-path-info`, or the URI path when those headers are absent.
fn route_path(req: &Request) -> String {
    let matched = respond::header(req, "spin-matched-route");
    let info = respond::header(req, "spin-path-info");
    let path = match (matched, info) {
        (Some(route), Some(info)) => format!("{}{info}", route.trim_end_matches("/...")),
        _ => req.uri().path().to_string(),
    };
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_string()
    } else {
        trimmed.to_string()
    }
}

#[http_service]
async fn handle(req: Request) -> Reply {
    match route(req).await {
        Ok(reply) => reply,
        Err(err) => respond::error(&err),
    }
}

async fn route(req: Request) -> Result<Reply> {
    let path = route_path(&req);
    let method = req.method().clone();
    let post = method == Method::POST;
    match path.as_str() {
        "/v1/login" | "/v1/token-refresh" | "/v1/token-revoke" | "/v1/change-password" if !post => {
            Ok(respond::method_not_allowed("POST"))
        }
        "/v1/login" => {
            let client = respond::header(&req, "spin-client-addr").map(str::to_string);
            login::login(respond::json_body(req).await?, client.as_deref()).await
        }
        "/v1/token-refresh" => tokens::refresh(respond::json_body(req).await?).await,
        "/v1/token-revoke" => tokens::revoke(respond::json_body(req).await?).await,
        "/v1/change-password" => {
            let client = respond::header(&req, "spin-client-addr").map(str::to_string);
            user::change_password(respond::json_body(req).await?, client.as_deref()).await
        }
        "/v1/get-user" if post || method == Method::GET => {
            user::get_user(respond::header(&req, "authorization")).await
        }
        "/v1/get-user" => Ok(respond::method_not_allowed("POST, GET")),
        "/v1/admin/outbox" if method == Method::GET => {
            authorize_admin(&req)?;
            selfserve::outbox().await
        }
        p if selfserve::PATHS.contains(&p) => selfserve::route(p, req).await,
        "/v1/admin/accounts" => {
            if !post && method != Method::GET {
                return Ok(respond::method_not_allowed("GET, POST"));
            }
            authorize_admin(&req)?;
            if post {
                admin::create(respond::json_body(req).await?).await
            } else {
                admin::list(&req).await
            }
        }
        other => match other.strip_prefix("/v1/admin/accounts/") {
            Some(rest)
                if rest
                    .strip_suffix("/unlock")
                    .is_some_and(|n| !n.contains('/')) =>
            {
                if !post {
                    return Ok(respond::method_not_allowed("POST"));
                }
                authorize_admin(&req)?;
                admin::unlock(rest.trim_end_matches("/unlock")).await
            }
            Some(name) if !name.contains('/') => {
                if method != Method::GET && method != Method::PATCH {
                    return Ok(respond::method_not_allowed("GET, PATCH"));
                }
                authorize_admin(&req)?;
                let name = name.to_string();
                if method == Method::GET {
                    admin::get(&name).await
                } else {
                    admin::patch(&name, respond::json_body(req).await?).await
                }
            }
            _ => Err(wikiedge_core::Error::NotFound("Not found".into())),
        },
    }
}

fn authorize_admin(req: &Request) -> Result<()> {
    admin::authorize(&admin::Credentials {
        admin_key: respond::header(req, "x-admin-key"),
        authorization: respond::header(req, "authorization"),
    })
}
