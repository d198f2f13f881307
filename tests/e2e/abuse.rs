//! Hostile traffic against the real host (issue 16): slow senders, guests
//! that never answer. Every test talks only to 127.0.0.1, opens a bounded
//! number of sockets and stops by itself; waits are bounded ("answered
//! within 2 s"), never exact timings.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use wikiedge_tests::{Host, get, repo_root};

use crate::articles::{app_with_sample, bearer};
use crate::{ADMIN_KEY, BIN, host_test_manifest};

/// Opens `n` connections that each send `prefix` and then nothing more.
fn stalled_connections(host: &Host, n: usize, prefix: &str) -> Result<Vec<TcpStream>> {
    let addr = host.addr();
    (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(addr).context("connect")?;
            s.write_all(prefix.as_bytes())?;
            Ok(s)
        })
        .collect()
}

/// How many of `conns` the server has closed (a read sees EOF or an error
/// instead of timing out). A 408 answer followed by a close counts.
fn closed_by_server(conns: &[TcpStream]) -> usize {
    conns
        .iter()
        .filter(|s| {
            let mut s: &TcpStream = s;
            let _ = s.set_read_timeout(Some(Duration::from_millis(5)));
            let mut buf = [0u8; 512];
            loop {
                match s.read(&mut buf) {
                    Ok(0) => return true,
                    Ok(_) => continue,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        return false;
                    }
                    Err(_) => return true,
                }
            }
        })
        .count()
}

#[test]
fn slow_senders_do_not_delay_an_authenticated_reader() -> Result<()> {
    let Some((_state, host)) = app_with_sample(&[])? else {
        return Ok(());
    };
    let auth = bearer(&host, "abuse-reader")?;
    let url = host.url("/v2/articles/Anarchism");
    // Warm: the article is served (and its instances exist) before the attack.
    let r = get(&url, &[("authorization", auth.as_str())])?;
    assert_eq!(r.status, 200, "{}", r.text());

    let host_header = host.addr();
    // 200 requests whose body never arrives (each would hold a component
    // permit if the host waited for the body inside the component)...
    let slow_bodies = stalled_connections(
        &host,
        200,
        &format!(
            "POST /v2/articles/x HTTP/1.1\r\nHost: {host_header}\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{{"
        ),
    )?;
    // ... and 200 whose headers never end.
    let slow_headers = stalled_connections(
        &host,
        200,
        &format!("GET /v2/articles/Anarchism HTTP/1.1\r\nHost: {host_header}\r\nX-Slow: "),
    )?;
    // Let the host accept them all before measuring.
    std::thread::sleep(Duration::from_millis(300));

    for i in 0..10 {
        // Stay under the free plan's burst rate (10 per second).
        std::thread::sleep(Duration::from_millis(150));
        let start = Instant::now();
        let r = get(&url, &[("authorization", auth.as_str())])?;
        let took = start.elapsed();
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
        assert!(
            took < Duration::from_secs(2),
            "request {i} took {took:?} while 400 slow clients were connected"
        );
        assert_eq!(r.json()?[0]["name"], "Anarchism");
    }
    // The attack was still in place while the reader was served: the
    // header and body timeouts (10 s, 30 s by default) had not fired.
    assert!(
        closed_by_server(&slow_headers) < 200,
        "the slow-header connections were all gone before the measurement ended"
    );
    assert!(
        closed_by_server(&slow_bodies) < 200,
        "the slow-body connections were all gone before the measurement ended"
    );
    Ok(())
}

#[test]
fn slow_headers_and_bodies_are_cut_at_their_timeouts() -> Result<()> {
    let host = Host::builder(BIN, &host_test_manifest())
        .env("SPIN_VARIABLE_SECRET_WORD", "x")
        .arg("--header-read-timeout")
        .arg("3")
        .arg("--body-read-timeout")
        .arg("3")
        .start()?;
    let host_header = host.addr();
    let slow_headers = stalled_connections(
        &host,
        20,
        &format!("GET /exact HTTP/1.1\r\nHost: {host_header}\r\n"),
    )?;
    let slow_bodies = stalled_connections(
        &host,
        20,
        &format!(
            "POST /kv/set?key=slow HTTP/1.1\r\nHost: {host_header}\r\nContent-Length: 100\r\n\r\nabc"
        ),
    )?;
    // Well within the (3 s) timeouts nothing is cut...
    assert_eq!(closed_by_server(&slow_headers), 0);
    assert_eq!(closed_by_server(&slow_bodies), 0);
    // ... and the 20 bodies that never arrive (more than the component's 16
    // slots) hold no slot of the component they are for: it still answers.
    let start = Instant::now();
    assert_eq!(get(&host.url("/var/message"), &[])?.text(), "hello, world");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );

    // ... and within a few seconds of them everything is.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let closed = closed_by_server(&slow_headers) + closed_by_server(&slow_bodies);
        if closed == 40 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {closed} of 40 slow connections were closed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // A slow body is answered 408 before the connection closes, and the
    // component never saw it.
    let mut s = TcpStream::connect(host_header)?;
    s.write_all(
        format!(
            "POST /kv/set?key=late HTTP/1.1\r\nHost: {host_header}\r\nContent-Length: 10\r\n\r\nab"
        )
        .as_bytes(),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"status\":408"), "{answer}");
    assert_eq!(get(&host.url("/kv/exists?key=late"), &[])?.text(), "false");
    Ok(())
}

/// Request bodies buffered at once share one budget: while slow senders
/// hold it, another body is refused at once with a 503 and `Retry-After:
/// 1`, before it waits for anything; once they are gone it is taken.
#[test]
fn request_bodies_beyond_the_buffered_budget_are_refused_until_it_frees() -> Result<()> {
    let host = Host::builder(BIN, &host_test_manifest())
        .env("SPIN_VARIABLE_SECRET_WORD", "x")
        .arg("--max-buffered-body-bytes")
        .arg("8192")
        .start()?;
    let host_header = host.addr();
    // Declares 6000 bytes and sends three: 6 KiB of the 8 stay reserved.
    let slow = stalled_connections(
        &host,
        1,
        &format!(
            "POST /kv/set?key=slow HTTP/1.1\r\nHost: {host_header}\r\nContent-Length: 6000\r\n\r\nabc"
        ),
    )?;
    std::thread::sleep(Duration::from_millis(300));
    let body = vec![b'x'; 4000];
    let r = wikiedge_tests::post(&host.url("/kv/set?key=second"), &[], &body)?;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()?["status"], 503);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(
        get(&host.url("/kv/exists?key=second"), &[])?.text(),
        "false"
    );
    // The slow sender leaves: its share comes back.
    drop(slow);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = wikiedge_tests::post(&host.url("/kv/set?key=second"), &[], &body)?;
        if r.status == 200 {
            break;
        }
        ensure!(
            r.status == 503 && Instant::now() < deadline,
            "the budget never came back: {} {}",
            r.status,
            r.text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(get(&host.url("/kv/exists?key=second"), &[])?.text(), "true");
    Ok(())
}

#[test]
fn a_looping_guest_is_stopped_at_its_deadline_and_neighbours_are_served() -> Result<()> {
    let host = Host::builder(BIN, &host_test_manifest())
        .env("SPIN_VARIABLE_SECRET_WORD", "x")
        .arg("--request-cpu-limit-ms")
        .arg("1000")
        .start()?;
    let loop_url = host.url("/loop");
    let looping = std::thread::spawn(move || {
        let start = Instant::now();
        get(&loop_url, &[]).map(|r| (r, start.elapsed()))
    });
    // While the guest loops, the same component keeps answering.
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    let r = get(&host.url("/var/message"), &[])?;
    assert_eq!(r.text(), "hello, world");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "a neighbour took {:?}",
        start.elapsed()
    );

    let (r, took) = looping
        .join()
        .map_err(|_| anyhow::anyhow!("client panicked"))??;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()?["status"], 503);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(10),
        "stopped after {took:?} with a 1 s limit"
    );
    // The trapped instance is gone; the next requests get a fresh one.
    for _ in 0..3 {
        assert_eq!(get(&host.url("/var/message"), &[])?.text(), "hello, world");
    }
    assert!(
        host.log().contains("CPU time limit"),
        "the cause is logged:\n{}",
        host.log()
    );
    Ok(())
}

#[test]
fn if_none_match_star_never_buys_upstream_traffic_beyond_the_quota() -> Result<()> {
    use std::sync::atomic::Ordering;
    let wiki = crate::articles::MockWiki::start()?;
    let overrides = format!("{{\"enwiki\":\"{}\"}}", wiki.url);
    let plans = r#"[{"name":"free","monthly":{"ondemand":5,"snapshot":30,"chunk":1500},"burst_per_second":1000}]"#;
    let Some((_state, host)) = app_with_sample(&[
        ("SPIN_VARIABLE_UPSTREAM_OVERRIDES", &overrides),
        ("SPIN_VARIABLE_PLANS", plans),
    ])?
    else {
        return Ok(());
    };
    let auth = bearer(&host, "star-gazer")?;
    let star = [("authorization", auth.as_str()), ("if-none-match", "*")];

    // Twelve uncached titles with `If-None-Match: *`: each one that goes
    // upstream is charged first, so at most 5 (the quota) reach it.
    let before = wiki.hits.load(Ordering::SeqCst);
    let mut statuses = Vec::new();
    for i in 0..12 {
        let r = get(&host.url(&format!("/v2/articles/Uncached_{i}")), &star)?;
        statuses.push(r.status);
    }
    let upstream = wiki.hits.load(Ordering::SeqCst) - before;
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        7,
        "{statuses:?}"
    );
    assert!(!statuses.contains(&304), "{statuses:?}");
    // One article fetch is at most five upstream requests (docs/upstream.md).
    assert!(
        upstream <= 5 * 5,
        "{upstream} upstream requests for {statuses:?}"
    );
    let (admitted, denied) = crate::common::usage_today(&host, &auth, "ondemand")?;
    assert_eq!((admitted, denied), (5, 7));

    // A fresh cached copy does match `*`, and the 304 is charged too.
    let other = bearer(&host, "star-gazer-2")?;
    let star = [("authorization", other.as_str()), ("if-none-match", "*")];
    let r = get(&host.url("/v2/articles/Squirrel"), &star)?;
    assert_eq!(r.status, 200, "fetched, so not a match: {}", r.text());
    let hits = wiki.hits.load(Ordering::SeqCst);
    let r = get(&host.url("/v2/articles/Squirrel"), &star)?;
    assert_eq!(r.status, 304);
    assert_eq!(
        wiki.hits.load(Ordering::SeqCst),
        hits,
        "served from the cache"
    );
    let (admitted, _) = crate::common::usage_today(&host, &other, "ondemand")?;
    assert_eq!(admitted, 2);
    Ok(())
}

/// A mock MediaWiki on loopback serving one page, `Hostile`, whose wikitext
/// is `source`.
fn hostile_wiki(source: String) -> Result<String> {
    use std::net::TcpListener;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    let page = |extra: serde_json::Value| {
        let mut v = serde_json::json!({"id": 4242, "key": "Hostile", "title": "Hostile",
            "latest": {"id": 777, "timestamp": "2026-01-01T00:00:00Z"}, "content_model": "wikitext",
            "license": {"url": "https://creativecommons.org/licenses/by-sa/4.0/", "title": "CC BY-SA 4.0"}});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        v.to_string()
    };
    let rest = page(serde_json::json!({"html": "<p>Hostile.</p>"}));
    let src = page(serde_json::json!({ "source": source }));
    let action = serde_json::json!({"batchcomplete": true, "query": {"pages": [{"pageid": 4242,
        "ns": 0, "title": "Hostile", "pagelanguage": "en", "lastrevid": 777}]}})
    .to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (rest, src, action) = (rest.clone(), src.clone(), action.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                let n = stream.read(&mut buf).unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                let body = if path == "/w/rest.php/v1/page/Hostile/with_html" {
                    rest
                } else if path == "/w/rest.php/v1/page/Hostile" {
                    src
                } else {
                    action
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    Ok(url)
}

#[test]
fn a_poisoned_page_from_upstream_is_served_without_a_trap() -> Result<()> {
    // 200,000 nested links (1.2 MB of wikitext) after a readable lead.
    let nested = format!("{}x{}", "[[a|".repeat(200_000), "]]".repeat(200_000));
    let url = hostile_wiki(format!(
        "'''Hostile''' lead.\n\n{nested}\n\n== Later ==\nText."
    ))?;
    let overrides = format!("{{\"enwiki\":\"{url}\"}}");
    let Some((_state, host)) =
        app_with_sample(&[("SPIN_VARIABLE_UPSTREAM_OVERRIDES", &overrides)])?
    else {
        return Ok(());
    };
    let auth = bearer(&host, "poison-reader")?;
    let r = get(
        &host.url("/v2/articles/Hostile?fields=name,abstract"),
        &[("authorization", auth.as_str())],
    )?;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()?[0]["abstract"], "Hostile lead.");
    let r = get(
        &host.url("/v2/structured-contents/Hostile"),
        &[("authorization", auth.as_str())],
    )?;
    assert_eq!(r.status, 200, "{}", r.text());
    let doc = &r.json()?[0];
    let names: Vec<&str> = doc["article_sections"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["Abstract", "Later"]);
    assert!(!host.log().contains("failed"), "{}", host.log());
    Ok(())
}

/// `(admitted, bytes)` of `product` today in `GET /v1/usage` as `auth`.
fn usage_with_bytes(host: &Host, auth: &str, product: &str) -> Result<(u64, u64)> {
    let day = crate::common::today()?;
    let r = get(
        &host.url(&format!("/v1/usage?from={day}&to={day}")),
        &[("authorization", auth)],
    )?;
    ensure!(r.status == 200, "usage: {}", r.text());
    let v = r.json()?;
    let rows = v["usage"].as_array().context("usage rows")?;
    Ok(rows
        .iter()
        .filter(|r| r["product"] == product)
        .fold((0, 0), |(a, b), r| {
            (
                a + r["admitted"].as_u64().unwrap_or(0),
                b + r["bytes"].as_u64().unwrap_or(0),
            )
        }))
}

/// Reads what `s` still holds; `true` when the server closed it (EOF or a
/// reset) before `within`, `false` when it was still open.
fn drained_to_close(s: &mut TcpStream, within: Duration) -> Result<bool> {
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    let end = Instant::now() + within;
    let mut buf = vec![0u8; 1 << 16];
    while Instant::now() < end {
        match s.read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(false);
            }
            Err(_) => return Ok(true),
        }
    }
    Ok(false)
}

/// A realtime reader that opens its stream and then never reads: once its
/// TCP window is full, the host's send timeout (2 s here; the connection
/// limit is 600 s) closes the connection, the component notices, meters
/// the connection with its bytes and gives the stream slot back, so a new
/// stream of the same account succeeds although the cap (lowered to 1
/// through `max_concurrent_streams`) was reached.
#[test]
fn a_stalled_realtime_reader_is_cut_at_the_send_bound_freed_and_metered() -> Result<()> {
    use crate::realtime::{Wiki, account, ingest, open_raw_stream, synthetic_event};
    let wiki = Wiki::start()?;
    let host = Host::builder(BIN, &repo_root().join("spin.toml"))
        .env("SPIN_VARIABLE_ADMIN_API_KEY", ADMIN_KEY)
        .env("SPIN_VARIABLE_UPSTREAM_OVERRIDES", &wiki.overrides())
        .env("SPIN_VARIABLE_REALTIME_MAX_CONNECTION_SECONDS", "600")
        .env("SPIN_VARIABLE_REALTIME_POLL_MS", "20")
        .env("SPIN_VARIABLE_MAX_CONCURRENT_STREAMS", "1")
        .arg("--send-timeout")
        .arg("2")
        .arg("--quiet")
        .start()?;
    let auth = account(&host, "staller", "paid")?;
    let (mut stalled, status) = open_raw_stream(&host, &auth)?;
    ensure!(status.starts_with("HTTP/1.1 200"), "{status}");
    // The lowered cap holds (the default is 8).
    let (_refused, status) = open_raw_stream(&host, &auth)?;
    ensure!(status.starts_with("HTTP/1.1 429"), "{status}");
    assert_eq!(usage_with_bytes(&host, &auth, "realtime")?.0, 0);

    // Events of ~40 KB each (a long edit comment) flow until the reader's
    // window, the host's buffers and the component's are full; the reader
    // never reads. Bounded: at most 40 batches of 40 events (64 MB).
    let comment = "x".repeat(40_000);
    let started = Instant::now();
    let mut freed = None;
    for batch in 0..40 {
        let body: String = (batch * 40..batch * 40 + 40)
            .map(|n| {
                // The mock wiki's pages are at revision 42: the event's
                // comment is laid over the fetched page of that revision.
                let mut e = synthetic_event(n, n);
                e["revision"]["rev_id"] = serde_json::Value::from(42);
                e["revision"]["comment"] = serde_json::Value::from(format!("{n} {comment}"));
                format!("{e}\n")
            })
            .collect();
        let r = ingest(&host, body.as_bytes())?;
        ensure!(r.status == 200, "ingest: {}", r.text());
        let (_s, status) = open_raw_stream(&host, &auth)?;
        if status.starts_with("HTTP/1.1 200") {
            freed = Some(started.elapsed());
            break;
        }
        ensure!(status.starts_with("HTTP/1.1 429"), "{status}");
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the stalled stream still holds its slot after {:?}",
            started.elapsed()
        );
    }
    let freed = freed.context("the stalled stream never gave its slot back")?;
    // Far sooner than the 600 s connection limit: the send bound cut it.
    assert!(freed < Duration::from_secs(90), "freed after {freed:?}");
    // The server closed the stalled connection: what it holds drains to EOF.
    assert!(
        drained_to_close(&mut stalled, Duration::from_secs(30))?,
        "the stalled connection is still open"
    );
    // Metered: the cut connection counts, with the bytes it was sent.
    let deadline = Instant::now() + Duration::from_secs(5);
    let (admitted, bytes) = loop {
        let seen = usage_with_bytes(&host, &auth, "realtime")?;
        if seen.0 >= 1 || Instant::now() > deadline {
            break seen;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(admitted >= 1, "the stalled connection was not metered");
    assert!(
        bytes > 100_000,
        "the stalled connection was metered with {bytes} bytes"
    );
    Ok(())
}

/// With 10 (the default cap) downloads of one account held open, the 11th
/// gets 429 with `Retry-After` and another account is unaffected; once one
/// of the 10 finishes, a new one succeeds.
/// A snapshot too big to sit in the socket buffers of a client that does
/// not read (a loopback send buffer grows to 4 MB): 80 pages of 200 KB of
/// pseudo-random words, in a dump whose header is the fixtures' own.
fn big_snapshot() -> Result<Option<(wikiedge_tests::TempDir, wikiedge_cli::snapshot::Summary)>> {
    let Some(fixtures) = wikiedge_tests::fixtures_or_skip() else {
        return Ok(None);
    };
    let export = std::fs::read_to_string(fixtures.join("dumps/enwiki-pear-export-0.10.xml"))?;
    let head = &export[..export.find("</siteinfo>").context("siteinfo")? + "</siteinfo>".len()];
    let mut xml = format!("{head}\n");
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for page in 0..80 {
        let text = words(&mut seed, 200_000);
        xml.push_str(&page_xml(&format!("Bulk {page}"), 900_000 + page, &text));
    }
    xml.push_str("</mediawiki>\n");
    let state = wikiedge_tests::TempDir::new("big-snapshot")?;
    let dump = state.path().join("enwiki-bulk.xml");
    std::fs::write(&dump, xml)?;
    crate::snapshots::build_from(state, dump, 4_000_000).map(Some)
}

/// A built snapshot's state directory, its summary and the app on it.
type BigSnapshot = (
    wikiedge_tests::TempDir,
    wikiedge_cli::snapshot::Summary,
    Host,
);

/// [`big_snapshot`] (checked to be too big for the socket buffers of a
/// client that does not read) and the app on it, with a free plan that has
/// room for many snapshot downloads and `args`.
fn big_snapshot_app(args: &[&str]) -> Result<Option<BigSnapshot>> {
    let Some((state, summary)) = big_snapshot()? else {
        return Ok(None);
    };
    ensure!(
        summary.tar_gz_bytes > 12_000_000,
        "{} bytes",
        summary.tar_gz_bytes
    );
    let plans = r#"[{"name":"free","monthly":{"ondemand":1000,"snapshot":30,"chunk":1500},"burst_per_second":1000}]"#;
    let mut builder = Host::builder(BIN, &repo_root().join("spin.toml"))
        .env("SPIN_VARIABLE_ADMIN_API_KEY", ADMIN_KEY)
        .env("SPIN_VARIABLE_PLANS", plans)
        .state_dir(state.path())
        .arg("--quiet");
    for arg in args {
        builder = builder.arg(arg);
    }
    Ok(Some((state, summary, builder.start()?)))
}

#[test]
fn the_eleventh_concurrent_download_of_an_account_is_refused_until_one_ends() -> Result<()> {
    // Held downloads must outlast the test, not be cut as stalled readers
    // (30 s by default).
    let Some((_state, summary, host)) = big_snapshot_app(&["--send-timeout", "600"])? else {
        return Ok(());
    };
    let auth = crate::quota::bearer(&host, "hoarder", "user")?;
    let path = format!("/v2/snapshots/{}/download", summary.identifier);
    let mut held = Vec::new();
    for i in 0..10 {
        let (s, status) = wikiedge_tests::get_head_only(&host, &path, &auth)?;
        ensure!(status.starts_with("HTTP/1.1 200"), "download {i}: {status}");
        held.push(s);
    }
    crate::common::refused_for_now(&get(&host.url(&path), &[("authorization", auth.as_str())])?)?;
    // A range is a download body too.
    let r = get(
        &host.url(&path),
        &[("authorization", auth.as_str()), ("range", "bytes=0-99")],
    )?;
    assert_eq!(r.status, 429, "{}", r.text());

    // Another account is not affected.
    let other = crate::quota::bearer(&host, "bystander", "user")?;
    let r = get(&host.url(&path), &[("authorization", other.as_str())])?;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body.len() as u64, summary.tar_gz_bytes);

    // One of the ten finishes (its client reads it to the end)...
    let mut first = held.remove(0);
    first.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut rest = Vec::new();
    first.read_to_end(&mut rest)?;
    ensure!(
        rest.len() as u64 >= summary.tar_gz_bytes,
        "read {} of {} bytes",
        rest.len(),
        summary.tar_gz_bytes
    );
    // ... and a new one succeeds (the slot is given back as the body ends).
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        let (s, status) = wikiedge_tests::get_head_only(&host, &path, &auth)?;
        if !status.starts_with("HTTP/1.1 429") || Instant::now() > deadline {
            held.push(s);
            break status;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    ensure!(status.starts_with("HTTP/1.1 200"), "{status}");
    // Ten are held again: the cap is in force again.
    let r = get(&host.url(&path), &[("authorization", auth.as_str())])?;
    assert_eq!(r.status, 429, "{}", r.text());
    drop(held);
    Ok(())
}

/// A snapshot download reads at most a few parts ahead of a client that
/// stops reading (`PARTS_AHEAD` in `functions/common/src/respond.rs`).
/// Seen from outside: a new build of the snapshot, made while the client
/// stalls, deletes the replaced version's parts; a download that had read
/// them all ahead would still send the whole archive, one that reads two
/// parts ahead ends short.
#[test]
fn a_snapshot_download_reads_only_a_few_parts_ahead_of_a_stalled_client() -> Result<()> {
    // 1 MiB parts; more than the socket buffers and the queued parts hold.
    let Some((state, summary, host)) = big_snapshot_app(&[])? else {
        return Ok(());
    };
    let auth = crate::quota::bearer(&host, "slow-reader", "user")?;
    let path = format!("/v2/snapshots/{}/download", summary.identifier);
    let (mut stalled, status) = wikiedge_tests::get_head_only(&host, &path, &auth)?;
    ensure!(status.starts_with("HTTP/1.1 200"), "{status}");
    std::thread::sleep(Duration::from_millis(1500));

    // One more article and a new build, while the client stalls: the new
    // version's build deletes the parts of the one being downloaded.
    let dump = state.path().join("enwiki-one-more.xml");
    std::fs::write(&dump, large_pages_dump(1, 1000))?;
    let mut import = wikiedge_cli::import::ImportArgs::new(dump, Some("enwiki".into()))
        .with_state_dir(state.path());
    import.progress = false;
    wikiedge_cli::import::run(import)?;
    let mut args = wikiedge_cli::snapshot::SnapshotArgs::new("enwiki");
    args.state_dir = state.path().to_path_buf();
    args.chunk_size = 4_000_000;
    args.progress = false;
    let rebuilt = wikiedge_cli::snapshot::run(args)?;
    ensure!(
        rebuilt.version != summary.version && rebuilt.deleted_parts > 0,
        "the snapshot was not replaced: {rebuilt}"
    );

    // The client reads on: what was in flight and the parts read ahead,
    // then the transfer ends short.
    let received = wikiedge_tests::bytes_until_closed(&mut stalled) as u64;
    eprintln!(
        "received {received} of {} bytes after the stall",
        summary.tar_gz_bytes
    );
    ensure!(
        received < summary.tar_gz_bytes,
        "the whole {}-byte archive arrived: the download had read its parts ahead",
        summary.tar_gz_bytes
    );
    Ok(())
}

/// At least `bytes` of pseudo-random words and lines drawn from `seed`.
fn words(seed: &mut u64, bytes: usize) -> String {
    let mut text = String::with_capacity(bytes + 16);
    while text.len() < bytes {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        for i in 0..2 + ((*seed >> 60) % 10) as usize {
            text.push((b'a' + ((*seed >> (i * 5)) % 26) as u8) as char);
        }
        text.push(if (*seed >> 40).is_multiple_of(12) {
            '\n'
        } else {
            ' '
        });
    }
    text
}

/// One `<page>` of a dump: article `title`, page id `id` (its revision's id
/// 100,000 lower), wikitext `text`.
fn page_xml(title: &str, id: usize, text: &str) -> String {
    format!(
        "  <page>\n    <title>{title}</title>\n    <ns>0</ns>\n    <id>{id}</id>\n    <revision>\n      <id>{}</id>\n      <timestamp>2026-01-01T00:00:00Z</timestamp>\n      <contributor>\n        <username>Bulk</username>\n        <id>1</id>\n      </contributor>\n      <model>wikitext</model>\n      <format>text/x-wiki</format>\n      <text xml:space=\"preserve\" bytes=\"{}\">{text}</text>\n    </revision>\n  </page>\n",
        id - 100_000,
        text.len()
    )
}

/// A dump of `pages` articles titled `Large 0`, `Large 1`, ... of about
/// `bytes` of pseudo-random words each, under a site header written here
/// (no fixtures needed).
fn large_pages_dump(pages: usize, bytes: usize) -> String {
    let mut xml = String::from(
        "<mediawiki xmlns=\"http://www.mediawiki.org/xml/export-0.10/\" version=\"0.10\" xml:lang=\"en\">\n  <siteinfo>\n    <sitename>Wikipedia</sitename>\n    <dbname>enwiki</dbname>\n    <base>https://en.wikipedia.org/wiki/Main_Page</base>\n    <generator>MediaWiki 1.41.0</generator>\n    <case>first-letter</case>\n    <namespaces>\n      <namespace key=\"0\" case=\"first-letter\" />\n    </namespaces>\n  </siteinfo>\n",
    );
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for page in 0..pages {
        let text = words(&mut seed, bytes);
        xml.push_str(&page_xml(&format!("Large {page}"), 700_000 + page, &text));
    }
    xml.push_str("</mediawiki>\n");
    xml
}

/// A client rotating through many large articles, on both routes and
/// with selections (`fields`), cannot make an instance of `articles` hold
/// them: an instance keeps at most 4 MiB of the bodies it sent
/// (`functions/common/src/kept.rs`), articles, structured contents and
/// selections together, no rendering over 1 MiB and no selection over 64
/// KiB (keeping the 0.6 MB sections of the larger pages grew the instance
/// past its bound: `MAX_SELECTION`), so its
/// guests stay under `--idle-instance-max-memory-mib` (16) and the one
/// instance serves every request. Keeping every body (16 of over 1 MiB)
/// would grow it past the bound, and so would keeping the 1.8 MB
/// structured contents of the larger pages: either way the instance would
/// be retired after its requests. Two sizes: pages whose structured
/// contents are over the rendering bound (1.2 MB articles, 1.8 MB
/// renderings) and under it (0.6 and 0.9 MB), kept.
#[test]
fn a_client_rotating_through_large_articles_does_not_grow_an_instance() -> Result<()> {
    for (words, article, structured) in [
        (600_000, 1 << 20..2 << 20, 3 << 19..2 << 20),
        (300_000, 1 << 19..1 << 20, 1 << 19..1 << 20),
    ] {
        rotate_through_large_pages(words, article, structured)
            .with_context(|| format!("pages of {words} bytes of text"))?;
    }
    Ok(())
}

/// Requests 24 pages of `words` bytes of text twice on both routes and
/// with two selections, one at a time, and fails unless one instance of
/// `articles` served them all.
fn rotate_through_large_pages(
    words: usize,
    article: std::ops::Range<usize>,
    structured: std::ops::Range<usize>,
) -> Result<()> {
    const PAGES: usize = 24;
    let state = wikiedge_tests::TempDir::new("rotating")?;
    let dump = state.path().join("enwiki-large.xml");
    std::fs::write(&dump, large_pages_dump(PAGES, words))?;
    let summary = wikiedge_cli::import::run(
        wikiedge_cli::import::ImportArgs::new(dump, Some("enwiki".into()))
            .with_state_dir(state.path()),
    )?;
    assert_eq!(summary.articles, PAGES as u64);
    let plans = r#"[{"name":"free","monthly":{"ondemand":100000,"snapshot":30,"chunk":1500},"burst_per_second":1000}]"#;
    let port = wikiedge_tests::free_port();
    let host = Host::builder(BIN, &repo_root().join("spin.toml"))
        .env("SPIN_VARIABLE_ADMIN_API_KEY", ADMIN_KEY)
        .env("SPIN_VARIABLE_PLANS", plans)
        .state_dir(state.path())
        // One serving thread: one pool of instances to count.
        .arg("--worker-threads")
        .arg("1")
        .arg("--metrics-listen")
        .arg(&format!("127.0.0.1:{port}"))
        .arg("--quiet")
        .start()?;
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let auth = bearer(&host, "rotator")?;
    let created = || {
        crate::tooling::metric(
            &metrics,
            "wikiedge_instances_created_total{component=\"articles\"}",
        )
    };
    for round in 0..2 {
        for page in 0..PAGES {
            for (route, sizes) in [("articles", &article), ("structured-contents", &structured)] {
                let r = get(
                    &host.url(&format!("/v2/{route}/Large_{page}")),
                    &[("authorization", auth.as_str())],
                )?;
                ensure!(
                    r.status == 200,
                    "{route} Large {page}: {} {}",
                    r.status,
                    r.text()
                );
                // Each body is large enough that sixteen would pass the
                // bound, and small enough to be kept (at most 2 MiB).
                ensure!(
                    sizes.contains(&r.body.len()),
                    "{route} Large {page}: {} bytes",
                    r.body.len()
                );
            }
            // And two selections of it: a small one, one of two in turn,
            // kept under its own form; and the sections, a third of the
            // structured contents, too large to be kept as a selection.
            let small = ["name", "name,identifier"][page % 2];
            for (fields, large) in [(small, false), ("article_sections", true)] {
                let r = get(
                    &host.url(&format!(
                        "/v2/structured-contents/Large_{page}?fields={fields}"
                    )),
                    &[("authorization", auth.as_str())],
                )?;
                let size = r.body.len();
                ensure!(
                    r.status == 200 && (size > structured.start / 4) == large,
                    "structured-contents Large {page}, fields {fields}: {} ({size} bytes)",
                    r.status,
                );
            }
        }
        let n = created()?.unwrap_or(0.0);
        ensure!(
            n == 1.0,
            "after round {round}, {n} instances of articles were created for one client's {} requests",
            (round + 1) * PAGES * 4
        );
    }
    Ok(())
}
