//! Scenario (r)'s Redis: a private `redis-server` and the runtime config
//! that puts the `default` key-value store on it, for `wikiedge import` and
//! `wikiedge up` alike.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};
use tokio::process::Command;

use crate::Args;
use crate::ctx::Ctx;
use wikiedge_bench::proc::{Proc, find_on_path, free_port, wait_listening};

/// The Redis server binary for scenario (r), if there is one.
pub(crate) fn redis_server_bin(args: &Args) -> Option<PathBuf> {
    match &args.redis_server {
        Some(p) => p.is_file().then(|| p.clone()),
        None => find_on_path("redis-server"),
    }
}

/// A running private Redis and the runtime config pointing at it.
pub(crate) struct Redis {
    pub(crate) proc: Proc,
    pub(crate) port: u16,
    pub(crate) bin: PathBuf,
    /// Both stores (`default` and `bulk`) on this Redis, as `wikiedge
    /// import` and `wikiedge up` take with `--runtime-config-file`.
    pub(crate) runtime_config: PathBuf,
}

/// The runtime config putting both stores on the Redis at `port`, in two
/// databases (as deploy/runtime-config.redis.toml does): `default` for
/// accounts and counters, `bulk` for the articles.
pub(crate) fn runtime_config_toml(port: u16) -> String {
    format!(
        "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:{port}/0\"\n\n\
         [key_value_store.bulk]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:{port}/1\"\n"
    )
}

impl Redis {
    /// Starts a private `redis-server` for scenario (r): loopback only, no
    /// RDB snapshots, append-only file fsynced every second (the durability
    /// a deployment would run), data in the run's temporary directory.
    pub(crate) async fn start(ctx: &Ctx, bin: &Path) -> Result<Redis> {
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
        let runtime_config = ctx.tmp.path().join("runtime-config-r.toml");
        std::fs::write(&runtime_config, runtime_config_toml(port))?;
        Ok(Redis {
            proc: p,
            port,
            bin: bin.to_path_buf(),
            runtime_config,
        })
    }

    /// The number of keys (`redis-cli DBSIZE`), when a `redis-cli` sits
    /// beside the server or on PATH; `None` otherwise.
    pub(crate) async fn dbsize(&self) -> Option<u64> {
        let beside = self.bin.with_file_name("redis-cli");
        let cli = if beside.is_file() {
            beside
        } else {
            find_on_path("redis-cli")?
        };
        let out = Command::new(cli)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "DBSIZE"])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(30), out)
            .await
            .ok()?
            .ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    }

    /// What the report says about it.
    pub(crate) fn info(&self) -> Value {
        json!({
            "server": self.bin,
            "port": self.port,
            "runtime_config": self.runtime_config,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_config_puts_both_stores_on_redis() {
        let toml = runtime_config_toml(6390);
        assert_eq!(
            toml,
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:6390/0\"\n\n\
             [key_value_store.bulk]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:6390/1\"\n"
        );
    }
}
