//! Compiled components kept as files and mapped into memory, not copied.
//!
//! wasmtime's own compile cache stores compressed artifacts: a hit is
//! decompressed into anonymous memory, so every component's whole compiled
//! code is resident (and private) for the life of the process, whether it
//! runs or not — about 35 MiB for this app, most of an idle host's memory
//! (BENCHMARKS.md, "Memory"). Here a component compiled once is written,
//! uncompressed, to `{cache_dir}/components/{key}.cwasm` and loaded with
//! [`Component::deserialize_file`], which maps the file: code pages are
//! read in when first executed, are clean and shared, and the kernel may
//! drop them under memory pressure.
//!
//! The key is the SHA-256 of the component's bytes (after composition) and
//! a hash of the engine's settings that affect compiled code
//! ([`Engine::precompile_compatibility_hash`]); wasmtime also checks the
//! file's header against the engine when it loads it, and a file it refuses
//! is compiled again and replaced. Files are written to a temporary name
//! and renamed, so a crash or a second host starting at the same time never
//! leaves a half-written file under the key.
//!
//! A component not in the cache is compiled, by default in a process of its
//! own ([`CompileProcess`]: `wikiedge up` runs its own executable), which
//! writes the file this process then maps. Cranelift's peak while it
//! compiles this app is about 110 MiB above a serving host's, and the heap
//! it leaves behind stayed partly resident (BENCHMARKS.md, "A start that
//! compiles leaves nothing behind"); in a child process neither is ever the
//! server's. Without a child (or should it fail) the code is compiled here,
//! on an engine of its own.
//!
//! Each rebuild of a component adds a file, so the directory is bounded:
//! a file's modification time is set whenever it is loaded, and after a new
//! file is written the least recently used go until the directory holds at
//! most [`MAX_CACHE_BYTES`]. A host that still maps a removed file keeps
//! using it (the mapping holds the data); the next start compiles again.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result, anyhow};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The compiled files kept at most, in bytes (this app's are about 40 MB).
pub const MAX_CACHE_BYTES: u64 = 1 << 30;

/// The file a component's compiled code is kept in.
fn path(engine: &Engine, bytes: &[u8], cache_dir: &Path) -> PathBuf {
    let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hash);
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    cache_dir
        .join("components")
        .join(format!("{hex}-{:016x}.cwasm", engine_hash.finish()))
}

/// Maps a compiled component file.
#[allow(unsafe_code)]
fn map(engine: &Engine, file: &Path) -> Result<Component> {
    // SAFETY: wasmtime requires that the file hold code it serialized for a
    // compatible engine and that it not change while mapped. Only this
    // module writes into `components/` (serialized by wasmtime, renamed
    // into place whole, never rewritten in place), the name is keyed by
    // the source bytes and the engine, and wasmtime checks the header
    // against the engine before use. Whoever can write the cache directory
    // can already replace the host binary's inputs; it is the same trust
    // wasmtime's own cache asks for.
    unsafe { Component::deserialize_file(engine, file) }
        .map_err(|e| anyhow!("loading {}: {e:?}", file.display()))
}

/// Loads code this process has just compiled and serialized.
#[allow(unsafe_code)]
fn from_memory(engine: &Engine, serialized: &[u8]) -> Result<Component> {
    // SAFETY: `serialized` is what `Component::serialize` returned a moment
    // ago in this process, on an engine with this engine's settings, and
    // wasmtime checks its header against the engine before use.
    unsafe { Component::deserialize(engine, serialized) }.map_err(|e| anyhow!("{e:?}"))
}

/// A program that compiles a component into a cache file for this
/// process: run with [`CompileProcess::args`] and `--out FILE`, the
/// component's bytes on its standard input. It must compile on an engine
/// configured as this process's is ([`compile_to_file`]); a file compiled
/// otherwise fails wasmtime's header check when it is mapped, and the
/// component is then compiled here.
#[derive(Debug, Clone)]
pub struct CompileProcess {
    /// The program (`wikiedge up` names its own executable).
    pub program: PathBuf,
    /// Its arguments before `--out FILE`.
    pub args: Vec<String>,
}

/// The child's side of [`CompileProcess`]: compiles `bytes` on `engine`
/// and writes the code to `file` (through a temporary name, on the disk
/// before it has its name), then prints `peak_kib N`, its own peak resident
/// memory, for the parent's log.
pub fn compile_to_file(engine: &Engine, bytes: &[u8], file: &Path) -> Result<()> {
    let serialized = compile(engine, bytes)?
        .serialize()
        .map_err(|e| anyhow!("{e:?}"))?;
    store(&serialized, file)?;
    if let Some(kib) = peak_kib(&std::fs::read_to_string("/proc/self/status").unwrap_or_default()) {
        println!("peak_kib {kib}");
    }
    Ok(())
}

/// `VmHWM` of a `/proc/PID/status` listing, in KiB.
fn peak_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs `process` to compile `bytes` into `file`; returns the child's peak
/// resident memory in KiB when it reported it.
fn compile_in_child(process: &CompileProcess, bytes: &[u8], file: &Path) -> Result<Option<u64>> {
    use std::process::{Command, Stdio};
    let mut child = Command::new(&process.program)
        .args(&process.args)
        .arg("--out")
        .arg(file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", process.program.display()))?;
    // Closed once written: the child reads to the end of its input.
    let wrote = child
        .stdin
        .take()
        .context("the compiler's standard input")?
        .write_all(bytes);
    let output = child.wait_with_output()?;
    anyhow::ensure!(output.status.success(), "the compiler {}", output.status);
    wrote.context("writing the component to the compiler")?;
    anyhow::ensure!(file.is_file(), "the compiler wrote no {}", file.display());
    let report = String::from_utf8_lossy(&output.stdout);
    Ok(report
        .lines()
        .find_map(|l| l.strip_prefix("peak_kib "))
        .and_then(|n| n.trim().parse().ok()))
}

/// The compiled component `name` for `bytes`: mapped from the cache when it
/// holds it, else compiled — by `compiler` when there is one, else here —
/// (and, with a cache, written there and mapped). Compiling takes seconds,
/// so it is logged as it starts and ends.
pub fn load(
    engine: &Engine,
    name: &str,
    bytes: &[u8],
    cache_dir: Option<&Path>,
    compiler: Option<&CompileProcess>,
) -> Result<Component> {
    let Some(dir) = cache_dir else {
        return compile_logged(engine, name, bytes, "no compile cache");
    };
    let file = path(engine, bytes, dir);
    if file.exists() {
        match map(engine, &file) {
            Ok(component) => {
                // Marks it used, for the pruning of the least recently used.
                let _ = std::fs::File::options()
                    .write(true)
                    .open(&file)
                    .and_then(|f| f.set_modified(SystemTime::now()));
                return Ok(component);
            }
            Err(e) => tracing::warn!("compiling again: {e:#}"),
        }
    }
    if let Some(compiler) = compiler {
        tracing::info!(
            "Compiling component `{name}` (once per build, in a process of its own: later starts map {})",
            file.display()
        );
        let started = std::time::Instant::now();
        let compiled = compile_in_child(compiler, bytes, &file)
            .and_then(|peak| map(engine, &file).map(|component| (component, peak)));
        match compiled {
            Ok((component, peak)) => {
                tracing::info!(
                    "Compiled `{name}` in {:.1} s{}",
                    started.elapsed().as_secs_f64(),
                    peak.map(|kib| format!(" (the compiler's peak: {} MiB)", kib / 1024))
                        .unwrap_or_default()
                );
                if let Err(e) = prune(&dir.join("components"), &file, MAX_CACHE_BYTES) {
                    tracing::warn!("pruning the compiled code cache: {e:#}");
                }
                return Ok(component);
            }
            Err(e) => tracing::warn!("compiling `{name}` in this process: {e:#}"),
        }
    }
    // Compiled on an engine of its own, dropped once the code is
    // serialized: the compiler keeps what it compiled with (cranelift's
    // contexts, one per compiling thread) for as long as its engine lives,
    // heap that otherwise stayed resident in an idle host that had compiled
    // (BENCHMARKS.md, "A start that compiles gives its compiler's memory
    // back").
    let compiler = Engine::new(engine.config())
        .inspect_err(|e| tracing::warn!("compiling on the serving engine: {e:?}"))
        .ok();
    let serialized = compile_logged(
        compiler.as_ref().unwrap_or(engine),
        name,
        bytes,
        &format!("once per build: later starts map {}", file.display()),
    )?
    .serialize()
    .map_err(|e| anyhow!("{e:?}"))?;
    drop(compiler);
    // Where the file cannot be written or mapped, the code compiled is
    // loaded from memory onto the serving engine, not compiled again.
    if let Err(e) = store(&serialized, &file) {
        tracing::warn!("not caching compiled code at {}: {e:#}", file.display());
        return from_memory(engine, &serialized);
    }
    if let Err(e) = prune(&dir.join("components"), &file, MAX_CACHE_BYTES) {
        tracing::warn!("pruning the compiled code cache: {e:#}");
    }
    map(engine, &file).or_else(|e| {
        tracing::warn!("loading the compiled code from memory: {e:#}");
        from_memory(engine, &serialized)
    })
}

/// Compiles component `name` on `engine`, logging it as it starts (with
/// `why`) and ends: it takes seconds.
fn compile_logged(engine: &Engine, name: &str, bytes: &[u8], why: &str) -> Result<Component> {
    tracing::info!("Compiling component `{name}` ({why})");
    let started = std::time::Instant::now();
    let component = compile(engine, bytes)?;
    tracing::info!(
        "Compiled `{name}` in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(component)
}

/// Compiles `bytes` on `engine`.
fn compile(engine: &Engine, bytes: &[u8]) -> Result<Component> {
    Component::new(engine, bytes).map_err(|e| anyhow!("{e:?}"))
}

/// Removes the least recently used compiled files of `dir` (never `keep`)
/// until the rest hold at most `limit` bytes; also temporary files left
/// by a crash more than an hour ago.
fn prune(dir: &Path, keep: &Path, limit: u64) -> Result<()> {
    let now = SystemTime::now();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let modified = meta.modified()?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".tmp") {
            if now
                .duration_since(modified)
                .is_ok_and(|age| age.as_secs() > 3600)
            {
                let _ = std::fs::remove_file(&path);
            }
        } else if name.ends_with(".cwasm") && path != keep {
            files.push((modified, meta.len(), path));
        }
    }
    let keep_bytes = std::fs::metadata(keep).map_or(0, |m| m.len());
    let mut total: u64 = keep_bytes + files.iter().map(|f| f.1).sum::<u64>();
    files.sort();
    for (_, len, path) in files {
        if total <= limit {
            break;
        }
        std::fs::remove_file(&path)?;
        total -= len;
    }
    Ok(())
}

/// Writes a serialized compiled component to `file` (through a temporary
/// name).
fn store(bytes: &[u8], file: &Path) -> Result<()> {
    let dir = file.parent().context("no parent directory")?;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        file.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("component"),
        std::process::id()
    ));
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        // On the disk before it has its name: a crash never leaves the key
        // naming a file whose data was lost, and the pages the host then
        // maps are clean, so the idle release can hand them back
        // (`idle::page_out_compiled_code`; 2 MiB of the full app's freshly
        // written pages stayed resident without it, BENCHMARKS.md).
        f.sync_data()
    });
    written
        .and_then(|()| std::fs::rename(&tmp, file))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest valid component: the preamble and no sections.
    const EMPTY: &[u8] = &[0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

    fn files(dir: &Path) -> Result<Vec<String>> {
        let mut names: Vec<String> = std::fs::read_dir(dir.join("components"))?
            .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_>>()?;
        names.sort();
        Ok(names)
    }

    #[test]
    fn the_least_recently_used_files_go_first_and_the_new_one_stays() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let at = |secs: u64| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        let write = |name: &str, len: usize, secs: u64| -> Result<PathBuf> {
            let p = dir.path().join(name);
            std::fs::write(&p, vec![0u8; len])?;
            std::fs::File::options()
                .write(true)
                .open(&p)?
                .set_modified(at(secs))?;
            Ok(p)
        };
        write("old.cwasm", 100, 1_000)?;
        write("used-lately.cwasm", 100, 3_000)?;
        write("middle.cwasm", 100, 2_000)?;
        // The new file is the oldest by time: it is kept all the same.
        let keep = write("new.cwasm", 100, 500)?;
        write(".crashed.tmp", 10, 1_000)?;
        write("other-file", 1_000, 1_000)?;
        prune(dir.path(), &keep, 250)?;
        let mut left: Vec<String> = std::fs::read_dir(dir.path())?
            .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_>>()?;
        left.sort();
        assert_eq!(left, ["new.cwasm", "other-file", "used-lately.cwasm"]);
        Ok(())
    }

    #[test]
    fn compiled_code_is_kept_under_its_key_and_a_damaged_file_is_replaced() -> Result<()> {
        let engine = crate::engine::engine()?;
        let dir = tempfile::tempdir()?;
        let compiled = load(&engine, "empty", EMPTY, Some(dir.path()), None)?;
        assert!(Engine::same(compiled.engine(), &engine));
        let file = path(&engine, EMPTY, dir.path());
        // Compiled on an engine of its own, the file maps on the serving one.
        map(&engine, &file)?;
        let name = file.file_name().and_then(|n| n.to_str()).map(String::from);
        assert_eq!(files(dir.path())?, Vec::from_iter(name.clone()));
        let written = std::fs::read(&file)?;
        assert!(written.len() > EMPTY.len());

        // A second load maps the same file and leaves nothing beside it.
        load(&engine, "empty", EMPTY, Some(dir.path()), None)?;
        assert_eq!(files(dir.path())?, Vec::from_iter(name.clone()));
        assert_eq!(std::fs::read(&file)?, written);

        // A file wasmtime refuses is compiled again and replaced whole.
        std::fs::write(&file, b"not compiled code")?;
        load(&engine, "empty", EMPTY, Some(dir.path()), None)?;
        assert_eq!(std::fs::read(&file)?, written);
        assert_eq!(files(dir.path())?, Vec::from_iter(name));

        // Other bytes get another key.
        assert_ne!(path(&engine, b"\0asm\x0d\0\x01\0 ", dir.path()), file);
        Ok(())
    }

    /// A compile process that fails, or writes a file the serving engine
    /// refuses, costs a compile here, never the start: the component is
    /// compiled in this process and the file replaced with its code.
    #[test]
    fn a_compile_process_that_fails_or_writes_junk_is_compiled_around() -> Result<()> {
        let engine = crate::engine::engine()?;
        let sh = |script: &str| CompileProcess {
            program: PathBuf::from("sh"),
            // `sh -c SCRIPT sh --out FILE`: FILE is `$2`.
            args: vec!["-c".into(), script.into(), "sh".into()],
        };
        for (process, what) in [
            (sh("cat > /dev/null; exit 3"), "fails"),
            (sh("cat > /dev/null; printf junk > \"$2\""), "writes junk"),
            (
                CompileProcess {
                    program: PathBuf::from("/nonexistent/compiler"),
                    args: vec![],
                },
                "cannot start",
            ),
        ] {
            let dir = tempfile::tempdir()?;
            let compiled = load(&engine, "empty", EMPTY, Some(dir.path()), Some(&process))?;
            assert!(Engine::same(compiled.engine(), &engine), "{what}");
            let file = path(&engine, EMPTY, dir.path());
            map(&engine, &file).with_context(|| format!("the compiler {what}"))?;
        }
        Ok(())
    }

    #[test]
    fn the_peak_is_read_from_a_status_listing() {
        let status = "Name:\twikiedge\nVmPeak:\t  999 kB\nVmHWM:\t   146484 kB\nVmRSS:\t 1 kB\n";
        assert_eq!(peak_kib(status), Some(146_484));
        assert_eq!(peak_kib("Name:\tx\n"), None);
    }

    #[test]
    fn a_cache_that_cannot_be_written_still_gives_code_for_the_serving_engine() -> Result<()> {
        let engine = crate::engine::engine()?;
        let dir = tempfile::tempdir()?;
        // `components` is a file, so no compiled file can be written.
        std::fs::write(dir.path().join("components"), b"")?;
        let compiled = load(&engine, "empty", EMPTY, Some(dir.path()), None)?;
        assert!(Engine::same(compiled.engine(), &engine));
        assert!(std::fs::metadata(dir.path().join("components"))?.is_file());
        Ok(())
    }
}
