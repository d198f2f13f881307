//! Scenario (o): the full path (a) under an open loop, at fixed arrival
//! rates that are fractions of the maximum the closed loop measured on the
//! same host in the same run, with latency timed from when each request was
//! due (see `wikiedge_bench::schedule`).

use anyhow::Result;
use serde_json::{Value, json};

use crate::ctx::{Ctx, Server, indent};
use wikiedge_bench::load::LoadResult;

/// The fractions of the closed-loop maximum rate loaded.
pub(crate) const FRACTIONS: [f64; 3] = [0.25, 0.5, 0.8];

/// The arrival rate for `fraction` of `max_rps`, at least 1 request/s.
pub(crate) fn rate_at(max_rps: f64, fraction: f64) -> f64 {
    (max_rps * fraction).max(1.0)
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
}
