//! `loadgen`: an HTTP/1.1 load generator, closed loop or (with `--rate`)
//! open loop.
//!
//! ```text
//! loadgen -c 32 -d 10 --warmup 2 -H 'Authorization: Bearer T' \
//!         http://127.0.0.1:3000/v2/articles/Anarchism [--json]
//! loadgen -c 32 -d 10 --rate 2000 http://127.0.0.1:3000/   # open loop
//! loadgen -c 32 -d 5 --server-pid "$(pgrep -f 'wikiedge up')" URL  # + server CPU/request
//! ```

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use http::{HeaderMap, Method};
use wikiedge_bench::load::{LoadConfig, run};

/// An HTTP/1.1 load generator: a fixed number of keep-alive connections,
/// each sending its next request when the previous response has been read
/// in full (closed loop), or, with `--rate`, when it is due at a fixed
/// arrival rate, its latency timed from then (open loop, as wrk2).
#[derive(Debug, Parser)]
#[command(name = "loadgen")]
struct Args {
    /// The target, an absolute http:// URL.
    url: String,
    /// Concurrent connections.
    #[arg(short = 'c', long, default_value_t = 32)]
    connections: usize,
    /// Measured seconds (after the warm-up).
    #[arg(short = 'd', long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up seconds, not measured.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// The request method.
    #[arg(short = 'X', long = "method", default_value = "GET")]
    method: String,
    /// Request headers, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// The request body; `@FILE` reads it from a file.
    #[arg(short = 'b', long)]
    body: Option<String>,
    /// Load threads, each a single-threaded runtime (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Open loop: requests per second over all connections, each timed from
    /// when it was due (default: closed loop).
    #[arg(long)]
    rate: Option<f64>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Also print latency second by second (always in the JSON).
    #[arg(long)]
    timeline: bool,
    /// Report this process's CPU time over the measured window, with that of
    /// its live child processes (nginx's workers), per request answered:
    /// the server's own cost, apart from the load generator's.
    #[arg(long)]
    server_pid: Option<u32>,
}

fn seconds(s: f64, what: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(s).with_context(|| format!("invalid {what} {s}"))
}

fn config(args: &Args) -> Result<LoadConfig> {
    if let Some(pid) = args.server_pid
        && wikiedge_bench::procfs::cpu_time(pid).is_none()
    {
        anyhow::bail!("--server-pid {pid}: no such process (or no /proc/{pid}/stat to read)");
    }
    let mut headers = HeaderMap::new();
    for h in &args.headers {
        let (name, value) = wikiedge_bench::parse_header(h)?;
        headers.append(name, value);
    }
    let body = match args.body.as_deref() {
        None => Vec::new(),
        Some(b) => match b.strip_prefix('@') {
            Some(path) => std::fs::read(path).with_context(|| format!("reading {path}"))?,
            None => b.as_bytes().to_vec(),
        },
    };
    Ok(LoadConfig {
        method: Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
            .with_context(|| format!("invalid method {}", args.method))?,
        url: args.url.clone(),
        paths: Vec::new(),
        headers,
        body: body.into(),
        connections: args.connections,
        warmup: seconds(args.warmup, "warm-up")?,
        duration: seconds(args.duration, "duration")?,
        threads: args.threads,
        rate: args.rate,
        server_pid: args.server_pid,
    })
}

fn main() -> Result<()> {
    let args = Args::parse();
    let cfg = config(&args)?;
    // The load itself runs on its own threads (see `load::run`).
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(&cfg))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!("{}", result.human());
        if args.timeline {
            if !result.warmup_timeline.is_empty() {
                print!(
                    "\nwarm-up, seconds from the start of the run:\n{}",
                    wikiedge_bench::timeline::table(&result.warmup_timeline)
                );
            }
            print!(
                "\nmeasured window:\n{}",
                wikiedge_bench::timeline::table(&result.timeline)
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_arguments() {
        let args = Args::try_parse_from([
            "loadgen",
            "-c",
            "4",
            "-d",
            "1.5",
            "--warmup",
            "0",
            "-X",
            "post",
            "-H",
            "A: 1",
            "-H",
            "A: 2",
            "-b",
            "{}",
            "http://127.0.0.1:1/x?y=1",
            "--json",
        ])
        .expect("valid arguments");
        let cfg = config(&args).expect("valid config");
        assert_eq!(cfg.connections, 4);
        assert_eq!(cfg.duration, Duration::from_millis(1500));
        assert_eq!(cfg.warmup, Duration::ZERO);
        assert_eq!(cfg.method, Method::POST);
        assert_eq!(cfg.headers.get_all("a").iter().count(), 2);
        assert_eq!(&cfg.body[..], b"{}");
        assert!(args.json);
    }

    #[test]
    fn defaults() {
        let args = Args::try_parse_from(["loadgen", "http://127.0.0.1:1/"]).expect("valid");
        let cfg = config(&args).expect("valid config");
        assert_eq!(cfg.connections, 32);
        assert_eq!(cfg.duration, Duration::from_secs(10));
        assert_eq!(cfg.warmup, Duration::from_secs(2));
        assert_eq!(cfg.method, Method::GET);
        assert!(cfg.body.is_empty());
        assert_eq!(cfg.rate, None);
        let args = Args::try_parse_from(["loadgen", "--rate", "250", "http://127.0.0.1:1/"])
            .expect("valid");
        assert_eq!(config(&args).expect("valid config").rate, Some(250.0));
    }

    #[test]
    fn rejects_bad_values() {
        let bad = |argv: &[&str]| {
            Args::try_parse_from(argv)
                .map_err(anyhow::Error::from)
                .and_then(|a| config(&a))
                .is_err()
        };
        assert!(bad(&["loadgen", "-d", "-1", "http://127.0.0.1:1/"]));
        assert!(bad(&["loadgen", "-H", "nocolon", "http://127.0.0.1:1/"]));
        assert!(bad(&["loadgen", "-c", "x", "http://127.0.0.1:1/"]));
        // No process has pid 0 in /proc.
        assert!(bad(&[
            "loadgen",
            "--server-pid",
            "0",
            "http://127.0.0.1:1/"
        ]));
        let own = std::process::id().to_string();
        assert!(!bad(&[
            "loadgen",
            "--server-pid",
            &own,
            "http://127.0.0.1:1/"
        ]));
    }
}
