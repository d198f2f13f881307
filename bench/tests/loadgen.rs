//! The load generator against in-process servers: correct counts, errors
//! counted and survived, and every run stops by itself.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wikiedge_bench::baseline::{FixedResponse, serve};
use wikiedge_bench::load::{LoadConfig, LoadResult, run};

fn config(url: String, connections: usize) -> LoadConfig {
    LoadConfig {
        method: Method::GET,
        url,
        paths: Vec::new(),
        headers: HeaderMap::new(),
        body: Bytes::new(),
        connections,
        warmup: Duration::from_millis(200),
        duration: Duration::from_millis(800),
        threads: None,
        rate: None,
        server_pid: None,
    }
}

/// Runs the load and checks that it stopped in time.
async fn timed_run(cfg: &LoadConfig) -> LoadResult {
    let t = Instant::now();
    let r = run(cfg).await.expect("load run");
    let limit = cfg.warmup + cfg.duration + Duration::from_secs(2);
    assert!(t.elapsed() < limit, "run took {:?}", t.elapsed());
    r
}

async fn baseline(status: StatusCode, body: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("text/plain"));
    tokio::spawn(serve(
        listener,
        FixedResponse {
            status,
            headers,
            body: Bytes::from_static(body),
        },
    ));
    format!("http://{addr}/path?q=1")
}

/// A raw server: reads a request head, then runs `respond` on the socket.
async fn raw_server<F, Fut>(respond: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static + Clone,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let respond = respond.clone();
            tokio::spawn(async move { respond(sock).await });
        }
    });
    format!("http://{addr}/")
}

/// Reads until the end of one request head.
async fn read_head(sock: &mut tokio::net::TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match sock.read(&mut byte).await {
            Ok(1) => buf.push(byte[0]),
            _ => return false,
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_every_completed_response() {
    let body: &'static [u8] = b"0123456789abcdef";
    let url = baseline(StatusCode::OK, body).await;
    let r = timed_run(&config(url, 4)).await;
    assert!(r.requests > 100, "{r:?}");
    assert_eq!(r.errors, 0);
    assert_eq!(r.warmup_errors, 0);
    assert_eq!(r.non_success, 0);
    assert_eq!(r.connections_opened, 4, "keep-alive reuses connections");
    assert_eq!(r.response_bytes, r.requests * body.len() as u64);
    assert_eq!(r.status_counts.get(&200), Some(&r.requests));
    assert_eq!(r.latency.count, r.requests);
    assert!(r.latency.p50_us <= r.latency.p99_us && r.latency.p99_us <= r.latency.max_us);
    assert!((r.requests_per_s - r.requests as f64 / 0.8).abs() < 1e-6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_non_success_statuses() {
    let url = baseline(StatusCode::SERVICE_UNAVAILABLE, b"{}").await;
    let r = timed_run(&config(url, 2)).await;
    assert!(r.requests > 0);
    assert_eq!(r.non_success, r.requests);
    assert_eq!(r.errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_port_counts_connect_errors_and_stops() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let r = timed_run(&config(format!("http://127.0.0.1:{port}/"), 3)).await;
    assert_eq!(r.requests, 0);
    assert!(r.errors > 0);
    assert_eq!(r.errors, r.connect_errors);
    assert!(r.warmup_errors > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_connection_close() {
    let url = raw_server(|mut sock| async move {
        if read_head(&mut sock).await {
            let _ = sock
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .await;
        }
    })
    .await;
    let r = timed_run(&config(url, 2)).await;
    assert!(r.requests > 10, "{r:?}");
    assert_eq!(r.errors, 0, "{r:?}");
    assert!(r.connections_opened > r.requests, "{r:?}");
    assert_eq!(r.response_bytes, 2 * r.requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_bodies_are_errors_not_responses() {
    let url = raw_server(|mut sock| async move {
        if read_head(&mut sock).await {
            let _ = sock
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b")
                .await;
        }
    })
    .await;
    let r = timed_run(&config(url, 2)).await;
    assert_eq!(r.requests, 0, "{r:?}");
    assert!(r.errors > 0, "{r:?}");
    assert_eq!(r.connect_errors, 0, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_server_does_not_hang_the_run() {
    let url = raw_server(|mut sock| async move {
        read_head(&mut sock).await;
        tokio::time::sleep(Duration::from_secs(3600)).await;
    })
    .await;
    let r = timed_run(&config(url, 4)).await;
    assert_eq!(r.requests, 0);
    assert_eq!(r.errors, 0);
    assert_eq!(r.connections_opened, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_method_headers_and_body() {
    // Echo the request head and body length back; check one response.
    let url = raw_server(|mut sock| async move {
        loop {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match sock.read(&mut byte).await {
                    Ok(1) => head.push(byte[0]),
                    _ => return,
                }
            }
            let head = String::from_utf8_lossy(&head).to_lowercase();
            let ok = head.starts_with("post /path?q=1 http/1.1")
                && head.contains("x-test: yes")
                && head.contains("content-length: 5")
                && head.contains("host: 127.0.0.1:");
            let mut body = [0u8; 5];
            if sock.read_exact(&mut body).await.is_err() {
                return;
            }
            let status = if ok && &body == b"hello" {
                "200 OK"
            } else {
                "400 Bad Request"
            };
            let resp = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
            if sock.write_all(resp.as_bytes()).await.is_err() {
                return;
            }
        }
    })
    .await;
    let mut cfg = config(format!("{url}path?q=1"), 2);
    cfg.method = Method::POST;
    cfg.headers
        .insert("x-test", HeaderValue::from_static("yes"));
    cfg.body = Bytes::from_static(b"hello");
    let r = timed_run(&cfg).await;
    assert!(r.requests > 0);
    assert_eq!(r.non_success, 0, "{r:?}");
    assert_eq!(r.connections_opened, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_thread_count_drives_every_connection() {
    let url = baseline(StatusCode::OK, b"x").await;
    for threads in [1, 3, 16] {
        let mut cfg = config(url.clone(), 5);
        cfg.threads = Some(threads);
        cfg.warmup = Duration::ZERO;
        cfg.duration = Duration::from_millis(300);
        let r = timed_run(&cfg).await;
        assert_eq!(r.connections_opened, 5, "threads {threads}: {r:?}");
        assert!(r.requests > 0);
        assert_eq!(r.errors, 0);
    }
}

/// A keep-alive server that takes `stall` over every answer (over only the
/// first of each connection when `once`).
async fn stalling_server(stall: Duration, once: bool) -> String {
    raw_server(move |mut sock| async move {
        let mut first = true;
        while read_head(&mut sock).await {
            if first || !once {
                tokio::time::sleep(stall).await;
            }
            first = false;
            let resp = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
            if sock.write_all(resp).await.is_err() {
                return;
            }
        }
    })
    .await
}

/// An open-loop run at 100 req/s on one connection to `url`, measured from
/// the start (no warm-up) for `duration`.
async fn open_loop_at_100(url: String, duration: Duration) -> LoadResult {
    let mut cfg = config(url, 1);
    cfg.warmup = Duration::ZERO;
    cfg.duration = duration;
    cfg.rate = Some(100.0);
    timed_run(&cfg).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_times_latency_from_when_each_request_was_due() {
    // 100 req/s on one connection to a server that takes >= 50 ms per
    // answer: request i is due at 10i ms but cannot be answered before
    // 50(i+1) ms, so it waits >= 50 + 40i ms; at most 20 are answered in the
    // 1 s window and the other 80 (due at 200..990 ms) are still owed at the
    // end, having waited 800..10 ms. Timed from the send instead, every
    // latency would be about 50 ms (coordinated omission).
    let url = stalling_server(Duration::from_millis(50), false).await;
    let r = open_loop_at_100(url, Duration::from_secs(1)).await;
    assert_eq!(r.target_rate, Some(100.0));
    assert_eq!(r.errors, 0, "{r:?}");
    assert!(r.requests <= 20, "{r:?}");
    // Every request due in the window is in the histogram, answered or owed.
    assert_eq!(r.requests + r.late_at_end, 100, "{r:?}");
    assert_eq!(r.latency.count, 100, "{r:?}");
    // More than half waited >= 400 ms; more than 1% >= 700 ms.
    assert!(r.latency.p50_us >= 300_000, "{:?}", r.latency);
    assert!(r.latency.p99_us >= 700_000, "{:?}", r.latency);
    assert!(r.latency.p999_us >= r.latency.p99_us);
    // Requests left late: the send lag shows the queue.
    let lag = r.send_lag.expect("open loop reports its send lag");
    assert_eq!(lag.count, r.requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_charges_one_stall_to_every_request_it_delayed() {
    // 100 req/s on one connection; the first answer takes >= 800 ms, the
    // rest are immediate. Requests 0..79 (due at 0..790 ms) cannot leave
    // before 800 ms, so request i waits >= 800 - 10i ms: at least 61 of the
    // 100 wait >= 200 ms. Timed from the send, only the first would.
    let url = stalling_server(Duration::from_millis(800), true).await;
    let r = open_loop_at_100(url, Duration::from_secs(1)).await;
    assert_eq!(r.errors, 0, "{r:?}");
    assert_eq!(r.requests + r.late_at_end, 100, "{r:?}");
    assert_eq!(r.latency.count, 100, "{r:?}");
    assert!(r.latency.p50_us >= 200_000, "{:?}", r.latency);
    assert!(r.latency.max_us >= 800_000, "{:?}", r.latency);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_counts_the_requests_due_in_the_window() {
    // 200 req/s over 2 connections; the 160 due in [200 ms, 1000 ms) count.
    let url = baseline(StatusCode::OK, b"x").await;
    let mut cfg = config(url, 2);
    cfg.duration = Duration::from_millis(800);
    cfg.rate = Some(200.0);
    let r = timed_run(&cfg).await;
    assert_eq!(r.errors, 0, "{r:?}");
    assert_eq!(r.non_success, 0, "{r:?}");
    assert_eq!(r.connections_opened, 2, "{r:?}");
    assert_eq!(r.requests + r.late_at_end, 160, "{r:?}");
    assert_eq!(r.latency.count, 160, "{r:?}");
    assert_eq!(r.status_counts.get(&200), Some(&r.requests));
    assert!((r.requests_per_s - r.requests as f64 / 0.8).abs() < 1e-6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_rejects_a_rate_that_is_not_positive() {
    let url = baseline(StatusCode::OK, b"x").await;
    for rate in [0.0, -5.0, f64::NAN, f64::INFINITY] {
        let mut cfg = config(url.clone(), 1);
        cfg.rate = Some(rate);
        assert!(run(&cfg).await.is_err(), "rate {rate}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_shows_which_second_a_stall_delayed() {
    // 100 req/s on one connection for 3 s; only the first answer stalls,
    // 1500 ms. The requests due in the first second (0..990 ms) are all
    // answered in the second after it, yet count in the second they were
    // due in; those due in the third second did not wait.
    let url = stalling_server(Duration::from_millis(1500), true).await;
    let r = open_loop_at_100(url, Duration::from_secs(3)).await;
    assert_eq!(r.errors, 0, "{r:?}");
    let t = &r.timeline;
    assert_eq!(t.len(), 3, "{t:?}");
    // Every request is in its second, answered or owed.
    assert_eq!(t.iter().map(|s| s.requests).sum::<u64>(), r.latency.count);
    assert_eq!(t[0].requests, 100, "{t:?}");
    assert!(t[0].max_us >= 1_500_000, "{t:?}");
    assert!(t[0].p50_us >= 500_000, "{t:?}");
    assert!(t[2].p50_us < t[0].p50_us / 4, "{t:?}");
    assert_eq!(
        wikiedge_bench::timeline::worst(t).map(|s| s.second),
        Some(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_loop_timeline_holds_every_answered_request() {
    let url = baseline(StatusCode::OK, b"hello").await;
    let mut cfg = config(url, 4);
    cfg.warmup = Duration::from_millis(200);
    cfg.duration = Duration::from_secs(1);
    let r = timed_run(&cfg).await;
    assert!(r.requests > 0, "{r:?}");
    assert_eq!(
        r.timeline.iter().map(|s| s.requests).sum::<u64>(),
        r.requests
    );
    assert!(r.timeline.len() <= 2, "{:?}", r.timeline);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_built_in_the_warm_up_shows_in_the_warm_up_timeline() {
    // 100 req/s on one connection, 1 s of warm-up then 1 s measured; only
    // the first answer stalls, 700 ms. The 100 requests due in the warm-up
    // wait behind it; the queue is gone before the measured window opens.
    let url = stalling_server(Duration::from_millis(700), true).await;
    let mut cfg = config(url, 1);
    cfg.warmup = Duration::from_secs(1);
    cfg.duration = Duration::from_secs(1);
    cfg.rate = Some(100.0);
    let r = timed_run(&cfg).await;
    assert_eq!(r.errors, 0, "{r:?}");
    let w = &r.warmup_timeline;
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].requests, 100, "{w:?}");
    assert!(w[0].max_us >= 700_000, "{w:?}");
    assert!(w[0].p50_us >= 200_000, "{w:?}");
    // None of them is in the measured window's figures.
    assert_eq!(r.latency.count, 100, "{r:?}");
    assert!(r.latency.max_us < 700_000, "{:?}", r.latency);

    // A closed loop's warm-up answers are there too, and only there.
    let url = baseline(StatusCode::OK, b"hello").await;
    let mut cfg = config(url, 2);
    cfg.warmup = Duration::from_millis(300);
    let r = timed_run(&cfg).await;
    let w = &r.warmup_timeline;
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].requests > 0, "{w:?}");
    assert_eq!(
        r.timeline.iter().map(|s| s.requests).sum::<u64>(),
        r.requests
    );
}

/// A server that keeps the CPU busy for `burn` (wall time) before each
/// answer.
async fn burning_server(burn: Duration) -> String {
    raw_server(move |mut sock| async move {
        while read_head(&mut sock).await {
            let started = Instant::now();
            let mut x = 0u64;
            while started.elapsed() < burn {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
            }
            let resp = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
            if sock.write_all(resp).await.is_err() {
                return;
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_cpu_time_is_reported_per_request() {
    // The servers run in this process, so it is the server process; each
    // request to the burning one costs up to 2 ms of CPU. On one connection
    // the window holds a few hundred requests, and the CPU per request
    // follows the work per request.
    let pid = std::process::id();
    let measure = |url: String| async move {
        let mut cfg = config(url, 1);
        cfg.server_pid = Some(pid);
        timed_run(&cfg).await
    };
    let busy = measure(burning_server(Duration::from_millis(2)).await).await;
    let idle = measure(burning_server(Duration::ZERO).await).await;
    let (b, i) = (
        busy.server_cpu.clone().expect("server CPU reported"),
        idle.server_cpu.clone().expect("server CPU reported"),
    );
    assert_eq!(b.pid, pid);
    assert!(
        busy.requests > 0 && idle.requests > busy.requests,
        "{busy:?} {idle:?}"
    );
    // At least a quarter of the 2 ms burnt per request, even on a busy
    // machine; far more than a request that burns nothing.
    assert!(b.us_per_request >= 500.0, "{b:?}");
    assert!(b.us_per_request > 2.0 * i.us_per_request, "{b:?} {i:?}");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    assert!(b.cores > 0.0 && b.cores <= cores + 0.5, "{b:?}");
    assert!((b.cpu_s - b.cores * 0.8).abs() < 1e-9, "{b:?}");
    assert!(busy.human().contains("server CPU"), "{}", busy.human());
    // Without a pid, nothing is measured.
    let url = burning_server(Duration::ZERO).await;
    assert_eq!(timed_run(&config(url, 1)).await.server_cpu, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_generators_own_cpu_is_reported_apart_from_the_servers() {
    // The burning server runs on this test's runtime threads, in the same
    // process as the load threads: a process clock would count its 2 ms per
    // request as the load generator's; the load threads' own clocks do not.
    let url = burning_server(Duration::from_millis(2)).await;
    let mut cfg = config(url, 2);
    cfg.threads = Some(2);
    cfg.server_pid = Some(std::process::id());
    let r = timed_run(&cfg).await;
    let server = r.server_cpu.clone().expect("server CPU reported");
    let load = r.load_cpu.clone().expect("load generator CPU reported");
    assert!(r.requests > 0, "{r:?}");
    assert_eq!(load.threads, 2);
    assert!(load.cpu_s > 0.0, "{load:?}");
    assert!(load.cores <= 2.5, "{load:?}");
    // Sending a request and reading a 2-byte answer costs far less than the
    // 2 ms the server burns on it (the process's CPU holds both).
    assert!(
        load.us_per_request * 4.0 < server.us_per_request,
        "{load:?} {server:?}"
    );
    assert!(r.human().contains("loadgen CPU"), "{}", r.human());
}
