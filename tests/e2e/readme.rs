//! The README's shell blocks, run as written.
//!
//! Every ```` ```sh ```` block of README.md is run, in order, by one
//! `bash` with `set -euo pipefail`, from the repository root, against a
//! fresh state dir (`WIKIEDGE_STATE_DIR`) and a free port
//! (`WIKIEDGE_LISTEN`), which the README's commands honour. Two things are
//! swapped, and nothing else: `cargo run --release -p wikiedge -- ARGS` runs
//! the binary this test run built (a `cargo` shim on `PATH`; every other
//! `cargo` command goes to the real cargo), and `cargo test` — the suite
//! running this very test — is not re-entered. A block preceded by
//! `<!-- readme-test: skip REASON -->` is not run (it needs the network, or
//! serves until stopped); the test prints which. Whatever the blocks start
//! in the background is killed at the end.

use anyhow::{Context, Result, bail, ensure};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wikiedge_tests::{TempDir, free_port, repo_root, target_dir};

use crate::BIN;

/// One fenced `sh` block.
#[derive(Debug, PartialEq)]
struct Block {
    /// Why it is not run, when it is not.
    skip: Option<String>,
    /// The commands.
    text: String,
}

/// The ```` ```sh ```` blocks of a Markdown text, with their skip markers.
fn sh_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut last_line = "";
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        if line.trim_end() == "```sh" {
            let skip = last_line
                .trim()
                .strip_prefix("<!-- readme-test: skip")
                .map(|r| r.trim_end_matches("-->").trim().to_string());
            let mut text = String::new();
            for body in lines.by_ref() {
                if body.trim_end() == "```" {
                    break;
                }
                text.push_str(body);
                text.push('\n');
            }
            blocks.push(Block { skip, text });
            last_line = "";
            continue;
        }
        if !line.trim().is_empty() {
            last_line = line;
        }
    }
    blocks
}

#[test]
fn sh_blocks_are_found_with_their_skip_markers() {
    let md = "# t\n```sh\na\nb\n```\ntext\n<!-- readme-test: skip needs the network -->\n\n```sh\nc\n```\n```text\nno\n```\n";
    assert_eq!(
        sh_blocks(md),
        vec![
            Block {
                skip: None,
                text: "a\nb\n".into()
            },
            Block {
                skip: Some("needs the network".into()),
                text: "c\n".into()
            },
        ]
    );
}

/// The `cargo` the README's commands meet: `cargo run ... -p wikiedge --`
/// is the built binary, `cargo test` is a no-op, the rest is real cargo.
fn cargo_shim(dir: &std::path::Path) -> Result<()> {
    let real = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let script = format!(
        r#"#!/usr/bin/env bash
set -euo pipefail
if [ "${{1:-}}" = run ]; then
  while [ $# -gt 0 ] && [ "$1" != -- ]; do shift; done
  shift
  exec '{BIN}' "$@"
fi
if [ "${{1:-}}" = test ]; then
  echo "(readme test: not re-entering cargo test)"
  exit 0
fi
exec '{real}' "$@"
"#
    );
    let path = dir.join("cargo");
    std::fs::write(&path, script)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

#[test]
fn the_readme_walkthrough_runs_as_written() -> Result<()> {
    let readme = std::fs::read_to_string(repo_root().join("README.md"))?;
    let blocks = sh_blocks(&readme);
    ensure!(
        blocks.iter().filter(|b| b.skip.is_none()).count() >= 1,
        "README.md has no runnable sh block"
    );
    let tmp = TempDir::new("readme")?;
    let bin_dir = tmp.path().join("bin");
    std::fs::create_dir_all(&bin_dir)?;
    cargo_shim(&bin_dir)?;

    let mut script = String::from(
        "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true; wait || true' EXIT\n",
    );
    for (n, block) in blocks.iter().enumerate() {
        match &block.skip {
            Some(reason) => eprintln!("README block {n}: not run ({reason})"),
            None => {
                script.push_str(&format!("# ---- README block {n}\n"));
                script.push_str(&block.text);
            }
        }
    }
    let port = free_port();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out_path = tmp.path().join("out.log");
    let out = std::fs::File::create(&out_path)?;
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(repo_root())
        .env("PATH", path)
        .env("WIKIEDGE_STATE_DIR", tmp.path().join("state"))
        .env("WIKIEDGE_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "WIKIEDGE_CACHE_DIR",
            target_dir().join("wikiedge-compile-cache"),
        )
        .env_remove("SPIN_VARIABLE_ADMIN_API_KEY")
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0)
        .spawn()
        .context("running the README's blocks with bash")?;
    // Generous: `up --build` may build the components from scratch.
    let limit = Duration::from_secs(900);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > limit {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            bail!(
                "the README's blocks did not finish within {limit:?}:\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // Whatever is left of the group (the trap should have stopped it).
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let output = std::fs::read_to_string(&out_path)?;
    ensure!(
        status.success(),
        "the README's blocks failed ({status}):\n{script}\n---- output\n{output}"
    );
    // The walkthrough ends by printing the sample's Anarchism article.
    ensure!(
        output.contains("Anarchism: Anarchism is a political philosophy"),
        "the walkthrough did not print the article:\n{output}"
    );
    Ok(())
}
