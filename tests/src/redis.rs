//! A `redis-server` of a test's own, for the tests that run the key-value
//! store on Redis.

use crate::{TempDir, free_port};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` on a loopback port, owned by a test. It persists every
/// write (append-only file, fsync always), so a restart keeps the data.
pub struct RedisServer {
    child: Option<Child>,
    /// Its port.
    pub port: u16,
    dir: TempDir,
}

impl RedisServer {
    /// Start one on a free port. `redis-server` must be on PATH (`.ci/run`
    /// installs it from Debian's packages).
    pub fn start() -> Result<Self> {
        let dir = TempDir::new("redis")?;
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            dir,
        };
        // `free_port` only says the port was free a moment ago; if another
        // test took it since, this server cannot listen: try another.
        let mut attempt = 1;
        while let Err(e) = server.spawn() {
            if attempt == 4 {
                return Err(e);
            }
            attempt += 1;
            server.stop()?;
            server.port = free_port();
        }
        Ok(server)
    }

    fn spawn(&mut self) -> Result<()> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server (install it: apt-get install redis-server)")?;
        self.child = Some(child);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            // Ready when this child holds the listening socket; a mere
            // connection could reach whoever else took the port.
            let child = self.child.as_mut().context("not spawned")?;
            if let Some(status) = child.try_wait()? {
                bail!("redis-server exited early ({status})");
            }
            if crate::listens_on(child.id(), self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("redis-server did not listen on {}", self.port)
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A runtime config file that puts the app's two stores on this Redis:
    /// `default` in database 0, `bulk` in database 1 (`redis-cli -n 1`), so
    /// a key in the wrong store is not found.
    pub fn runtime_config(&self, dir: &Path) -> Result<PathBuf> {
        let path = dir.join(format!("redis-{}.toml", self.port));
        std::fs::write(
            &path,
            format!(
                "[key_value_store.default]\ntype = \"redis\"\nurl = \"{0}/0\"\n\n\
                 [key_value_store.bulk]\ntype = \"redis\"\nurl = \"{0}/1\"\n",
                self.url()
            ),
        )?;
        Ok(path)
    }

    /// Stop it (SIGKILL; the append-only file keeps acknowledged writes).
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Start it again on the same port.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.spawn()
    }

    /// Send one command with `redis-cli` and return its output.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
