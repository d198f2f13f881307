//! `wikiedge-bench`: runs the benchmark scenarios on loopback, in one go,
//! and writes `bench-results/latest.json` and `bench-results/latest.md`.
//!
//! Scenarios (select with `--only`):
//! - (b) the native `baseline` server serving the same bytes as (a)/(c);
//!   every throughput is reported as a ratio to it, measured back to back.
//! - (c) `wikiedge up --from bench/spin.toml`: the trivial component.
//! - (d) cold start: process start to listening and to the first 200, run
//!   twice (the second with a warm compile cache), and the first request to
//!   each component of the real app after start.
//! - (a) the full authenticated path: `wikiedge up --from spin.toml` with an
//!   imported dump, an account on a plan with a huge quota, and load on
//!   `GET /v2/articles/{article}` with `Authorization: Bearer`.
//! - (n) nginx serving the same bytes as (a) from a file, beside (a), where
//!   nginx is installed (`--nginx`, else on PATH or in /usr/sbin).
//! - (r) the same path with the `default` key-value store on Redis: a
//!   private `redis-server`, `wikiedge import --runtime-config-file` into
//!   it, and `wikiedge up --runtime-config-file` pointing at it.
//!
//! This file is the orchestrator (arguments, the order of the scenarios);
//! [`ctx`] and [`proc`] start and stop the children, one module per
//! scenario measures, and [`report`] writes the results. Servers run as
//! child processes killed on exit (error and ctrl-c included); the load
//! generator runs in-process.

mod budget;
mod cold;
mod ctx;
mod full;
mod open_loop;
mod redis;
mod report;
mod trivial;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, ValueEnum};
use serde_json::json;

use crate::cold::{cold_full, cold_hello};
use crate::ctx::Ctx;
use crate::full::{Kv, scenario_full};
use crate::redis::redis_server_bin;
use crate::trivial::scenario_c;
use wikiedge_bench::proc::host_supports;

/// A scenario letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Scenario {
    /// The full authenticated article path.
    A,
    /// The native baseline (for whichever of a and c run).
    B,
    /// The trivial component.
    C,
    /// Cold start.
    D,
    /// The authenticated article path with the key-value store on Redis.
    R,
    /// Open loop on the full path (a): fixed arrival rates at 25%, 50% and
    /// 80% of (a)'s closed-loop rate in the same run (runs (a) too).
    O,
    /// nginx serving the same bytes as (a) from a file, beside (a) (runs
    /// only where nginx is installed, and only with a).
    N,
}

/// Runs the wikiedge benchmark scenarios and writes bench-results/latest.{json,md}.
#[derive(Debug, Parser)]
#[command(name = "wikiedge-bench")]
pub(crate) struct Args {
    /// The wikiedge host binary (relative paths are from --root).
    #[arg(long, default_value = "target/release/wikiedge")]
    wikiedge: PathBuf,
    /// The baseline server binary (default: `baseline` beside this binary).
    #[arg(long)]
    baseline_bin: Option<PathBuf>,
    /// The nginx binary for (n) (default: `nginx` on PATH or in /usr/sbin).
    #[arg(long)]
    nginx: Option<PathBuf>,
    /// The workspace root holding spin.toml and bench/spin.toml (default: the current directory).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Skip `wikiedge build` of the components.
    #[arg(long)]
    no_build: bool,
    /// Scenarios to run, comma-separated.
    /// (r runs only when `redis-server` is on PATH, n only where nginx is
    /// installed; o runs a too.)
    #[arg(long, value_delimiter = ',', default_value = "a,b,c,d,r,o,n")]
    only: Vec<Scenario>,
    /// Measured seconds per load run.
    #[arg(short = 'd', long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up seconds before each load run.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Concurrent connections of the load generator.
    #[arg(short = 'c', long, default_value_t = 32)]
    connections: usize,
    /// Alternating baseline/scenario rounds; ratios are the median over rounds.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Cold-start repetitions (the first may compile; later ones hit the cache).
    #[arg(long, default_value_t = 2)]
    cold_runs: usize,
    /// Output directory (relative paths are from --root).
    #[arg(long, default_value = "bench-results")]
    out: PathBuf,
    /// The dump imported for scenario (a) (relative paths are from --root).
    #[arg(
        long,
        default_value = "../shared/fixtures/dumps/enwiki-sample-206-pages.xml.bz2"
    )]
    dump: PathBuf,
    /// Scenario (a) loads this authenticated path instead of the article
    /// (e.g. `/v1/quota`: auth and quota without article data).
    #[arg(long)]
    a_path: Option<String>,
    /// Skip `wikiedge import` in scenario (a) (the state dir starts empty).
    #[arg(long)]
    no_import: bool,
    /// The article loaded in scenario (a).
    #[arg(long, default_value = "Anarchism")]
    article: String,
    /// Seconds a host may take to start answering.
    #[arg(long, default_value_t = 300)]
    startup_timeout: u64,
    /// Let the host log one line per request (default: `--quiet` when the
    /// host supports it, as a production `spin up` does not log requests).
    #[arg(long)]
    host_log: bool,
    /// The Redis server for scenario (r) (default: `redis-server` on PATH).
    #[arg(long)]
    redis_server: Option<PathBuf>,
    /// Seconds scenario (a) leaves the host idle after its load before
    /// reading its VmRSS (`host_rss_kib_after_idle`); 0 skips it.
    #[arg(long, default_value_t = 30)]
    idle_seconds: u64,
    /// Seconds a `wikiedge build` or `wikiedge import` may take.
    #[arg(long, default_value_t = 1800)]
    build_timeout: u64,
}

impl Args {
    pub(crate) fn wants(&self, s: Scenario) -> bool {
        self.only.contains(&s)
    }

    /// Whether scenario (a) runs: asked for, or needed by (o).
    fn wants_full(&self) -> bool {
        self.wants(Scenario::A) || self.wants(Scenario::O)
    }
}
fn resolve(root: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        root.join(p)
    }
}

async fn run(args: Args) -> Result<()> {
    let root = match &args.root {
        Some(r) => r.clone(),
        None => std::env::current_dir()?,
    };
    let root = root
        .canonicalize()
        .with_context(|| format!("workspace root {}", root.display()))?;
    let wikiedge = resolve(&root, &args.wikiedge);
    let baseline_bin = match &args.baseline_bin {
        Some(p) => resolve(&root, p),
        None => std::env::current_exe()?
            .parent()
            .ok_or_else(|| anyhow!("no directory for the current executable"))?
            .join("baseline"),
    };
    let out_dir = resolve(&root, &args.out);
    let logs = out_dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let needs_host = args.wants(Scenario::A)
        || args.wants(Scenario::O)
        || args.wants(Scenario::C)
        || args.wants(Scenario::D)
        || args.wants(Scenario::R);
    if needs_host && !wikiedge.is_file() {
        bail!(
            "no wikiedge binary at {} (cargo build --release -p wikiedge, or --wikiedge PATH)",
            wikiedge.display()
        );
    }
    if args.wants(Scenario::B) && !baseline_bin.is_file() {
        bail!(
            "no baseline binary at {} (cargo build --release -p wikiedge-bench)",
            baseline_bin.display()
        );
    }
    let tmp = tempfile::Builder::new()
        .prefix("wikiedge-bench-")
        .tempdir()?;
    let started = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let mut up_args = Vec::new();
    if needs_host && !args.host_log && host_supports(&wikiedge, "--quiet").await {
        up_args.push("--quiet".to_string());
    }
    let ctx = Ctx {
        args,
        root,
        wikiedge,
        baseline_bin,
        logs,
        tmp,
        up_args,
    };
    let mut errors = serde_json::Map::new();
    let mut scenarios = serde_json::Map::new();

    let need_trivial = ctx.args.wants(Scenario::C) || ctx.args.wants(Scenario::D);
    let need_full =
        ctx.args.wants_full() || ctx.args.wants(Scenario::D) || ctx.args.wants(Scenario::R);
    // A failed build is reported; the scenarios still run on whatever
    // components were built before.
    if !ctx.args.no_build {
        println!("building components");
        if need_trivial
            && let Err(e) = ctx
                .run_wikiedge("build-bench", &["build", "--from", "bench/spin.toml"], &[])
                .await
        {
            println!("  {e:#}");
            errors.insert("build bench/spin.toml".into(), json!(format!("{e:#}")));
        }
        if need_full
            && let Err(e) = ctx
                .run_wikiedge("build-app", &["build", "--from", "spin.toml"], &[])
                .await
        {
            println!("  {e:#}");
            errors.insert("build spin.toml".into(), json!(format!("{e:#}")));
        }
    }

    if ctx.args.wants(Scenario::D) {
        println!("scenario d: cold start");
        let mut d = json!({});
        for (key, label, result) in [
            ("hello", "d, trivial app", cold_hello(&ctx).await),
            ("full", "d, full app", cold_full(&ctx).await),
        ] {
            match result {
                Ok(v) => d[key] = v,
                Err(e) => {
                    println!("  failed: {e:#}");
                    errors.insert(label.into(), json!(format!("{e:#}")));
                }
            }
        }
        scenarios.insert("d".into(), d);
    }
    if ctx.args.wants(Scenario::C)
        || (ctx.args.wants(Scenario::B) && !ctx.args.wants_full() && !ctx.args.wants(Scenario::R))
    {
        println!("scenario c (trivial component) vs baseline");
        match scenario_c(&ctx).await {
            Ok(v) => {
                scenarios.insert("c".into(), v);
            }
            Err(e) => {
                println!("  failed: {e:#}");
                errors.insert("c".into(), json!(format!("{e:#}")));
            }
        }
    }
    if ctx.args.wants_full() {
        println!("scenario a (full authenticated path) vs baseline");
        match scenario_full(&ctx, Kv::Sqlite).await {
            Ok(v) => {
                scenarios.insert("a".into(), v);
            }
            Err(e) => {
                println!("  failed: {e:#}");
                errors.insert("a".into(), json!(format!("{e:#}")));
            }
        }
    }
    if ctx.args.wants(Scenario::R) {
        if redis_server_bin(&ctx.args).is_none() {
            let why = match &ctx.args.redis_server {
                Some(p) => format!("Not measured: redis-server not found at {}", p.display()),
                None => "Not measured: redis-server not found on PATH".to_string(),
            };
            println!("scenario r (authenticated path on Redis): {why}");
            errors.insert("r".into(), json!(why));
        } else {
            println!("scenario r (authenticated path on the Redis key-value store) vs baseline");
            match scenario_full(&ctx, Kv::Redis).await {
                Ok(v) => {
                    scenarios.insert("r".into(), v);
                }
                Err(e) => {
                    println!("  failed: {e:#}");
                    errors.insert("r".into(), json!(format!("{e:#}")));
                }
            }
        }
    }
    if let (Some(a), Some(r)) = (scenarios.get("a"), scenarios.get("r")) {
        let same = a["response_body_fnv1a64"] == r["response_body_fnv1a64"];
        if let Some(r) = scenarios.get_mut("r") {
            r["same_body_as_a"] = json!(same);
        }
    }

    let report = report::assemble(&ctx, started, &scenarios, &errors)?;
    let json_path = out_dir.join("latest.json");
    let md_path = out_dir.join("latest.md");
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)?)?;
    let md = report::markdown(&report);
    std::fs::write(&md_path, &md)?;
    println!(
        "\n{md}\nwrote {} and {}",
        json_path.display(),
        md_path.display()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let outcome = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        // Dropping `run` on a signal drops every child handle, which kills it.
        tokio::select! {
            r = run(args) => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted; child processes stopped")),
            _ = term.recv() => Err(anyhow!("terminated; child processes stopped")),
        }
    }
    .await;
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wikiedge-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scenarios_and_defaults() {
        let a = Args::try_parse_from(["wikiedge-bench"]).expect("defaults");
        assert_eq!(
            a.only,
            vec![
                Scenario::A,
                Scenario::B,
                Scenario::C,
                Scenario::D,
                Scenario::R,
                Scenario::O,
                Scenario::N
            ]
        );
        assert_eq!(a.redis_server, None);
        let a = Args::try_parse_from(["wikiedge-bench", "--only", "a,b,r"]).expect("valid");
        assert_eq!(a.only, vec![Scenario::A, Scenario::B, Scenario::R]);
        assert_eq!(a.connections, 32);
        assert_eq!(a.wikiedge, PathBuf::from("target/release/wikiedge"));
        let a = Args::try_parse_from([
            "wikiedge-bench",
            "--only",
            "b,c",
            "--duration",
            "3",
            "--connections",
            "8",
            "--no-build",
        ])
        .expect("valid");
        assert!(a.wants(Scenario::B) && a.wants(Scenario::C) && !a.wants(Scenario::A));
        assert!(!a.wants_full());
        assert_eq!(a.duration, 3.0);
        assert_eq!(a.connections, 8);
        assert!(a.no_build);
        let a = Args::try_parse_from(["wikiedge-bench", "--only", "o"]).expect("valid");
        assert!(a.wants_full() && !a.wants(Scenario::A));
        assert!(Args::try_parse_from(["wikiedge-bench", "--only", "e"]).is_err());
    }
}
