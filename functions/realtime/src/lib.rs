//! The Realtime API of wikiedge: `GET|POST /v2/articles` (also at
//! `/realtime/v2/articles`) streams
//! WME events (SSE or NDJSON) from a partitioned log that
//! `POST /v1/admin/ingest` fills from EventStreams page changes;
//! `/v2/batches/{YYYY-MM-DD}/{HH}[...]` serves the log's hours as tar.gz.
//!
//! Streams are authenticated through the imported `auth` interface, draw
//! one unit of `realtime` quota per connection and are metered with their
//! bytes before they end. Ingest needs an admin (token or `X-Admin-Key`) or
//! the secret `X-Ingest-Key`.
//!
//! Layout:
//! - [`gate`]: the realtime quota policy; ingest credentials.
//! - [`config`]: the variables, once per instance.
//! - [`log`]: appending, compacting and reading the log.
//! - [`ingest`]: the ingest pipeline.
//! - [`stream`]: the stream.
//! - [`batches`]: hourly batches built from the log.
//!
//! The reply type, key-value helpers, the shared gate, the project registry
//! and the upstream fetch come from [`wikiedge_fn`].

mod batch_store;
mod batches;
mod config;
mod gate;
mod ingest;
mod log;
mod stream;

use spin_sdk::http::{BoxBody, IntoResponse, Method, Request};
use spin_sdk::http_service;
use spin_sdk::wasip3::http::types as wasi;
use wikiedge_core::Error;
use wikiedge_core::realtime::log::Cursor;
use wikiedge_core::realtime::request::StreamRequest;

use wikiedge_fn::Component;
use wikiedge_fn::respond::Reply;
use wikiedge_fn::web::read_bounded;

/// How the shared glue names this component.
static COMPONENT: Component =
    Component::new("realtime").storage_unavailable("realtime storage is temporarily unavailable");

/// The largest ingest body read.
const MAX_INGEST_BYTES: usize = 4 * 1024 * 1024;
/// The largest stream request body read.
const MAX_STREAM_BODY_BYTES: usize = 64 * 1024;

const INGEST: &str = "/v1/admin/ingest";
const STREAM: &str = "/realtime/v2/articles";
/// WME's own path of the stream: the exact route `/v2/articles` (On-demand
/// keeps `/v2/articles/{name}`), so one base URL serves both.
const STREAM_WME: &str = "/v2/articles";
const BATCHES: &str = "/v2/batches/";

fn not_allowed(method: &Method, allow: &str) -> http::Response<BoxBody> {
    Reply::error(&Error::MethodNotAllowed(format!(
        "method {method} is not allowed"
    )))
    .header("allow", allow.to_string())
    .into_box_response()
}

#[http_service]
async fn handle(req: Request) -> Result<wasi::Response, wasi::ErrorCode> {
    wikiedge_fn::init(&COMPONENT);
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().trim_end_matches('/');
    if path == INGEST {
        if parts.method != Method::POST {
            return not_allowed(&parts.method, "POST").into_response();
        }
        // Authorise before reading the body.
        if let Err(err) = gate::authorize_ingest(&parts.headers).await {
            return Reply::error(&err).into_wasi();
        }
        let body = read_bounded(body, MAX_INGEST_BYTES).await;
        return ingest::serve(body).await.into_wasi();
    }
    if let Some(rest) = parts.uri.path().strip_prefix(BATCHES) {
        let principal = match gate::authenticate(&parts.headers) {
            Ok(principal) => principal,
            Err(err) => return Reply::error(&err).into_wasi(),
        };
        let body = match read_bounded(body, MAX_STREAM_BODY_BYTES).await {
            Ok(body) => body,
            Err(err) => return Reply::error(&err).into_wasi(),
        };
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let ask = batches::Ask {
            method: &parts.method,
            rest,
            query: parts.uri.query().unwrap_or_default(),
            body: &body,
            ndjson: header("accept").is_some_and(|a| a.contains("application/x-ndjson")),
            range: header("range"),
        };
        return batches::serve(&principal, ask).await.into_response();
    }
    if path != STREAM && path != STREAM_WME {
        return Reply::error(&Error::NotFound(format!("no route for {path}"))).into_wasi();
    }
    if parts.method != Method::GET && parts.method != Method::POST {
        return not_allowed(&parts.method, "GET, POST").into_response();
    }
    let principal = match gate::authenticate(&parts.headers) {
        Ok(principal) => principal,
        Err(err) => return Reply::error(&err).into_wasi(),
    };
    // WME reads the parameters from a JSON body on POST and on GET (the
    // official SDKs send a body with GET); a GET without one uses the query.
    let request = match read_bounded(body, MAX_STREAM_BODY_BYTES).await {
        Ok(body) if parts.method == Method::POST || !body.iter().all(u8::is_ascii_whitespace) => {
            StreamRequest::from_json(&body)
        }
        Ok(_) => StreamRequest::from_query(parts.uri.query().unwrap_or_default()),
        Err(err) => Err(err),
    }
    .and_then(|request| request.check_clock(wikiedge_fn::now_ms()).map(|()| request));
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let resume = match header("last-event-id").map(str::trim) {
        None | Some("") => Ok(None),
        Some(id) => Cursor::decode(id)
            .map(Some)
            .ok_or_else(|| Error::Unprocessable(format!("invalid Last-Event-ID '{id}'"))),
    };
    let (request, resume) = match (request, resume) {
        (Ok(request), Ok(resume)) => (request, resume),
        (Err(err), _) | (_, Err(err)) => {
            return gate::unmetered_error(&principal, &err).into_wasi();
        }
    };
    let query = stream::StreamQuery {
        request,
        ndjson: header("accept").is_some_and(|a| a.contains("application/x-ndjson")),
        resume,
    };
    stream::serve(principal, query).await
}
