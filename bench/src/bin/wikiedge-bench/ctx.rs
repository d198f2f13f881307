//! The run's context: arguments, paths and the ways a scenario starts
//! `wikiedge` commands, hosts and baselines, and runs load against them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use http::{HeaderMap, Method};
use tokio::process::Command;
use wikiedge_bench::baseline::is_framing_header;
use wikiedge_bench::client::Fetched;
use wikiedge_bench::load::{self, LoadConfig, LoadResult};

use crate::Args;
use wikiedge_bench::proc::{Proc, free_port, up_command, wait_listening};

/// Everything a scenario needs.
pub(crate) struct Ctx {
    pub(crate) args: Args,
    pub(crate) root: PathBuf,
    pub(crate) wikiedge: PathBuf,
    pub(crate) baseline_bin: PathBuf,
    pub(crate) logs: PathBuf,
    /// The run's scratch directory, removed when the run ends.
    pub(crate) tmp: tempfile::TempDir,
    /// Extra arguments for every `wikiedge up`.
    pub(crate) up_args: Vec<String>,
}
impl Ctx {
    pub(crate) fn deadline(&self) -> Instant {
        Instant::now() + Duration::from_secs(self.args.startup_timeout)
    }

    /// The run's load settings against `url`; with `server_pid`, the
    /// server's CPU time per request is measured too.
    pub(crate) fn load_config(
        &self,
        url: &str,
        headers: &HeaderMap,
        server_pid: Option<u32>,
    ) -> Result<LoadConfig> {
        Ok(LoadConfig {
            method: Method::GET,
            url: url.to_string(),
            paths: Vec::new(),
            headers: headers.clone(),
            body: Default::default(),
            connections: self.args.connections,
            warmup: Duration::try_from_secs_f64(self.args.warmup).context("--warmup")?,
            duration: Duration::try_from_secs_f64(self.args.duration).context("--duration")?,
            threads: None,
            rate: None,
            server_pid,
        })
    }

    /// Runs a wikiedge subcommand to completion, output to a log.
    pub(crate) async fn run_wikiedge(
        &self,
        name: &str,
        argv: &[&str],
        env: &[(&str, &str)],
    ) -> Result<()> {
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

    pub(crate) fn spawn_up(
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
    pub(crate) fn spawn_up_with(
        &self,
        name: &str,
        manifest: &str,
        port: u16,
        state: &Path,
        env: &[(&str, &str)],
        extra: &[&std::ffi::OsStr],
    ) -> Result<Proc> {
        let mut cmd = up_command(&self.wikiedge, &self.root, manifest, port, state);
        cmd.args(&self.up_args).args(extra);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Proc::spawn(name, &mut cmd, &self.logs)
    }

    /// Starts the baseline serving `fixed`'s bytes and headers.
    pub(crate) async fn spawn_baseline(&self, name: &str, fixed: &Fetched) -> Result<(Proc, u16)> {
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
    pub(crate) async fn compare(
        &self,
        label: &str,
        baseline: Option<Server<'_>>,
        subject: Option<Server<'_>>,
    ) -> Result<(Vec<LoadResult>, Vec<LoadResult>)> {
        let (bs, _, ss) = self.compare_all(label, baseline, None, subject).await?;
        Ok((bs, ss))
    }

    /// Alternates the native baseline, nginx and the subject, in that order
    /// each round; returns the three result lists.
    pub(crate) async fn compare_all(
        &self,
        label: &str,
        baseline: Option<Server<'_>>,
        nginx: Option<Server<'_>>,
        subject: Option<Server<'_>>,
    ) -> Result<(Vec<LoadResult>, Vec<LoadResult>, Vec<LoadResult>)> {
        let mut out = (Vec::new(), Vec::new(), Vec::new());
        for round in 1..=self.args.rounds.max(1) {
            for (server, what, results) in [
                (&baseline, "baseline", &mut out.0),
                (&nginx, "nginx", &mut out.1),
                (&subject, "wikiedge", &mut out.2),
            ] {
                if let Some(s) = server {
                    println!("  [{label}] round {round}: {what} load on {}", s.url);
                    let r = load::run(&self.load_config(s.url, s.headers, s.pid)?).await?;
                    println!("{}", indent(&r.human()));
                    results.push(r);
                }
            }
        }
        Ok(out)
    }

    /// Starts nginx (`bin`) serving `fixed`'s bytes and headers.
    pub(crate) async fn spawn_nginx(
        &self,
        name: &str,
        bin: &Path,
        fixed: &Fetched,
    ) -> Result<(Proc, u16)> {
        let prefix = self.tmp.path().join(name);
        let port = free_port()?;
        let content_type = fixed
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream");
        let mut cmd = wikiedge_bench::nginx::prepare(
            bin,
            &prefix,
            port,
            content_type,
            &fixed.headers,
            &fixed.body,
        )?;
        let mut p = Proc::spawn(name, &mut cmd, &self.logs)?;
        wait_listening(&mut p, port, self.deadline()).await?;
        Ok((p, port))
    }
}

/// A server under load: where to send, what headers, and its process (for
/// its CPU time per request).
pub(crate) struct Server<'a> {
    pub(crate) url: &'a str,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) pid: Option<u32>,
}

pub(crate) fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("      {l}\n"))
        .collect::<String>()
        .trim_end()
        .to_string()
}
