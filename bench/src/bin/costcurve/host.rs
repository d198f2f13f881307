//! The commands and hosts a size is measured with: `wikiedge import` and
//! `wikiedge snapshot build` (timed, their peak RSS polled), and `wikiedge
//! up` on the size's state directory (its peak RSS read before it stops).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use http::{HeaderMap, HeaderValue, Method};
use serde::Serialize;
use wikiedge_bench::account::{BENCH_PLANS, account_bearer, admin_key};
use wikiedge_bench::load::{self, LoadConfig};
use wikiedge_bench::proc::{Proc, free_port, up_command, wait_status};

/// Where and how the hosts and commands run.
pub(crate) struct Runner {
    pub(crate) wikiedge: PathBuf,
    /// The workspace root: `spin.toml` and the built components.
    pub(crate) root: PathBuf,
    /// Child logs.
    pub(crate) logs: PathBuf,
    /// Seconds a command may take.
    pub(crate) timeout: u64,
}

/// A finished command: its seconds, the last peak RSS read while it ran
/// and the bytes it caused to be written to storage.
pub(crate) struct Ran {
    pub(crate) seconds: f64,
    pub(crate) peak_rss_kib: Option<u64>,
    /// [`wikiedge_bench::procfs::children_bytes_written`] across its life:
    /// the run starts nothing else while a command runs.
    pub(crate) written_bytes: Option<u64>,
}

/// The cached-article lookups at one size.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Lookups {
    pub(crate) connections: usize,
    pub(crate) duration_s: f64,
    pub(crate) requests: u64,
    pub(crate) requests_per_s: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) host_peak_rss_kib: Option<u64>,
}

/// A running `wikiedge up`.
pub(crate) struct Host {
    pub(crate) proc: Proc,
    pub(crate) base_url: String,
}

impl Runner {
    /// Runs `wikiedge argv...` to completion, polling its peak RSS.
    pub(crate) fn run_polled(&self, name: &str, argv: &[&std::ffi::OsStr]) -> Result<Ran> {
        let log = self.logs.join(format!("{name}.log"));
        let out = std::fs::File::create(&log)?;
        let t = Instant::now();
        let written_before = wikiedge_bench::procfs::children_bytes_written();
        let mut child = Command::new(&self.wikiedge)
            .args(argv)
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", self.wikiedge.display()))?;
        let mut peak = None;
        let deadline = t + Duration::from_secs(self.timeout);
        let status = loop {
            if let Some(kib) = wikiedge_bench::procfs::status_kib(child.id(), "VmHWM") {
                peak = Some(kib);
            }
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{name} took over {}s (log {})", self.timeout, log.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if !status.success() {
            bail!("{name} failed: {status} (log {})", log.display());
        }
        let seconds = t.elapsed().as_secs_f64();
        let written_after = wikiedge_bench::procfs::children_bytes_written();
        Ok(Ran {
            seconds,
            peak_rss_kib: peak,
            written_bytes: written_after
                .zip(written_before)
                .map(|(after, before)| after.saturating_sub(before)),
        })
    }

    /// `wikiedge import dump` into `state`.
    pub(crate) fn import(&self, name: &str, dump: &Path, state: &Path) -> Result<Ran> {
        let argv: [&std::ffi::OsStr; 7] = [
            "import".as_ref(),
            dump.as_ref(),
            "--project".as_ref(),
            "enwiki".as_ref(),
            "--quiet".as_ref(),
            "--state-dir".as_ref(),
            state.as_ref(),
        ];
        self.run_polled(name, &argv)
    }

    /// `wikiedge snapshot build` of enwiki namespace 0 in `state`.
    pub(crate) fn snapshot(&self, name: &str, state: &Path) -> Result<Ran> {
        let argv: [&std::ffi::OsStr; 9] = [
            "snapshot".as_ref(),
            "build".as_ref(),
            "--project".as_ref(),
            "enwiki".as_ref(),
            "--namespace".as_ref(),
            "0".as_ref(),
            "--quiet".as_ref(),
            "--state-dir".as_ref(),
            state.as_ref(),
        ];
        self.run_polled(name, &argv)
    }

    /// Starts `wikiedge up --from spin.toml` on `state` on a free loopback
    /// port, and waits until it answers.
    pub(crate) async fn up(&self, name: &str, state: &Path, env: &[(&str, &str)]) -> Result<Host> {
        let port = free_port()?;
        let mut cmd = up_command(&self.wikiedge, &self.root, "spin.toml", port, state);
        cmd.arg("--quiet");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut proc = Proc::spawn(name, &mut cmd, &self.logs)?;
        let base_url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(self.timeout.min(600));
        wait_status(
            &mut proc,
            &format!("{base_url}/v1/quota"),
            |_| true,
            deadline,
        )
        .await?;
        Ok(Host { proc, base_url })
    }

    /// Closed-loop authenticated `GET /v2/articles/{title}` over `paths`
    /// (every request to one of them, spread evenly) on a host started on
    /// `state`. An article missing from the store would be fetched from
    /// the project's upstream: the host is pointed at a closed loopback
    /// port instead, so nothing leaves the machine, and any answer but 200
    /// fails the run.
    pub(crate) async fn lookups(
        &self,
        name: &str,
        state: &Path,
        paths: Vec<String>,
        connections: usize,
        duration: Duration,
    ) -> Result<Lookups> {
        let key = admin_key();
        let closed = free_port()?;
        let overrides = format!(r#"{{"enwiki":"http://127.0.0.1:{closed}"}}"#);
        let env = [
            ("SPIN_VARIABLE_ADMIN_API_KEY", key.as_str()),
            ("SPIN_VARIABLE_PLANS", BENCH_PLANS),
            ("SPIN_VARIABLE_UPSTREAM_OVERRIDES", overrides.as_str()),
            ("SPIN_VARIABLE_UPSTREAM_EXTRA_HOST", "http://127.0.0.1:*"),
        ];
        let host = self.up(name, state, &env).await?;
        let bearer = account_bearer(&host.base_url, &key).await?;
        let mut headers = HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, HeaderValue::from_str(&bearer)?);
        let cfg = LoadConfig {
            method: Method::GET,
            url: host.base_url.clone(),
            paths,
            headers,
            body: Default::default(),
            connections,
            warmup: Duration::from_secs(1),
            duration,
            threads: None,
            rate: None,
            server_pid: None,
        };
        let r = load::run(&cfg).await?;
        let peak = host.proc.status_kib("VmHWM");
        host.proc.stop().await;
        println!("{}", r.human());
        if r.requests == 0 || r.non_success > 0 || r.errors > 0 {
            bail!(
                "lookups: {} requests, statuses {:?}, {} errors: every lookup must be a 200 from the store",
                r.requests,
                r.status_counts,
                r.errors
            );
        }
        Ok(Lookups {
            connections,
            duration_s: r.duration_s,
            requests: r.requests,
            requests_per_s: r.requests_per_s,
            p50_ms: r.latency.p50_us as f64 / 1e3,
            p99_ms: r.latency.p99_us as f64 / 1e3,
            host_peak_rss_kib: peak,
        })
    }
}

/// The store's bytes on disk: the SQLite file and its write-ahead log.
pub(crate) fn sqlite_bytes(state: &Path) -> u64 {
    ["sqlite_key_value.db", "sqlite_key_value.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(state.join(f)).ok())
        .map(|m| m.len())
        .sum()
}
