//! The Snapshot API of wikiedge: whole-project datasets as tar.gz NDJSON,
//! built by `wikiedge snapshot build` into key-value storage.
//!
//! Routes:
//! - `GET|POST /v2/snapshots`, `GET|POST /v2/snapshots/{id}`: metadata,
//!   with `fields`/`filters` as in On-demand.
//! - `GET|POST /v2/snapshots/{id}/chunks`, `.../chunks/{chunk}`: chunks.
//! - `GET|HEAD /v2/snapshots/{id}/download`,
//!   `GET|HEAD /v2/snapshots/{id}/chunks/{chunk}/download`: the bytes, with
//!   Range, under the `snapshot` and `chunk` quotas.
//! - `GET|POST /v2/snapshots/structured-contents`,
//!   `GET|POST /v2/snapshots/structured-contents/{id}`,
//!   `GET|HEAD /v2/snapshots/structured-contents/{id}/download`: the
//!   structured-contents snapshots, served the same way (no chunks; the
//!   download under the `snapshot` quota).
//!
//! Every request is authenticated through the imported `auth` interface;
//! downloads consume quota (`quota`) and are metered (`metering`) before
//! the body starts.
//!
//! Layout:
//! - [`respond`]: the reply body (bytes or streamed parts).
//! - [`store`]: snapshot records and download markers in key-value.
//! - [`metadata`]: the list, info and chunk metadata routes.
//! - [`download`]: HEAD, GET and Range downloads.
//!
//! The auth/quota/metering gate and the reply type come from
//! [`wikiedge_fn`].

mod download;
mod metadata;
mod respond;
mod store;

use spin_sdk::http::{IntoResponse, Method, Request};
use spin_sdk::http_service;
use wikiedge_core::Error;
use wikiedge_core::article::request::ArticlesRequest;

use wikiedge_fn::{Component, gate, web};

use crate::respond::Reply;

/// How the shared glue names this component.
static COMPONENT: Component = Component::new("snapshots");

/// The product whose limits an error answered before quota was consumed
/// reports.
pub(crate) const SNAPSHOT: &str = "snapshot";

/// What a path asks for.
#[derive(Debug, Clone, Copy)]
enum Route<'a> {
    Metadata(metadata::Target<'a>),
    Download(download::Target<'a>),
}

impl Route<'_> {
    /// The methods the route answers.
    fn allow(self) -> &'static str {
        match self {
            Route::Metadata(_) => "GET, POST",
            Route::Download(_) => "GET, HEAD",
        }
    }

    fn allows(self, method: &Method) -> bool {
        match self {
            Route::Metadata(_) => method == Method::GET || method == Method::POST,
            Route::Download(_) => method == Method::GET || method == Method::HEAD,
        }
    }
}

/// The path segment of the structured-contents snapshots.
const STRUCTURED: &str = "structured-contents";

/// Maps a request path to its route; `None` is a 404.
fn route(path: &str) -> Option<Route<'_>> {
    let rest = path.strip_prefix("/v2/snapshots")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Some(Route::Metadata(metadata::Target::List));
    }
    let segments: Vec<&str> = rest.strip_prefix('/')?.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return None;
    }
    let download = |snapshot, chunk| {
        Route::Download(download::Target {
            snapshot,
            chunk,
            structured: false,
        })
    };
    Some(match segments.as_slice() {
        // Before `[id]`: no snapshot identifier is `structured-contents`.
        [STRUCTURED] => Route::Metadata(metadata::Target::StructuredList),
        [STRUCTURED, id] => Route::Metadata(metadata::Target::StructuredOne(id)),
        [STRUCTURED, id, "download"] => Route::Download(download::Target {
            snapshot: id,
            chunk: None,
            structured: true,
        }),
        [id] => Route::Metadata(metadata::Target::One(id)),
        [id, "download"] => download(id, None),
        [id, "chunks"] => Route::Metadata(metadata::Target::Chunks(id)),
        [id, "chunks", chunk] => Route::Metadata(metadata::Target::Chunk(id, chunk)),
        [id, "chunks", chunk, "download"] => download(id, Some(chunk)),
        _ => return None,
    })
}

#[http_service]
async fn handle(req: Request) -> impl IntoResponse {
    wikiedge_fn::init(&COMPONENT);
    let (parts, body) = req.into_parts();
    let reply = match route(parts.uri.path()) {
        None => Reply::error(&Error::NotFound(format!(
            "no route for {}",
            parts.uri.path()
        ))),
        Some(route) if !route.allows(&parts.method) => Reply::error(&Error::MethodNotAllowed(
            format!("method {} is not allowed", parts.method),
        ))
        .header("allow", route.allow()),
        Some(route) => {
            // Read only once the caller is authenticated (see `dispatch`).
            let body = web::post_body(&parts.method, body);
            dispatch(&parts, route, body).await
        }
    };
    respond::into_response(reply)
}

/// Authenticates, then reads the body (an anonymous client cannot make a
/// component read one), then hands the request to its route.
async fn dispatch(
    parts: &http::request::Parts,
    route: Route<'_>,
    body: impl Future<Output = Result<Vec<u8>, Error>>,
) -> Reply {
    let (principal, body) = match gate::admit(&parts.headers, SNAPSHOT, body).await {
        Ok(admitted) => admitted,
        Err(reply) => return reply,
    };
    let header = |name: &str| gate::header(&parts.headers, name).map(str::to_string);
    match route {
        Route::Metadata(target) => {
            let request = if parts.method == Method::POST {
                ArticlesRequest::from_json(&body)
            } else {
                ArticlesRequest::from_query(parts.uri.query().unwrap_or_default())
            };
            let ndjson = header("accept").is_some_and(|a| a.contains("application/x-ndjson"));
            metadata::serve(&principal, target, request, ndjson).await
        }
        Route::Download(target) => {
            let ask = download::Ask {
                head: parts.method == Method::HEAD,
                range: header("range"),
            };
            download::serve(&principal, target, ask).await
        }
    }
}
