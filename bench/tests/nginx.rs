//! The nginx baseline (n) against a real nginx: it serves the copied
//! response's bytes and headers for any path, and a load run against it
//! gets only 200s. Needs nginx (Debian's `nginx-light`, which `.ci/run`
//! installs); elsewhere the test says it skipped, and fails under CI.

use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, Method, StatusCode};
use wikiedge_bench::client::fetch;
use wikiedge_bench::load::{LoadConfig, run};
use wikiedge_bench::nginx::{nginx_bin, prepare};
use wikiedge_bench::proc::{Proc, free_port, wait_listening};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_serves_the_copied_response_and_stops_with_its_workers() -> anyhow::Result<()> {
    let Some(bin) = nginx_bin(None) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "nginx is not installed, and CI must run this test"
        );
        eprintln!("skipped: nginx is not installed");
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut headers = HeaderMap::new();
    headers.insert("etag", HeaderValue::from_static("\"42\""));
    headers.insert("x-ratelimit-limit", HeaderValue::from_static("1000"));
    let port = free_port()?;
    let prefix = dir.path().join("nginx");
    let mut cmd = prepare(&bin, &prefix, port, "application/json", &headers, &body)?;
    let mut p = Proc::spawn("nginx-test", &mut cmd, dir.path())?;
    wait_listening(&mut p, port, Instant::now() + Duration::from_secs(20)).await?;

    let url = format!("http://127.0.0.1:{port}/v2/articles/Anarchism");
    let got = fetch(Method::GET, &url, &[], Vec::new(), Duration::from_secs(10)).await?;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text());
    assert_eq!(got.body.as_ref(), body.as_slice());
    assert_eq!(got.headers["content-type"], "application/json");
    assert_eq!(got.headers["etag"], "\"42\"");
    assert_eq!(got.headers["x-ratelimit-limit"], "1000");
    assert_eq!(
        got.headers["content-length"],
        body.len().to_string().as_str()
    );
    // Any path gets the same answer, as from the native baseline.
    let other = format!("http://127.0.0.1:{port}/elsewhere?q=1");
    let got = fetch(
        Method::GET,
        &other,
        &[],
        Vec::new(),
        Duration::from_secs(10),
    )
    .await?;
    assert_eq!(got.body.len(), body.len());

    let r = run(&LoadConfig {
        method: Method::GET,
        url: url.clone(),
        paths: Vec::new(),
        headers: HeaderMap::new(),
        body: Default::default(),
        connections: 4,
        warmup: Duration::from_millis(100),
        duration: Duration::from_millis(400),
        threads: None,
        rate: None,
        server_pid: None,
    })
    .await?;
    assert!(r.requests > 0);
    assert_eq!(r.non_success, 0, "{r:?}");
    assert_eq!(r.errors, 0, "{r:?}");

    // Stopping the master stops its workers (one process group): the
    // port is free again.
    p.stop().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "nginx's workers outlived the master"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
