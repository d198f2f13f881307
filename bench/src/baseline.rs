//! The native baseline: a bare hyper 1 HTTP/1.1 server answering every
//! request with the same fixed response (status, headers, body bytes).
//!
//! It does the minimum a real server must: read the request (body
//! included, so keep-alive works for POSTs), write the response, keep the
//! connection. hyper adds `date` and `content-length` as it does for the
//! wikiedge host. The ratio of a scenario's throughput to this server's,
//! measured in the same run with the same bytes, is the figure of merit.

use std::convert::Infallible;
use std::sync::Arc;

use anyhow::Result;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The response every request gets.
#[derive(Debug, Clone)]
pub struct FixedResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers (without `content-length`, `date` and hop-by-hop ones).
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

/// Headers that describe the connection or the message framing rather than
/// the content; a copied response must not replay them.
pub fn is_framing_header(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "content-length"
            | "transfer-encoding"
            | "connection"
            | "keep-alive"
            | "date"
            | "upgrade"
            | "proxy-connection"
            | "te"
            | "trailer"
    )
}

async fn answer(
    req: Request<Incoming>,
    fixed: Arc<FixedResponse>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // Drain the request body; a broken one just ends this connection.
    let _ = req.into_body().collect().await;
    let mut resp = Response::new(Full::new(fixed.body.clone()));
    *resp.status_mut() = fixed.status;
    *resp.headers_mut() = fixed.headers.clone();
    Ok(resp)
}

/// Serves `fixed` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, fixed: FixedResponse) -> Result<()> {
    let fixed = Arc::new(fixed);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            // Out of file descriptors and the like: keep serving.
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let fixed = fixed.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| answer(req, fixed.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_headers() {
        assert!(is_framing_header("Content-Length"));
        assert!(is_framing_header("date"));
        assert!(!is_framing_header("etag"));
        assert!(!is_framing_header("content-type"));
    }
}
