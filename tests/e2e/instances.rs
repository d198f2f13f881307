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

/// One request on an open keep-alive connection: its response body (with
/// a `Content-Length` or chunked; one response per connection at a time,
/// since the reader buffers).
pub(crate) fn on_connection(
    stream: &mut std::net::TcpStream,
    addr: &str,
    path: &str,
) -> Result<String> {
    send_on(stream, addr, path)?;
    response_body(stream)
}

/// Sends a GET on an open keep-alive connection.
pub(crate) fn send_on(stream: &mut std::net::TcpStream, addr: &str, path: &str) -> Result<()> {
    use std::io::Write;
    // One write: a request written in pieces waits for the host's delayed
    // ACK of the first (40 ms) before the rest is sent.
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    Ok(())
}

/// Reads the next response on a keep-alive connection: its body.
fn response_body(stream: &mut std::net::TcpStream) -> Result<String> {
    use std::io::{BufRead, BufReader, Read};
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let mut next_line = |reader: &mut BufReader<_>| -> Result<String> {
        line.clear();
        anyhow::ensure!(reader.read_line(&mut line)? > 0, "the connection closed");
        Ok(line.trim_end().to_ascii_lowercase())
    };
    let status = next_line(&mut reader)?;
    anyhow::ensure!(status.starts_with("http/1.1 200"), "{status}");
    let (mut length, mut chunked) = (None, false);
    loop {
        let header = next_line(&mut reader)?;
        if header.is_empty() {
            break;
        }
        if let Some(v) = header.strip_prefix("content-length:") {
            length = Some(v.trim().parse::<usize>()?);
        }
        chunked |= header == "transfer-encoding: chunked";
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let size = usize::from_str_radix(next_line(&mut reader)?.trim(), 16)?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body.resize(length.context("neither a length nor chunked")?, 0);
        reader.read_exact(&mut body)?;
    }
    Ok(String::from_utf8(body)?)
}

/// Each serving thread has instances of its own, and connections open at
/// the same time go to different threads: two keep-alive connections
/// taking turns make one instance on each of two threads, where a pool
/// shared by the threads reused one; with a single serving thread they
/// share its instance.
#[test]
fn each_serving_thread_has_instances_of_its_own() -> Result<()> {
    for (threads, instances) in [(2u32, 2.0), (1, 1.0)] {
        let (host, metrics_url) = host_with_metrics(|b| {
            b.arg("--worker-threads")
                .arg(&threads.to_string())
                .arg("--idle-instance-timeout")
                .arg("600")
        })?;
        let addr = host.addr().to_string();
        let mut first = std::net::TcpStream::connect(&addr)?;
        let mut second = std::net::TcpStream::connect(&addr)?;
        for _ in 0..3 {
            for stream in [&mut first, &mut second] {
                assert_eq!(on_connection(stream, &addr, "/grow?mib=1")?, "grew 1 MiB");
            }
        }
        assert_eq!(
            metric(
                &metrics_url,
                "wikiedge_instances_created_total{component=\"sink\"}"
            )?,
            Some(instances),
            "{threads} serving threads"
        );
    }
    Ok(())
}

/// A serving thread whose turns are all taken hands a request to a thread
/// that has one free, which runs it on its own instances: with one turn
/// per thread, a request arriving behind a 1.5 s sleep on the same thread
/// is answered at once by the other thread instead of waiting.
#[test]
fn a_busy_thread_hands_a_request_to_a_free_one() -> Result<()> {
    let (host, metrics_url) = host_with_metrics(|b| {
        b.arg("--worker-threads")
            .arg("2")
            .arg("--max-in-flight-per-component")
            .arg("2")
    })?;
    let addr = host.addr().to_string();
    // Handed out in turn: the first and third to one thread, the second
    // to the other.
    let mut sleeper = std::net::TcpStream::connect(&addr)?;
    let _other = std::net::TcpStream::connect(&addr)?;
    let mut behind = std::net::TcpStream::connect(&addr)?;
    send_on(&mut sleeper, &addr, "/sleep?ms=1500")?;
    std::thread::sleep(std::time::Duration::from_millis(300));
    let asked = std::time::Instant::now();
    assert_eq!(
        on_connection(&mut behind, &addr, "/grow?mib=1")?,
        "grew 1 MiB"
    );
    let waited = asked.elapsed();
    assert!(
        waited < std::time::Duration::from_millis(1000),
        "the request waited {waited:?} behind the sleep on its own thread"
    );
    assert_eq!(response_body(&mut sleeper)?, "slept");
    assert_eq!(
        metric(&metrics_url, "wikiedge_requests_handed_over_total")?,
        Some(1.0)
    );
    assert_eq!(
        metric(
            &metrics_url,
            "wikiedge_instances_created_total{component=\"sink\"}"
        )?,
        Some(2.0),
        "the handed-over request did not run on the other thread's instances"
    );
    Ok(())
}

/// A host stopped with SIGTERM retires its instances while its serving
/// threads still run: none is reported failed on the way out (wasmtime
/// reports an instance cancelled with its runtime as "worker panicked",
/// which the host logged as an error on every stop), and it exits cleanly.
#[test]
fn a_stopped_host_retires_its_instances_instead_of_failing_them() -> Result<()> {
    let (mut host, metrics_url) = host_with_metrics(|b| {
        b.arg("--worker-threads")
            .arg("2")
            .arg("--idle-instance-timeout")
            .arg("600")
    })?;
    let addr = host.addr().to_string();
    // Two connections at once: an instance on each serving thread.
    let mut first = std::net::TcpStream::connect(&addr)?;
    let mut second = std::net::TcpStream::connect(&addr)?;
    for stream in [&mut first, &mut second] {
        assert_eq!(on_connection(stream, &addr, "/grow?mib=1")?, "grew 1 MiB");
    }
    assert_eq!(
        metric(&metrics_url, "wikiedge_instances{component=\"sink\"}")?,
        Some(2.0),
        "no instance on each thread to retire"
    );
    drop((first, second));
    let status = host.terminate(std::time::Duration::from_secs(30))?;
    let log = host.log();
    assert!(status.success(), "{status}:\n{log}");
    assert!(log.contains("Stopped"), "{log}");
    assert!(!log.contains("instance failed"), "{log}");
    assert!(!log.contains("still busy"), "{log}");
    Ok(())
}

/// A stop does not wait for a response that outlasts `--shutdown-timeout`
/// (a realtime stream runs for up to 15 minutes): its connection is cut at
/// the deadline, the instance still busy with it is discarded after the
/// retire bound with one warning and no error, and the host exits cleanly
/// long before the guest would have answered.
#[test]
fn a_stop_cuts_a_response_that_outlasts_the_shutdown_timeout() -> Result<()> {
    let (mut host, _) = host_with_metrics(|b| b.arg("--shutdown-timeout").arg("1"))?;
    let addr = host.addr().to_string();
    let mut slow = std::net::TcpStream::connect(&addr)?;
    send_on(&mut slow, &addr, "/sleep?ms=60000")?;
    std::thread::sleep(std::time::Duration::from_millis(300));
    let asked = std::time::Instant::now();
    let status = host.terminate(std::time::Duration::from_secs(30))?;
    let took = asked.elapsed();
    let log = host.log();
    assert!(status.success(), "{status}:\n{log}");
    assert!(
        took < std::time::Duration::from_secs(10),
        "the stop took {took:?}:\n{log}"
    );
    assert!(
        log.contains("1 connection(s) still open after 1s cut"),
        "{log}"
    );
    assert!(log.contains("1 instance(s) still busy"), "{log}");
    assert!(!log.contains("instance failed"), "{log}");
    assert!(log.contains("Stopped"), "{log}");
    // The client sees its connection closed without a response.
    assert!(response_body(&mut slow).is_err());
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
    empties_and_releases(cache.path()).map(drop)
}

/// A host that starts with an empty compile cache compiles, writes its
/// code's files and maps them, and gives their pages back once idle as a
/// host that found them does. (With the full app, the files' pages stayed
/// resident unless they were synced before being mapped, `compiled.rs`;
/// this test's smaller components are given back either way.)
#[test]
fn a_host_that_compiled_its_code_gives_its_pages_back_when_idle() -> Result<()> {
    let cache = wikiedge_tests::TempDir::new("empty-cache")?;
    let log = empties_and_releases(cache.path())?;
    // Seconds of compiling are not silent. (`sink` and `hidden` are the
    // same bytes: the second of them maps the first's file.)
    assert!(
        log.contains("Compiling component `greeted`") && log.contains("Compiled `greeted` in "),
        "{log}"
    );
    assert!(
        std::fs::read_dir(cache.path().join("components"))?.count() > 0,
        "the host compiled nothing into its empty cache"
    );
    Ok(())
}

/// Instances retire and the idle release gives back the compiled code's
/// pages, for a host on the compile cache `cache`; returns the host's log.
fn empties_and_releases(cache: &std::path::Path) -> Result<String> {
    let (host, metrics_url) = host_with_metrics(|b| {
        b.cache_dir(cache)
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
    Ok(host.log())
}

/// `VmHWM` of a process, in KiB.
fn peak_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM")
}

/// A host that starts on an empty compile cache compiles each component in
/// a process of its own (`wikiedge compile-component`), so the compiler's
/// memory is never the server's: the server's own peak stays below what
/// compiling `articles` alone took. Compiled in the server, its peak would
/// be at least that.
#[test]
fn a_host_compiles_in_a_process_of_its_own_and_its_peak_stays_below_the_compilers() -> Result<()> {
    let cache = wikiedge_tests::TempDir::new("compile-child")?;
    let start = || {
        wikiedge_tests::Host::builder(crate::BIN, &wikiedge_tests::repo_root().join("spin.toml"))
            .env("SPIN_VARIABLE_ADMIN_API_KEY", crate::ADMIN_KEY)
            .cache_dir(cache.path())
            .arg("--quiet")
            .start()
    };
    let host = start()?;
    let log = host.log();
    let compiler_mib: u64 = log
        .lines()
        .find(|l| l.contains("Compiled `articles` in "))
        .and_then(|l| l.split("the compiler's peak: ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no compiler's peak for `articles` in the log:\n{log}"))?;
    assert!(
        log.contains("Compiling component `articles` (once per build, in a process of its own"),
        "{log}"
    );
    // Serving works on the code the child compiled, and a later start
    // maps the files instead of compiling.
    let r = wikiedge_tests::get(&host.url("/v2/codes"), &[])?;
    assert_eq!(r.status, 401, "{}", r.text());
    let server_mib = peak_kib(host.pid().context("the host's pid")?)? / 1024;
    assert!(
        server_mib < compiler_mib,
        "the server peaked at {server_mib} MiB, compiling `articles` took {compiler_mib} MiB"
    );
    drop(host);
    let again = start()?;
    assert!(
        !again.log().contains("Compiling component"),
        "{}",
        again.log()
    );
    Ok(())
}

/// A guest that runs long does not hold up the other requests on its
/// serving thread. It yields at every epoch tick (10 ms), and the thread's
/// runtime must then read the other connections and run their requests:
/// a plain wake-up put the guest straight back on the run queue, and
/// tokio polls for I/O only every 61 task polls, so with each poll a tick
/// long, a neighbour's request waited for the guest to end.
#[test]
fn a_long_running_guest_lets_the_requests_on_its_thread_through() -> Result<()> {
    use std::time::{Duration, Instant};
    let (host, _) = host_with_metrics(|b| {
        b.arg("--worker-threads")
            .arg("1")
            .arg("--request-cpu-limit-ms")
            .arg("5000")
    })?;
    let addr = host.addr().to_string();
    let mut neighbour = std::net::TcpStream::connect(&addr)?;
    const ROUNDS: u32 = 10;
    let mut requests = || -> Result<Duration> {
        let start = Instant::now();
        for _ in 0..ROUNDS {
            anyhow::ensure!(
                on_connection(&mut neighbour, &addr, "/var/message")? == "hello, world"
            );
        }
        Ok(start.elapsed())
    };
    let idle = requests()?;
    // A guest looping until its 5 s CPU limit, on the same (only) thread.
    let mut looping = std::net::TcpStream::connect(&addr)?;
    send_on(&mut looping, &addr, "/loop")?;
    std::thread::sleep(Duration::from_millis(200));
    let beside = requests()?;
    // Each request waits a tick or two for the guest to yield: about 0.2 s
    // for all 10, against the 4.8 s the loop had left.
    assert!(
        beside < idle * 4 + Duration::from_secs(1),
        "{ROUNDS} requests took {beside:?} beside a looping guest, {idle:?} without it"
    );
    Ok(())
}
