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

use crate::app::App;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use wasmtime_wasi_http::WasiBody;

/// Serving options.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Largest request body accepted, in bytes.
    pub max_body: usize,
    /// Whether to log one line per request.
    pub log_requests: bool,
    /// Requests one component works on at the same time; the rest wait in
    /// line. Each request in progress holds (a share of) an instance, and
    /// instances are what costs memory, so this bounds the host's memory
    /// while keeping both cores busy (the work is CPU-bound or waits only
    /// briefly on the key-value store).
    pub max_in_flight_per_component: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_body: 4 << 20,
            log_requests: true,
            max_in_flight_per_component: 16,
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
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let local = listener.local_addr()?;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let limits: Arc<std::collections::HashMap<String, Arc<tokio::sync::Semaphore>>> = Arc::new(
        app.components
            .keys()
            .map(|id| {
                (
                    id.clone(),
                    Arc::new(tokio::sync::Semaphore::new(
                        opts.max_in_flight_per_component.max(1),
                    )),
                )
            })
            .collect(),
    );
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
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
        let app = app.clone();
        let limits = limits.clone();
        let service = hyper::service::service_fn(move |req| {
            let app = app.clone();
            let limits = limits.clone();
            async move { Ok::<_, Infallible>(handle(&app, &limits, req, client, local, opts).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await
                && !e.is_incomplete_message()
            {
                tracing::debug!("connection error: {e}");
            }
        });
    }
    drop(listener);
    tracing::info!("Shutting down: finishing in-flight requests");
    graceful.shutdown().await;
    Ok(())
}

async fn handle(
    app: &App,
    limits: &std::collections::HashMap<String, Arc<tokio::sync::Semaphore>>,
    mut req: Request<Incoming>,
    client: SocketAddr,
    local: SocketAddr,
    opts: ServeOptions,
) -> Response<WasiBody> {
    let start = Instant::now();
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
    let Some(handler) = app.components.get(&route.component) else {
        log(&route.component, StatusCode::INTERNAL_SERVER_ERROR);
        return json_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
    };
    let too_large = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > opts.max_body as u64);
    if too_large {
        log(&route.component, StatusCode::PAYLOAD_TOO_LARGE);
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
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    set("spin-full-url", &full_url);
    set("spin-path-info", &route.path_info);
    set("spin-matched-route", &route.based_route);
    set("spin-base-path", app.router.base());
    set("spin-raw-component-route", &route.raw_route);
    set("spin-component-route", &route.component_route);
    set("spin-client-addr", &client.to_string());
    for (name, value) in &route.params {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(format!("spin-path-match-{name}").as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(n, v);
        }
    }

    let max = opts.max_body;
    let req = req.map(move |body| {
        Limited::new(body, max)
            .map_err(move |e| match e.downcast::<hyper::Error>() {
                Ok(e) => wasmtime_wasi_http::Error::from(*e),
                Err(_) => wasmtime_wasi_http::Error::HttpRequestBodySize(Some(max as u64)),
            })
            .boxed_unsync()
    });

    // Wait for a turn; the permit is held until the response head is ready
    // (streamed bodies continue without it).
    let _permit = match limits.get(&route.component) {
        Some(sem) => sem.clone().acquire_owned().await.ok(),
        None => None,
    };
    match handler.handle((), req).await {
        Ok(resp) => {
            log(&route.component, resp.status());
            resp
        }
        Err(e) => {
            log(&route.component, StatusCode::INTERNAL_SERVER_ERROR);
            tracing::error!(
                "component `{}` failed on {method} {path}: {e:?}",
                route.component
            );
            // Spin: `internal_error(None, ..)`, an empty-bodied 500.
            plain(StatusCode::INTERNAL_SERVER_ERROR, "")
        }
    }
}
