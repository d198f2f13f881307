//! The architecture's invariants (ARCHITECTURE.md, "Architecture
//! invariants"), checked from `cargo metadata` and the source tree so that a
//! change that breaks one fails here instead of slipping into review.
//!
//! - Only the runtime (`wikiedge-host`) depends on wasmtime, and the runtime
//!   depends on nothing of wikiedge (not the core, not the component glue).
//! - The core (`wikiedge-core`) does no I/O: its dependencies are pure
//!   libraries from an allow-list; no runtime, network, storage or Spin crate.
//! - Components (`functions/*`) depend on spin-sdk, the core, the shared glue
//!   and small pure crates, never on the runtime, the CLI or a host-side I/O
//!   crate.
//! - No Rust source file is longer than [`MAX_LINES`], except tests of one
//!   concept ([`ONE_CONCEPT_TESTS`]) and the files in [`TOO_LONG`], each of
//!   which may not grow (a ratchet: split, never add).

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The longest a Rust source file may be.
const MAX_LINES: usize = 600;

/// Test modules of one concept, which the rule exempts: one contract
/// exercised method by method reads best in one place.
const ONE_CONCEPT_TESTS: &[(&str, &str)] = &[
    ("tests/e2e/sdk.rs", "the official SDKs' calls, one by one"),
    ("tests/e2e/snapshots.rs", "the snapshot routes"),
    ("tests/e2e/abuse.rs", "every bound under attack"),
];

/// Files over [`MAX_LINES`] today, with the most lines each may have: each
/// is waiting to be cut where its concepts part.
const TOO_LONG: &[(&str, usize, &str)] = &[];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is one level below the workspace")
        .to_path_buf()
}

/// Each workspace package's direct dependencies (normal and build, not dev),
/// by package name, with the directory it lives in.
fn packages() -> BTreeMap<String, (PathBuf, Vec<String>)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    let mut map = BTreeMap::new();
    for p in meta["packages"].as_array().expect("packages") {
        let name = p["name"].as_str().expect("name").to_string();
        let dir = Path::new(p["manifest_path"].as_str().expect("manifest_path"))
            .parent()
            .expect("manifest dir")
            .to_path_buf();
        let deps = p["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter(|d| d["kind"].as_str() != Some("dev"))
            .map(|d| d["name"].as_str().expect("dep name").to_string())
            .collect();
        map.insert(name, (dir, deps));
    }
    map
}

/// Dependencies of `package` that break `allowed`.
fn offending(
    packages: &BTreeMap<String, (PathBuf, Vec<String>)>,
    package: &str,
    allowed: impl Fn(&str) -> bool,
) -> Vec<String> {
    let (_, deps) = packages
        .get(package)
        .unwrap_or_else(|| panic!("no package {package} in the workspace"));
    deps.iter().filter(|d| !allowed(d)).cloned().collect()
}

fn is_wasmtime(dep: &str) -> bool {
    dep == "wasmtime" || dep.starts_with("wasmtime-") || dep == "wac-graph"
}

/// Crates that do I/O or run a host: none may reach the core or a component.
const HOST_SIDE: &[&str] = &[
    "tokio",
    "hyper",
    "hyper-util",
    "rusqlite",
    "redis",
    "reqwest",
    "ureq",
    "wikiedge-host",
    "wikiedge",
    "wikiedge-tests",
];

#[test]
fn only_the_runtime_depends_on_wasmtime() {
    let packages = packages();
    let mut wrong = Vec::new();
    for (name, (_, deps)) in &packages {
        if name == "wikiedge-host" {
            continue;
        }
        for d in deps.iter().filter(|d| is_wasmtime(d)) {
            wrong.push(format!("{name} -> {d}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "only wikiedge-host may depend on wasmtime: {wrong:?}"
    );
    assert!(
        packages["wikiedge-host"].1.iter().any(|d| d == "wasmtime"),
        "the runtime is expected to be the crate on wasmtime"
    );
}

#[test]
fn the_runtime_knows_nothing_of_wikiedge() {
    let packages = packages();
    let wrong = offending(&packages, "wikiedge-host", |d| {
        !d.starts_with("wikiedge") && d != "spin-sdk"
    });
    assert!(wrong.is_empty(), "wikiedge-host depends on {wrong:?}");
}

#[test]
fn the_core_does_no_io() {
    let packages = packages();
    // Pure libraries: data formats, parsing and cryptography over bytes.
    const ALLOWED: &[&str] = &[
        "serde",
        "serde_json",
        "thiserror",
        "base64",
        "ed25519-dalek",
        "argon2",
        "sha2",
        "subtle",
        "quick-xml",
        "httpdate",
        "percent-encoding",
        "memchr",
    ];
    let wrong = offending(&packages, "wikiedge-core", |d| ALLOWED.contains(&d));
    assert!(
        wrong.is_empty(),
        "wikiedge-core may depend only on pure libraries {ALLOWED:?}; it depends on {wrong:?}"
    );
}

#[test]
fn components_depend_on_spin_sdk_the_core_and_the_glue_only() {
    let packages = packages();
    let functions = root().join("functions");
    let mut checked = 0;
    for (name, (dir, _)) in &packages {
        if !dir.starts_with(&functions) {
            continue;
        }
        checked += 1;
        let wrong = offending(&packages, name, |d| {
            !HOST_SIDE.contains(&d) && !is_wasmtime(d)
        });
        assert!(
            wrong.is_empty(),
            "component crate {name} depends on {wrong:?}"
        );
        if name != "wikiedge-fn" && dir.join("src/lib.rs").exists() {
            let deps = &packages[name].1;
            assert!(
                deps.iter().any(|d| d == "spin-sdk"),
                "component crate {name} does not depend on spin-sdk"
            );
        }
    }
    assert!(
        checked >= 8,
        "expected the component crates under functions/, found {checked}"
    );
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if name != "target" && !name.to_string_lossy().starts_with('.') {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_source_file_grows_past_the_limit() {
    let root = root();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(files.len() > 50, "found only {} Rust files", files.len());
    let mut wrong = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(&root)
            .expect("below the root")
            .to_string_lossy()
            .replace('\\', "/");
        let lines = std::fs::read_to_string(&file)
            .expect("readable source")
            .lines()
            .count();
        if ONE_CONCEPT_TESTS.iter().any(|(path, _)| *path == rel) {
            continue;
        }
        let limit = TOO_LONG
            .iter()
            .find(|(path, _, _)| *path == rel)
            .map_or(MAX_LINES, |(_, most, _)| *most);
        if lines > limit {
            wrong.push(format!("{rel}: {lines} lines (at most {limit})"));
        }
    }
    assert!(
        wrong.is_empty(),
        "files over their line limit (cut them where their concepts part): {wrong:?}"
    );
}

#[test]
fn the_ratchet_list_holds_only_long_files() {
    // An entry whose file shrank under the limit, or went away, must leave
    // the list, so that the list only ever shrinks to nothing.
    let root = root();
    for (path, most, _) in TOO_LONG {
        let lines = std::fs::read_to_string(root.join(path))
            .map(|s| s.lines().count())
            .unwrap_or(0);
        assert!(
            lines > MAX_LINES,
            "{path} has {lines} lines now: remove it from TOO_LONG"
        );
        assert!(
            *most > MAX_LINES,
            "{path}: a limit under {MAX_LINES} is pointless"
        );
    }
}
