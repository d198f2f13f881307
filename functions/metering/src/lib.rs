//! The metering function: exports `wikiedge:metering/metering` (one call per
//! request served by a data function) and serves usage reports.
//!
//! Routes:
//! - `GET /v1/usage?from=YYYY-MM-DD&to=YYYY-MM-DD`: the caller's daily
//!   rows per product (JSON, or CSV with `Accept: text/csv`); an admin may
//!   add `account=NAME`, anyone else gets 403 for it;
//! - `GET /v1/admin/usage?month=YYYY-MM`: every account with usage that
//!   month, summed per product (admin; JSON or CSV).
//!
//! Layout: [`record`] (the exported interface), [`usage`] (the routes);
//! local bearer verification and the key-value and HTTP plumbing come from
//! [`wikiedge_fn`] (`caller`, `kv`, `web`).

mod record;
mod usage;

use spin_sdk::http::{Method, Request};
use spin_sdk::{http_service, wit_bindgen};
use wikiedge_core::Error;
use wikiedge_fn::Component;
use wikiedge_fn::web::{self, Resp};

/// The generated bindings of the `metering-provider` world and the export
/// of [`Metering`]; generated glue needs `unsafe`, nothing handwritten does.
#[allow(unsafe_code)]
mod bindings {
    use super::{Metering, wit_bindgen};

    wit_bindgen::generate!({
        runtime_path: "::spin_sdk::wit_bindgen::rt",
        world: "metering-provider",
        path: "../../wit",
        generate_all,
    });

    export!(Metering);
}

pub(crate) use bindings::exports;

/// How the shared glue names this component.
static COMPONENT: Component = Component::new("wikiedge-metering");

struct Metering;

impl exports::wikiedge::metering::metering::Guest for Metering {
    fn record_usage(
        event: exports::wikiedge::metering::metering::UsageEvent,
    ) -> Result<(), String> {
        wikiedge_fn::init(&COMPONENT);
        record::record(event)
    }
}

async fn route(req: Request) -> Result<Resp, Error> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let is_get = req.method() == Method::GET;
    match path.as_str() {
        "/v1/usage" if is_get => usage::own(req).await,
        "/v1/admin/usage" if is_get => usage::admin(req).await,
        "/v1/usage" | "/v1/admin/usage" => Ok(web::method_not_allowed("GET")),
        _ => Err(Error::NotFound("Not found".into())),
    }
}

#[http_service]
async fn handle(req: Request) -> Resp {
    wikiedge_fn::init(&COMPONENT);
    web::or_error(route(req).await)
}
