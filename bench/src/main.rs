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
//! - (r) the same path with the `default` key-value store on Redis: a
//!   private `redis-server`, the imported articles copied into it from the
//!   SQLite store, and `wikiedge up --runtime-config-file` pointing at it.
//!
//! Servers run as child processes killed on exit (error and ctrl-c
//! included); the load generator runs in-process.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, ValueEnum};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use wikiedge_bench::baseline::is_framing_header;
use wikiedge_bench::client::{Fetched, fetch};
use wikiedge_bench::kvcopy;
use wikiedge_bench::load::{self, LoadConfig, LoadResult};
use wikiedge_bench::stats::{fmt_us, ratio};

/// A scenario letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
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
}

/// Runs the wikiedge benchmark scenarios and writes bench-results/latest.{json,md}.
#[derive(Debug, Parser)]
#[command(name = "wikiedge-bench")]
struct Args {
    /// The wikiedge host binary (relative paths are from --root).
    #[arg(long, default_value = "target/release/wikiedge")]
    wikiedge: PathBuf,
    /// The baseline server binary (default: `baseline` beside this binary).
    #[arg(long)]
    baseline_bin: Option<PathBuf>,
    /// The workspace root holding spin.toml and bench/spin.toml (default: the current directory).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Skip `wikiedge build` of the components.
    #[arg(long)]
    no_build: bool,
    /// Scenarios to run, comma-separated.
    /// (r runs only when `redis-server` is on PATH.)
    #[arg(long, value_delimiter = ',', default_value = "a,b,c,d,r")]
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
    fn wants(&self, s: Scenario) -> bool {
        self.only.contains(&s)
    }
}

/// Everything a scenario needs.
struct Ctx {
    args: Args,
    root: PathBuf,
    wikiedge: PathBuf,
    baseline_bin: PathBuf,
    logs: PathBuf,
    /// The run's scratch directory, removed when the run ends.
    tmp: tempfile::TempDir,
    /// Extra arguments for every `wikiedge up`.
    up_args: Vec<String>,
}

/// A child server, killed when dropped (error paths and ctrl-c included).
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &str, cmd: &mut Command, logs: &Path) -> Result<Proc> {
        let log = logs.join(format!("{name}.log"));
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            // Its own process group, so that stopping it also stops what it
            // started (cargo under `wikiedge build`, for one).
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Proc {
            name: name.to_string(),
            child,
            log,
        })
    }

    fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// A `/proc/PID/status` field in KiB (`VmHWM` is the peak RSS).
    fn status_kib(&self, field: &str) -> Option<u64> {
        proc_status_kib(self.pid()?, field)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited early ({status}); log {}:\n{}",
                self.name,
                self.log.display(),
                self.log_tail()
            );
        }
        Ok(())
    }

    /// Kills the child's process group (the child leads it), if the child
    /// has not been reaped yet.
    fn kill_group(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.start_kill();
    }

    async fn stop(mut self) {
        self.kill_group();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill_group();
    }
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&status, field)
}

fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// A free port on 127.0.0.1 (bound, then released for the child to take).
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Whether `wikiedge up --help` mentions `flag`.
async fn host_supports(wikiedge: &Path, flag: &str) -> bool {
    let help = Command::new(wikiedge)
        .args(["up", "--help"])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(30), help).await {
        Ok(Ok(out)) => String::from_utf8_lossy(&out.stdout).contains(flag),
        _ => false,
    }
}

/// Waits until the port accepts connections; returns when it did.
async fn wait_listening(proc: &mut Proc, port: u16, deadline: Instant) -> Result<Instant> {
    loop {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(Instant::now());
        }
        proc.check_alive()?;
        if Instant::now() >= deadline {
            bail!("{} did not listen on port {port} in time", proc.name);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Polls with GET until `want(status)`; returns the answer and its latency.
async fn wait_status(
    proc: &mut Proc,
    url: &str,
    want: impl Fn(StatusCode) -> bool,
    deadline: Instant,
) -> Result<(Fetched, Duration)> {
    loop {
        proc.check_alive()?;
        let t = Instant::now();
        let last = match fetch(Method::GET, url, &[], Vec::new(), Duration::from_secs(60)).await {
            Ok(f) if want(f.status) => return Ok((f, t.elapsed())),
            Ok(f) => format!("status {}: {}", f.status, truncate(&f.text(), 200)),
            Err(e) => format!("{e:#}"),
        };
        if Instant::now() >= deadline {
            bail!("{}: {url} not ready in time (last: {last})", proc.name);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn truncate(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

impl Ctx {
    fn deadline(&self) -> Instant {
        Instant::now() + Duration::from_secs(self.args.startup_timeout)
    }

    fn load_config(&self, url: &str, headers: &HeaderMap) -> Result<LoadConfig> {
        Ok(LoadConfig {
            method: Method::GET,
            url: url.to_string(),
            headers: headers.clone(),
            body: Default::default(),
            connections: self.args.connections,
            warmup: Duration::try_from_secs_f64(self.args.warmup).context("--warmup")?,
            duration: Duration::try_from_secs_f64(self.args.duration).context("--duration")?,
            threads: None,
        })
    }

    /// Runs a wikiedge subcommand to completion, output to a log.
    async fn run_wikiedge(&self, name: &str, argv: &[&str], env: &[(&str, &str)]) -> Result<()> {
        let mut cmd = Command::new(&self.wikiedge);
        cmd.args(argv).current_dir(&self.root);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut p = Proc::spawn(name, &mut cmd, &self.logs)?;
        println!("  $ {} {}", self.wikiedge.display(), argv.join(" "));
        let status =
            tokio::time::timeout(Duration::from_secs(self.args.build_timeout), p.child.wait())
                .await
                .map_err(|_| anyhow!("{name} did not finish in {}s", self.args.build_timeout))??;
        if !status.success() {
            bail!(
                "{name} failed ({status}); log {}:\n{}",
                p.log.display(),
                p.log_tail()
            );
        }
        Ok(())
    }

    fn spawn_up(
        &self,
        name: &str,
        manifest: &str,
        port: u16,
        state: &Path,
        env: &[(&str, &str)],
    ) -> Result<Proc> {
        self.spawn_up_with(name, manifest, port, state, env, &[])
    }

    /// [`Ctx::spawn_up`] with extra `wikiedge up` arguments.
    fn spawn_up_with(
        &self,
        name: &str,
        manifest: &str,
        port: u16,
        state: &Path,
        env: &[(&str, &str)],
        extra: &[&std::ffi::OsStr],
    ) -> Result<Proc> {
        let mut cmd = Command::new(&self.wikiedge);
        cmd.arg("up")
            .arg("--from")
            .arg(manifest)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--state-dir")
            .arg(state)
            .args(&self.up_args)
            .args(extra)
            .current_dir(&self.root);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Proc::spawn(name, &mut cmd, &self.logs)
    }

    /// Starts the baseline serving `fixed`'s bytes and headers.
    async fn spawn_baseline(&self, name: &str, fixed: &Fetched) -> Result<(Proc, u16)> {
        let body = self.tmp.path().join(format!("{name}.body"));
        std::fs::write(&body, &fixed.body)?;
        let port = free_port()?;
        let mut cmd = Command::new(&self.baseline_bin);
        cmd.arg("--body")
            .arg(&body)
            .arg("--status")
            .arg(fixed.status.as_u16().to_string())
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"));
        let content_type = fixed
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream");
        cmd.arg("--content-type").arg(content_type);
        for (k, v) in &fixed.headers {
            if is_framing_header(k.as_str()) || k == http::header::CONTENT_TYPE {
                continue;
            }
            if let Ok(v) = v.to_str() {
                cmd.arg("-H").arg(format!("{k}: {v}"));
            }
        }
        let mut p = Proc::spawn(name, &mut cmd, &self.logs)?;
        let deadline = self.deadline();
        wait_listening(&mut p, port, deadline).await?;
        Ok((p, port))
    }

    /// Alternates baseline and subject load runs; returns both result lists.
    async fn compare(
        &self,
        label: &str,
        baseline: Option<(&str, &HeaderMap)>,
        subject: Option<(&str, &HeaderMap)>,
    ) -> Result<(Vec<LoadResult>, Vec<LoadResult>)> {
        let (mut bs, mut ss) = (Vec::new(), Vec::new());
        for round in 1..=self.args.rounds.max(1) {
            if let Some((url, h)) = baseline {
                println!("  [{label}] round {round}: baseline load on {url}");
                let r = load::run(&self.load_config(url, h)?).await?;
                println!("{}", indent(&r.human()));
                bs.push(r);
            }
            if let Some((url, h)) = subject {
                println!("  [{label}] round {round}: wikiedge load on {url}");
                let r = load::run(&self.load_config(url, h)?).await?;
                println!("{}", indent(&r.human()));
                ss.push(r);
            }
        }
        Ok((bs, ss))
    }
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("      {l}\n"))
        .collect::<String>()
        .trim_end()
        .to_string()
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Per-round ratios of subject to baseline (throughput and p99), as medians.
fn ratios(base: &[LoadResult], subj: &[LoadResult]) -> Value {
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
fn representative(v: &[LoadResult]) -> Option<&LoadResult> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|a, b| v[*a].requests_per_s.total_cmp(&v[*b].requests_per_s));
    idx.get(idx.len() / 2).map(|i| &v[*i])
}

fn load_json(v: &[LoadResult]) -> Value {
    json!({
        "result": representative(v),
        "rounds": v,
    })
}

const HELLO_BODY: &str = "Hello from wikiedge-bench\n";

/// Scenario (c), with its baseline (b) when selected.
async fn scenario_c(ctx: &Ctx) -> Result<Value> {
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
            base.as_ref().map(|(_, u)| (u.as_str(), &none)),
            host.as_ref().map(|(_, u)| (u.as_str(), &none)),
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

/// The plans for scenario (a): `paid` with caps far above any run.
const BENCH_PLANS: &str = r#"[
  {"name": "free", "monthly": {"ondemand": 50000, "snapshot": 30, "chunk": 1500}, "burst_per_second": 10},
  {"name": "paid", "monthly": {"ondemand": 1099511627776, "snapshot": 1099511627776, "chunk": 1099511627776, "realtime": 1099511627776}, "burst_per_second": 1099511627776}
]"#;

const BENCH_USER: &str = "bench-user";
const BENCH_PASSWORD: &str = "bench-password-0123456789";

fn admin_key() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("bench-admin-{}-{nanos:x}", std::process::id())
}

async fn post_json(url: &str, headers: &[(&str, &str)], body: &Value) -> Result<Fetched> {
    let mut h = vec![("content-type", "application/json")];
    h.extend_from_slice(headers);
    fetch(
        Method::POST,
        url,
        &h,
        serde_json::to_vec(body)?,
        Duration::from_secs(60),
    )
    .await
}

/// Where scenario (a) keeps its key-value data: (a) on the embedded SQLite
/// store, (r) on Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kv {
    Sqlite,
    Redis,
}

impl Kv {
    /// The scenario letter (the key in the report).
    fn key(self) -> &'static str {
        match self {
            Kv::Sqlite => "a",
            Kv::Redis => "r",
        }
    }
}

/// `name` in a directory of `PATH`, if it is a file there.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The Redis server binary for scenario (r), if there is one.
fn redis_server_bin(args: &Args) -> Option<PathBuf> {
    match &args.redis_server {
        Some(p) => p.is_file().then(|| p.clone()),
        None => find_on_path("redis-server"),
    }
}

/// A private `redis-server` for scenario (r): loopback only, no RDB
/// snapshots, append-only file fsynced every second (the durability a
/// deployment would run), data in the run's temporary directory.
async fn spawn_redis(ctx: &Ctx, bin: &Path) -> Result<(Proc, u16)> {
    let dir = ctx.tmp.path().join("redis-r");
    std::fs::create_dir_all(&dir)?;
    let port = free_port()?;
    let mut cmd = Command::new(bin);
    cmd.arg("--port")
        .arg(port.to_string())
        .args(["--bind", "127.0.0.1", "--save", ""])
        .args(["--appendonly", "yes", "--appendfsync", "everysec"])
        .arg("--dir")
        .arg(&dir);
    let mut p = Proc::spawn("redis-server-r", &mut cmd, &ctx.logs)?;
    println!(
        "  $ {} --port {port} --bind 127.0.0.1 --save \"\" --appendonly yes --appendfsync everysec --dir {}",
        bin.display(),
        dir.display()
    );
    wait_listening(&mut p, port, ctx.deadline()).await?;
    Ok((p, port))
}

/// FNV-1a (64-bit) of `bytes`: tells whether (a) and (r) served the same body.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Scenario (a), or (r) with `Kv::Redis`, with its baseline (b) when selected.
async fn scenario_full(ctx: &Ctx, kv: Kv) -> Result<Value> {
    let letter = kv.key();
    let state = ctx.tmp.path().join(format!("state-{letter}"));
    std::fs::create_dir_all(&state)?;
    let dump = ctx.root.join(&ctx.args.dump);
    let state_s = state.to_string_lossy().into_owned();
    let dump_s = dump.to_string_lossy().into_owned();
    let t = Instant::now();
    if ctx.args.no_import {
        println!("  skipping the import (--no-import)");
    } else {
        ctx.run_wikiedge(
            "wikiedge-import",
            &[
                "import",
                &dump_s,
                "--project",
                "enwiki",
                "--state-dir",
                &state_s,
            ],
            &[],
        )
        .await
        .context("importing the dump")?;
    }
    let import_s = (!ctx.args.no_import).then(|| t.elapsed().as_secs_f64());

    // (r): a private Redis holding the imported articles, and a runtime
    // config putting the `default` store on it.
    let mut redis = None;
    let mut extra: Vec<std::ffi::OsString> = Vec::new();
    let mut redis_info = Value::Null;
    if kv == Kv::Redis {
        let bin = redis_server_bin(&ctx.args)
            .ok_or_else(|| anyhow!("Not measured: redis-server not found"))?;
        let (p, rport) = spawn_redis(ctx, &bin).await?;
        let db = state.join("sqlite_key_value.db");
        let t = Instant::now();
        let copied = if ctx.args.no_import {
            Default::default()
        } else {
            let db = db.clone();
            tokio::task::spawn_blocking(move || kvcopy::copy_articles(&db, rport))
                .await?
                .context("copying the imported articles into redis")?
        };
        println!(
            "  copied {} article keys ({} bytes) from {} into redis on port {rport}",
            copied.keys,
            copied.bytes,
            db.display()
        );
        let rc = ctx.tmp.path().join("runtime-config-r.toml");
        std::fs::write(
            &rc,
            format!(
                "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:{rport}\"\n"
            ),
        )?;
        extra.push("--runtime-config-file".into());
        extra.push(rc.clone().into_os_string());
        redis_info = json!({
            "server": bin,
            "port": rport,
            "runtime_config": rc,
            "copied_keys": copied.keys,
            "copied_value_bytes": copied.bytes,
            "copy_seconds": t.elapsed().as_secs_f64(),
        });
        redis = Some(p);
    }
    let extra: Vec<&std::ffi::OsStr> = extra.iter().map(|s| s.as_os_str()).collect();

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

    let created = post_json(
        &format!("{base_url}/v1/admin/accounts"),
        &[("x-admin-key", key.as_str())],
        &json!({"username": BENCH_USER, "password": BENCH_PASSWORD, "plan": "paid"}),
    )
    .await?;
    if !created.status.is_success() {
        bail!(
            "creating the account: {} {}",
            created.status,
            truncate(&created.text(), 300)
        );
    }
    let login = post_json(
        &format!("{base_url}/v1/login"),
        &[],
        &json!({"username": BENCH_USER, "password": BENCH_PASSWORD}),
    )
    .await?;
    if !login.status.is_success() {
        bail!(
            "logging in: {} {}",
            login.status,
            truncate(&login.text(), 300)
        );
    }
    let tokens: Value =
        serde_json::from_slice(&login.body).context("login response is not JSON")?;
    let token = tokens["access_token"].as_str().ok_or_else(|| {
        anyhow!(
            "login response has no access_token: {}",
            truncate(&login.text(), 300)
        )
    })?;
    let bearer = format!("Bearer {token}");
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

    if kv == Kv::Redis {
        // The account, tokens and counters just written must be in Redis:
        // a host that ignored the runtime config would leave it untouched.
        let rport = redis_info["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok());
        let copied = redis_info["copied_keys"].as_u64().unwrap_or(0);
        let dbsize = match rport {
            Some(rport) => tokio::task::spawn_blocking(move || {
                kvcopy::Resp::connect(rport)?.command(&[b"DBSIZE"])
            })
            .await??
            .parse::<u64>()
            .context("DBSIZE reply")?,
            None => 0,
        };
        if dbsize <= copied {
            bail!(
                "the host wrote nothing to redis ({dbsize} keys, {copied} copied): is --runtime-config-file honoured?"
            );
        }
        redis_info["keys_after_first_request"] = json!(dbsize);
        out["redis"] = redis_info;
    }

    let mut base = None;
    if ctx.args.wants(Scenario::B) {
        let (p, bport) = ctx
            .spawn_baseline(&format!("baseline-article-{letter}"), &first)
            .await?;
        base = Some((p, format!("http://127.0.0.1:{bport}{a_path}")));
    }
    let (bs, as_) = ctx
        .compare(
            letter,
            base.as_ref().map(|(_, u)| (u.as_str(), &headers)),
            Some((article_url.as_str(), &headers)),
        )
        .await?;
    out["host_peak_rss_kib"] = json!(host.status_kib("VmHWM"));
    out["host_rss_kib_after"] = json!(host.status_kib("VmRSS"));
    let idle = Duration::from_secs(ctx.args.idle_seconds);
    out["host_rss_kib_after_idle"] = json!(wikiedge_bench::idle::rss_after(host.pid(), idle).await);
    host.stop().await;
    if let Some(p) = redis {
        out["redis_peak_rss_kib"] = json!(p.status_kib("VmHWM"));
        p.stop().await;
    }
    if let Some((p, _)) = base {
        out["baseline_peak_rss_kib"] = json!(p.status_kib("VmHWM"));
        p.stop().await;
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

/// Scenario (d), trivial app: process start to listening and to the first
/// 200, then a second request, `cold_runs` times on one state dir.
async fn cold_hello(ctx: &Ctx) -> Result<Value> {
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
async fn cold_full(ctx: &Ctx) -> Result<Value> {
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

/// `YYYY-MM-DD HH:MM:SS UTC` from Unix seconds (proleptic Gregorian).
fn utc(secs: u64) -> String {
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

fn md_row(label: &str, r: &Value, ratio: &Value, rss: &Value) -> Option<String> {
    let r: LoadResult = serde_json::from_value(r["result"].clone()).ok()?;
    let l = r.latency;
    Some(format!(
        "| {label} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} |",
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

fn markdown(report: &Value) -> String {
    let cfg = &report["config"];
    let mut md = format!(
        "# wikiedge benchmark, {}\n\n\
         {} CPUs (shared), loopback, closed loop: {} connections, {}s warm-up + {}s measured, {} round(s).\n\
         Throughput ratios are scenario / native baseline serving the same bytes, measured back to back.\n\n\
         | scenario | req/s | ratio | p50 | p90 | p99 | max | non-2xx/3xx | errors | peak RSS |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
        report["started_at"].as_str().unwrap_or("?"),
        report["machine"]["cpus"],
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
    if r.is_object() {
        md.push_str(&format!(
            "(r): redis-server peak RSS {} (not included in the host's); same body as (a): {}.\n",
            fmt_kib(&r["redis_peak_rss_kib"]),
            r.get("same_body_as_a")
                .map_or("-".to_string(), |v| v.to_string())
        ));
    }
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
        ctx.args.wants(Scenario::A) || ctx.args.wants(Scenario::D) || ctx.args.wants(Scenario::R);
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
        || (ctx.args.wants(Scenario::B)
            && !ctx.args.wants(Scenario::A)
            && !ctx.args.wants(Scenario::R))
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
    if ctx.args.wants(Scenario::A) {
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

    let report = json!({
        "started_at": utc(started),
        "finished_at": utc(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs()),
        "machine": {
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
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
            "r_over_b_rps": scenarios.get("r").map(|r| r["ratio_r_over_b"]["rps_ratio"].clone()),
            "r_over_b_p99": scenarios.get("r").map(|r| r["ratio_r_over_b"]["p99_ratio"].clone()),
            "full_host_peak_rss_kib": scenarios.get("a").map(|a| a["host_peak_rss_kib"].clone()),
            "redis_host_peak_rss_kib": scenarios.get("r").map(|r| r["host_peak_rss_kib"].clone()),
            "redis_server_peak_rss_kib": scenarios.get("r").map(|r| r["redis_peak_rss_kib"].clone()),
            "trivial_host_peak_rss_kib": scenarios.get("c").map(|c| c["host_peak_rss_kib"].clone()),
        },
        "scenarios": scenarios,
        "errors": errors,
    });
    let json_path = out_dir.join("latest.json");
    let md_path = out_dir.join("latest.md");
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)?)?;
    let md = markdown(&report);
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
                Scenario::R
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
        assert_eq!(a.duration, 3.0);
        assert_eq!(a.connections, 8);
        assert!(a.no_build);
        assert!(Args::try_parse_from(["wikiedge-bench", "--only", "e"]).is_err());
    }

    #[test]
    fn reads_proc_status() {
        let status = "Name:\twikiedge\nVmPeak:\t  900 kB\nVmHWM:\t   12345 kB\nVmRSS:\t 2000 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(12345));
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(2000));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
        // Our own process has a peak RSS.
        assert!(proc_status_kib(std::process::id(), "VmHWM").is_some_and(|k| k > 0));
    }

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

    #[test]
    fn finds_programs_on_path() {
        assert!(find_on_path("sh").is_some());
        assert!(find_on_path("no-such-program-wikiedge-bench").is_none());
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
