//! `GET|POST /realtime/v2/articles`: the event stream.
//!
//! After authentication and validation, a connection consumes one unit of
//! `realtime` quota, fixes where each of its partitions starts (core
//! `realtime::request`), answers 200 and pushes events from a spawned task:
//! - SSE (default): `event: message`, `id: <cursor>`, `data: <json>`; the
//!   id is the position of every partition of the connection
//!   (`0:12,1:0,...`, the next offset of each), so `Last-Event-ID` resumes
//!   all of them exactly. The stream ends with an id-only block carrying
//!   the final position (SSE clients record it without an event).
//! - NDJSON (`Accept: application/x-ndjson`): one event per line; resume
//!   with `offsets` = `event.offset + 1` of the last event per partition.
//!
//! The task polls the `rt-total` counter every `realtime_poll_ms` and reads
//! the partitions only when it moved, delivers each partition in offset
//! order, and ends cleanly after `realtime_max_connection_seconds` (or when
//! the client goes away), after metering the connection with its bytes.
//! Every send is bounded by that deadline: a reader that stops taking bytes
//! (a full TCP window) is cut at the latest when its connection's time is
//! up, sooner when the host's send timeout closes the connection, and is
//! metered and gives its stream slot back either way.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use spin_sdk::wasip3::http::types as wasi;
use spin_sdk::wasip3::http_compat::BodyWriter;
use spin_sdk::wit_bindgen::{StreamResult, StreamWriter};
use wikiedge_core::Error;
use wikiedge_core::article::projection::{matches_all, project};
use wikiedge_core::realtime::log::Cursor;
use wikiedge_core::realtime::request::{Start, StreamRequest};

use crate::config::{self, Config};
use crate::{gate, log};
use wikiedge_fn::bindings::wikiedge::auth::auth::Principal;
use wikiedge_fn::kv::{self, Bucket};
use wikiedge_fn::now_ms;
use wikiedge_fn::respond::{Reply, streamed};

/// How many entries of one partition are read before the others get a turn.
const BATCH: usize = 256;
/// How often an idle SSE stream sends a comment to keep proxies from
/// closing it.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// A validated stream request.
pub struct StreamQuery {
    /// Parameters.
    pub request: StreamRequest,
    /// NDJSON rather than SSE.
    pub ndjson: bool,
    /// The `Last-Event-ID` position.
    pub resume: Option<Cursor>,
}

/// Where each partition of the connection starts.
fn positions(bucket: &Bucket, query: &StreamQuery) -> Result<Cursor, Error> {
    let mut cursor = BTreeMap::new();
    for p in query.request.partitions() {
        let start = match query.request.start(p, query.resume.as_ref()) {
            Start::Offset(o) => o,
            Start::Since(ms) => log::first_since(bucket, p, ms)?,
            Start::Live => log::tail(bucket, p)?,
        };
        cursor.insert(p, start);
    }
    Ok(Cursor(cursor))
}

/// Streams one account may hold open at the same time, unless the variable
/// `max_concurrent_streams` says otherwise.
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u64 = 8;

/// Answers a stream request.
pub async fn serve(
    principal: Principal,
    query: StreamQuery,
) -> Result<wasi::Response, wasi::ErrorCode> {
    // At most `max_concurrent_streams` per account; refused before quota.
    let slot = match wikiedge_fn::slots::take(
        "streams",
        &principal.account,
        "max_concurrent_streams",
        DEFAULT_MAX_CONCURRENT_STREAMS,
    )
    .await
    {
        Ok(slot) => slot,
        Err(err) => {
            return gate::unmetered_error(&principal, &err).into_wasi();
        }
    };
    let decision = match gate::consume(&principal) {
        Ok(decision) => decision,
        Err(err) => return Reply::error(&err).into_wasi(),
    };
    if !decision.admitted {
        let reply = gate::denied(&decision);
        if let Err(e) = gate::record(&principal, false, reply.status, reply.body.len() as u64) {
            eprintln!("realtime: metering a denied connection failed: {e}");
        }
        return reply.into_wasi();
    }
    let cursor = match kv::open().and_then(|bucket| positions(&bucket, &query)) {
        Ok(cursor) => cursor,
        Err(err) => {
            let reply: Reply = Reply::error(&err).rate_limit(Some(&decision));
            if let Err(e) = gate::record(&principal, true, reply.status, reply.body.len() as u64) {
                eprintln!("realtime: metering failed: {e}");
            }
            return reply.into_wasi();
        }
    };
    let config = config::config().await;
    let content_type = if query.ndjson {
        "application/x-ndjson"
    } else {
        "text/event-stream"
    };
    let headers = vec![
        ("content-type", content_type.to_string()),
        ("cache-control", "no-cache".to_string()),
        ("x-accel-buffering", "no".to_string()),
        ("ratelimit", decision.ratelimit.clone()),
        ("ratelimit-policy", decision.ratelimit_policy.clone()),
    ];
    let (response, writer) = streamed(200, headers)?;
    spin_sdk::wasip3::spawn(pump(writer, principal, query, cursor, config, slot));
    Ok(response)
}

/// The document as sent: filtered and projected, or `None` when filtered out.
fn render(doc: Vec<u8>, request: &StreamRequest) -> Option<Vec<u8>> {
    if request.fields.is_empty() && request.filters.is_empty() {
        return Some(doc);
    }
    let value: Value = serde_json::from_slice(&doc).ok()?;
    if !matches_all(&value, &request.filters) {
        return None;
    }
    serde_json::to_vec(&project(value, &request.fields)).ok()
}

/// The sending half of a connection.
struct Sink {
    writer: StreamWriter<u8>,
    ndjson: bool,
    bytes: u64,
    open: bool,
    /// When the connection ends: no send waits past it (or past
    /// [`SEND_GRACE`] from now, whichever is later).
    deadline: Instant,
}

/// How long a send may wait for a client that takes no bytes once the
/// connection's time is up (for the final id block).
const SEND_GRACE: Duration = Duration::from_secs(1);
/// How long [`Sink::gone`] waits for a host busy sending.
const PROBE_WAIT: Duration = Duration::from_millis(1);

impl Sink {
    /// Sends one frame, bounded in time: a client that stops reading fills
    /// the body's buffer, and then the send gives up at the connection's
    /// deadline and the stream ends (on hosts without a send timeout of
    /// their own too, as Spin's). A closed client ends it at once.
    async fn send(&mut self, frame: Vec<u8>) {
        if !self.open {
            return;
        }
        let len = frame.len() as u64;
        let bound = self
            .deadline
            .saturating_duration_since(Instant::now())
            .max(SEND_GRACE);
        let send = std::pin::pin!(self.writer.write_all(frame));
        let timeout = std::pin::pin!(spin_sdk::time::sleep(bound));
        match futures::future::select(send, timeout).await {
            futures::future::Either::Left((unsent, _)) if unsent.is_empty() => self.bytes += len,
            futures::future::Either::Left(_) => self.open = false,
            futures::future::Either::Right(_) => {
                eprintln!("realtime: a stalled reader is cut at the connection limit");
                self.open = false;
            }
        }
    }

    /// Whether the client is gone, noticed without sending a byte: a
    /// write of nothing finds the host's end of the body dropped (the
    /// connection closed: the client left, the send timeout or a stopping
    /// host cut it) at once; while the host reads, it completes at once; a
    /// host busy sending earlier bytes makes it wait, and it is given up
    /// after a moment (the client is still there). Without this, a stream
    /// with nothing to send (NDJSON has no keep-alive; a filter can drop
    /// every event) kept its task, its instance and the account's stream
    /// slot until the connection's time was up.
    async fn gone(&mut self) -> bool {
        if !self.open {
            return true;
        }
        let probe = std::pin::pin!(self.writer.write(Vec::new()));
        let moment = std::pin::pin!(spin_sdk::time::sleep(PROBE_WAIT));
        if let futures::future::Either::Left(((StreamResult::Dropped, _), _)) =
            futures::future::select(probe, moment).await
        {
            self.open = false;
        }
        !self.open
    }

    async fn event(&mut self, cursor: &Cursor, doc: Vec<u8>) {
        let frame = if self.ndjson {
            let mut line = doc;
            line.push(b'\n');
            line
        } else {
            let mut frame = format!("event: message\nid: {}\ndata: ", cursor.encode()).into_bytes();
            frame.extend_from_slice(&doc);
            frame.extend_from_slice(b"\n\n");
            frame
        };
        self.send(frame).await;
    }
}

/// Reads what one partition has from its position; `true` when it is
/// waiting on an unwritten offset or stopped at the batch size.
async fn drain(
    bucket: &Bucket,
    partition: u32,
    cursor: &mut Cursor,
    request: &StreamRequest,
    sink: &mut Sink,
) -> Result<bool, Error> {
    let tail = log::tail(bucket, partition)?;
    for _ in 0..BATCH {
        let Some(&offset) = cursor.0.get(&partition) else {
            return Ok(false);
        };
        if offset >= tail || !sink.open {
            return Ok(false);
        }
        match log::read(bucket, partition, offset)? {
            Some(doc) => {
                cursor.0.insert(partition, offset + 1);
                if let Some(out) = render(doc, request) {
                    sink.event(cursor, out).await;
                }
            }
            None => {
                let head = log::head(bucket, partition)?;
                if offset < head {
                    cursor.0.insert(partition, head);
                } else if log::gap_is_stale(bucket, partition, offset, now_ms())? {
                    eprintln!("realtime: skipping unwritten offset {partition}:{offset}");
                    cursor.0.insert(partition, offset + 1);
                } else {
                    return Ok(true);
                }
            }
        }
    }
    Ok(cursor.0.get(&partition).is_some_and(|o| *o < tail))
}

async fn pump(
    writer: BodyWriter,
    principal: Principal,
    query: StreamQuery,
    mut cursor: Cursor,
    config: &'static Config,
    // The account's stream slot, given back when the stream ends.
    _slot: wikiedge_fn::slots::Slot,
) {
    let deadline = Instant::now() + config.max_connection;
    let BodyWriter {
        stream_writer,
        result_writer,
        ..
    } = writer;
    let mut sink = Sink {
        writer: stream_writer,
        ndjson: query.ndjson,
        bytes: 0,
        open: true,
        deadline,
    };
    let mut last_keepalive = Instant::now();
    match kv::open() {
        Ok(bucket) => {
            let partitions: Vec<u32> = cursor.0.keys().copied().collect();
            let mut seen_total = None;
            let mut behind = true;
            // Bounded: every turn ends by the deadline or a closed client.
            while !sink.gone().await && Instant::now() < deadline {
                let total = match log::total(&bucket) {
                    Ok(total) => total,
                    Err(err) => {
                        eprintln!("realtime: stream ends early: {err:?}");
                        break;
                    }
                };
                let mut progressed = false;
                if behind || seen_total != Some(total) {
                    seen_total = Some(total);
                    behind = false;
                    for &p in &partitions {
                        let before = cursor.0.get(&p).copied();
                        match drain(&bucket, p, &mut cursor, &query.request, &mut sink).await {
                            Ok(waiting) => behind |= waiting,
                            Err(err) => {
                                eprintln!("realtime: reading partition {p}: {err:?}");
                                behind = true;
                            }
                        }
                        progressed |= cursor.0.get(&p).copied() != before;
                    }
                }
                if !sink.ndjson && last_keepalive.elapsed() >= KEEPALIVE {
                    sink.send(b": keepalive\n\n".to_vec()).await;
                    last_keepalive = Instant::now();
                }
                if !progressed {
                    let left = deadline.saturating_duration_since(Instant::now());
                    spin_sdk::time::sleep(config.poll.min(left)).await;
                }
            }
        }
        Err(err) => eprintln!("realtime: stream ends early: {err:?}"),
    }
    if sink.open && !sink.ndjson {
        sink.send(format!("id: {}\n\n", cursor.encode()).into_bytes())
            .await;
    }
    // Metered before the body ends: the sender is still alive here.
    if let Err(e) = gate::record(&principal, true, 200, sink.bytes) {
        eprintln!("realtime: metering a connection failed: {e}");
    }
    // The end of the body: its stream closed, then no trailers.
    drop(sink);
    let _ = result_writer.write(Ok(None)).await;
}
