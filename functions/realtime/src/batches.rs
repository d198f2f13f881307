//! `/v2/batches/{YYYY-MM-DD}/{HH}[/{identifier}[/download]]`: hourly
//! batches (core `realtime::batch`); the daily form
//! `/v2/batches/{YYYY-MM-DD}[/{identifier}[/download]]` (WME's 2024-01 spec,
//! the Go SDK's paths) holds the day's events so far.
//!
//! - Batches are stored, not rebuilt per request: a range's batches are
//!   built into the store as tar.gz parts of at most the byte budget
//!   (`realtime_batch_budget_bytes`) with a [`BatchIndex`] beside them, and
//!   list, metadata and download read that index and those parts. The build
//!   made after the range closed is final; an open range (the current hour)
//!   is rebuilt only when the log has changed since its stored build. One
//!   builder per range at a time (a claim key); the others wait for its
//!   index. The memory a build holds is the event references of the range
//!   (12 bytes each), one event, the gzip state and one part.
//! - The list and the metadata (GET, or POST with a JSON body as the
//!   official SDKs send) need a token whose plan includes `realtime`
//!   (checked with a quota peek; they are free and unmetered, like the
//!   On-demand metadata routes). `fields` and `filters` apply as in
//!   On-demand; `Accept: application/x-ndjson` gets one object per line.
//! - A download GET (whole or a single `Range`, 206) consumes one unit of
//!   `realtime` quota per batch version, account and UTC month, through a
//!   download marker as snapshots count theirs, so the parallel ranges of
//!   one SDK download cost one unit; every GET is metered with its bytes
//!   and streamed from the stored parts. HEAD answers the same headers and
//!   is free. An account has at most `max_concurrent_downloads` download
//!   bodies open at a time (slots of their own, apart from snapshot
//!   downloads'); the next is refused with 429 before any quota is consumed.
//! - `version` (and the ETag) is the MD5 of the batch's NDJSON, 32 hex
//!   characters as in WME. Every answer carries `x-wikiedge-batch-build`,
//!   the number of the build it reads.
//! - An hour is read with two binary searches per partition over the meta
//!   records; at most the core's `batch_build::MAX_EVENTS` events per
//!   build. An hour that has not started is 404.
//!
//! Building (selection, the two passes, parts under the budget, what a
//! build replaces) is the core's `realtime::batch_build`; the build's I/O
//! is [`crate::batch_store`], this module the routes' I/O.

use bytes::Bytes;
use futures::SinkExt;
use serde_json::Value;
use spin_sdk::http::BoxBody;
use wikiedge_core::Error;
use wikiedge_core::article::projection::{matches_all, project};
use wikiedge_core::article::request::ArticlesRequest;
use wikiedge_core::quota::period::Month;
use wikiedge_core::realtime::batch::{
    Batch, StoredBatch, day_range, download_marker_key, hour_range, is_hour, part_key,
};
use wikiedge_core::realtime::batch_build::{
    MARKER_WAIT_MS, Marker, look_at_marker, pending_marker, settled_marker,
};
use wikiedge_core::snapshot::{PartSlice, RangeRequest, parse_range, part_slices};
use wikiedge_core::time::parse_millis;

use crate::gate;
use wikiedge_fn::bindings::wikiedge::auth::auth::Principal;
use wikiedge_fn::kv::{self, Bucket, Update};
use wikiedge_fn::now_ms;
use wikiedge_fn::respond::{Reply, response};

use crate::batch_store::stored;

/// What the rest of the path asks for.
enum Want<'a> {
    List,
    Meta(&'a str),
    Download(&'a str),
}

/// One batches request: method, the path after `/v2/batches/`, and what
/// the SDKs send besides (JSON body, `Accept`, `Range`).
pub struct Ask<'a> {
    /// The method.
    pub method: &'a http::Method,
    /// The path after `/v2/batches/`.
    pub rest: &'a str,
    /// The query string.
    pub query: &'a str,
    /// The request body (POST: `fields`, `filters`).
    pub body: &'a [u8],
    /// `Accept: application/x-ndjson`.
    pub ndjson: bool,
    /// The `Range` header.
    pub range: Option<&'a str>,
}

fn encode(items: Vec<Value>, ndjson: bool) -> Vec<u8> {
    if !ndjson {
        return serde_json::to_vec(&items).unwrap_or_default();
    }
    let mut out = Vec::new();
    for item in items {
        if serde_json::to_writer(&mut out, &item).is_ok() {
            out.push(b'\n');
        }
    }
    out
}

fn reply_json(items: Vec<Value>, one: bool, ndjson: bool) -> Reply {
    if ndjson {
        return Reply {
            status: 200,
            headers: vec![("content-type", "application/x-ndjson".into())],
            body: encode(items, true),
            keep: None,
        };
    }
    let body = if one {
        serde_json::to_vec(&items.into_iter().next().unwrap_or_default()).unwrap_or_default()
    } else {
        encode(items, false)
    };
    Reply::json(200, body)
}

/// Answers a batches request.
pub async fn serve(principal: &Principal, ask: Ask<'_>) -> http::Response<BoxBody> {
    let method = ask.method;
    let segments: Vec<&str> = ask.rest.trim_end_matches('/').split('/').collect();
    // Hourly `{date}/{HH}[/{id}[/download]]`, or the daily form
    // `{date}[/{id}[/download]]` of WME's 2024-01 spec (the Go SDK's paths).
    let (range, want) = match segments.as_slice() {
        [date, hour] if is_hour(hour) => (hour_range(date, hour), Want::List),
        [date, hour, id] if is_hour(hour) => (hour_range(date, hour), Want::Meta(id)),
        [date, hour, id, "download"] if is_hour(hour) => {
            (hour_range(date, hour), Want::Download(id))
        }
        [date] => (day_range(date), Want::List),
        [date, id] => (day_range(date), Want::Meta(id)),
        [date, id, "download"] => (day_range(date), Want::Download(id)),
        _ => {
            return Reply::error(&Error::NotFound(
                "expected /v2/batches/{YYYY-MM-DD}[/{HH}][/{identifier}[/download]]".into(),
            ))
            .into_box_response();
        }
    };
    let is_head = method == http::Method::HEAD;
    let allowed = match want {
        Want::Download(_) => is_head || method == http::Method::GET,
        _ => method == http::Method::GET || method == http::Method::POST,
    };
    if !allowed {
        return Reply::error(&Error::MethodNotAllowed(format!(
            "method {method} is not allowed"
        )))
        .into_box_response();
    }
    // `fields` and `filters` as in On-demand: a JSON body on POST, the
    // query on GET.
    let request = if method == http::Method::POST {
        ArticlesRequest::from_json(ask.body)
    } else {
        ArticlesRequest::from_query(ask.query)
    };
    let peeked = gate::peek(principal);
    let request = match request {
        Ok(request) => request,
        Err(err) => {
            return Reply::error(&err)
                .rate_limit(peeked.as_ref())
                .into_box_response();
        }
    };
    if peeked.as_ref().is_some_and(|d| d.limit == 0) {
        return Reply::error(&Error::Forbidden(
            "Your plan does not include realtime".into(),
        ))
        .rate_limit(peeked.as_ref())
        .into_box_response();
    }
    let (start, end) = match range {
        Ok(range) => range,
        Err(err) => {
            return Reply::error(&err)
                .rate_limit(peeked.as_ref())
                .into_box_response();
        }
    };
    if start > now_ms() {
        return Reply::error(&Error::NotFound("that hour has not started".into()))
            .rate_limit(peeked.as_ref())
            .into_box_response();
    }
    let index = match kv::open_bulk() {
        Ok(bucket) => stored(&bucket, start, end).await,
        Err(err) => Err(err),
    };
    let index = match index {
        Ok(index) => index,
        Err(err) => return Reply::error(&err).into_box_response(),
    };
    let build = index.build.to_string();
    let filters = request.filters.as_deref().unwrap_or_default();
    let fields = request.fields.as_deref().unwrap_or_default();
    let shape = |meta: &Batch| -> Option<Value> {
        let doc = serde_json::to_value(meta).ok()?;
        matches_all(&doc, filters).then(|| project(doc, fields))
    };
    match want {
        Want::List => {
            let list: Vec<Value> = index
                .batches
                .iter()
                .filter_map(|b| shape(&b.meta))
                .collect();
            reply_json(list, false, ask.ndjson)
                .rate_limit(peeked.as_ref())
                .header(BUILD_HEADER, build)
                .into_box_response()
        }
        Want::Meta(id) | Want::Download(id) => {
            let Some(batch) = index.batches.into_iter().find(|b| b.meta.identifier == id) else {
                return Reply::error(&Error::NotFound(format!("no batch {id} for that hour")))
                    .rate_limit(peeked.as_ref())
                    .into_box_response();
            };
            if let Want::Meta(_) = want {
                let one = serde_json::to_value(&batch.meta)
                    .map(|doc| project(doc, fields))
                    .unwrap_or_default();
                return reply_json(vec![one], true, ask.ndjson)
                    .rate_limit(peeked.as_ref())
                    .header(BUILD_HEADER, build)
                    .into_box_response();
            }
            download(principal, is_head, ask.range, (start, end), batch, build).await
        }
    }
}

/// The header naming the build an answer reads.
const BUILD_HEADER: &str = "x-wikiedge-batch-build";

/// Claims the download marker (core `batch_build::look_at_marker`):
/// `true` when this request must consume the unit (and then [`settle`]),
/// `false` when the download was counted.
async fn claim(bucket: &Bucket, key: &str) -> Result<bool, Error> {
    let deadline = now_ms() + MARKER_WAIT_MS;
    loop {
        let now = now_ms();
        let look = kv::update(bucket, key, |current| {
            Ok(match look_at_marker(current.as_deref(), now) {
                Marker::Mine => Update::Write(pending_marker(now), Marker::Mine),
                other => Update::Keep(other),
            })
        })?;
        match look {
            Marker::Counted => return Ok(false),
            Marker::Mine => return Ok(true),
            // Out of patience: count it here; a download may be counted
            // twice, never left uncounted.
            Marker::Wait if now >= deadline => return Ok(true),
            Marker::Wait => spin_sdk::time::sleep(std::time::Duration::from_millis(15)).await,
        }
    }
}

/// Marks the download counted (admitted) or releases the claim (denied).
fn settle(bucket: &Bucket, key: &str, admitted: bool) -> Result<(), Error> {
    kv::update(bucket, key, |_| {
        Ok(Update::Write(settled_marker(admitted), ()))
    })
}

/// Streams slices of a stored batch's parts; a part that is missing (the
/// version was replaced mid-download) or unreadable ends the body early, so
/// the client sees a short transfer (its `Content-Length` is not met), never
/// wrong bytes.
/// `slot` is held until the body has been sent or its client has gone.
fn stream_parts(
    start: i64,
    id: String,
    version: String,
    slices: Vec<PartSlice>,
    slot: wikiedge_fn::slots::Slot,
) -> BoxBody {
    // At most `PARTS_AHEAD` parts (of `realtime_batch_budget_bytes`) ahead
    // of a slow client, as snapshot downloads.
    let (mut tx, body) = wikiedge_fn::respond::parts_body();
    spin_sdk::wasip3::spawn(async move {
        let _slot = slot;
        let bucket = match kv::open_bulk() {
            Ok(bucket) => bucket,
            Err(err) => {
                eprintln!("realtime: download of batch {id} aborted: {err:?}");
                return;
            }
        };
        for slice in slices {
            let key = part_key(start, &id, &version, slice.part);
            let chunk = match kv::get(&bucket, &key) {
                Ok(Some(bytes)) if bytes.len() >= slice.to && slice.from <= slice.to => {
                    Bytes::from(bytes).slice(slice.from..slice.to)
                }
                other => {
                    eprintln!(
                        "realtime: download of batch {id} aborted at {key}: {:?}",
                        other.map(|b| b.map(|b| b.len()))
                    );
                    return;
                }
            };
            if tx.send(Ok(chunk)).await.is_err() {
                return;
            }
        }
    });
    body
}

async fn download(
    principal: &Principal,
    is_head: bool,
    range: Option<&str>,
    (start, end): (i64, i64),
    batch: StoredBatch,
    build: String,
) -> http::Response<BoxBody> {
    let len = batch.blob.bytes;
    let modified = parse_millis(&batch.meta.date_modified).unwrap_or(end);
    let mut reply: Reply = Reply {
        status: 200,
        headers: vec![("content-type", "application/gzip".into())],
        body: Vec::new(),
        keep: None,
    }
    .header(
        "content-disposition",
        format!("attachment; filename=\"{}.tar.gz\"", batch.meta.identifier),
    )
    .header("etag", format!("\"{}\"", batch.meta.version))
    .header("accept-ranges", "bytes")
    .header("last-modified", httpdate(modified))
    .header(BUILD_HEADER, build);
    if is_head {
        return reply
            .header("content-length", len.to_string())
            .rate_limit(gate::peek(principal).as_ref())
            .into_box_response();
    }
    let (from, to) = match parse_range(range, len) {
        RangeRequest::Full => (0, len),
        RangeRequest::Partial { start, end } => {
            reply.status = 206;
            reply = reply.header("content-range", format!("bytes {start}-{end}/{len}"));
            (start, end + 1)
        }
        RangeRequest::Unsatisfiable => {
            let body = wikiedge_core::ErrorBody {
                status: 416,
                message: format!("range not satisfiable: the batch has {len} bytes"),
            };
            return Reply::json(416, serde_json::to_vec(&body).unwrap_or_default())
                .header("content-range", format!("bytes */{len}"))
                .into_box_response();
        }
    };
    // At most `max_concurrent_downloads` bodies per account at a time, as
    // for snapshots; refused before quota.
    let slot = match wikiedge_fn::slots::take_download("batch-downloads", &principal.account).await
    {
        Ok(slot) => slot,
        Err(err) => return gate::unmetered_error(principal, &err).into_box_response(),
    };
    // One unit per batch version, account and month, however many ranges.
    let month = Month::from_unix(now_ms() / 1000).to_string();
    let key = download_marker_key(&principal.account, &batch.meta.version, &month);
    let bucket = match kv::open() {
        Ok(bucket) => bucket,
        Err(err) => return Reply::error(&err).into_box_response(),
    };
    let decision = match claim(&bucket, &key).await {
        Err(err) => return Reply::error(&err).into_box_response(),
        Ok(false) => gate::peek(principal),
        Ok(true) => {
            let consumed = gate::consume(principal);
            let admitted = matches!(&consumed, Ok(d) if d.admitted);
            if let Err(err) = settle(&bucket, &key, admitted) {
                eprintln!("realtime: could not mark {key} counted: {err:?}");
            }
            match consumed {
                Err(err) => return Reply::error(&err).into_box_response(),
                Ok(decision) if !decision.admitted => {
                    let denied = gate::denied(&decision);
                    if let Err(e) =
                        gate::record(principal, false, denied.status, denied.body.len() as u64)
                    {
                        eprintln!("realtime: metering a denied download failed: {e}");
                    }
                    return denied.into_box_response();
                }
                Ok(decision) => Some(decision),
            }
        }
    };
    let reply = reply
        .header("content-length", (to - from).to_string())
        .rate_limit(decision.as_ref());
    // Metered with the bytes it is about to send, before the body starts.
    if let Err(e) = gate::record(principal, true, reply.status, to - from) {
        eprintln!("realtime: metering failed, withholding the download: {e}");
        return Reply::error(&Error::Unavailable {
            message: "usage metering is temporarily unavailable".into(),
            retry_after: 1,
        })
        .into_box_response();
    }
    let slices = if to > from {
        part_slices(&batch.blob, from, to - 1)
    } else {
        Vec::new()
    };
    let body = stream_parts(
        start,
        batch.meta.identifier,
        batch.meta.version,
        slices,
        slot,
    );
    response(reply.status, &reply.headers, body)
}

/// An HTTP date of Unix milliseconds (never in the future).
fn httpdate(ms: i64) -> String {
    wikiedge_core::time::http_date(ms.min(now_ms()).div_euclid(1000))
}
