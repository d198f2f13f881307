//! What #18's throughput ratio asks of the host's own CPU in a run: both
//! servers share the cores with the load generator, so a ratio of their
//! rates is a ratio of their CPU per request, the load generator's included.

use serde_json::Value;
use wikiedge_bench::load::LoadResult;

/// The throughput ratio #18 asks of (a) against each static server.
pub(crate) const TARGET_RATIO: f64 = 0.25;

/// What a throughput ratio asks of the subject's own CPU, from one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Budget {
    /// The most the subject may spend per request.
    pub(crate) budget_us: f64,
    pub(crate) server_us: f64,
    pub(crate) server_load_us: f64,
    pub(crate) subject_us: f64,
    pub(crate) subject_load_us: f64,
}

/// The subject's CPU budget per request for `ratio` of `server`'s
/// throughput, both loaded on the same cores by the load generator: each
/// server answers at most `cores / (its CPU + the load generator's CPU per
/// request)`, so `ratio` of the server's rate leaves the subject
/// `(server + its load generator) / ratio - the subject's load generator`.
/// `None` unless all four CPU figures were measured.
pub(crate) fn host_budget(server: &Value, subject: &Value, ratio: f64) -> Option<Budget> {
    let server: LoadResult = serde_json::from_value(server.clone()).ok()?;
    let subject: LoadResult = serde_json::from_value(subject.clone()).ok()?;
    let (server_us, server_load_us) = (
        server.server_cpu?.us_per_request,
        server.load_cpu?.us_per_request,
    );
    let (subject_us, subject_load_us) = (
        subject.server_cpu?.us_per_request,
        subject.load_cpu?.us_per_request,
    );
    if server_us <= 0.0 || subject_us <= 0.0 || ratio <= 0.0 {
        return None;
    }
    Some(Budget {
        budget_us: (server_us + server_load_us) / ratio - subject_load_us,
        server_us,
        server_load_us,
        subject_us,
        subject_load_us,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::markdown;
    use serde_json::json;

    /// A result with its server's and load generator's CPU per request
    /// (over 1000 requests answered in one second).
    fn with_cpu(server_us: u64, load_us: u64) -> LoadResult {
        let per = |us: u64| std::time::Duration::from_micros(us * 1000);
        LoadResult {
            requests_per_s: 1000.0,
            server_cpu: Some(wikiedge_bench::load::ServerCpu::of(
                1,
                per(server_us),
                std::time::Duration::from_secs(1),
                1000,
            )),
            load_cpu: Some(wikiedge_bench::load::LoadCpu::of(
                2,
                per(load_us),
                std::time::Duration::from_secs(1),
                1000,
            )),
            ..Default::default()
        }
    }

    #[test]
    fn the_hosts_budget_for_a_quarter_of_a_static_server() {
        // nginx 20 + load generator 30 per request: a quarter of its rate
        // leaves 200 µs per request for the host and its load generator;
        // the load generator takes 50 against the host, so 150 are left.
        let n = json!(with_cpu(20, 30));
        let a = json!(with_cpu(180, 50));
        let b = host_budget(&n, &a, 0.25).expect("all four measured");
        assert!((b.budget_us - 150.0).abs() < 1e-6, "{b:?}");
        assert!((b.subject_us - 180.0).abs() < 1e-6, "{b:?}");
        // Without the server's CPU there is no budget.
        let unmeasured = json!(LoadResult {
            requests_per_s: 1000.0,
            ..Default::default()
        });
        assert_eq!(host_budget(&unmeasured, &a, 0.25), None);
        let report = json!({
            "started_at": "x", "machine": {"cpus": 2},
            "config": {"connections": 32, "warmup_s": 2.0, "duration_s": 5.0, "rounds": 1},
            "scenarios": {"a": {
                "path": "/v2/articles/Anarchism", "response_bytes": 1234,
                "n": {"result": with_cpu(20, 30)},
                "a": {"result": with_cpu(180, 50)},
                "ratio_a_over_n": {"rps_ratio": 0.2, "p99_ratio": 2.0},
            }},
            "errors": {},
        });
        let md = markdown(&report);
        assert!(
            md.contains("At 0.25 of nginx, the host may spend at most 150 µs per request on these cores ((n) 20 µs + the load generator 30 µs, over 0.25, less the load generator's 50 µs against (a)); it spent 180 µs."),
            "{md}"
        );
        // The baseline was not measured: no line for it.
        assert!(!md.contains("At 0.25 of the baseline"), "{md}");
    }
}
