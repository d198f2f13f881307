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
//! - [`config`]: the variables, once per instance.
//! - [`store`]: the key-value layout of cached articles and the title index.
//! - [`articles`]: the article and structured-contents pipeline.
//! - [`metadata`]: projects, languages, namespaces and codes.
//!
//! The reply type, the auth/quota/metering gate, the project registry and
//! the upstream fetch are shared with the other data functions
//! ([`wikiedge_fn`]).

mod articles;
mod config;
mod metadata;
mod store;

use spin_sdk::http::Method;
use wikiedge_core::Error;

use wikiedge_fn::respond::Reply;
use wikiedge_fn::{Component, gate, web};

use crate::articles::{ArticleQuery, Product};

/// How the shared glue names this component.
static COMPONENT: Component = Component::new("articles");

/// The product whose limits an error answered before quota was consumed
/// reports.
const ON_DEMAND: &str = "ondemand";

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

/// The `wasi:http` handler export, as `#[http_service]` writes it, except
/// that the request is converted by [`wikiedge_fn::incoming`] and the
/// reply by [`Reply::into_wasi`].
mod export {
    use spin_sdk::wasip3::http::types::{ErrorCode, Request, Response};

    struct Articles;
    spin_sdk::wasip3::http::service::export!(Articles);

    impl spin_sdk::wasip3::exports::http::handler::Guest for Articles {
        async fn handle(request: Request) -> Result<Response, ErrorCode> {
            super::handle(request).await.into_wasi()
        }
    }
}

async fn handle(req: spin_sdk::wasip3::http::types::Request) -> Reply {
    wikiedge_fn::init(&COMPONENT);
    // The route is in the URI: no `spin-*` header is read.
    let req = match wikiedge_fn::incoming::request(req) {
        Ok(req) => req,
        Err(e) => {
            return Reply::error(&Error::BadRequest(format!("malformed request: {e:?}")));
        }
    };
    let (parts, body) = req.into_parts();
    if parts.method != Method::GET && parts.method != Method::POST {
        Reply::error(&Error::MethodNotAllowed(format!(
            "method {} is not allowed",
            parts.method
        )))
        .header("allow", "GET, POST")
    } else {
        // Read only once the caller is authenticated (see `dispatch`).
        let body = web::post_body(&parts.method, body);
        dispatch(&parts, body).await
    }
}

/// Authenticates, then reads the body (an anonymous client cannot make a
/// component read one), then hands the request to its route.
async fn dispatch(
    parts: &http::request::Parts,
    body: impl Future<Output = Result<Vec<u8>, Error>>,
) -> Reply {
    let path = parts.uri.path();
    let Some(route) = route(path) else {
        return Reply::error(&Error::NotFound(format!("no route for {path}")));
    };
    let (principal, body) = match gate::admit(&parts.headers, ON_DEMAND, body).await {
        Ok(admitted) => admitted,
        Err(reply) => return reply,
    };
    let query = parts.uri.query().unwrap_or_default();
    let is_post = parts.method == Method::POST;
    match route {
        Route::Metadata(kind, id) => {
            let ndjson = parts
                .headers
                .get("accept")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|a| a.contains("application/x-ndjson"));
            let ask = metadata::Ask {
                is_post,
                query,
                body: &body,
                ndjson,
            };
            metadata::serve(&principal, kind, id, ask)
        }
        Route::Articles(product, raw_name) => {
            let request = if is_post {
                wikiedge_core::article::request::ArticlesRequest::from_json(&body)
            } else {
                wikiedge_core::article::request::ArticlesRequest::from_query(query)
            };
            let request = match request {
                Ok(request) => request,
                Err(err) => return gate::unmetered_error(&principal, ON_DEMAND, &err),
            };
            let header = |name: &str| gate::header(&parts.headers, name).map(str::to_string);
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
