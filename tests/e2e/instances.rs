//! Instances and the memory they hold: retirement when idle, and what an
//! idle host gives back.

use crate::tooling::{host_with_metrics, metric};
use anyhow::{Context, Result};

/// The resident KiB of a process's mappings of compiled component files
/// (`*.cwasm` in the compile cache), from `/proc/PID/smaps`.
fn compiled_code_rss_kib(pid: u32) -> Result<u64> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps"))?;
    let mut in_code = false;
    let mut kib = 0;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("Rss:") if in_code => {
                kib += fields
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0);
            }
            Some(first) if first.contains('-') && !first.ends_with(':') => {
                in_code = line.trim_end().ends_with(".cwasm");
            }
            _ => {}
        }
    }
    Ok(kib)
}

/// An instance whose guest grew its linear memory past
/// `--idle-instance-max-memory-mib` is retired as soon as it is idle instead
/// of holding that memory for `--idle-instance-timeout` (a linear memory
/// never shrinks); an instance that stayed small is kept.
#[test]
fn an_instance_that_grew_large_is_retired_as_soon_as_it_is_idle() -> Result<()> {
    let (host, metrics_url) = host_with_metrics(|b| {
        b.arg("--idle-instance-timeout")
            .arg("600")
            .arg("--idle-instance-max-memory-mib")
            .arg("8")
    })?;
    let live = || metric(&metrics_url, "wikiedge_instances{component=\"sink\"}");
    let small = wikiedge_tests::get(&host.url("/grow?mib=1"), &[])?;
    assert_eq!(small.text(), "grew 1 MiB");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(live()?, Some(1.0), "a small idle instance was not kept");
    let large = wikiedge_tests::get(&host.url("/grow?mib=24"), &[])?;
    assert_eq!(large.text(), "grew 24 MiB");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while live()? != Some(0.0) {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "an instance holding 24 MiB more was still kept 5 s after its request: {:?} live",
            live()?
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The next request gets a fresh instance.
    assert_eq!(
        wikiedge_tests::get(&host.url("/grow?mib=1"), &[])?.text(),
        "grew 1 MiB"
    );
    Ok(())
}

/// Copies the small compiled component files (the test components', not
/// the app's) of the compile cache `from` into a fresh cache `to`; what is
/// missing is compiled again.
fn copy_compiled(from: &std::path::Path, to: &std::path::Path) -> Result<()> {
    let to = to.join("components");
    std::fs::create_dir_all(&to)?;
    let Ok(entries) = std::fs::read_dir(from.join("components")) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        if let Some(name) = path.file_name()
            && path.extension().is_some_and(|e| e == "cwasm")
            && std::fs::metadata(&path)?.len() < 2 << 20
        {
            std::fs::copy(&path, to.join(name))?;
        }
    }
    Ok(())
}

/// An idle host scales back: its instances retire after
/// `--idle-instance-timeout`, and once nothing has happened for
/// `--idle-release-seconds` it gives back the memory it keeps for speed
/// (docs/host.md, "Memory"), compiled code included.
#[test]
fn an_idle_hosts_instance_pool_empties_and_its_memory_is_released() -> Result<()> {
    // The kernel pages out only pages no other process maps: this host's
    // compiled code must be files of its own, not the shared cache's, which
    // the hosts of tests running alongside map too.
    let cache = wikiedge_tests::TempDir::new("cache")?;
    copy_compiled(
        &wikiedge_tests::target_dir().join("wikiedge-compile-cache"),
        cache.path(),
    )?;
    let (host, metrics_url) = host_with_metrics(|b| {
        b.cache_dir(cache.path())
            .arg("--idle-instance-timeout")
            .arg("3")
            .arg("--idle-release-seconds")
            .arg("0.5")
    })?;
    let metric = |name: &str| metric(&metrics_url, name);
    let r = wikiedge_tests::post(&host.url("/kv/set?key=idle"), &[], b"v")?;
    assert_eq!(r.text(), "ok");
    assert_eq!(
        wikiedge_tests::get(&host.url("/kv/get?key=idle"), &[])?.text(),
        "v"
    );
    let live = "wikiedge_instances{component=\"sink\"}";
    let releases = metric("wikiedge_idle_releases_total")?.unwrap_or(0.0);
    let pid = host.pid().context("the host's pid")?;
    let code_before = compiled_code_rss_kib(pid)?;
    assert!(code_before > 0, "no compiled code resident after requests");
    // Right after the requests an instance is alive (it is kept for 3 s).
    assert!(metric(live)?.is_some_and(|n| n >= 1.0));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut emptied = false;
    while std::time::Instant::now() < deadline {
        if metric(live)? == Some(0.0)
            && metric("wikiedge_idle_releases_total")?.is_some_and(|n| n > releases)
        {
            emptied = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let text = wikiedge_tests::get(&metrics_url, &[])?.text();
    assert!(
        emptied,
        "no instance retired or no release within 15 s:\n{text}"
    );
    // The release also gave back the compiled code's pages (mapped from
    // the compile cache's files): what ran is no longer resident.
    let code_after = compiled_code_rss_kib(pid)?;
    assert!(
        code_after < code_before,
        "compiled code resident: {code_before} KiB before the release, {code_after} KiB after"
    );
    // A retired pool serves again: a fresh instance, the stored value.
    assert_eq!(
        wikiedge_tests::get(&host.url("/kv/get?key=idle"), &[])?.text(),
        "v"
    );
    assert!(metric(live)?.is_some_and(|n| n >= 1.0));
    Ok(())
}
