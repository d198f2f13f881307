//! Child processes: servers and commands started by the run, each killed
//! (with its process group) when dropped, and the waits on them.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use http::{Method, StatusCode};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::client::{Fetched, fetch};

/// A started child process, its output going to a log file.
pub struct Proc {
    /// The name in messages and of the log (`{name}.log`).
    pub name: String,
    /// The process.
    pub child: Child,
    /// Its log file (stdout and stderr).
    pub log: PathBuf,
}

impl Proc {
    /// Starts `cmd` in its own process group, output to `logs/{name}.log`.
    pub fn spawn(name: &str, cmd: &mut Command, logs: &Path) -> Result<Proc> {
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

    /// The process id, while it has not been reaped.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// A `/proc/PID/status` field in KiB (`VmHWM` is the peak RSS).
    pub fn status_kib(&self, field: &str) -> Option<u64> {
        crate::procfs::status_kib(self.pid()?, field)
    }

    /// The last lines of the log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// An error (with the log's tail) if the child has exited.
    pub fn check_alive(&mut self) -> Result<()> {
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

    /// Kills the child's process group and waits (up to 10 s) for it.
    pub async fn stop(mut self) {
        self.kill_group();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// A free port on 127.0.0.1 (bound, then released for the child to take).
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// A duration in milliseconds, to the microsecond.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// `wikiedge up --from manifest --listen 127.0.0.1:port --state-dir state`,
/// run in `root` (where the manifest's relative paths start).
pub fn up_command(
    wikiedge: &Path,
    root: &Path,
    manifest: &str,
    port: u16,
    state: &Path,
) -> Command {
    let mut cmd = Command::new(wikiedge);
    cmd.arg("up")
        .arg("--from")
        .arg(manifest)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--state-dir")
        .arg(state)
        .current_dir(root);
    cmd
}

/// Whether `wikiedge up --help` mentions `flag`.
pub async fn host_supports(wikiedge: &Path, flag: &str) -> bool {
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
pub async fn wait_listening(proc: &mut Proc, port: u16, deadline: Instant) -> Result<Instant> {
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
pub async fn wait_status(
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

/// `s` cut to `n` characters (with an ellipsis when cut).
pub fn truncate(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}
/// `name` in a directory of `PATH`, if it is a file there.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_programs_on_path() {
        assert!(find_on_path("sh").is_some());
        assert!(find_on_path("no-such-program-wikiedge-bench").is_none());
    }
}
