//! Scenario (c): the trivial component, with its baseline (b).

use anyhow::Result;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Value, json};
use wikiedge_bench::client::Fetched;

use crate::Scenario;
use crate::ctx::{Ctx, Server};
use crate::report::{load_json, ratios};
use wikiedge_bench::proc::{free_port, wait_status};

const HELLO_BODY: &str = "Hello from wikiedge-bench\n";

/// Scenario (c), with its baseline (b) when selected.
pub(crate) async fn scenario_c(ctx: &Ctx) -> Result<Value> {
    let with_c = ctx.args.wants(Scenario::C);
    let with_b = ctx.args.wants(Scenario::B);
    let mut out = json!({});
    let mut host = None;
    let fixed = if with_c {
        let port = free_port()?;
        let state = ctx.tmp.path().join("state-c");
        let mut p = ctx.spawn_up("wikiedge-up-hello", "bench/spin.toml", port, &state, &[])?;
        let url = format!("http://127.0.0.1:{port}/");
        let (f, _) = wait_status(&mut p, &url, |s| s == StatusCode::OK, ctx.deadline()).await?;
        out["response_bytes"] = json!(f.body.len());
        host = Some((p, url));
        f
    } else {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        Fetched {
            status: StatusCode::OK,
            headers,
            body: HELLO_BODY.into(),
        }
    };
    let mut base = None;
    if with_b {
        let (p, port) = ctx.spawn_baseline("baseline-hello", &fixed).await?;
        base = Some((p, format!("http://127.0.0.1:{port}/")));
    }
    let none = HeaderMap::new();
    let (bs, cs) = ctx
        .compare(
            "c",
            base.as_ref().map(|(p, u)| Server {
                url: u,
                headers: &none,
                pid: p.pid(),
            }),
            host.as_ref().map(|(p, u)| Server {
                url: u,
                headers: &none,
                pid: p.pid(),
            }),
        )
        .await?;
    if let Some((p, _)) = base {
        out["baseline_peak_rss_kib"] = json!(p.status_kib("VmHWM"));
        p.stop().await;
    }
    if let Some((p, _)) = host {
        out["host_peak_rss_kib"] = json!(p.status_kib("VmHWM"));
        p.stop().await;
    }
    if !bs.is_empty() {
        out["b"] = load_json(&bs);
    }
    if !cs.is_empty() {
        out["c"] = load_json(&cs);
    }
    if !bs.is_empty() && !cs.is_empty() {
        out["ratio_c_over_b"] = ratios(&bs, &cs);
    }
    Ok(out)
}
