//! `wikiedge follow`: consume an EventStreams SSE stream of
//! `mediawiki.page_change.v1` events and forward them in batches to the
//! realtime function's `POST /v1/admin/ingest`.
//!
//! - HTTP and HTTPS through reqwest (rustls, with the Mozilla roots of
//!   `webpki-roots`, plus `--ca-cert` for a private CA), so the default
//!   public `https://stream.wikimedia.org` stream works as it is. The
//!   stream is parsed by the shared [`wikiedge_core::sse`] parser.
//! - Every event's SSE `id` is remembered; after a batch is accepted by
//!   ingest, the id of its last event is written to
//!   `{state_dir}/follow-cursor` (temporary file, fsync, rename), and a
//!   reconnect sends it as `Last-Event-ID`. A crash between a forward and
//!   the cursor write resends that batch; ingest is idempotent per event
//!   id, so nothing is lost or published twice.
//! - A batch is forwarded when it holds `batch` events or when the stream
//!   has been quiet for [`FLUSH_AFTER`].
//! - Reconnects back off from 100 ms to 5 s; `max_failures` consecutive
//!   failures (connect, non-200, ingest refusing) end the command with an
//!   error. `max_events` and `max_seconds` bound a run (tests use them).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The public EventStreams page-change stream.
pub const DEFAULT_STREAM: &str = "https://stream.wikimedia.org/v2/stream/mediawiki.page_change.v1";
/// The cursor file in the state directory.
pub const CURSOR_FILE: &str = "follow-cursor";
/// How long a partial batch waits for more events.
pub const FLUSH_AFTER: Duration = Duration::from_millis(200);

/// What `wikiedge follow` does.
#[derive(Debug, Clone)]
pub struct FollowArgs {
    /// The SSE stream URL (`http://` or `https://`).
    pub stream: String,
    /// The wikiedge base URL ingest is posted to.
    pub to: String,
    /// Where the cursor is kept.
    pub state_dir: PathBuf,
    /// `X-Admin-Key` for ingest.
    pub admin_key: Option<String>,
    /// `X-Ingest-Key` for ingest (preferred over the admin key).
    pub ingest_key: Option<String>,
    /// Events per forwarded batch.
    pub batch: usize,
    /// Stop after forwarding this many events.
    pub max_events: Option<u64>,
    /// Stop after this long.
    pub max_seconds: Option<u64>,
    /// Consecutive failures before giving up.
    pub max_failures: u32,
    /// A PEM file of extra trusted CA certificates (a private CA).
    pub ca_cert: Option<PathBuf>,
}

impl FollowArgs {
    /// Defaults: the public stream, a local wikiedge, `.spin`, batches of 100.
    pub fn new(stream: impl Into<String>, to: impl Into<String>) -> Self {
        FollowArgs {
            stream: stream.into(),
            to: to.into(),
            state_dir: PathBuf::from(".spin"),
            admin_key: None,
            ingest_key: None,
            batch: 100,
            max_events: None,
            max_seconds: None,
            max_failures: 20,
            ca_cert: None,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Events forwarded (accepted by ingest).
    pub forwarded: u64,
    /// Of those, published (not duplicates or skipped).
    pub published: u64,
    /// Connections made to the stream.
    pub connections: u64,
    /// The cursor at the end.
    pub cursor: Option<String>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "forwarded {} events ({} published) over {} connections",
            self.forwarded, self.published, self.connections
        )
    }
}

/// The HTTP client: rustls with the webpki roots, plus `ca_cert`'s.
/// `timeout` bounds connecting and each read, so a stalled stream is
/// noticed and reconnected.
pub fn client(ca_cert: Option<&Path>, timeout: Duration) -> Result<reqwest::blocking::Client> {
    let mut builder = reqwest::blocking::Client::builder()
        .user_agent(concat!(
            "wikiedge/",
            env!("CARGO_PKG_VERSION"),
            " (https://github.com/wikiedge; wikiedge follow)"
        ))
        .connect_timeout(Duration::from_secs(10))
        .timeout(timeout);
    if let Some(path) = ca_cert {
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read the CA certificate {}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("{}: not a PEM certificate", path.display()))?;
        if certs.is_empty() {
            bail!("{}: no PEM certificate in it", path.display());
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().context("building the HTTP client")
}

fn check_url(url: &str) -> Result<()> {
    let parsed = url::Url::parse(url).with_context(|| format!("invalid URL {url}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        bail!("{url}: give an http:// or https:// URL");
    }
    Ok(())
}

/// Reads the saved cursor.
pub fn load_cursor(state_dir: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(state_dir.join(CURSOR_FILE)) {
        Ok(text) if !text.trim().is_empty() => Ok(Some(text.trim().to_string())),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).context("reading the follow cursor"),
    }
}

/// Writes the cursor durably: temporary file, fsync, rename, fsync dir.
pub fn save_cursor(state_dir: &Path, cursor: &str) -> Result<()> {
    std::fs::create_dir_all(state_dir)?;
    let tmp = state_dir.join(format!("{CURSOR_FILE}.tmp"));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(cursor.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, state_dir.join(CURSOR_FILE))?;
    if let Ok(dir) = std::fs::File::open(state_dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// One SSE event: its id (if any) and its data.
#[derive(Debug)]
enum Item {
    Event { id: Option<String>, data: String },
    End(Result<()>),
}

/// Opens the stream and parses it on a thread; events arrive on the channel.
fn connect(
    client: &reqwest::blocking::Client,
    url: &str,
    cursor: Option<&str>,
) -> Result<mpsc::Receiver<Item>> {
    let mut request = client.get(url).header("accept", "text/event-stream");
    if let Some(id) = cursor {
        request = request.header("last-event-id", id);
    }
    let response = request
        .send()
        .with_context(|| format!("connecting to {url}"))?;
    if response.status() != reqwest::StatusCode::OK {
        bail!("stream answered {}", response.status());
    }
    let (tx, rx) = mpsc::sync_channel(1024);
    std::thread::spawn(move || {
        let result = parse_sse(BufReader::new(response), &tx);
        let _ = tx.send(Item::End(result));
    });
    Ok(rx)
}

/// Feeds the stream to the shared SSE parser; a block with data is an event.
fn parse_sse(mut reader: impl BufRead, tx: &mpsc::SyncSender<Item>) -> Result<()> {
    let mut parser = wikiedge_core::sse::Parser::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let Some(block) = parser.line(&line) else {
            continue;
        };
        let Some(data) = block.data.filter(|d| !d.is_empty()) else {
            continue;
        };
        if tx.send(Item::Event { id: block.id, data }).is_err() {
            return Ok(());
        }
    }
}

/// Posts one NDJSON batch to ingest; returns how many were published.
fn forward(client: &reqwest::blocking::Client, args: &FollowArgs, batch: &[String]) -> Result<u64> {
    let body: String = batch.iter().map(|e| format!("{e}\n")).collect();
    let url = format!("{}/v1/admin/ingest", args.to.trim_end_matches('/'));
    let mut request = client
        .post(&url)
        .header("content-type", "application/x-ndjson")
        .body(body);
    if let Some(key) = &args.ingest_key {
        request = request.header("x-ingest-key", key);
    } else if let Some(key) = &args.admin_key {
        request = request.header("x-admin-key", key);
    }
    let response = request
        .send()
        .with_context(|| format!("posting to {url}"))?;
    let status = response.status();
    let text = response.text().context("reading the ingest answer")?;
    if status != reqwest::StatusCode::OK {
        bail!("ingest answered {}: {text}", status.as_u16());
    }
    let report: serde_json::Value = serde_json::from_str(&text).context("ingest report")?;
    Ok(report["published"].as_u64().unwrap_or(0))
}

/// Follows the stream until a bound is reached (or forever without bounds).
pub fn run(args: FollowArgs) -> Result<Summary> {
    check_url(&args.stream)?;
    check_url(&args.to)?;
    let stream_client = client(args.ca_cert.as_deref(), Duration::from_secs(60))?;
    let ingest_client = client(args.ca_cert.as_deref(), Duration::from_secs(120))?;
    let started = Instant::now();
    let deadline = args.max_seconds.map(|s| started + Duration::from_secs(s));
    let mut summary = Summary {
        cursor: load_cursor(&args.state_dir)?,
        ..Summary::default()
    };
    let mut failures = 0u32;
    let mut backoff = Duration::from_millis(100);
    let done = |summary: &Summary| {
        args.max_events.is_some_and(|m| summary.forwarded >= m)
            || deadline.is_some_and(|d| Instant::now() >= d)
    };
    while !done(&summary) {
        if failures > args.max_failures {
            bail!("giving up after {failures} consecutive failures");
        }
        let rx = match connect(&stream_client, &args.stream, summary.cursor.as_deref()) {
            Ok(rx) => rx,
            Err(err) => {
                failures += 1;
                tracing::warn!("follow: {err:#}; retrying in {backoff:?}");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        summary.connections += 1;
        let mut batch: Vec<String> = Vec::new();
        let mut last_id: Option<String> = None;
        let mut ended = false;
        while !ended && !done(&summary) {
            match rx.recv_timeout(FLUSH_AFTER) {
                Ok(Item::Event { id, data }) => {
                    batch.push(data);
                    if id.is_some() {
                        last_id = id;
                    }
                    if batch.len() < args.batch.max(1) {
                        continue;
                    }
                }
                Ok(Item::End(result)) => {
                    if let Err(err) = result {
                        tracing::warn!("follow: stream read failed: {err:#}");
                    }
                    ended = true;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => ended = true,
            }
            if batch.is_empty() {
                continue;
            }
            match forward(&ingest_client, &args, &batch) {
                Ok(published) => {
                    summary.forwarded += batch.len() as u64;
                    summary.published += published;
                    batch.clear();
                    failures = 0;
                    backoff = Duration::from_millis(100);
                    if let Some(id) = &last_id {
                        save_cursor(&args.state_dir, id)?;
                        summary.cursor = Some(id.clone());
                    }
                }
                Err(err) => {
                    // Reconnect from the saved cursor: the batch is re-read.
                    failures += 1;
                    tracing::warn!("follow: forwarding failed: {err:#}; retrying in {backoff:?}");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    ended = true;
                }
            }
        }
        // Dropping the receiver stops the parser thread at its next event.
        drop(rx);
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_blocks_with_data_become_events() -> Result<()> {
        let text =
            ": hello\nid: 1\ndata: {\"a\":1}\n\nevent: message\ndata: x\ndata: y\n\nid: 3\n\n";
        let (tx, rx) = mpsc::sync_channel(8);
        parse_sse(text.as_bytes(), &tx)?;
        drop(tx);
        let items: Vec<Item> = rx.iter().collect();
        assert!(
            matches!(&items[0], Item::Event { id: Some(id), data } if id == "1" && data == "{\"a\":1}")
        );
        assert!(matches!(&items[1], Item::Event { id: None, data } if data == "x\ny"));
        assert_eq!(items.len(), 2);
        Ok(())
    }

    #[test]
    fn http_and_https_urls_are_accepted() {
        assert!(check_url(DEFAULT_STREAM).is_ok());
        assert!(check_url("http://127.0.0.1:3000").is_ok());
        assert!(check_url("ftp://example.org/x").is_err());
        assert!(check_url("not a url").is_err());
    }

    #[test]
    fn a_ca_file_that_is_not_pem_is_refused() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate")?;
        assert!(client(Some(&path), Duration::from_secs(1)).is_err());
        assert!(
            client(
                Some(&dir.path().join("missing.pem")),
                Duration::from_secs(1)
            )
            .is_err()
        );
        Ok(())
    }
}
