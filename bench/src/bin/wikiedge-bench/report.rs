//! The report: per-round results reduced to ratios and medians, and the
//! markdown table written beside the JSON.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use wikiedge_bench::load::LoadResult;
use wikiedge_bench::stats::{fmt_us, median, ratio};

use crate::budget::{TARGET_RATIO, host_budget};
use crate::ctx::Ctx;
use wikiedge_bench::proc::truncate;

/// Per-round ratios of subject to baseline (throughput and p99), as medians.
pub(crate) fn ratios(base: &[LoadResult], subj: &[LoadResult]) -> Value {
    let pairs: Vec<_> = base.iter().zip(subj).collect();
    let rps: Vec<f64> = pairs
        .iter()
        .filter_map(|(b, s)| ratio(s.requests_per_s, b.requests_per_s))
        .collect();
    let p99: Vec<f64> = pairs
        .iter()
        .filter_map(|(b, s)| ratio(s.latency.p99_us as f64, b.latency.p99_us as f64))
        .collect();
    json!({
        "rps_ratio": median(rps.clone()),
        "p99_ratio": median(p99.clone()),
        "rps_ratio_per_round": rps,
        "p99_ratio_per_round": p99,
    })
}

/// The representative (median-throughput) result of a list of rounds.
pub(crate) fn representative(v: &[LoadResult]) -> Option<&LoadResult> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|a, b| v[*a].requests_per_s.total_cmp(&v[*b].requests_per_s));
    idx.get(idx.len() / 2).map(|i| &v[*i])
}

pub(crate) fn load_json(v: &[LoadResult]) -> Value {
    json!({
        "result": representative(v),
        "rounds": v,
    })
}
/// `YYYY-MM-DD HH:MM:SS UTC` from Unix seconds (proleptic Gregorian).
pub(crate) fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn fmt_ratio(v: &Value) -> String {
    v.as_f64()
        .map(|r| format!("{r:.3}"))
        .unwrap_or_else(|| "-".into())
}

fn fmt_kib(v: &Value) -> String {
    v.as_u64()
        .map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
        .unwrap_or_else(|| "-".into())
}

/// The server's and the load generator's CPU per request, or `-` where
/// not measured.
pub(crate) fn cpu_columns(r: &LoadResult) -> (String, String) {
    let us = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |us| format!("{us:.0} µs"));
    (
        us(r.server_cpu.as_ref().map(|c| c.us_per_request)),
        us(r.load_cpu.as_ref().map(|c| c.us_per_request)),
    )
}

fn md_row(label: &str, r: &Value, ratio: &Value, rss: &Value) -> Option<String> {
    let r: LoadResult = serde_json::from_value(r["result"].clone()).ok()?;
    let l = r.latency;
    let (cpu, load_cpu) = cpu_columns(&r);
    Some(format!(
        "| {label} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {cpu} | {load_cpu} | {} |",
        r.requests_per_s,
        fmt_ratio(&ratio["rps_ratio"]),
        fmt_us(l.p50_us),
        fmt_us(l.p90_us),
        fmt_us(l.p99_us),
        fmt_us(l.max_us),
        r.non_success,
        r.errors,
        fmt_kib(rss),
    ))
}

pub(crate) fn markdown(report: &Value) -> String {
    let cfg = &report["config"];
    let mut md = format!(
        "# wikiedge benchmark, {}\n\n\
         {} CPUs (shared{}), loopback, closed loop: {} connections, {}s warm-up + {}s measured, {} round(s).\n\
         Throughput ratios are scenario / native baseline serving the same bytes, measured back to back.\n\n\
         Server CPU per request: the server process's CPU time in the measured window over the requests it answered; \
         load generator CPU per request: the same for the load generator's own threads, which share the cores with the server.\n\n\
         | scenario | req/s | ratio | p50 | p90 | p99 | max | non-2xx/3xx | errors | server CPU per request | load generator CPU per request | peak RSS |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
        report["started_at"].as_str().unwrap_or("?"),
        report["machine"]["cpus"],
        match report["machine"]["cpu"].as_str() {
            Some(cpu) if !cpu.is_empty() => format!("; {cpu}"),
            _ => String::new(),
        },
        cfg["connections"],
        cfg["warmup_s"],
        cfg["duration_s"],
        cfg["rounds"],
    );
    let none = Value::Null;
    let c = &report["scenarios"]["c"];
    let a = &report["scenarios"]["a"];
    let r = &report["scenarios"]["r"];
    let rows = [
        md_row(
            "(b) baseline, trivial bytes",
            &c["b"],
            &none,
            &c["baseline_peak_rss_kib"],
        ),
        md_row(
            "(c) wikiedge, trivial component",
            &c["c"],
            &c["ratio_c_over_b"],
            &c["host_peak_rss_kib"],
        ),
        md_row(
            "(b) baseline, same bytes as (a)",
            &a["b"],
            &none,
            &a["baseline_peak_rss_kib"],
        ),
        md_row(
            &format!(
                "(n) nginx {}, same bytes as (a), from a file",
                a["nginx_version"].as_str().unwrap_or("")
            ),
            &a["n"],
            &none,
            &none,
        ),
        md_row(
            &format!(
                "(a) wikiedge, authenticated GET {} ({} B)",
                a["path"].as_str().unwrap_or("?"),
                a["response_bytes"]
            ),
            &a["a"],
            &a["ratio_a_over_b"],
            &a["host_peak_rss_kib"],
        ),
        md_row(
            "(b) baseline, same bytes as (r)",
            &r["b"],
            &none,
            &r["baseline_peak_rss_kib"],
        ),
        md_row(
            &format!(
                "(r) wikiedge on Redis, authenticated GET {} ({} B)",
                r["path"].as_str().unwrap_or("?"),
                r["response_bytes"]
            ),
            &r["r"],
            &r["ratio_r_over_b"],
            &r["host_peak_rss_kib"],
        ),
    ];
    for row in rows.into_iter().flatten() {
        md.push_str(&row);
        md.push('\n');
    }
    let p99 = |r: &Value| fmt_ratio(&r["p99_ratio"]);
    md.push_str(&format!(
        "\np99 ratio: c/b {}, a/b {}, r/b {}.\n",
        p99(&c["ratio_c_over_b"]),
        p99(&a["ratio_a_over_b"]),
        p99(&r["ratio_r_over_b"])
    ));
    if a["n"].is_object() {
        md.push_str(&format!(
            "Against nginx (n), measured in the same rounds: a/n throughput {}, p99 {}.\n",
            fmt_ratio(&a["ratio_a_over_n"]["rps_ratio"]),
            p99(&a["ratio_a_over_n"])
        ));
    } else if let Some(why) = a["n_not_measured"].as_str() {
        md.push_str(&format!("(n) not measured: {why}.\n"));
    }
    for (letter, name) in [("b", "the baseline"), ("n", "nginx")] {
        if let Some(b) = host_budget(&a[letter]["result"], &a["a"]["result"], TARGET_RATIO) {
            md.push_str(&format!(
                "At {TARGET_RATIO} of {name}, the host may spend at most {:.0} µs per request on these cores \
                 (({letter}) {:.0} µs + the load generator {:.0} µs, over {TARGET_RATIO}, less the load generator's {:.0} µs against (a)); \
                 it spent {:.0} µs.\n",
                b.budget_us, b.server_us, b.server_load_us, b.subject_load_us, b.subject_us
            ));
        }
    }
    if r.is_object() {
        md.push_str(&format!(
            "(r): redis-server peak RSS {} (not included in the host's); same body as (a): {}.\n",
            fmt_kib(&r["redis_peak_rss_kib"]),
            r.get("same_body_as_a")
                .map_or("-".to_string(), |v| v.to_string())
        ));
    }
    md.push_str(&crate::open_loop::markdown(&a["open_loop"]));
    if let Some(runs) = report["scenarios"]["d"]["hello"].as_array() {
        md.push_str("\n## Cold start (d)\n\n| app | run | start → listening | start → first 200 | first request | second request |\n|---|---|---|---|---|---|\n");
        for r in runs {
            md.push_str(&format!(
                "| trivial | {} | {} ms | {} ms | {} ms | {} ms |\n",
                r["run"],
                r["start_to_listening_ms"],
                r["start_to_first_200_ms"],
                r["first_request_ms"],
                r["second_request_ms"]
            ));
        }
    }
    if let Some(runs) = report["scenarios"]["d"]["full"].as_array() {
        md.push_str("\n| full app run | start → listening | first / second request per component (status) |\n|---|---|---|\n");
        for r in runs {
            let comps: Vec<String> = r["components"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| {
                            format!(
                                "{k}: {} / {} ms ({})",
                                v["first_ms"], v["second_ms"], v["first_status"]
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            md.push_str(&format!(
                "| {} | {} ms | {} |\n",
                r["run"],
                r["start_to_listening_ms"],
                comps.join("; ")
            ));
        }
    }
    if let Some(errors) = report["errors"].as_object().filter(|m| !m.is_empty()) {
        md.push_str("\n## Not measured\n\n");
        for (k, v) in errors {
            md.push_str(&format!(
                "- ({k}): {}\n",
                truncate(v.as_str().unwrap_or("?"), 300).replace('\n', " ")
            ));
        }
    }
    md
}

/// The whole report: when, where, how, the scenarios' results and what
/// could not be measured.
pub(crate) fn assemble(
    ctx: &Ctx,
    started: u64,
    scenarios: &serde_json::Map<String, Value>,
    errors: &serde_json::Map<String, Value>,
) -> anyhow::Result<Value> {
    Ok(json!({
        "started_at": utc(started),
        "finished_at": utc(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs()),
        "machine": {
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
            "cpu": wikiedge_bench::procfs::cpu_description(),
        },
        "config": {
            "only": ctx.args.only.iter().map(|s| format!("{s:?}").to_lowercase()).collect::<Vec<_>>(),
            "connections": ctx.args.connections,
            "warmup_s": ctx.args.warmup,
            "duration_s": ctx.args.duration,
            "rounds": ctx.args.rounds,
            "cold_runs": ctx.args.cold_runs,
            "wikiedge": ctx.wikiedge,
            "article": ctx.args.article,
            "wikiedge_up_extra_args": ctx.up_args,
        },
        "summary": {
            "c_over_b_rps": scenarios.get("c").map(|c| c["ratio_c_over_b"]["rps_ratio"].clone()),
            "c_over_b_p99": scenarios.get("c").map(|c| c["ratio_c_over_b"]["p99_ratio"].clone()),
            "a_over_b_rps": scenarios.get("a").map(|a| a["ratio_a_over_b"]["rps_ratio"].clone()),
            "a_over_b_p99": scenarios.get("a").map(|a| a["ratio_a_over_b"]["p99_ratio"].clone()),
            "a_over_n_rps": scenarios.get("a").map(|a| a["ratio_a_over_n"]["rps_ratio"].clone()),
            "a_over_n_p99": scenarios.get("a").map(|a| a["ratio_a_over_n"]["p99_ratio"].clone()),
            "r_over_b_rps": scenarios.get("r").map(|r| r["ratio_r_over_b"]["rps_ratio"].clone()),
            "r_over_b_p99": scenarios.get("r").map(|r| r["ratio_r_over_b"]["p99_ratio"].clone()),
            "full_host_peak_rss_kib": scenarios.get("a").map(|a| a["host_peak_rss_kib"].clone()),
            "redis_host_peak_rss_kib": scenarios.get("r").map(|r| r["host_peak_rss_kib"].clone()),
            "redis_server_peak_rss_kib": scenarios.get("r").map(|r| r["redis_peak_rss_kib"].clone()),
            "trivial_host_peak_rss_kib": scenarios.get("c").map(|c| c["host_peak_rss_kib"].clone()),
            "a_open_loop_latency_us": scenarios.get("a").and_then(|a| a["open_loop"]["points"].as_array()).map(|points| {
                points.iter().map(|p| json!({
                    "fraction": p["fraction"],
                    "target_rate": p["target_rate"],
                    "p50_us": p["result"]["latency"]["p50_us"],
                    "p99_us": p["result"]["latency"]["p99_us"],
                    "p999_us": p["result"]["latency"]["p999_us"],
                })).collect::<Vec<_>>()
            }),
            "a_host_budget_us": scenarios.get("a").map(|a| json!({
                "ratio": TARGET_RATIO,
                "b": host_budget(&a["b"]["result"], &a["a"]["result"], TARGET_RATIO).map(|b| b.budget_us),
                "n": host_budget(&a["n"]["result"], &a["a"]["result"], TARGET_RATIO).map(|b| b.budget_us),
                "spent": a["a"]["result"]["server_cpu"]["us_per_request"],
            })),
            "open_loop_controls_p99_us": scenarios.get("a").and_then(|a| a["open_loop"]["controls"].as_array()).map(|controls| {
                controls.iter().map(|c| json!({
                    "server": c["server"],
                    "fraction": c["fraction"],
                    "target_rate": c["target_rate"],
                    "p99_us": c["result"]["latency"]["p99_us"],
                    "send_lag_p99_us": c["result"]["send_lag"]["p99_us"],
                })).collect::<Vec<_>>()
            }),
        },
        "scenarios": scenarios,
        "errors": errors,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_ratios() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        let r = |rps: f64, p99: u64| LoadResult {
            requests_per_s: rps,
            latency: wikiedge_bench::stats::Latency {
                p99_us: p99,
                ..Default::default()
            },
            ..Default::default()
        };
        let v = ratios(
            &[r(1000.0, 100), r(2000.0, 100)],
            &[r(500.0, 400), r(500.0, 200)],
        );
        assert_eq!(v["rps_ratio"].as_f64(), Some(0.375));
        assert_eq!(v["p99_ratio"].as_f64(), Some(3.0));
        let reps = [r(3.0, 1), r(1.0, 1), r(2.0, 1)];
        assert_eq!(representative(&reps).map(|r| r.requests_per_s), Some(2.0));
    }

    #[test]
    fn formats_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_795_824_000 + 3_723), "2026-11-28 01:02:03 UTC");
    }

    #[test]
    fn markdown_renders_partial_reports() {
        let report = json!({
            "started_at": "x", "machine": {"cpus": 2},
            "config": {"connections": 32, "warmup_s": 2.0, "duration_s": 10.0, "rounds": 1},
            "scenarios": {"c": {"b": {"result": LoadResult { requests_per_s: 100.0, ..Default::default() }}}},
            "errors": {"a": "no host"},
        });
        let md = markdown(&report);
        assert!(md.contains("| (b) baseline, trivial bytes | 100 |"), "{md}");
        assert!(md.contains("- (a): no host"), "{md}");
        assert!(!md.contains("(c) wikiedge"), "{md}");
        assert!(!md.contains("(r) wikiedge"), "{md}");
        assert!(!md.contains("redis-server peak RSS"), "{md}");
    }

    #[test]
    fn markdown_shows_the_servers_cpu_per_request_where_it_was_measured() {
        let measured = LoadResult {
            requests_per_s: 3000.0,
            server_cpu: Some(wikiedge_bench::load::ServerCpu::of(
                1,
                std::time::Duration::from_millis(6750),
                std::time::Duration::from_secs(5),
                15_000,
            )),
            load_cpu: Some(wikiedge_bench::load::LoadCpu::of(
                2,
                std::time::Duration::from_millis(1500),
                std::time::Duration::from_secs(5),
                15_000,
            )),
            ..Default::default()
        };
        let report = json!({
            "started_at": "x", "machine": {"cpus": 2},
            "config": {"connections": 32, "warmup_s": 2.0, "duration_s": 5.0, "rounds": 1},
            "scenarios": {"a": {
                "path": "/v2/articles/Anarchism", "response_bytes": 1234,
                "b": {"result": LoadResult { requests_per_s: 20000.0, ..Default::default() }},
                "a": {"result": measured},
                "ratio_a_over_b": {"rps_ratio": 0.15, "p99_ratio": 4.0},
                "host_peak_rss_kib": 2048,
            }},
            "errors": {},
        });
        let md = markdown(&report);
        assert!(
            md.contains("| server CPU per request | load generator CPU per request | peak RSS |"),
            "{md}"
        );
        assert!(md.contains("| 450 µs | 100 µs | 2.0 MiB |"), "{md}");
        // The baseline's row, without a measurement, says so.
        assert!(md.contains("| 0 | 0 | - | - | - |"), "{md}");
    }

    #[test]
    fn markdown_shows_nginx_beside_a_or_why_it_is_missing() {
        let res =
            |rps: f64| json!({"result": LoadResult { requests_per_s: rps, ..Default::default() }});
        let with = |a: Value| {
            markdown(&json!({
                "started_at": "x", "machine": {"cpus": 2},
                "config": {"connections": 32, "warmup_s": 2.0, "duration_s": 5.0, "rounds": 1},
                "scenarios": {"a": a},
                "errors": {},
            }))
        };
        let md = with(json!({
            "path": "/v2/articles/Anarchism", "response_bytes": 1234,
            "b": res(20000.0), "a": res(4000.0), "n": res(16000.0),
            "nginx_version": "nginx/1.22.1",
            "ratio_a_over_b": {"rps_ratio": 0.2, "p99_ratio": 4.0},
            "ratio_a_over_n": {"rps_ratio": 0.25, "p99_ratio": 3.0},
        }));
        assert!(
            md.contains("| (n) nginx nginx/1.22.1, same bytes as (a), from a file | 16000 | - |"),
            "{md}"
        );
        assert!(md.contains("a/n throughput 0.250, p99 3.000."), "{md}");
        let md = with(json!({
            "path": "/v2/articles/Anarchism", "response_bytes": 1234,
            "b": res(20000.0), "a": res(4000.0),
            "n_not_measured": "nginx not found",
        }));
        assert!(!md.contains("| (n) nginx"), "{md}");
        assert!(md.contains("(n) not measured: nginx not found."), "{md}");
    }

    #[test]
    fn markdown_renders_the_redis_scenario() {
        let res =
            |rps: f64| json!({"result": LoadResult { requests_per_s: rps, ..Default::default() }});
        let report = json!({
            "started_at": "x", "machine": {"cpus": 2},
            "config": {"connections": 32, "warmup_s": 2.0, "duration_s": 10.0, "rounds": 1},
            "scenarios": {"r": {
                "path": "/v2/articles/Anarchism", "response_bytes": 1234,
                "b": res(1000.0), "r": res(250.0),
                "ratio_r_over_b": {"rps_ratio": 0.25, "p99_ratio": 4.0},
                "host_peak_rss_kib": 2048, "redis_peak_rss_kib": 1024,
                "same_body_as_a": true,
            }},
            "errors": {},
        });
        let md = markdown(&report);
        assert!(
            md.contains("| (b) baseline, same bytes as (r) | 1000 | - |"),
            "{md}"
        );
        assert!(
            md.contains("| (r) wikiedge on Redis, authenticated GET /v2/articles/Anarchism (1234 B) | 250 | 0.250 |"),
            "{md}"
        );
        assert!(md.contains("| 2.0 MiB |"), "{md}");
        assert!(md.contains("r/b 4.000"), "{md}");
        assert!(md.contains("redis-server peak RSS 1.0 MiB"), "{md}");
        assert!(md.contains("same body as (a): true"), "{md}");
    }
}
