//! A one-shot HTTP/1.1 client for setup steps and readiness polls: one
//! connection per request, the whole body read, no keep-alive.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A complete response.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Fetched {
    /// The body as (lossy) UTF-8, for error messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The `host:port` of an `http://` URL.
pub fn authority(uri: &Uri) -> Result<String> {
    if uri.scheme_str() != Some("http") {
        return Err(anyhow!("only http:// URLs are supported: {uri}"));
    }
    let auth = uri
        .authority()
        .ok_or_else(|| anyhow!("URL has no host: {uri}"))?;
    Ok(match auth.port_u16() {
        Some(_) => auth.as_str().to_string(),
        None => format!("{}:80", auth.host()),
    })
}

/// Sends one request on a fresh connection and reads the whole response,
/// all within `timeout`.
pub async fn fetch(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
    timeout: Duration,
) -> Result<Fetched> {
    let uri: Uri = url.parse().with_context(|| format!("invalid URL {url}"))?;
    let addr = authority(&uri)?;
    let body = body.into();
    let work = async {
        let stream = TcpStream::connect(&addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake")?;
        let conn_task = tokio::spawn(conn);
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, addr.as_str());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body))?;
        let resp = sender.send_request(req).await.context("sending request")?;
        let (parts, incoming) = resp.into_parts();
        let body = incoming
            .collect()
            .await
            .context("reading response body")?
            .to_bytes();
        drop(sender);
        conn_task.abort();
        Ok::<_, anyhow::Error>(Fetched {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| anyhow!("{url}: no response within {timeout:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        let a = |s: &str| authority(&s.parse().expect("uri"));
        assert_eq!(a("http://127.0.0.1:3000/x").expect("ok"), "127.0.0.1:3000");
        assert_eq!(a("http://localhost/").expect("ok"), "localhost:80");
        assert!(a("https://127.0.0.1/").is_err());
        assert!(a("/relative").is_err());
    }
}
