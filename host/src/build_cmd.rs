//! `wikiedge build`: run each component's `[component.x.build] command`,
//! as `spin build` does (in the manifest's directory, or `workdir`).
//!
//! Before running them it makes sure every Rust target the commands name
//! (`--target wasm32-wasip2`) is installed. `rust-toolchain.toml` lists the
//! target, but rustup installs listed targets only when it installs the
//! toolchain itself; a machine that already had the pinned toolchain never
//! gets it, and the first `cargo build --target wasm32-wasip2` then fails
//! with `can't find crate for core`. So a missing target is added with
//! `rustup target add` (saying so); without rustup the build stops with the
//! command to run.

use crate::manifest::Manifest;
use anyhow::{Context, Result, bail};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Build every component that has a build command (or only `only`).
pub fn build(manifest: &Manifest, only: &[String]) -> Result<()> {
    let mut selected = Vec::new();
    for (id, decl) in &manifest.components {
        if !only.is_empty() && !only.contains(id) {
            continue;
        }
        match &decl.build {
            Some(build) => selected.push((id, build)),
            None => tracing::info!("Component {id} has no build command: skipping"),
        }
    }
    let mut targets: Vec<String> = Vec::new();
    for (_, build) in &selected {
        for t in rust_targets(&build.command) {
            if !targets.contains(&t) {
                targets.push(t);
            }
        }
    }
    let tools = Tools::from_env();
    for t in &targets {
        if ensure_target(&tools, t, &manifest.base_dir)? == TargetState::Added {
            tracing::info!("Added the Rust target {t}");
        }
    }
    for (id, build) in selected {
        let dir = match &build.workdir {
            Some(w) => manifest.base_dir.join(w),
            None => manifest.base_dir.clone(),
        };
        tracing::info!("Building component {id} with `{}`", build.command);
        let status = Command::new("sh")
            .arg("-c")
            .arg(&build.command)
            .current_dir(&dir)
            .status()
            .with_context(|| format!("cannot run the build command of component `{id}`"))?;
        if !status.success() {
            bail!("build command for component `{id}` failed ({status})");
        }
    }
    tracing::info!("Finished building all components");
    Ok(())
}

/// The `--target T` / `--target=T` values of a shell command line.
pub fn rust_targets(command: &str) -> Vec<String> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let t = if let Some(t) = w.strip_prefix("--target=") {
            Some(t)
        } else if *w == "--target" {
            words.get(i + 1).copied()
        } else {
            None
        };
        if let Some(t) = t
            .map(|t| t.trim_matches(['\'', '"']))
            .filter(|t| !t.is_empty())
            && !out.iter().any(|o| o == t)
        {
            out.push(t.to_string());
        }
    }
    out
}

/// The programs used to inspect and change the toolchain.
#[derive(Debug, Clone)]
pub struct Tools {
    /// `rustc` (the rustup proxy when rustup is installed).
    pub rustc: OsString,
    /// `rustup`, when it is on `PATH`.
    pub rustup: Option<PathBuf>,
}

impl Tools {
    /// `rustc` and `rustup` as found on `PATH`.
    pub fn from_env() -> Self {
        Tools {
            rustc: OsString::from("rustc"),
            rustup: find_on_path("rustup"),
        }
    }
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Whether a target was there or had to be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetState {
    /// Its standard library was already installed.
    Present,
    /// `rustup target add` installed it.
    Added,
}

/// Whether `target`'s standard library is installed for the toolchain that
/// applies in `dir` (`rustc --print target-libdir` exists and holds `core`).
pub fn target_installed(tools: &Tools, target: &str, dir: &Path) -> Result<bool> {
    let out = Command::new(&tools.rustc)
        .args(["--print", "target-libdir", "--target", target])
        .current_dir(dir)
        .output()
        .with_context(|| format!("cannot run `{}`", tools.rustc.to_string_lossy()))?;
    if !out.status.success() {
        // An unknown target, or a rustc that cannot answer: let the build
        // command report it.
        return Ok(true);
    }
    let libdir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let has_core = std::fs::read_dir(&libdir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("libcore-") && name.ends_with(".rlib")
        })
    });
    Ok(has_core)
}

/// Make sure `target` is installed, adding it through rustup if needed.
pub fn ensure_target(tools: &Tools, target: &str, dir: &Path) -> Result<TargetState> {
    if target_installed(tools, target, dir)? {
        return Ok(TargetState::Present);
    }
    let add = format!("rustup target add {target}");
    let Some(rustup) = &tools.rustup else {
        bail!(
            "the Rust target {target} is not installed and rustup is not on PATH; \
             install it with `{add}` (or your distribution's standard library for {target}) \
             and run the build again"
        );
    };
    tracing::info!("The Rust target {target} is not installed: running `{add}`");
    let status = Command::new(rustup)
        .args(["target", "add", target])
        .current_dir(dir)
        .status()
        .with_context(|| format!("cannot run `{add}`"))?;
    if !status.success() {
        bail!("`{add}` failed ({status}); run it yourself and build again");
    }
    if !target_installed(tools, target, dir)? {
        bail!("`{add}` succeeded but {target} is still missing for this toolchain");
    }
    Ok(TargetState::Added)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn targets_are_read_from_build_commands() {
        assert_eq!(
            rust_targets("cargo build --target wasm32-wasip2 --release -p x"),
            vec!["wasm32-wasip2"]
        );
        assert_eq!(
            rust_targets(
                "cargo build --target=wasm32-wasip1 && cargo build --target wasm32-wasip1"
            ),
            vec!["wasm32-wasip1"]
        );
        assert!(rust_targets("cargo build --release").is_empty());
    }

    /// A fake toolchain: `rustc` prints `<dir>/lib` as the target libdir;
    /// `rustup` logs its arguments and installs `libcore` there (or fails).
    struct Fake {
        dir: tempfile::TempDir,
    }

    impl Fake {
        fn new(installed: bool, rustup_works: bool) -> Result<Self> {
            let dir = tempfile::tempdir()?;
            let d = dir.path().display().to_string();
            let script = |name: &str, body: String| -> Result<()> {
                let p = dir.path().join(name);
                std::fs::write(&p, format!("#!/bin/sh\n{body}\n"))?;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
                Ok(())
            };
            script("rustc", format!("echo {d}/lib"))?;
            let install = if rustup_works {
                format!("mkdir -p {d}/lib && touch {d}/lib/libcore-abc.rlib")
            } else {
                "exit 3".to_string()
            };
            script(
                "rustup",
                format!("echo \"$@\" >> {d}/rustup.log\n{install}"),
            )?;
            if installed {
                std::fs::create_dir_all(dir.path().join("lib"))?;
                std::fs::write(dir.path().join("lib/libcore-abc.rlib"), b"")?;
            }
            Ok(Fake { dir })
        }
        fn tools(&self, with_rustup: bool) -> Tools {
            Tools {
                rustc: self.dir.path().join("rustc").into_os_string(),
                rustup: with_rustup.then(|| self.dir.path().join("rustup")),
            }
        }
        fn rustup_log(&self) -> String {
            std::fs::read_to_string(self.dir.path().join("rustup.log")).unwrap_or_default()
        }
    }

    #[test]
    fn an_installed_target_is_left_alone() -> Result<()> {
        let fake = Fake::new(true, true)?;
        let state = ensure_target(&fake.tools(true), "wasm32-wasip2", fake.dir.path())?;
        assert_eq!(state, TargetState::Present);
        assert_eq!(fake.rustup_log(), "");
        Ok(())
    }

    #[test]
    fn a_missing_target_is_added_through_rustup() -> Result<()> {
        let fake = Fake::new(false, true)?;
        assert!(!target_installed(
            &fake.tools(true),
            "wasm32-wasip2",
            fake.dir.path()
        )?);
        let state = ensure_target(&fake.tools(true), "wasm32-wasip2", fake.dir.path())?;
        assert_eq!(state, TargetState::Added);
        assert_eq!(fake.rustup_log(), "target add wasm32-wasip2\n");
        Ok(())
    }

    #[test]
    fn without_rustup_the_error_names_the_command() -> Result<()> {
        let fake = Fake::new(false, true)?;
        let err = ensure_target(&fake.tools(false), "wasm32-wasip2", fake.dir.path())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("`rustup target add wasm32-wasip2`"), "{err}");
        assert_eq!(fake.rustup_log(), "");
        Ok(())
    }

    #[test]
    fn a_failing_rustup_fails_the_build() -> Result<()> {
        let fake = Fake::new(false, false)?;
        let err = ensure_target(&fake.tools(true), "wasm32-wasip2", fake.dir.path())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("failed"), "{err}");
        assert_eq!(fake.rustup_log(), "target add wasm32-wasip2\n");
        Ok(())
    }
}
