//! `wikiedge follow`: consume an EventStreams SSE stream of
//! `mediawiki.page_change.v1` events and forward them in batches to the
//! realtime function's `POST /v1/admin/ingest`.
//!
//! - The stream is read over HTTP/1.0 (the body ends when the server
//!   closes it, so no chunked decoding is needed). Only `http://` URLs are
//!   supported: the host carries no TLS stack, so the public
//!   `https://stream.wikimedia.org` stream needs a local TLS-terminating
//!   proxy (documented as a limitation).
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

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
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
    /// The SSE stream URL (`http://` only).
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

/// An `http://host:port/path` URL, split.
struct Target {
    addr: String,
    path: String,
}

fn target(url: &str) -> Result<Target> {
    let parsed = url::Url::parse(url).with_context(|| format!("invalid URL {url}"))?;
    if parsed.scheme() != "http" {
        bail!(
            "{url}: only http:// is supported (wikiedge has no TLS client); \
             put a TLS-terminating proxy in front of an https stream"
        );
    }
    let host = parsed.host_str().context("URL without host")?;
    let port = parsed.port_or_known_default().unwrap_or(80);
    let mut path = parsed.path().to_string();
    if let Some(q) = parsed.query() {
        path.push('?');
        path.push_str(q);
    }
    Ok(Target {
        addr: format!("{host}:{port}"),
        path,
    })
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
fn connect(stream: &Target, cursor: Option<&str>) -> Result<mpsc::Receiver<Item>> {
    let mut tcp = TcpStream::connect(&stream.addr)
        .with_context(|| format!("connecting to {}", stream.addr))?;
    tcp.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!(
        "GET {} HTTP/1.0\r\nhost: {}\r\naccept: text/event-stream\r\nuser-agent: wikiedge-follow\r\n",
        stream.path, stream.addr
    );
    if let Some(id) = cursor {
        head.push_str(&format!("last-event-id: {id}\r\n"));
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes())?;
    let mut reader = BufReader::new(tcp);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        bail!("stream answered {}", line.trim());
    }
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
    }
    let (tx, rx) = mpsc::sync_channel(1024);
    std::thread::spawn(move || {
        let result = parse_sse(reader, &tx);
        let _ = tx.send(Item::End(result));
    });
    Ok(rx)
}

/// The SSE parser: `id:` and `data:` fields, comments ignored, an event
/// dispatched on a blank line when it has data.
fn parse_sse(mut reader: impl BufRead, tx: &mpsc::SyncSender<Item>) -> Result<()> {
    let (mut id, mut data) = (None::<String>, Vec::<String>::new());
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            if !data.is_empty() {
                let item = Item::Event {
                    id: id.take(),
                    data: data.join("\n"),
                };
                if tx.send(item).is_err() {
                    return Ok(());
                }
            }
            data.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => id = Some(value.to_string()),
            "data" => data.push(value.to_string()),
            _ => {}
        }
    }
}

/// Posts one NDJSON batch to ingest; returns how many were published.
fn forward(args: &FollowArgs, to: &Target, batch: &[String]) -> Result<u64> {
    let body: String = batch.iter().map(|e| format!("{e}\n")).collect();
    let mut tcp =
        TcpStream::connect(&to.addr).with_context(|| format!("connecting to {}", to.addr))?;
    tcp.set_read_timeout(Some(Duration::from_secs(120)))?;
    let path = format!("{}/v1/admin/ingest", to.path.trim_end_matches('/'));
    let mut head = format!(
        "POST {path} HTTP/1.0\r\nhost: {}\r\ncontent-type: application/x-ndjson\r\ncontent-length: {}\r\n",
        to.addr,
        body.len()
    );
    if let Some(key) = &args.ingest_key {
        head.push_str(&format!("x-ingest-key: {key}\r\n"));
    } else if let Some(key) = &args.admin_key {
        head.push_str(&format!("x-admin-key: {key}\r\n"));
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes())?;
    tcp.write_all(body.as_bytes())?;
    let mut response = String::new();
    tcp.read_to_string(&mut response)?;
    let status = response.split_whitespace().nth(1).unwrap_or("");
    let json = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    if status != "200" {
        bail!("ingest answered {status}: {json}");
    }
    let report: serde_json::Value = serde_json::from_str(json).context("ingest report")?;
    Ok(report["published"].as_u64().unwrap_or(0))
}

/// Follows the stream until a bound is reached (or forever without bounds).
pub fn run(args: FollowArgs) -> Result<Summary> {
    let stream = target(&args.stream)?;
    let to = target(&args.to)?;
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
        let rx = match connect(&stream, summary.cursor.as_deref()) {
            Ok(rx) => rx,
            Err(err) => {
                failures += 1;
                eprintln!("follow: {err:#}; retrying in {backoff:?}");
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
                        eprintln!("follow: stream read failed: {err:#}");
                    }
                    ended = true;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => ended = true,
            }
            if batch.is_empty() {
                continue;
            }
            match forward(&args, &to, &batch) {
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
                    eprintln!("follow: forwarding failed: {err:#}; retrying in {backoff:?}");
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
    fn sse_fields_become_events() -> Result<()> {
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
    fn only_http_urls_are_accepted() {
        assert!(target(DEFAULT_STREAM).is_err());
        assert!(target("http://127.0.0.1:3000").is_ok_and(|t| t.addr == "127.0.0.1:3000"));
    }
}
