//! Scenario (a), the full authenticated article path, and (r), the same on
//! Redis, each with its baseline (b); (a) also with nginx (n) where it is
//! installed.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{Value, json};
use wikiedge_bench::account::{BENCH_PLANS, account_bearer, admin_key};
use wikiedge_bench::client::fetch;
use wikiedge_bench::nginx::nginx_bin;

use crate::Scenario;
use crate::ctx::{Ctx, Server};
use crate::open_loop;
use crate::redis::{Redis, redis_server_bin};
use crate::report::{load_json, ratios};
use wikiedge_bench::proc::{free_port, ms, truncate, wait_status};

/// Where scenario (a) keeps its key-value data: (a) on the embedded SQLite
/// store, (r) on Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kv {
    Sqlite,
    Redis,
}

impl Kv {
    /// The scenario letter (the key in the report).
    pub(crate) fn key(self) -> &'static str {
        match self {
            Kv::Sqlite => "a",
            Kv::Redis => "r",
        }
    }
}

/// FNV-1a (64-bit) of `bytes`: tells whether (a) and (r) served the same body.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Imports the dump into the state directory's SQLite store, or into the
/// stores a runtime config names; returns the seconds it took.
async fn import(ctx: &Ctx, state: &Path, runtime_config: Option<&Path>) -> Result<Option<f64>> {
    if ctx.args.no_import {
        println!("  skipping the import (--no-import)");
        return Ok(None);
    }
    let dump = ctx.root.join(&ctx.args.dump);
    let dump_s = dump.to_string_lossy().into_owned();
    let state_s = state.to_string_lossy().into_owned();
    let mut argv = vec![
        "import",
        &dump_s,
        "--project",
        "enwiki",
        "--state-dir",
        &state_s,
    ];
    let rc_s = runtime_config.map(|p| p.to_string_lossy().into_owned());
    if let Some(rc) = &rc_s {
        argv.extend(["--runtime-config-file", rc.as_str()]);
    }
    let t = Instant::now();
    ctx.run_wikiedge("wikiedge-import", &argv, &[])
        .await
        .context("importing the dump")?;
    Ok(Some(t.elapsed().as_secs_f64()))
}

/// Scenario (a), or (r) with `Kv::Redis`, with its baseline (b) when selected.
pub(crate) async fn scenario_full(ctx: &Ctx, kv: Kv) -> Result<Value> {
    let letter = kv.key();
    let state = ctx.tmp.path().join(format!("state-{letter}"));
    std::fs::create_dir_all(&state)?;

    // (r): a private Redis first, so that the import writes into it through
    // the same runtime config the host then serves from.
    let redis = match kv {
        Kv::Sqlite => None,
        Kv::Redis => {
            let bin = redis_server_bin(&ctx.args)
                .ok_or_else(|| anyhow!("Not measured: redis-server not found"))?;
            Some(Redis::start(ctx, &bin).await?)
        }
    };
    let runtime_config = redis.as_ref().map(|r| r.runtime_config.clone());
    let import_s = import(ctx, &state, runtime_config.as_deref()).await?;
    let mut redis_info = Value::Null;
    if let Some(r) = &redis {
        redis_info = r.info();
        redis_info["keys_after_import"] = json!(r.dbsize().await);
    }
    let mut extra: Vec<&std::ffi::OsStr> = Vec::new();
    if let Some(rc) = &runtime_config {
        extra.extend([
            std::ffi::OsStr::new("--runtime-config-file"),
            rc.as_os_str(),
        ]);
    }

    let key = admin_key();
    let env = [
        ("SPIN_VARIABLE_ADMIN_API_KEY", key.as_str()),
        ("SPIN_VARIABLE_PLANS", BENCH_PLANS),
    ];
    let port = free_port()?;
    let mut host = ctx.spawn_up_with(
        &format!("wikiedge-up-full-{letter}"),
        "spin.toml",
        port,
        &state,
        &env,
        &extra,
    )?;
    let base_url = format!("http://127.0.0.1:{port}");
    wait_status(
        &mut host,
        &format!("{base_url}/v1/quota"),
        |_| true,
        ctx.deadline(),
    )
    .await?;
    let bearer = account_bearer(&base_url, &key).await?;
    let mut headers = HeaderMap::new();
    headers.insert(http::header::AUTHORIZATION, HeaderValue::from_str(&bearer)?);

    let a_path = ctx
        .args
        .a_path
        .clone()
        .unwrap_or_else(|| format!("/v2/articles/{}", ctx.args.article));
    let article_url = format!("{base_url}{a_path}");
    let t = Instant::now();
    let first = fetch(
        Method::GET,
        &article_url,
        &[("authorization", bearer.as_str())],
        Vec::new(),
        Duration::from_secs(60),
    )
    .await?;
    let first_ms = ms(t.elapsed());
    if first.status != StatusCode::OK {
        bail!(
            "GET {article_url}: {} {}",
            first.status,
            truncate(&first.text(), 300)
        );
    }
    let mut out = json!({
        "kv_store": match kv { Kv::Sqlite => "sqlite", Kv::Redis => "redis" },
        "import_seconds": import_s,
        "path": a_path,
        "response_bytes": first.body.len(),
        "response_body_fnv1a64": format!("{:016x}", fnv1a64(&first.body)),
        "first_article_request_ms": first_ms,
        "response_headers": first.headers.iter().map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?"))).collect::<Vec<_>>(),
    });

    if let Some(r) = &redis {
        // Everything (articles, the account, tokens, counters) must be in
        // Redis: a host or an import that ignored the runtime config would
        // have written the state directory's SQLite file instead.
        let sqlite = state.join("sqlite_key_value.db");
        if sqlite.exists() {
            bail!(
                "{} exists: the import or the host wrote to SQLite, not to redis (is --runtime-config-file honoured?)",
                sqlite.display()
            );
        }
        redis_info["keys_after_first_request"] = json!(r.dbsize().await);
        out["redis"] = redis_info;
    }

    let mut base = None;
    if ctx.args.wants(Scenario::B) {
        let (p, bport) = ctx
            .spawn_baseline(&format!("baseline-article-{letter}"), &first)
            .await?;
        base = Some((p, format!("http://127.0.0.1:{bport}{a_path}")));
    }
    // (n): nginx serving the same bytes, beside (a) where it is installed.
    let mut nginx = None;
    if kv == Kv::Sqlite && ctx.args.wants(Scenario::N) {
        match nginx_bin(ctx.args.nginx.as_deref()) {
            Some(bin) => {
                let (p, nport) = ctx.spawn_nginx("nginx-article", &bin, &first).await?;
                out["nginx_version"] = json!(nginx_version(&bin));
                nginx = Some((p, format!("http://127.0.0.1:{nport}{a_path}")));
            }
            None => {
                println!("  (n) not measured: nginx not found");
                out["n_not_measured"] =
                    json!("nginx not found (on PATH, in /usr/sbin, or --nginx)");
            }
        }
    }
    let (bs, ns, as_) = ctx
        .compare_all(
            letter,
            base.as_ref().map(|(p, u)| Server {
                url: u,
                headers: &headers,
                pid: p.pid(),
            }),
            // nginx's master: its workers' CPU is counted with it.
            nginx.as_ref().map(|(p, u)| Server {
                url: u,
                headers: &headers,
                pid: p.pid(),
            }),
            Some(Server {
                url: &article_url,
                headers: &headers,
                pid: host.pid(),
            }),
        )
        .await?;
    out["host_peak_rss_kib"] = json!(host.status_kib("VmHWM"));
    out["host_rss_kib_after"] = json!(host.status_kib("VmRSS"));
    if kv == Kv::Sqlite && ctx.args.wants(Scenario::O) {
        // The closed loop just measured the maximum rate; now the same path
        // at fixed fractions of it.
        match open_loop::max_rps(&as_) {
            Some(max_rps) => {
                let server = Server {
                    url: &article_url,
                    headers: &headers,
                    pid: host.pid(),
                };
                out["open_loop"] = open_loop::sweep(ctx, &server, max_rps).await?;
                out["open_loop"]["host_peak_rss_kib"] = json!(host.status_kib("VmHWM"));
                // The same bytes without the work, at the same fraction of
                // their own maxima: what this machine and load generator
                // allow any server.
                let mut controls = Vec::new();
                for (letter, proc, results) in [("b", &base, &bs), ("n", &nginx, &ns)] {
                    if let (Some((p, u)), Some(max_rps)) = (proc, open_loop::max_rps(results)) {
                        controls.push(open_loop::Control {
                            letter,
                            server: Server {
                                url: u,
                                headers: &headers,
                                pid: p.pid(),
                            },
                            max_rps,
                        });
                    }
                }
                if !controls.is_empty() {
                    let a_rate = open_loop::rate_at(max_rps, open_loop::CONTROL_FRACTION);
                    out["open_loop"]["controls"] =
                        open_loop::controls(ctx, &controls, a_rate).await?;
                }
            }
            None => bail!("no closed-loop rate to take the open loop's rates from"),
        }
    }
    if kv == Kv::Sqlite {
        let idle = Duration::from_secs(ctx.args.idle_seconds);
        out["host_rss_kib_after_idle"] =
            json!(wikiedge_bench::idle::rss_after(host.pid(), idle).await);
    }
    host.stop().await;
    if let Some(r) = redis {
        out["redis_peak_rss_kib"] = json!(r.proc.status_kib("VmHWM"));
        r.proc.stop().await;
    }
    if let Some((p, _)) = base {
        out["baseline_peak_rss_kib"] = json!(p.status_kib("VmHWM"));
        p.stop().await;
    }
    if let Some((p, _)) = nginx {
        p.stop().await;
    }
    if !ns.is_empty() {
        out["n"] = load_json(&ns);
        out[format!("ratio_{letter}_over_n")] = ratios(&ns, &as_);
    }
    if !bs.is_empty() {
        out["b"] = load_json(&bs);
    }
    out[letter] = load_json(&as_);
    if !bs.is_empty() {
        out[format!("ratio_{letter}_over_b")] = ratios(&bs, &as_);
    }
    Ok(out)
}

/// `nginx -v`'s answer (it writes it to stderr), e.g. `nginx/1.22.1`.
fn nginx_version(bin: &Path) -> Option<String> {
    let out = std::process::Command::new(bin).arg("-v").output().ok()?;
    let text = String::from_utf8_lossy(&out.stderr);
    text.trim()
        .strip_prefix("nginx version: ")
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_known_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
