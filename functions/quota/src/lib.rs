//! The quota function: exports `wikiedge:quota/quota` (atomic consumption for
//! the data functions) and serves the quota HTTP routes.
//!
//! Routes:
//! - `GET /v1/quota`: the caller's plan, limits, usage and active grants;
//! - `PUT /v1/admin/accounts/{username}/plan`: set an account's plan and
//!   grants (admin);
//! - `POST|GET /v1/access-requests`, `GET /v1/access-requests/{id}`:
//!   exceptional-access requests of the caller;
//! - `GET /v1/admin/access-requests[?status=]`, `GET
//!   /v1/admin/access-requests/{id}`, `POST
//!   /v1/admin/access-requests/{id}/decision`: their review (admin).
//!
//! Layout:
//! - [`consume`]: the exported interface; [`burst`]: burst-key bookkeeping;
//! - [`limits`]: plans and the per-instance account cache;
//! - [`report`], [`plan`], [`access`]: the HTTP routes;
//! - local bearer verification and the key-value and HTTP plumbing come
//!   from [`wikiedge_fn`] (`caller`, `kv`, `web`).

mod access;
mod burst;
mod consume;
mod limits;
mod plan;
mod report;

use spin_sdk::http::{Method, Request};
use spin_sdk::{http_service, wit_bindgen};
use wikiedge_core::Error;
use wikiedge_fn::Component;
use wikiedge_fn::web::{self, Resp};

/// The generated bindings of the `quota-provider` world and the export of
/// [`Quota`]; generated glue needs `unsafe`, nothing handwritten does.
#[allow(unsafe_code)]
mod bindings {
    use super::{Quota, wit_bindgen};

    wit_bindgen::generate!({
        runtime_path: "::spin_sdk::wit_bindgen::rt",
        world: "quota-provider",
        path: "../../wit",
        generate_all,
    });

    export!(Quota);
}

pub(crate) use bindings::exports;

/// How the shared glue names this component.
static COMPONENT: Component = Component::new("wikiedge-quota");

struct Quota;

impl exports::wikiedge::quota::quota::Guest for Quota {
    fn consume(
        account: String,
        plan: String,
        product: String,
        units: u32,
    ) -> Result<
        exports::wikiedge::quota::quota::Decision,
        exports::wikiedge::quota::quota::QuotaError,
    > {
        wikiedge_fn::init(&COMPONENT);
        consume::consume(&account, &plan, &product, units)
    }

    fn peek(
        account: String,
        plan: String,
        product: String,
    ) -> Result<
        exports::wikiedge::quota::quota::Decision,
        exports::wikiedge::quota::quota::QuotaError,
    > {
        wikiedge_fn::init(&COMPONENT);
        consume::peek(&account, &plan, &product)
    }
}

/// The username of `/v1/admin/accounts/{username}/plan`: Spin's
/// named-segment header, else the path itself.
fn path_username(req: &Request, segments: &[&str]) -> String {
    web::header(req, "spin-path-match-username")
        .map(str::to_string)
        .or_else(|| segments.get(3).map(|s| s.to_string()))
        .unwrap_or_default()
}

async fn route(req: Request) -> Result<Resp, Error> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let method = req.method().clone();
    match segments.as_slice() {
        ["v1", "quota"] => match method {
            Method::GET => report::get(req).await,
            _ => Ok(web::method_not_allowed("GET")),
        },
        ["v1", "admin", "accounts", _, "plan"] => match method {
            Method::PUT => {
                let username = path_username(&req, &segments);
                plan::put(req, &username).await
            }
            _ => Ok(web::method_not_allowed("PUT")),
        },
        ["v1", "access-requests"] => match method {
            Method::POST => access::submit(req).await,
            Method::GET => access::list_own(req).await,
            _ => Ok(web::method_not_allowed("GET, POST")),
        },
        ["v1", "access-requests", id] => match method {
            Method::GET => {
                let id = id.to_string();
                access::get_own(req, &id).await
            }
            _ => Ok(web::method_not_allowed("GET")),
        },
        ["v1", "admin", "access-requests"] => match method {
            Method::GET => access::list_all(req).await,
            _ => Ok(web::method_not_allowed("GET")),
        },
        ["v1", "admin", "access-requests", id] => match method {
            Method::GET => {
                let id = id.to_string();
                access::get_any(req, &id).await
            }
            _ => Ok(web::method_not_allowed("GET")),
        },
        ["v1", "admin", "access-requests", id, "decision"] => match method {
            Method::POST => {
                let id = id.to_string();
                access::decide(req, &id).await
            }
            _ => Ok(web::method_not_allowed("POST")),
        },
        _ => Err(Error::NotFound("Not found".into())),
    }
}

#[http_service]
async fn handle(req: Request) -> Resp {
    wikiedge_fn::init(&COMPONENT);
    web::or_error(route(req).await)
}
