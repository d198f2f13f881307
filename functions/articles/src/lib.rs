//! The On-demand API of wikiedge: `/v2/articles/{name}`,
//! `/v2/structured-contents/{name}` and the metadata routes `/v2/projects`,
//! `/v2/languages`, `/v2/namespaces` and `/v2/codes`.
//!
//! Every request is authenticated through the imported `auth` interface.
//! Article requests then consume one unit of quota (`quota` interface), are
//! served from the key-value cache or the upstream MediaWiki, and are metered
//! (`metering` interface) before the response leaves.
//!
//! Layout:
//! - [`respond`]: the reply type, WME error bodies and header helpers.
//! - [`gate`]: auth, quota and metering glue over the imported interfaces.
//! - [`config`]: variables and the project registry, once per instance.
//! - [`store`]: the key-value layout of cached articles and the title index.
//! - [`upstream`]: fetching an article from MediaWiki with a time bound.
//! - [`articles`]: the article and structured-contents pipeline.
//! - [`metadata`]: projects, languages, namespaces and codes.

mod articles;
mod config;
mod gate;
mod metadata;
mod respond;
mod store;
mod upstream;

use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::http::{IntoResponse, Method, Request};
use spin_sdk::http_service;
use wikiedge_core::Error;

use crate::articles::{ArticleQuery, Product};
use crate::respond::Reply;

/// The bindings of the `data-function` world: auth, quota and metering.
#[allow(unsafe_code, missing_docs, clippy::all)]
mod bindings {
    spin_sdk::wit_bindgen::generate!({
        runtime_path: "::spin_sdk::wit_bindgen::rt",
        world: "data-function",
        path: "../../wit",
        generate_all,
    });
}

/// The largest request body read (a POST of `fields`/`filters`/`limit`).
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Which family of routes a path belongs to, with the raw rest of the path.
enum Route<'a> {
    Articles(Product, &'a str),
    Metadata(metadata::Kind, &'a str),
}

/// Maps a request path to its route; `None` is a 404.
fn route(path: &str) -> Option<Route<'_>> {
    const ARTICLES: [(&str, Product); 2] = [
        ("/v2/articles/", Product::Articles),
        ("/v2/structured-contents/", Product::Structured),
    ];
    for (prefix, product) in ARTICLES {
        if let Some(rest) = path.strip_prefix(prefix) {
            return Some(Route::Articles(product, rest));
        }
    }
    for kind in metadata::Kind::ALL {
        let base = kind.base();
        if let Some(rest) = path.strip_prefix(base) {
            if rest.is_empty() || rest == "/" {
                return Some(Route::Metadata(kind, ""));
            }
            if let Some(id) = rest.strip_prefix('/') {
                return Some(Route::Metadata(kind, id));
            }
        }
    }
    None
}

#[http_service]
async fn handle(req: Request) -> impl IntoResponse {
    let (parts, body) = req.into_parts();
    let reply = if parts.method != Method::GET && parts.method != Method::POST {
        Reply::error(&Error::MethodNotAllowed(format!(
            "method {} is not allowed",
            parts.method
        )))
        .header("allow", "GET, POST")
    } else {
        let body = if parts.method == Method::POST {
            match body.bytes().await {
                Ok(bytes) if bytes.len() > MAX_BODY_BYTES => Err(Error::PayloadTooLarge(format!(
                    "request body must be at most {MAX_BODY_BYTES} bytes"
                ))),
                Ok(bytes) => Ok(bytes.to_vec()),
                Err(e) => Err(Error::BadRequest(format!(
                    "could not read the request body: {e:?}"
                ))),
            }
        } else {
            Ok(Vec::new())
        };
        dispatch(&parts, body).await
    };
    reply.into_response()
}

/// Authenticates, then hands the request to its route.
async fn dispatch(parts: &http::request::Parts, body: Result<Vec<u8>, Error>) -> Reply {
    let path = parts.uri.path();
    let Some(route) = route(path) else {
        return Reply::error(&Error::NotFound(format!("no route for {path}")));
    };
    let principal = match gate::authenticate(&parts.headers).await {
        Ok(principal) => principal,
        Err(err) => return Reply::error(&err),
    };
    let body = match body {
        Ok(body) => body,
        Err(err) => return gate::unmetered_error(&principal, &err).await,
    };
    let query = parts.uri.query().unwrap_or_default();
    let is_post = parts.method == Method::POST;
    match route {
        Route::Metadata(kind, id) => {
            metadata::serve(&principal, kind, id, is_post, query, &body).await
        }
        Route::Articles(product, raw_name) => {
            let request = if is_post {
                wikiedge_core::article::request::ArticlesRequest::from_json(&body)
            } else {
                wikiedge_core::article::request::ArticlesRequest::from_query(query)
            };
            let request = match request {
                Ok(request) => request,
                Err(err) => return gate::unmetered_error(&principal, &err).await,
            };
            let header = |name: &str| {
                parts
                    .headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let query = ArticleQuery {
                product,
                raw_name: raw_name.to_string(),
                request,
                ndjson: header("accept").is_some_and(|a| a.contains("application/x-ndjson")),
                if_none_match: header("if-none-match"),
            };
            articles::serve(&principal, query).await
        }
    }
}
