//! The catch-all function (route `/...`): Spin answers a path no route
//! claims with an empty-bodied 404, and WME clients expect the JSON
//! `{status, message}` body of every other error. Spin routes the most
//! specific match first, so this component sees only what nothing else
//! claims. It holds no variables, no stores and no outbound hosts, so junk
//! traffic never reaches a component with secrets.

use spin_sdk::http::Request;
use spin_sdk::http_service;
use wikiedge_core::Error;
use wikiedge_fn::Component;
use wikiedge_fn::web::{self, Resp};

/// How the shared glue names this component.
static COMPONENT: Component = Component::new("wikiedge-fallback");

#[http_service]
async fn handle(_req: Request) -> Resp {
    wikiedge_fn::init(&COMPONENT);
    web::or_error(Err(Error::NotFound("Not found".into())))
}
