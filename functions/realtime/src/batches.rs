//! `/v2/batches/{YYYY-MM-DD}/{HH}[/{identifier}[/download]]`: hourly
//! batches built from the log on request (core `realtime::batch`); the
//! daily form `/v2/batches/{YYYY-MM-DD}[/{identifier}[/download]]` (WME's
//! 2024-01 spec, the Go SDK's paths) holds the day's events so far.
//!
//! - The list and the metadata (GET, or POST with a JSON body as the
//!   official SDKs send) need a token whose plan includes `realtime`
//!   (checked with a quota peek; they are free and unmetered, like the
//!   On-demand metadata routes). `fields` and `filters` apply as in
//!   On-demand; `Accept: application/x-ndjson` gets one object per line.
//! - A download GET (whole or a single `Range`, 206) consumes one unit of
//!   `realtime` quota per batch version, account and UTC month, through a
//!   download marker as snapshots count theirs, so the parallel ranges of
//!   one SDK download cost one unit; every GET is metered with its bytes.
//!   HEAD answers the same headers and is free.
//! - `version` (and the ETag) is the MD5 of the batch's NDJSON, 32 hex
//!   characters as in WME.
//! - An hour is read with two binary searches per partition over the meta
//!   records; at most [`MAX_EVENTS`] events are read per request. An hour
//!   that has not started is 404; the current hour holds what has arrived.

use std::collections::BTreeMap;
use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::Value;
use wikiedge_core::Error;
use wikiedge_core::article::projection::{matches_all, project};
use wikiedge_core::article::request::ArticlesRequest;
use wikiedge_core::quota::period::Month;
use wikiedge_core::realtime::batch::{
    Batch, Ref, Size, day_range, download_marker_key, hour_range, identifier, is_hour, tar_one,
    version,
};
use wikiedge_core::realtime::log::PARTITIONS;
use wikiedge_core::snapshot::{RangeRequest, parse_range};
use wikiedge_core::time::format_millis;

use crate::ingest::now_ms;
use crate::{gate, log};
use wikiedge_fn::bindings::wikiedge::auth::auth::Principal;
use wikiedge_fn::kv::{self, Bucket, Update};
use wikiedge_fn::respond::Reply;

/// The most events one batch request reads.
const MAX_EVENTS: u64 = 100_000;

/// One built batch.
struct Built {
    meta: Batch,
    archive: Vec<u8>,
}

/// Reads the hour's events, grouped by batch identifier.
fn collect(bucket: &Bucket, start: i64, end: i64) -> Result<BTreeMap<String, Vec<Value>>, Error> {
    let mut groups: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut read = 0;
    for p in 0..PARTITIONS {
        let from = log::first_since(bucket, p, start)?;
        let to = log::first_since(bucket, p, end)?;
        for offset in from..to {
            read += 1;
            if read > MAX_EVENTS {
                eprintln!("realtime: batch of {start} truncated at {MAX_EVENTS} events");
                return Ok(groups);
            }
            let Some(bytes) = log::read(bucket, p, offset)? else {
                continue;
            };
            let Ok(doc) = serde_json::from_slice::<Value>(&bytes) else {
                continue;
            };
            let project = doc["is_part_of"]["identifier"].as_str().unwrap_or("");
            let namespace = doc["namespace"]["identifier"].as_i64().unwrap_or(0);
            if project.is_empty() {
                continue;
            }
            groups
                .entry(identifier(project, namespace))
                .or_default()
                .push(doc);
        }
    }
    Ok(groups)
}

fn build(id: &str, docs: &[Value]) -> Result<Built, Error> {
    let mut ndjson = Vec::new();
    let mut modified = String::new();
    for doc in docs {
        if let Ok(line) = serde_json::to_vec(doc) {
            ndjson.extend_from_slice(&line);
            ndjson.push(b'\n');
        }
        if let Some(d) = doc["event"]["date_published"].as_str()
            && d > modified.as_str()
        {
            modified = d.to_string();
        }
    }
    let first = docs.first().cloned().unwrap_or_default();
    let mtime = wikiedge_core::time::parse_millis(&modified).unwrap_or(0) / 1000;
    let tar = tar_one(&format!("{id}.ndjson"), &ndjson, mtime.max(0) as u64);
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&tar)
        .map_err(|e| Error::Internal(format!("gzip: {e}")))?;
    let archive = gz
        .finish()
        .map_err(|e| Error::Internal(format!("gzip: {e}")))?;
    let meta = Batch {
        identifier: id.to_string(),
        version: version(&ndjson),
        date_modified: modified,
        is_part_of: Ref {
            identifier: first["is_part_of"]["identifier"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        },
        in_language: first["in_language"]["identifier"].as_str().map(|l| Ref {
            identifier: l.to_string(),
        }),
        namespace: Ref {
            identifier: first["namespace"]["identifier"].as_i64().unwrap_or(0),
        },
        size: Size::from_bytes_to_kb(archive.len() as u64),
    };
    Ok(Built { meta, archive })
}

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
pub async fn serve(principal: &Principal, ask: Ask<'_>) -> Reply {
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
            ));
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
        )));
    }
    // `fields` and `filters` as in On-demand: a JSON body on POST, the
    // query on GET.
    let request = if method == http::Method::POST {
        ArticlesRequest::from_json(ask.body)
    } else {
        ArticlesRequest::from_query(ask.query)
    };
    let peeked = gate::peek(principal).await;
    let request = match request {
        Ok(request) => request,
        Err(err) => return Reply::error(&err).rate_limit(peeked.as_ref()),
    };
    if peeked.as_ref().is_some_and(|d| d.limit == 0) {
        return Reply::error(&Error::Forbidden(
            "Your plan does not include realtime".into(),
        ))
        .rate_limit(peeked.as_ref());
    }
    let (start, end) = match range {
        Ok(range) => range,
        Err(err) => return Reply::error(&err).rate_limit(peeked.as_ref()),
    };
    if start > now_ms() {
        return Reply::error(&Error::NotFound("that hour has not started".into()))
            .rate_limit(peeked.as_ref());
    }
    let groups = match kv::open().and_then(|bucket| collect(&bucket, start, end)) {
        Ok(groups) => groups,
        Err(err) => return Reply::error(&err),
    };
    let filters = request.filters.as_deref().unwrap_or_default();
    let fields = request.fields.as_deref().unwrap_or_default();
    let shape = |meta: &Batch| -> Option<Value> {
        let doc = serde_json::to_value(meta).ok()?;
        matches_all(&doc, filters).then(|| project(&doc, fields))
    };
    match want {
        Want::List => {
            let mut list = Vec::new();
            for (id, docs) in &groups {
                match build(id, docs) {
                    Ok(built) => list.extend(shape(&built.meta)),
                    Err(err) => return Reply::error(&err),
                }
            }
            reply_json(list, false, ask.ndjson).rate_limit(peeked.as_ref())
        }
        Want::Meta(id) | Want::Download(id) => {
            let Some(docs) = groups.get(id) else {
                return Reply::error(&Error::NotFound(format!("no batch {id} for that hour")))
                    .rate_limit(peeked.as_ref());
            };
            let built = match build(id, docs) {
                Ok(built) => built,
                Err(err) => return Reply::error(&err),
            };
            if let Want::Meta(_) = want {
                let one = serde_json::to_value(&built.meta)
                    .map(|doc| project(&doc, fields))
                    .unwrap_or_default();
                return reply_json(vec![one], true, ask.ndjson).rate_limit(peeked.as_ref());
            }
            download(principal, is_head, ask.range, end, built).await
        }
    }
}

/// What one look at a download marker decided.
enum Look {
    Counted,
    Mine,
    Wait,
}

/// A marker older than this while pending is claimed over (its holder died).
const STALE_PENDING_MS: i64 = 10_000;
/// How long a range waits for another range's quota decision.
const WAIT_MS: i64 = 3_000;
const PENDING: &str = "pending:";
const COUNTED: &[u8] = b"counted";

/// Claims the download marker: `true` when this request must consume the
/// unit (and then [`settle`]), `false` when the download was counted.
async fn claim(bucket: &Bucket, key: &str) -> Result<bool, Error> {
    let deadline = now_ms() + WAIT_MS;
    loop {
        let now = now_ms();
        let look = kv::update(bucket, key, |current| {
            let pending_since = current
                .as_deref()
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.strip_prefix(PENDING))
                .and_then(|ms| ms.parse::<i64>().ok());
            Ok(match (current.as_deref(), pending_since) {
                (Some(v), _) if v == COUNTED => Update::Keep(Look::Counted),
                (Some(_), Some(since)) if now - since < STALE_PENDING_MS => {
                    Update::Keep(Look::Wait)
                }
                _ => Update::Write(format!("{PENDING}{now}").into_bytes(), Look::Mine),
            })
        })?;
        match look {
            Look::Counted => return Ok(false),
            Look::Mine => return Ok(true),
            // Out of patience: count it here; a download may be counted
            // twice, never left uncounted.
            Look::Wait if now >= deadline => return Ok(true),
            Look::Wait => spin_sdk::time::sleep(std::time::Duration::from_millis(15)).await,
        }
    }
}

/// Marks the download counted (admitted) or releases the claim (denied).
fn settle(bucket: &Bucket, key: &str, admitted: bool) -> Result<(), Error> {
    let value: &[u8] = if admitted { COUNTED } else { b"denied" };
    kv::update(bucket, key, |_| Ok(Update::Write(value.to_vec(), ())))
}

async fn download(
    principal: &Principal,
    is_head: bool,
    range: Option<&str>,
    end: i64,
    built: Built,
) -> Reply {
    let len = built.archive.len() as u64;
    let headers = |reply: Reply| {
        reply
            .header(
                "content-disposition",
                format!("attachment; filename=\"{}.tar.gz\"", built.meta.identifier),
            )
            .header("etag", format!("\"{}\"", built.meta.version))
            .header("accept-ranges", "bytes")
            .header("last-modified", httpdate(end))
    };
    let mut reply = headers(Reply {
        status: 200,
        headers: vec![("content-type", "application/gzip".into())],
        body: Vec::new(),
    });
    if is_head {
        reply = reply.header("content-length", len.to_string());
        return reply.rate_limit(gate::peek(principal).await.as_ref());
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
                .header("content-range", format!("bytes */{len}"));
        }
    };
    // One unit per batch version, account and month, however many ranges.
    let month = Month::from_unix(now_ms() / 1000).to_string();
    let key = download_marker_key(&principal.account, &built.meta.version, &month);
    let bucket = match kv::open() {
        Ok(bucket) => bucket,
        Err(err) => return Reply::error(&err),
    };
    let decision = match claim(&bucket, &key).await {
        Err(err) => return Reply::error(&err),
        Ok(false) => gate::peek(principal).await,
        Ok(true) => {
            let consumed = gate::consume(principal).await;
            let admitted = matches!(&consumed, Ok(d) if d.admitted);
            if let Err(err) = settle(&bucket, &key, admitted) {
                eprintln!("realtime: could not mark {key} counted: {err:?}");
            }
            match consumed {
                Err(err) => return Reply::error(&err),
                Ok(decision) if !decision.admitted => {
                    let denied = gate::denied(&decision);
                    if let Err(e) =
                        gate::record(principal, false, denied.status, denied.body.len() as u64)
                            .await
                    {
                        eprintln!("realtime: metering a denied download failed: {e}");
                    }
                    return denied;
                }
                Ok(decision) => Some(decision),
            }
        }
    };
    reply.body = built.archive[from as usize..to as usize].to_vec();
    let reply = reply.rate_limit(decision.as_ref());
    match gate::record(principal, true, reply.status, reply.body.len() as u64).await {
        Ok(()) => reply,
        Err(e) => {
            eprintln!("realtime: metering failed, withholding the download: {e}");
            Reply::error(&Error::Unavailable {
                message: "usage metering is temporarily unavailable".into(),
                retry_after: 1,
            })
        }
    }
}

/// An HTTP date (RFC 7231 IMF-fixdate) of Unix milliseconds.
fn httpdate(ms: i64) -> String {
    let iso = format_millis(ms.min(now_ms()));
    // 2024-10-04T15:09:55Z -> Fri, 04 Oct 2024 15:09:55 GMT
    let days = ms.min(now_ms()).div_euclid(86_400_000);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][iso[5..7].parse::<usize>().unwrap_or(1).clamp(1, 12) - 1];
    format!(
        "{weekday}, {} {month} {} {} GMT",
        &iso[8..10],
        &iso[0..4],
        &iso[11..19]
    )
}
