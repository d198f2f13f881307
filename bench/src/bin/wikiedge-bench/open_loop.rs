//! Scenario (o): the full path (a) under an open loop, at fixed arrival
//! rates that are fractions of the maximum the closed loop measured on the
//! same host in the same run, with latency timed from when each request was
//! due (see `wikiedge_bench::schedule`).

use anyhow::Result;
use serde_json::{Value, json};

use crate::ctx::{Ctx, Server, indent};
use crate::report::cpu_columns;
use wikiedge_bench::load::LoadResult;
use wikiedge_bench::stats::fmt_us;

/// The fractions of the closed-loop maximum rate loaded.
pub(crate) const FRACTIONS: [f64; 3] = [0.25, 0.5, 0.8];

/// The arrival rate for `fraction` of `max_rps`, at least 1 request/s.
pub(crate) fn rate_at(max_rps: f64, fraction: f64) -> f64 {
    (max_rps * fraction).max(1.0)
}

/// A server's maximum rate: the median req/s of its closed-loop rounds.
pub(crate) fn max_rps(rounds: &[LoadResult]) -> Option<f64> {
    wikiedge_bench::stats::median(rounds.iter().map(|r| r.requests_per_s).collect())
}

/// Loads `url` at each of [`FRACTIONS`] of `max_rps`, one run each, with
/// the run's connections, warm-up and duration.
pub(crate) async fn sweep(ctx: &Ctx, server: &Server<'_>, max_rps: f64) -> Result<Value> {
    let mut points = Vec::new();
    for fraction in FRACTIONS {
        let rate = rate_at(max_rps, fraction);
        let what = format!("{:.0}% of {max_rps:.0} req/s", fraction * 100.0);
        let r = point(ctx, server, rate, &what).await?;
        points.push(json!({"fraction": fraction, "target_rate": rate, "result": r}));
    }
    Ok(json!({
        "max_rps": max_rps,
        "max_rps_from": "the median closed-loop req/s of (a) in this run",
        "points": points,
    }))
}

/// One open-loop run of `server` at `rate` requests/s.
async fn point(ctx: &Ctx, server: &Server<'_>, rate: f64, what: &str) -> Result<LoadResult> {
    let mut cfg = ctx.load_config(server.url, server.headers, server.pid)?;
    cfg.rate = Some(rate);
    println!(
        "  [o] open loop at {what} = {rate:.0} req/s on {}",
        server.url
    );
    let r = wikiedge_bench::load::run(&cfg).await?;
    println!("{}", indent(&r.human()));
    Ok(r)
}

/// A server that returns (a)'s bytes without doing (a)'s work, loaded in the
/// open loop as a control: is p99 at [`CONTROL_FRACTION`] of a server's own
/// closed-loop maximum within reach on this machine at all, with the load
/// generator on the same cores?
pub(crate) struct Control<'a> {
    /// `"b"` or `"n"`.
    pub(crate) letter: &'static str,
    pub(crate) server: Server<'a>,
    /// The median closed-loop req/s it reached in this run.
    pub(crate) max_rps: f64,
}

/// The fraction of its own maximum each control is loaded at: the issue's
/// open-loop target is at 80%.
pub(crate) const CONTROL_FRACTION: f64 = 0.8;

/// Runs the controls: each at [`CONTROL_FRACTION`] of its own closed-loop
/// maximum, and the repo's baseline (b) also at `a_rate`, the rate (a) was
/// loaded at for that fraction, so that the load generator's own share at
/// that rate is seen apart from (a)'s work.
pub(crate) async fn controls(ctx: &Ctx, controls: &[Control<'_>], a_rate: f64) -> Result<Value> {
    let mut out = Vec::new();
    for c in controls {
        let rate = rate_at(c.max_rps, CONTROL_FRACTION);
        let what = format!(
            "({}) {:.0}% of its own {:.0} req/s",
            c.letter,
            CONTROL_FRACTION * 100.0,
            c.max_rps
        );
        let r = point(ctx, &c.server, rate, &what).await?;
        out.push(json!({"server": c.letter, "fraction": CONTROL_FRACTION, "of_rps": c.max_rps, "target_rate": rate, "result": r}));
        if c.letter == "b" {
            let what = format!("({}) the rate of (a)'s point", c.letter);
            let r = point(ctx, &c.server, a_rate, &what).await?;
            out.push(json!({"server": c.letter, "target_rate": a_rate, "result": r}));
        }
    }
    Ok(Value::Array(out))
}

/// The open-loop table of scenario (o), or nothing when it did not run.
pub(crate) fn markdown(o: &Value) -> String {
    let Some(points) = o["points"].as_array() else {
        return String::new();
    };
    let mut md = format!(
        "\n## Open loop on (a) (o)\n\n\
         Fixed arrival rates, fractions of (a)'s closed-loop {:.0} req/s in this run; latency from each \
         request's due time (no coordinated omission); requests still owed at the end count with their wait. \
         The worst second is the second of the measured window (from 0) whose requests, by due time, had the highest p99: \
         one stall shows as one bad second, a growing queue as several. \
         A server whose CPU per request is higher at a point than in the closed loop cannot keep up with a fraction of the closed loop's rate. \
         The controls are the same bytes from the baseline (b) and nginx (n), each at 80% of its own closed-loop maximum in this run, \
         and the baseline at (a)'s 80% rate: whether this machine, with the load generator on the same cores, \
         gives any server its p99 target at 80%, and what the load generator alone costs at (a)'s rate.\n\n\
         | load | offered req/s | answered req/s | p50 | p99 | p99.9 | max | late at end | send lag p99 | worst second: p99 (second) | server CPU per request | load generator CPU per request | non-2xx/3xx | errors |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        o["max_rps"].as_f64().unwrap_or(0.0)
    );
    let rows = points.iter().map(|p| {
        let load = format!("{:.0}%", p["fraction"].as_f64().unwrap_or(0.0) * 100.0);
        (load, p)
    });
    // The controls: the same bytes from the baseline and nginx.
    let controls = o["controls"].as_array().into_iter().flatten().map(|c| {
        let server = c["server"].as_str().unwrap_or("?");
        let load = match c["fraction"].as_f64() {
            Some(f) => format!(
                "control: ({server}) at {:.0}% of its own {:.0}",
                f * 100.0,
                c["of_rps"].as_f64().unwrap_or(0.0)
            ),
            None => format!(
                "control: ({server}) at (a)'s {:.0}% rate",
                CONTROL_FRACTION * 100.0
            ),
        };
        (load, c)
    });
    for (load, p) in rows.chain(controls) {
        let Ok(r) = serde_json::from_value::<LoadResult>(p["result"].clone()) else {
            continue;
        };
        let l = r.latency;
        let (cpu, load_cpu) = cpu_columns(&r);
        md.push_str(&format!(
            "| {load} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {cpu} | {load_cpu} | {} | {} |\n",
            r.target_rate.unwrap_or(0.0),
            r.requests_per_s,
            fmt_us(l.p50_us),
            fmt_us(l.p99_us),
            fmt_us(l.p999_us),
            fmt_us(l.max_us),
            r.late_at_end,
            r.send_lag.map_or("-".to_string(), |s| fmt_us(s.p99_us)),
            wikiedge_bench::timeline::worst(&r.timeline).map_or("-".to_string(), |s| format!(
                "{} ({})",
                fmt_us(s.p99_us),
                s.second
            )),
            r.non_success,
            r.errors,
        ));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_fractions_of_the_closed_loop_maximum() {
        let rates: Vec<f64> = FRACTIONS.iter().map(|f| rate_at(4000.0, *f)).collect();
        assert_eq!(rates, vec![1000.0, 2000.0, 3200.0]);
        // A host that answered nothing still gets a (tiny) load.
        assert_eq!(rate_at(0.0, 0.25), 1.0);
    }

    #[test]
    fn markdown_renders_the_open_loop_points() {
        let point = |fraction: f64, rate: f64, p99: u64| {
            json!({"fraction": fraction, "target_rate": rate, "result": LoadResult {
                requests_per_s: rate - 1.0,
                target_rate: Some(rate),
                late_at_end: 3,
                latency: wikiedge_bench::stats::Latency { p50_us: 900, p99_us: p99, p999_us: 2 * p99, max_us: 3 * p99, ..Default::default() },
                send_lag: Some(wikiedge_bench::stats::Latency { p99_us: 1_100, ..Default::default() }),
                server_cpu: Some(wikiedge_bench::load::ServerCpu::of(
                    1, std::time::Duration::from_secs_f64(rate * 5.0 * 600e-6), std::time::Duration::from_secs(5), (rate * 5.0) as u64,
                )),
                timeline: vec![
                    wikiedge_bench::timeline::Second { second: 0, requests: 9, p99_us: p99 / 2, ..Default::default() },
                    wikiedge_bench::timeline::Second { second: 1, requests: 9, p99_us: p99 + 1_000, ..Default::default() },
                ],
                ..Default::default()
            }})
        };
        let report = json!({
            "started_at": "x", "machine": {"cpus": 2},
            "config": {"connections": 32, "warmup_s": 2.0, "duration_s": 10.0, "rounds": 1},
            "scenarios": {"a": {"open_loop": {"max_rps": 4000.0, "points": [
                point(0.25, 1000.0, 4_000), point(0.8, 3200.0, 25_000),
            ], "controls": [
                {"server": "b", "fraction": 0.8, "of_rps": 30000.0, "target_rate": 24000.0,
                 "result": point(0.8, 24000.0, 40_000)["result"].clone()},
                {"server": "b", "target_rate": 3200.0,
                 "result": point(0.8, 3200.0, 3_000)["result"].clone()},
            ]}}},
            "errors": {},
        });
        let md = crate::report::markdown(&report);
        assert!(md.contains("closed-loop 4000 req/s"), "{md}");
        assert!(
            md.contains(
                "| 25% | 1000 | 999 | 900µs | 4.00ms | 8.00ms | 12.00ms | 3 | 1.10ms | 5.00ms (1) | 600 µs | - | 0 | 0 |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| 80% | 3200 | 3199 | 900µs | 25.00ms | 50.00ms |"),
            "{md}"
        );
        // The controls follow (a)'s points, each named.
        assert!(
            md.contains(
                "| control: (b) at 80% of its own 30000 | 24000 | 23999 | 900µs | 40.00ms |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| control: (b) at (a)'s 80% rate | 3200 | 3199 | 900µs | 3.00ms |"),
            "{md}"
        );
        // Without (o), no open-loop section.
        let report = json!({"scenarios": {"a": {}}, "errors": {}});
        assert!(!crate::report::markdown(&report).contains("Open loop"));
    }
}
