//! The tools around the host: `wikiedge build` adding a missing Rust
//! target, and `wikiedge follow` over TLS.

use crate::BIN;
use anyhow::Result;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use wikiedge_tests::TempDir;
use wikiedge_tests::manifest::{Component, spin_manifest};

/// A manifest with one component built for `wasm32-fake`, a fake `rustc`
/// whose target libdir is `<dir>/lib`, and (optionally) a fake `rustup`
/// that installs the target there and logs its arguments.
fn fake_toolchain(dir: &Path, with_rustup: bool) -> Result<()> {
    let d = dir.display();
    let manifest = spin_manifest(
        "fake",
        &[("/...", "c")],
        &[Component {
            id: "c",
            source: "c.wasm",
            build: "echo ran > built.txt # cargo build --target wasm32-fake",
        }],
    );
    std::fs::write(dir.join("spin.toml"), manifest)?;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin)?;
    let script = |name: &str, body: String| -> Result<()> {
        let p = bin.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n"))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
        Ok(())
    };
    script("rustc", format!("echo {d}/lib"))?;
    if with_rustup {
        script(
            "rustup",
            format!(
                "echo \"$@\" >> {d}/rustup.log\nmkdir -p {d}/lib && touch {d}/lib/libcore-0.rlib"
            ),
        )?;
    }
    Ok(())
}

fn build(dir: &Path) -> Result<std::process::Output> {
    // Only the fake tools and the system's: no real rustup on PATH.
    let path = format!("{}:/usr/bin:/bin", dir.join("bin").display());
    Ok(Command::new(BIN)
        .args(["build", "--from"])
        .arg(dir.join("spin.toml"))
        .env("PATH", path)
        .output()?)
}

#[test]
fn build_adds_a_missing_rust_target_through_rustup_and_says_so() -> Result<()> {
    let tmp = TempDir::new("fake-rustup")?;
    fake_toolchain(tmp.path(), true)?;
    let out = build(tmp.path())?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "The Rust target wasm32-fake is not installed: running `rustup target add wasm32-fake`"
        ),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("rustup.log"))?,
        "target add wasm32-fake\n"
    );
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("built.txt"))?,
        "ran\n"
    );

    // Installed now: a second build leaves rustup alone.
    let again = build(tmp.path())?;
    assert!(again.status.success());
    assert!(!String::from_utf8_lossy(&again.stderr).contains("rustup target add"));
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("rustup.log"))?,
        "target add wasm32-fake\n"
    );
    Ok(())
}

#[test]
fn build_without_rustup_stops_with_the_command_to_run() -> Result<()> {
    let tmp = TempDir::new("no-rustup")?;
    fake_toolchain(tmp.path(), false)?;
    let out = build(tmp.path())?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("`rustup target add wasm32-fake`"),
        "{stderr}"
    );
    assert!(
        !tmp.path().join("built.txt").exists(),
        "the build ran anyway"
    );
    Ok(())
}

/// A private CA and a certificate it signed for `127.0.0.1`/`localhost`:
/// (CA PEM, leaf DER, leaf PKCS#8 key DER).
fn private_ca() -> Result<(String, Vec<u8>, Vec<u8>)> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "wikiedge test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key)?;
    let leaf_key = KeyPair::generate()?;
    let leaf_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key)?;
    Ok((ca.pem(), leaf.der().to_vec(), leaf_key.serialize_der()))
}

/// Reads an HTTP request head (up to the blank line) from `r`.
fn read_head(r: &mut impl std::io::Read) -> Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if r.read(&mut byte)? == 0 {
            break;
        }
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// An HTTPS SSE server on loopback with the leaf certificate: the first
/// connection gets `events` (ids 1..) and the end of the stream; later
/// ones get nothing. Returns its port.
fn tls_sse_server(leaf: Vec<u8>, key: Vec<u8>, events: Vec<String>) -> Result<u16> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use std::io::Write;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        )?;
    let config = std::sync::Arc::new(config);
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        let mut served = false;
        for tcp in listener.incoming().take(64) {
            let Ok(tcp) = tcp else { continue };
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                continue;
            };
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            if read_head(&mut tls).is_err() {
                continue; // a client that refused the certificate
            }
            let mut body = String::from(": welcome\n\n");
            if !served {
                for (i, e) in events.iter().enumerate() {
                    body.push_str(&format!("event: message\nid: {}\ndata: {e}\n\n", i + 1));
                }
                served = true;
            }
            let _ = write!(
                tls,
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    Ok(port)
}

/// A plain-HTTP ingest endpoint on loopback that records every NDJSON line
/// it is sent and reports them all published. Returns its port and record.
fn fake_ingest() -> Result<(u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>)> {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = lines.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming().take(64) {
            let Ok(mut tcp) = tcp else { continue };
            let Ok(head) = read_head(&mut tcp) else {
                continue;
            };
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            let mut body = vec![0; len];
            if tcp.read_exact(&mut body).is_err() {
                continue;
            }
            let got: Vec<String> = String::from_utf8_lossy(&body)
                .lines()
                .map(str::to_string)
                .collect();
            let answer = format!("{{\"published\":{}}}", got.len());
            if let Ok(mut seen) = record.lock() {
                seen.extend(got);
            }
            let _ = write!(
                tcp,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    Ok((port, lines))
}

#[test]
fn follow_reads_an_https_stream_signed_by_a_ca_given_with_ca_cert() -> Result<()> {
    let (ca_pem, leaf, key) = private_ca()?;
    let events: Vec<String> = (1..=3)
        .map(|i| format!("{{\"n\":{i},\"meta\":{{\"id\":\"e{i}\"}}}}"))
        .collect();
    let stream_port = tls_sse_server(leaf, key, events.clone())?;
    let (ingest_port, ingested) = fake_ingest()?;
    let tmp = TempDir::new("follow-tls")?;
    let ca_file = tmp.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem)?;
    let follow = |extra: &[&str], max_seconds: &str| -> Result<std::process::Output> {
        Ok(Command::new(BIN)
            .arg("follow")
            .args([
                "--stream",
                &format!("https://127.0.0.1:{stream_port}/v2/stream/mediawiki.page_change.v1"),
                "--to",
                &format!("http://127.0.0.1:{ingest_port}"),
                "--admin-key",
                "k",
                "--max-events",
                "3",
                "--max-seconds",
                max_seconds,
            ])
            .arg("--state-dir")
            .arg(tmp.path())
            .args(extra)
            .output()?)
    };

    // Without the CA the certificate is refused and nothing is forwarded.
    let refused = follow(&[], "2")?;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.to_ascii_lowercase().contains("certificate"),
        "{stderr}"
    );
    assert_eq!(
        String::from_utf8_lossy(&refused.stdout).trim(),
        "forwarded 0 events (0 published) over 0 connections"
    );

    let ca = ca_file.display().to_string();
    let out = follow(&["--ca-cert", &ca], "60")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("forwarded 3 events (3 published)"),
        "{stdout}"
    );
    assert_eq!(
        ingested.lock().map(|l| l.clone()).unwrap_or_default(),
        events
    );
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("follow-cursor"))?,
        "3"
    );
    Ok(())
}

#[test]
fn follow_help_shows_the_public_https_stream_as_the_default() -> Result<()> {
    let out = Command::new(BIN).args(["follow", "--help"]).output()?;
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        help.contains("[default: https://stream.wikimedia.org/v2/stream/mediawiki.page_change.v1]"),
        "{help}"
    );
    assert!(help.contains("--ca-cert"), "{help}");
    Ok(())
}

fn logging_host(log_format: &str, rust_log: Option<&str>) -> Result<wikiedge_tests::Host> {
    let mut builder = wikiedge_tests::Host::builder(BIN, &crate::host_test_manifest())
        .env("SPIN_VARIABLE_SECRET_WORD", "x")
        .arg("--log-format")
        .arg(log_format);
    if let Some(filter) = rust_log {
        builder = builder.env("RUST_LOG", filter);
    }
    builder.start()
}

#[test]
fn json_logs_carry_one_access_object_per_request() -> Result<()> {
    let host = logging_host("json", None)?;
    let r = wikiedge_tests::get(&host.url("/json-log-me?x=1"), &[])?;
    assert_eq!(r.status, 200);
    // The access line is written after the response head: wait for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let log = loop {
        let log = host.log();
        if log.contains("/json-log-me") || std::time::Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let access: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.contains("/json-log-me"))
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(access.len(), 1, "{log}");
    let a = &access[0];
    assert_eq!(a["target"], "wikiedge::access", "{a}");
    assert_eq!(a["level"], "INFO");
    assert_eq!(a["message"], "request");
    assert_eq!(a["method"], "GET");
    assert_eq!(a["path"], "/json-log-me");
    assert_eq!(a["component"], "sink");
    assert_eq!(a["status"], 200);
    assert!(a["ms"].is_f64(), "{a}");
    let serving = log
        .lines()
        .find(|l| l.contains("Serving http://"))
        .map(serde_json::from_str::<serde_json::Value>)
        .transpose()?;
    assert!(serving.is_some_and(|v| v["level"] == "INFO"), "{log}");
    Ok(())
}

#[test]
fn rust_log_turns_the_access_log_off() -> Result<()> {
    let host = logging_host("text", Some("info,wikiedge::access=off"))?;
    assert_eq!(
        wikiedge_tests::get(&host.url("/silent-please"), &[])?.status,
        200
    );
    // A request that is logged (an error) shows the log is live.
    let r = wikiedge_tests::get(&host.url("/panic"), &[])?;
    assert_eq!(r.status, 500);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !host.log().contains("ERROR") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let log = host.log();
    assert!(log.contains("ERROR"), "{log}");
    assert!(!log.contains("/silent-please"), "{log}");
    Ok(())
}

/// The value of the sample `name` (whole line up to the value) in a
/// Prometheus text exposition.
pub(crate) fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// The value of the sample `name` that `metrics_url` serves now.
pub(crate) fn metric(metrics_url: &str, name: &str) -> Result<Option<f64>> {
    Ok(sample(&wikiedge_tests::get(metrics_url, &[])?.text(), name))
}

/// A host of the host-test manifest (its `secret_word` set) serving its
/// metrics on a port of their own, started by `builder` after whatever it
/// adds; returns the host and its metrics URL.
pub(crate) fn host_with_metrics(
    builder: impl FnOnce(wikiedge_tests::Builder) -> wikiedge_tests::Builder,
) -> Result<(wikiedge_tests::Host, String)> {
    let port = wikiedge_tests::free_port();
    let host = builder(
        wikiedge_tests::Host::builder(BIN, &crate::host_test_manifest())
            .env("SPIN_VARIABLE_SECRET_WORD", "x")
            .arg("--metrics-listen")
            .arg(&format!("127.0.0.1:{port}")),
    )
    .start()?;
    Ok((host, format!("http://127.0.0.1:{port}/metrics")))
}

#[test]
fn metrics_are_served_on_their_own_listen_address() -> Result<()> {
    let (host, metrics_url) = host_with_metrics(|b| b)?;
    let before = wikiedge_tests::get(&metrics_url, &[])?;
    assert_eq!(before.status, 200);
    assert!(
        before
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4"))
    );
    assert_eq!(
        sample(
            &before.text(),
            "wikiedge_http_requests_total{component=\"sink\",status=\"200\"}"
        ),
        None
    );
    for key in ["a", "b"] {
        let r = wikiedge_tests::post(&host.url(&format!("/kv/set?key={key}")), &[], b"v")?;
        assert_eq!(r.text(), "ok");
    }
    assert_eq!(
        wikiedge_tests::get(&host.url("/kv/get?key=a"), &[])?.text(),
        "v"
    );
    // The app itself does not serve /metrics.
    assert_ne!(
        wikiedge_tests::get(&host.url("/metrics"), &[])?.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );

    let text = wikiedge_tests::get(&metrics_url, &[])?.text();
    let requests = sample(
        &text,
        "wikiedge_http_requests_total{component=\"sink\",status=\"200\"}",
    );
    // The three kv requests and the app's /metrics (echoed by the sink).
    assert_eq!(requests, Some(4.0), "{text}");
    assert_eq!(
        sample(
            &text,
            "wikiedge_http_request_duration_seconds_count{component=\"sink\"}"
        ),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "wikiedge_http_request_duration_seconds_bucket{component=\"sink\",le=\"+Inf\"}"
        ),
        Some(4.0),
        "{text}"
    );
    assert!(
        sample(&text, "wikiedge_kv_operations_total{op=\"set\"}").is_some_and(|n| n >= 2.0),
        "{text}"
    );
    assert!(
        sample(&text, "wikiedge_kv_operations_total{op=\"get\"}").is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "wikiedge_instances_created_total{component=\"sink\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(
        sample(&text, "wikiedge_instances{component=\"sink\"}").is_some_and(|n| n >= 1.0),
        "{text}"
    );
    let other_url = metrics_url.replace("/metrics", "/other");
    let elsewhere = wikiedge_tests::get(&other_url, &[])?;
    assert_eq!(elsewhere.status, 404);
    assert_eq!(elsewhere.json()?["status"], 404);
    Ok(())
}

/// The harness: a host whose port another process took between
/// `free_port` and its bind is started again on another port, and is
/// never mistaken for the process holding the port.
#[test]
fn a_host_that_loses_its_port_is_started_on_another() -> Result<()> {
    let squatter = std::net::TcpListener::bind("127.0.0.1:0")?;
    let taken = squatter.local_addr()?.port();
    let host = wikiedge_tests::Host::builder(BIN, &crate::host_test_manifest())
        .env("SPIN_VARIABLE_SECRET_WORD", "x")
        .first_port(taken)
        .start()?;
    assert_ne!(host.base, format!("http://127.0.0.1:{taken}"));
    let pid = host.pid().expect("running");
    let port: u16 = host.base.rsplit(':').next().unwrap_or("").parse()?;
    assert!(wikiedge_tests::listens_on(pid, port));
    assert_eq!(wikiedge_tests::get(&host.url("/exact"), &[])?.status, 200);
    Ok(())
}
