//! The HTTP front end: accepts connections, routes requests to components
//! and adds Spin's request headers.
//!
//! Per request: route (404 if nothing matches), refuse bodies over the limit
//! (413, also enforced while streaming), rewrite the URI to the full URL and
//! add `spin-full-url`, `spin-path-info`, `spin-matched-route`,
//! `spin-base-path`, `spin-raw-component-route`, `spin-component-route`,
//! `spin-client-addr` and `spin-path-match-<name>`, then hand the request to
//! the component's handler. A trap or panic in the component fails only that
//! request, with a 500 whose body carries no internals; the cause is logged.
//! One log line per request: method, path, component, status, duration.
//! On shutdown the listener closes and in-flight requests finish.
//!
//! Limits (docs/limits.md): at most `max_connections` open connections
//! (more wait in the listen backlog); request headers must arrive within
//! `header_read_timeout` (hyper's timer, which also closes keep-alive
//! connections idle for that long); a request body is read in full, within
//! `body_read_timeout` and under both `max_body` and the global
//! `max_buffered_body_bytes`, *before* the request waits for its component's
//! permit, so a slow sender costs a socket and a little memory but never a
//! component slot; a connection whose client accepts no response bytes for
//! `send_timeout` is closed; a guest request that uses more than its CPU
//! budget is answered 503 (app.rs, `RequestClock`).

use crate::app::{App, RequestClock};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use lanes::{Lane, take_turn};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use wasmtime_wasi_http::WasiBody;

mod lanes;
mod send_timeout;
mod threads;

/// Serving options.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Largest request body accepted, in bytes.
    pub max_body: usize,
    /// Whether to log one line per request.
    pub log_requests: bool,
    /// Requests one component works on at the same time, split evenly
    /// among the serving threads (each takes at least one); the rest wait
    /// in line. Each request in progress holds (a share of) an instance, and
    /// instances are what costs memory, so this bounds the host's memory
    /// while keeping every core busy (the work is CPU-bound or waits only
    /// briefly on the key-value store). Default: [`default_in_flight`].
    pub max_in_flight_per_component: usize,
    /// Open connections at most; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// Time a client has to send a request's headers; also how long an idle
    /// keep-alive connection is kept.
    pub header_read_timeout: Duration,
    /// Time a client has to send a request's whole body (408 after it).
    pub body_read_timeout: Duration,
    /// Request body bytes held in memory at once across all connections
    /// (bodies are read in full before a component sees them); a request
    /// whose body does not fit gets 503.
    pub max_buffered_body_bytes: usize,
    /// How long a connection may refuse to take response bytes before it is
    /// closed (a stalled reader).
    pub send_timeout: Duration,
    /// How long a stopping server lets open responses run before it cuts
    /// their connections (a realtime stream runs for minutes).
    pub shutdown_timeout: Duration,
    /// After this long with no request and no instance coming or going,
    /// release the memory kept for speed ([`crate::idle`]); `None` never.
    pub release_after_idle: Option<Duration>,
}

/// Requests a component works on at once by default: two per core the
/// process may use. The work is CPU-bound, so more only adds instances
/// (memory) and queueing inside the guests (tail latency): on 2 cores, 4
/// instead of 16 cut the full path's p99 by a third and its RSS after load
/// by a third, for 7-9% less throughput (BENCHMARKS.md, "Requests in
/// flight per component").
pub fn default_in_flight() -> usize {
    2 * std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_body: 4 << 20,
            log_requests: true,
            max_in_flight_per_component: default_in_flight(),
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_buffered_body_bytes: 256 << 20,
            send_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
            release_after_idle: Some(Duration::from_secs(5)),
        }
    }
}

/// A response with a fixed text body (empty for Spin's own 404 and 500).
fn plain(status: StatusCode, body: &'static str) -> Response<WasiBody> {
    let mut resp = Response::new(
        Full::new(Bytes::from_static(body.as_bytes()))
            .map_err(|e: Infallible| match e {})
            .boxed_unsync(),
    );
    *resp.status_mut() = status;
    resp
}

/// A `503` with `Retry-After: 1`: a passing shortage, worth retrying.
fn retry_shortly(message: &str) -> Response<WasiBody> {
    let mut resp = json_error(StatusCode::SERVICE_UNAVAILABLE, message);
    resp.headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

fn json_error(status: StatusCode, message: &str) -> Response<WasiBody> {
    let body = serde_json::json!({ "status": status.as_u16(), "message": message }).to_string();
    let mut resp = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|e: Infallible| match e {})
            .boxed_unsync(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Serve `app` on `listener` until `shutdown` resolves, then let in-flight
/// requests finish.
///
/// Connections are accepted here and each is handed, for its whole life,
/// to the serving thread with the fewest open connections: one thread per
/// instance pool of the app ([`App::threads`]), each running its own
/// single-threaded runtime, so a request, its instance and its response
/// body stay on one thread ([`crate::shard`]).
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let local = listener.local_addr()?;
    let lanes = lanes::Lanes::start(&app, opts, local)?;
    let connections = Arc::new(tokio::sync::Semaphore::new(opts.max_connections.max(1)));
    let releaser = opts.release_after_idle.map(|after| {
        let app = app.clone();
        tokio::spawn(async move {
            let activity = app.activity.clone();
            crate::idle::run(activity, after, || app.release_memory()).await
        })
    });
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A connection slot first: at the cap, clients wait in the backlog.
        let slot = tokio::select! {
            _ = &mut shutdown => break,
            slot = connections.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, client) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        lanes.dispatch(stream, client, slot);
    }
    drop(listener);
    tracing::info!("Shutting down: finishing in-flight requests");
    lanes.finish(&app.activity).await;
    // Writes made after the last responses went out (a streamed body's
    // end, say) are committed before the server returns.
    if let Err(e) = app.databases.settle().await {
        tracing::error!("key-value: the last writes were not committed: {e}");
    }
    if let Some(task) = releaser {
        task.abort();
    }
    tracing::info!("Stopped");
    Ok(())
}

async fn handle(
    app: &App,
    lane: &Lane,
    mut req: Request<Incoming>,
    client: SocketAddr,
    local: SocketAddr,
    opts: ServeOptions,
) -> Response<WasiBody> {
    let start = Instant::now();
    let _active = app.activity.request();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let log = |component: &str, status: StatusCode| {
        crate::metrics::metrics().request(component, status.as_u16(), start.elapsed());
        if opts.log_requests {
            // The access log: one event per request (RUST_LOG target
            // `wikiedge::access`), text or JSON as `--log-format` says.
            tracing::info!(
                target: "wikiedge::access",
                method = %method,
                path = %path,
                component = %component,
                status = status.as_u16(),
                ms = (start.elapsed().as_secs_f64() * 10_000.0).round() / 10.0,
                "request"
            );
        }
    };

    // Spin answers its well-known paths itself, and a path no route
    // matches with an empty-bodied 404 (crates/trigger-http/src/server.rs,
    // `handle` and `not_found`); apps that want a body add a `/...` route.
    if path == "/.well-known/spin/health" {
        log("-", StatusCode::OK);
        return plain(StatusCode::OK, "OK");
    }
    let Some(route) = app.router.route(&path) else {
        log("-", StatusCode::NOT_FOUND);
        return plain(StatusCode::NOT_FOUND, "");
    };
    let Some(handlers) = app.components.get(route.component) else {
        log(route.component, StatusCode::INTERNAL_SERVER_ERROR);
        return json_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
    };
    let too_large = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > opts.max_body as u64);
    if too_large {
        log(route.component, StatusCode::PAYLOAD_TOO_LARGE);
        return json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("Request body is larger than {} bytes", opts.max_body),
        );
    }

    // The full URL, as Spin gives it to components.
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| local.to_string());
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let full_url = format!("http://{host}{path_and_query}");
    if let Ok(uri) = full_url.parse::<http::Uri>() {
        *req.uri_mut() = uri;
    }
    let headers = req.headers_mut();
    // The names are static and the route's values made once by the
    // router: inserting them allocates nothing.
    let mut set = |name: HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    set(
        const { HeaderName::from_static("spin-full-url") },
        &full_url,
    );
    set(
        const { HeaderName::from_static("spin-path-info") },
        route.path_info,
    );
    set(
        const { HeaderName::from_static("spin-client-addr") },
        &client.to_string(),
    );
    let route_headers = [
        (
            const { HeaderName::from_static("spin-matched-route") },
            &route.headers.matched_route,
        ),
        (
            const { HeaderName::from_static("spin-raw-component-route") },
            &route.headers.raw_component_route,
        ),
        (
            const { HeaderName::from_static("spin-component-route") },
            &route.headers.component_route,
        ),
        (
            const { HeaderName::from_static("spin-base-path") },
            app.router.base_header(),
        ),
    ];
    for (name, value) in route_headers {
        if let Some(value) = value {
            headers.insert(name, value.clone());
        }
    }
    for param in &route.params {
        if let (Some(name), Ok(value)) = (param.header, HeaderValue::from_str(param.value)) {
            headers.insert(name.clone(), value);
        }
    }

    // Read the whole body before waiting for the component: a slow sender
    // holds its socket and its share of the body budget, never a permit.
    let (parts, body) = req.into_parts();
    let mut _body_budget = None;
    let body = if hyper::body::Body::is_end_stream(&body) {
        Bytes::new()
    } else {
        let declared = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(opts.max_body);
        let kib = (declared.div_ceil(1024)).clamp(1, u32::MAX as usize) as u32;
        match lane.body_kib.clone().try_acquire_many_owned(kib) {
            Ok(p) => _body_budget = Some(p),
            Err(_) => {
                log(route.component, StatusCode::SERVICE_UNAVAILABLE);
                return retry_shortly("Too many request bodies in progress; retry shortly");
            }
        }
        let read = tokio::time::timeout(
            opts.body_read_timeout,
            Limited::new(body, opts.max_body).collect(),
        )
        .await;
        match read {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                log(route.component, StatusCode::PAYLOAD_TOO_LARGE);
                return json_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("Request body is larger than {} bytes", opts.max_body),
                );
            }
            Ok(Err(_)) => {
                log(route.component, StatusCode::BAD_REQUEST);
                return json_error(StatusCode::BAD_REQUEST, "Malformed request body");
            }
            Err(_) => {
                log(route.component, StatusCode::REQUEST_TIMEOUT);
                return json_error(
                    StatusCode::REQUEST_TIMEOUT,
                    &format!(
                        "Request body not received within {} s",
                        opts.body_read_timeout.as_secs_f64()
                    ),
                );
            }
        }
    };
    let req = Request::from_parts(
        parts,
        Full::new(body)
            .map_err(|e: Infallible| match e {})
            .boxed_unsync(),
    );

    // Wait for a turn; the permit is held until the response head is ready
    // (streamed bodies continue without it). A thread with no turn free
    // hands the request to one that has one, to run on that thread's
    // instances.
    let (pool, _permit) = take_turn(lane, route.component).await;
    let handler = handlers.get(pool);
    let clock = Arc::new(RequestClock::default());
    let result = if pool == lane.index {
        handler.handle(clock.clone(), req).await
    } else {
        let (handler, run) = (handler.clone(), clock.clone());
        match lane.turns[pool]
            .runtime
            .spawn(async move { handler.handle(run, req).await })
            .await
        {
            Ok(result) => result,
            Err(e) => Err(wasmtime::Error::msg(format!(
                "the serving thread the request was handed to stopped: {e}"
            ))),
        }
    };
    clock.finish();
    // Nothing leaves before the writes it may depend on are committed
    // (`kv::sqlite::CommitMode::BeforeReply`).
    let result = match (result, app.databases.settle().await) {
        (Ok(_), Err(e)) => {
            log(route.component, StatusCode::SERVICE_UNAVAILABLE);
            tracing::error!(
                "component `{}` on {method} {path}: its writes were not committed: {e}",
                route.component
            );
            return retry_shortly("Storage failed to commit the request's writes; retry shortly");
        }
        (result, _) => result,
    };
    match result {
        Ok(resp) => {
            log(route.component, resp.status());
            resp
        }
        Err(e) if clock.timed_out() => {
            log(route.component, StatusCode::SERVICE_UNAVAILABLE);
            eprintln!(
                "component `{}` stopped on {method} {path}: over its CPU time limit ({:?} used): {e}",
                route.component,
                clock.charged()
            );
            json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "The request used more than its CPU time limit",
            )
        }
        Err(e) => {
            log(route.component, StatusCode::INTERNAL_SERVER_ERROR);
            tracing::error!(
                "component `{}` failed on {method} {path}: {e:?}",
                route.component
            );
            // Spin: `internal_error(None, ..)`, an empty-bodied 500.
            plain(StatusCode::INTERNAL_SERVER_ERROR, "")
        }
    }
}
