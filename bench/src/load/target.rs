//! The request template of a load run: its method, headers, body and
//! targets, and which target each request goes to.

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Uri, header};
use http_body_util::Full;

use super::LoadConfig;

/// The parsed, shareable request template.
pub(super) struct Target {
    method: Method,
    /// The request targets (one, the URL's, unless `paths` were given).
    paths: Vec<String>,
    pub(super) addr: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Target {
    pub(super) fn new(cfg: &LoadConfig) -> Result<Target> {
        let uri: Uri = cfg
            .url
            .parse()
            .with_context(|| format!("invalid URL {}", cfg.url))?;
        let addr = crate::client::authority(&uri)?;
        let mut headers = cfg.headers.clone();
        if !headers.contains_key(header::HOST) {
            headers.insert(header::HOST, HeaderValue::from_str(&addr)?);
        }
        Ok(Target {
            method: cfg.method.clone(),
            paths: if cfg.paths.is_empty() {
                vec![
                    uri.path_and_query()
                        .map(|p| p.as_str().to_string())
                        .unwrap_or_else(|| "/".into()),
                ]
            } else {
                cfg.paths.clone()
            },
            addr,
            headers,
            body: cfg.body.clone(),
        })
    }

    /// Where connection `k` of `connections` starts in the paths.
    pub(super) fn first_path(&self, k: usize, connections: usize) -> usize {
        first_path(self.paths.len(), k, connections)
    }

    /// The `i`-th request (its path `i` modulo the paths).
    pub(super) fn request(&self, i: usize) -> Result<Request<Full<Bytes>>> {
        let mut req = Request::builder()
            .method(self.method.clone())
            .uri(self.paths[i % self.paths.len()].as_str())
            .body(Full::new(self.body.clone()))?;
        *req.headers_mut() = self.headers.clone();
        Ok(req)
    }
}

/// Where connection `k` of `connections` starts in a list of `paths`.
fn first_path(paths: usize, k: usize, connections: usize) -> usize {
    if connections == 0 {
        return 0;
    }
    // u128: no overflow whatever the sizes.
    (paths as u128 * k as u128 / connections as u128) as usize
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn config(paths: &[&str]) -> LoadConfig {
        LoadConfig {
            method: Method::GET,
            url: "http://127.0.0.1:9/only".into(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            connections: 4,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(1),
            threads: None,
            rate: None,
            server_pid: None,
        }
    }

    fn uri(target: &Target, i: usize) -> String {
        target.request(i).expect("request").uri().to_string()
    }

    #[test]
    fn without_paths_every_request_goes_to_the_url() -> Result<()> {
        let t = Target::new(&config(&[]))?;
        assert_eq!(uri(&t, 0), "/only");
        assert_eq!(uri(&t, 7), "/only");
        Ok(())
    }

    #[test]
    fn paths_are_walked_in_turn_from_each_connections_share() -> Result<()> {
        let t = Target::new(&config(&["/a", "/b", "/c"]))?;
        let walked: Vec<String> = (0..4).map(|i| uri(&t, i)).collect();
        assert_eq!(walked, ["/a", "/b", "/c", "/a"]);
        // Ten paths over four connections: starts spread over the list.
        let starts: Vec<usize> = (0..4).map(|k| first_path(10, k, 4)).collect();
        assert_eq!(starts, [0, 2, 5, 7]);
        assert_eq!(first_path(3, 0, 0), 0);
        assert_eq!(first_path(usize::MAX, 3, 4), usize::MAX / 4 * 3 + 2);
        Ok(())
    }
}
