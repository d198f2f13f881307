//! Scenario (o): the full path (a) under an open loop, at fixed arrival
//! rates that are fractions of the maximum the closed loop measured on the
//! same host in the same run, with latency timed from when each request was
//! due (see `wikiedge_bench::schedule`).

use anyhow::Result;
use serde_json::{Value, json};

use crate::ctx::{Ctx, Server, indent};

/// The fractions of the closed-loop maximum rate loaded.
pub(crate) const FRACTIONS: [f64; 3] = [0.25, 0.5, 0.8];

/// The arrival rate for `fraction` of `max_rps`, at least 1 request/s.
pub(crate) fn rate_at(max_rps: f64, fraction: f64) -> f64 {
    (max_rps * fraction).max(1.0)
}

/// Loads `url` at each of [`FRACTIONS`] of `max_rps`, one run each, with
/// the run's connections, warm-up and duration.
pub(crate) async fn sweep(ctx: &Ctx, server: &Server<'_>, max_rps: f64) -> Result<Value> {
    let url = server.url;
    let mut points = Vec::new();
    for fraction in FRACTIONS {
        let rate = rate_at(max_rps, fraction);
        let mut cfg = ctx.load_config(url, server.headers, server.pid)?;
        cfg.rate = Some(rate);
        println!(
            "  [o] open loop at {:.0}% of {max_rps:.0} req/s = {rate:.0} req/s on {url}",
            fraction * 100.0
        );
        let r = wikiedge_bench::load::run(&cfg).await?;
        println!("{}", indent(&r.human()));
        points.push(json!({"fraction": fraction, "target_rate": rate, "result": r}));
    }
    Ok(json!({
        "max_rps": max_rps,
        "max_rps_from": "the median closed-loop req/s of (a) in this run",
        "points": points,
    }))
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
