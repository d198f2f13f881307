//! Operators' metrics in the Prometheus text format (0.0.4), served on the
//! separate, optional `wikiedge up --metrics-listen ADDR` at `/metrics`:
//!
//! - `wikiedge_http_requests_total{component,status}`: requests answered;
//! - `wikiedge_http_request_duration_seconds{component}`: a histogram of the
//!   time to the response head;
//! - `wikiedge_instances_created_total{component}` and
//!   `wikiedge_instances{component}` (live instances);
//! - `wikiedge_kv_operations_total{op}` and `wikiedge_kv_errors_total{op}`;
//! - `wikiedge_kv_commits_total`: SQLite transactions committed (the
//!   writes of the requests running together share one);
//! - `wikiedge_requests_handed_over_total`: requests a serving thread with
//!   no turn free handed to another thread's instances;
//! - `wikiedge_idle_releases_total`: times the quiet host gave memory back
//!   (`crate::idle`).
//!
//! The counters live in one process-wide registry ([`metrics`]), as
//! Prometheus clients keep theirs; recording is a lock on a small map.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds.
pub const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    instances_created: BTreeMap<String, u64>,
    instances_live: BTreeMap<String, i64>,
    kv_ops: BTreeMap<&'static str, u64>,
    kv_errors: BTreeMap<&'static str, u64>,
    idle_releases: u64,
    handed_over: u64,
    kv_commits: u64,
}

/// The registry.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// The process-wide registry.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::default)
}

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut Inner)) {
        if let Ok(mut inner) = self.inner.lock() {
            f(&mut inner);
        }
    }

    /// A request answered by `component` (`-` when no route matched).
    pub fn request(&self, component: &str, status: u16, took: Duration) {
        let secs = took.as_secs_f64();
        self.with(|m| {
            *m.requests
                .entry((component.to_string(), status))
                .or_default() += 1;
            let h = m.latency.entry(component.to_string()).or_default();
            h.count += 1;
            h.sum += secs;
            for (i, bound) in BUCKETS.iter().enumerate() {
                if secs <= *bound {
                    h.counts[i] += 1;
                }
            }
        });
    }

    /// An instance of `component` was created.
    pub fn instance_created(&self, component: &str) {
        self.with(|m| {
            *m.instances_created
                .entry(component.to_string())
                .or_default() += 1;
            *m.instances_live.entry(component.to_string()).or_default() += 1;
        });
    }

    /// An instance of `component` was retired or discarded.
    pub fn instance_dropped(&self, component: &str) {
        self.with(|m| *m.instances_live.entry(component.to_string()).or_default() -= 1);
    }

    /// The quiet host released the memory it keeps for speed.
    pub fn idle_release(&self) {
        self.with(|m| m.idle_releases += 1);
    }

    /// A serving thread with no turn free handed a request to another
    /// thread's instances.
    pub fn handed_over(&self) {
        self.with(|m| m.handed_over += 1);
    }

    /// A SQLite transaction committed.
    pub fn kv_commit(&self) {
        self.with(|m| m.kv_commits += 1);
    }

    /// A key-value operation `op`, failed or not.
    pub fn kv(&self, op: &'static str, ok: bool) {
        self.with(|m| {
            *m.kv_ops.entry(op).or_default() += 1;
            if !ok {
                *m.kv_errors.entry(op).or_default() += 1;
            }
        });
    }

    /// The Prometheus text exposition of everything recorded.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let Ok(m) = self.inner.lock() else {
            return out;
        };
        let esc = |v: &str| {
            v.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        };
        let _ = writeln!(
            out,
            "# HELP wikiedge_http_requests_total HTTP requests answered, by component and status."
        );
        let _ = writeln!(out, "# TYPE wikiedge_http_requests_total counter");
        for ((c, s), n) in &m.requests {
            let _ = writeln!(
                out,
                "wikiedge_http_requests_total{{component=\"{}\",status=\"{s}\"}} {n}",
                esc(c)
            );
        }
        let _ = writeln!(
            out,
            "# HELP wikiedge_http_request_duration_seconds Time to the response head, by component."
        );
        let _ = writeln!(
            out,
            "# TYPE wikiedge_http_request_duration_seconds histogram"
        );
        for (c, h) in &m.latency {
            let c = esc(c);
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "wikiedge_http_request_duration_seconds_bucket{{component=\"{c}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "wikiedge_http_request_duration_seconds_bucket{{component=\"{c}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "wikiedge_http_request_duration_seconds_sum{{component=\"{c}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "wikiedge_http_request_duration_seconds_count{{component=\"{c}\"}} {}",
                h.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP wikiedge_instances_created_total Component instances created."
        );
        let _ = writeln!(out, "# TYPE wikiedge_instances_created_total counter");
        for (c, n) in &m.instances_created {
            let _ = writeln!(
                out,
                "wikiedge_instances_created_total{{component=\"{}\"}} {n}",
                esc(c)
            );
        }
        let _ = writeln!(
            out,
            "# HELP wikiedge_instances Component instances alive now."
        );
        let _ = writeln!(out, "# TYPE wikiedge_instances gauge");
        for (c, n) in &m.instances_live {
            let _ = writeln!(out, "wikiedge_instances{{component=\"{}\"}} {n}", esc(c));
        }
        let _ = writeln!(
            out,
            "# HELP wikiedge_kv_operations_total Key-value operations, by operation."
        );
        let _ = writeln!(out, "# TYPE wikiedge_kv_operations_total counter");
        for (op, n) in &m.kv_ops {
            let _ = writeln!(out, "wikiedge_kv_operations_total{{op=\"{op}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP wikiedge_kv_errors_total Key-value operations that failed, by operation."
        );
        let _ = writeln!(out, "# TYPE wikiedge_kv_errors_total counter");
        for (op, n) in &m.kv_errors {
            let _ = writeln!(out, "wikiedge_kv_errors_total{{op=\"{op}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP wikiedge_kv_commits_total SQLite transactions committed."
        );
        let _ = writeln!(out, "# TYPE wikiedge_kv_commits_total counter");
        let _ = writeln!(out, "wikiedge_kv_commits_total {}", m.kv_commits);
        let _ = writeln!(
            out,
            "# HELP wikiedge_idle_releases_total Times the quiet host gave back the memory it keeps for speed."
        );
        let _ = writeln!(out, "# TYPE wikiedge_idle_releases_total counter");
        let _ = writeln!(out, "wikiedge_idle_releases_total {}", m.idle_releases);
        let _ = writeln!(
            out,
            "# HELP wikiedge_requests_handed_over_total Requests a serving thread with no turn free handed to another thread's instances."
        );
        let _ = writeln!(out, "# TYPE wikiedge_requests_handed_over_total counter");
        let _ = writeln!(out, "wikiedge_requests_handed_over_total {}", m.handed_over);
        out
    }
}

/// A key-value store that counts its operations and errors.
pub struct MeteredStore(pub std::sync::Arc<dyn crate::kv::Store>);

fn counted<T: Send + 'static>(
    op: &'static str,
    fut: futures::future::BoxFuture<'static, crate::kv::KvResult<T>>,
) -> futures::future::BoxFuture<'static, crate::kv::KvResult<T>> {
    Box::pin(async move {
        let result = fut.await;
        metrics().kv(op, result.is_ok());
        result
    })
}

impl crate::kv::Store for MeteredStore {
    fn get_shared(
        &self,
        key: String,
    ) -> futures::future::BoxFuture<'static, crate::kv::KvResult<Option<std::sync::Arc<Vec<u8>>>>>
    {
        counted("get", self.0.get_shared(key))
    }
    fn set(
        &self,
        key: String,
        value: Vec<u8>,
    ) -> futures::future::BoxFuture<'static, crate::kv::KvResult<()>> {
        counted("set", self.0.set(key, value))
    }
    fn delete(&self, key: String) -> futures::future::BoxFuture<'static, crate::kv::KvResult<()>> {
        counted("delete", self.0.delete(key))
    }
    fn exists(
        &self,
        key: String,
    ) -> futures::future::BoxFuture<'static, crate::kv::KvResult<bool>> {
        counted("exists", self.0.exists(key))
    }
    fn get_keys(&self) -> futures::future::BoxFuture<'static, crate::kv::KvResult<Vec<String>>> {
        counted("get_keys", self.0.get_keys())
    }
    fn get_keys_with_prefix(
        &self,
        prefix: String,
    ) -> futures::future::BoxFuture<'static, crate::kv::KvResult<Vec<String>>> {
        counted("get_keys_with_prefix", self.0.get_keys_with_prefix(prefix))
    }
    fn get_keys_page(
        &self,
        prefix: String,
        after: Option<String>,
        limit: usize,
    ) -> futures::future::BoxFuture<'static, crate::kv::KvResult<Option<Vec<String>>>> {
        counted("get_keys_page", self.0.get_keys_page(prefix, after, limit))
    }
    fn scan_keys(
        &self,
        prefix: String,
        cursor: Option<String>,
        count: usize,
    ) -> futures::future::BoxFuture<'static, crate::kv::KvResult<(Vec<String>, Option<String>)>>
    {
        counted("scan_keys", self.0.scan_keys(prefix, cursor, count))
    }
    fn get_many(
        &self,
        keys: Vec<String>,
    ) -> futures::future::BoxFuture<'static, crate::kv::KvResult<crate::kv::KeyValues>> {
        counted("get_many", self.0.get_many(keys))
    }
    fn set_many(
        &self,
        pairs: Vec<(String, Vec<u8>)>,
    ) -> futures::future::BoxFuture<'static, crate::kv::KvResult<()>> {
        counted("set_many", self.0.set_many(pairs))
    }
    fn delete_many(
        &self,
        keys: Vec<String>,
    ) -> futures::future::BoxFuture<'static, crate::kv::KvResult<()>> {
        counted("delete_many", self.0.delete_many(keys))
    }
    fn increment(
        &self,
        key: String,
        delta: i64,
    ) -> futures::future::BoxFuture<'static, crate::kv::KvResult<i64>> {
        counted("increment", self.0.increment(key, delta))
    }
    fn compare_and_swap(
        &self,
        key: String,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
    ) -> futures::future::BoxFuture<'static, crate::kv::KvResult<bool>> {
        counted(
            "compare_and_swap",
            self.0.compare_and_swap(key, expected, new),
        )
    }
}

/// Serves `GET /metrics` (anything else: 404) on `listener` until the
/// process ends.
pub async fn serve(listener: tokio::net::TcpListener) {
    use http_body_util::Full;
    use hyper::{Response, StatusCode};
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let service =
            hyper::service::service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                if req.uri().path() == "/metrics" {
                    Response::builder()
                        .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                        .body(Full::new(bytes::Bytes::from(metrics().render())))
                } else {
                    Response::builder()
                        .status(StatusCode::NOT_FOUND)
                        .header("content-type", "application/json")
                        .body(Full::new(bytes::Bytes::from_static(
                            br#"{"status":404,"message":"Not found: the metrics are at /metrics"}"#,
                        )))
                }
            });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_counts_requests_latency_instances_and_kv() {
        let m = Metrics::default();
        m.request("articles", 200, Duration::from_millis(3));
        m.request("articles", 200, Duration::from_millis(30));
        m.request("auth", 401, Duration::from_secs(20));
        m.instance_created("articles");
        m.instance_created("articles");
        m.instance_dropped("articles");
        m.kv("get", true);
        m.kv("set", false);
        m.idle_release();
        m.kv_commit();
        m.kv_commit();
        let text = m.render();
        for line in [
            "wikiedge_http_requests_total{component=\"articles\",status=\"200\"} 2",
            "wikiedge_http_requests_total{component=\"auth\",status=\"401\"} 1",
            "wikiedge_http_request_duration_seconds_bucket{component=\"articles\",le=\"0.0025\"} 0",
            "wikiedge_http_request_duration_seconds_bucket{component=\"articles\",le=\"0.005\"} 1",
            "wikiedge_http_request_duration_seconds_bucket{component=\"articles\",le=\"0.05\"} 2",
            "wikiedge_http_request_duration_seconds_bucket{component=\"auth\",le=\"10\"} 0",
            "wikiedge_http_request_duration_seconds_bucket{component=\"auth\",le=\"+Inf\"} 1",
            "wikiedge_http_request_duration_seconds_count{component=\"articles\"} 2",
            "wikiedge_instances_created_total{component=\"articles\"} 2",
            "wikiedge_instances{component=\"articles\"} 1",
            "wikiedge_kv_operations_total{op=\"get\"} 1",
            "wikiedge_kv_operations_total{op=\"set\"} 1",
            "wikiedge_kv_errors_total{op=\"set\"} 1",
            "wikiedge_idle_releases_total 1",
            "wikiedge_kv_commits_total 2",
            "# TYPE wikiedge_http_request_duration_seconds histogram",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
        assert!(!text.contains("wikiedge_kv_errors_total{op=\"get\"}"));
    }
}
