//! Scenario (d): cold start, process start to listening and to the first
//! answers, with an empty and then a warm compile cache.

use std::time::{Duration, Instant};

use anyhow::Result;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use wikiedge_bench::client::fetch;

use crate::ctx::Ctx;
use wikiedge_bench::account::admin_key;
use wikiedge_bench::proc::{free_port, ms, wait_listening, wait_status};

/// Scenario (d), trivial app: process start to listening and to the first
/// 200, then a second request, `cold_runs` times on one state dir.
pub(crate) async fn cold_hello(ctx: &Ctx) -> Result<Value> {
    let mut hello_runs = Vec::new();
    let state = ctx.tmp.path().join("state-d-hello");
    // A fresh compile cache: run 1 compiles, later runs hit the cache.
    let cache = ctx.tmp.path().join("cache-d-hello");
    let cache_s = cache.to_string_lossy().into_owned();
    for run in 1..=ctx.args.cold_runs.max(1) {
        let port = free_port()?;
        let url = format!("http://127.0.0.1:{port}/");
        let t0 = Instant::now();
        let mut p = ctx.spawn_up(
            &format!("wikiedge-up-cold-hello-{run}"),
            "bench/spin.toml",
            port,
            &state,
            &[("WIKIEDGE_CACHE_DIR", cache_s.as_str())],
        )?;
        let deadline = ctx.deadline();
        let listening = wait_listening(&mut p, port, deadline).await?;
        let (_, first_latency) =
            wait_status(&mut p, &url, |s| s == StatusCode::OK, deadline).await?;
        let first_200 = t0.elapsed();
        let t = Instant::now();
        let second = fetch(Method::GET, &url, &[], Vec::new(), Duration::from_secs(60)).await?;
        let second_latency = t.elapsed();
        let r = json!({
            "run": run,
            "start_to_listening_ms": ms(listening - t0),
            "start_to_first_200_ms": ms(first_200),
            "first_request_ms": ms(first_latency),
            "second_request_ms": ms(second_latency),
            "second_status": second.status.as_u16(),
            "peak_rss_kib": p.status_kib("VmHWM"),
        });
        println!("  [d] hello run {run}: {r}");
        hello_runs.push(r);
        p.stop().await;
    }
    Ok(json!(hello_runs))
}

/// Scenario (d), real app: process start to listening, then the first and
/// second request to each component, `cold_runs` times on one state dir.
pub(crate) async fn cold_full(ctx: &Ctx) -> Result<Value> {
    // The real app: first request to each component (no account needed:
    // each answers an unauthenticated or malformed request itself).
    let probes: [(&str, Method, &str, &str); 4] = [
        ("auth", Method::POST, "/v1/login", "{}"),
        ("quota", Method::GET, "/v1/quota", ""),
        ("metering", Method::GET, "/v1/usage", ""),
        ("articles", Method::GET, "/v2/articles/Anarchism", ""),
    ];
    let mut full_runs = Vec::new();
    let state = ctx.tmp.path().join("state-d-full");
    let key = admin_key();
    let cache = ctx.tmp.path().join("cache-d-full");
    let cache_s = cache.to_string_lossy().into_owned();
    let env = [
        ("SPIN_VARIABLE_ADMIN_API_KEY", key.as_str()),
        ("WIKIEDGE_CACHE_DIR", cache_s.as_str()),
    ];
    for run in 1..=ctx.args.cold_runs.max(1) {
        let port = free_port()?;
        let t0 = Instant::now();
        let mut p = ctx.spawn_up(
            &format!("wikiedge-up-cold-full-{run}"),
            "spin.toml",
            port,
            &state,
            &env,
        )?;
        let listening = wait_listening(&mut p, port, ctx.deadline()).await?;
        let mut comps = serde_json::Map::new();
        for pass in ["first", "second"] {
            for (name, method, path, body) in &probes {
                let url = format!("http://127.0.0.1:{port}{path}");
                let t = Instant::now();
                let headers: &[(&str, &str)] = if body.is_empty() {
                    &[]
                } else {
                    &[("content-type", "application/json")]
                };
                let f = fetch(
                    method.clone(),
                    &url,
                    headers,
                    body.to_string(),
                    Duration::from_secs(120),
                )
                .await;
                let entry = comps.entry(name.to_string()).or_insert_with(|| json!({}));
                entry[format!("{pass}_ms")] = json!(ms(t.elapsed()));
                entry[format!("{pass}_status")] = match f {
                    Ok(f) => json!(f.status.as_u16()),
                    Err(e) => json!(format!("{e:#}")),
                };
            }
        }
        let r = json!({
            "run": run,
            "start_to_listening_ms": ms(listening - t0),
            "components": comps,
            "peak_rss_kib": p.status_kib("VmHWM"),
        });
        println!("  [d] full app run {run}: {r}");
        full_runs.push(r);
        p.stop().await;
    }
    Ok(json!(full_runs))
}
