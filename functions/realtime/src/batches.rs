//! `/v2/batches/{YYYY-MM-DD}/{HH}[/{identifier}[/download]]`: hourly
//! batches built from the log on request (core `realtime::batch`).
//!
//! - The list and the metadata need a token whose plan includes
//!   `realtime` (checked with a quota peek; they are free and unmetered,
//!   like the On-demand metadata routes).
//! - A download (GET) consumes one unit of `realtime` quota and is metered
//!   with its bytes; HEAD answers the same headers and is free.
//! - An hour is read with two binary searches per partition over the meta
//!   records; at most [`MAX_EVENTS`] events are read per request. An hour
//!   that has not started is 404; the current hour holds what has arrived.

use std::collections::BTreeMap;
use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::Value;
use wikiedge_core::Error;
use wikiedge_core::realtime::batch::{Batch, Ref, Size, hour_range, identifier, tar_one};
use wikiedge_core::realtime::log::{PARTITIONS, fnv1a};
use wikiedge_core::realtime::timestamp::format_millis;

use crate::ingest::now_ms;
use crate::{gate, log};
use wikiedge_fn::bindings::wikiedge::auth::auth::Principal;
use wikiedge_fn::kv::{self, Bucket};
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
    let mtime = wikiedge_core::realtime::timestamp::parse_millis(&modified).unwrap_or(0) / 1000;
    let tar = tar_one(&format!("{id}.ndjson"), &ndjson, mtime.max(0) as u64);
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&tar)
        .map_err(|e| Error::Internal(format!("gzip: {e}")))?;
    let archive = gz
        .finish()
        .map_err(|e| Error::Internal(format!("gzip: {e}")))?;
    let meta = Batch {
        identifier: id.to_string(),
        version: format!("{:016x}", fnv1a(&ndjson)),
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

/// Answers a batches request; `rest` is the path after `/v2/batches/`.
pub async fn serve(principal: &Principal, method: &http::Method, rest: &str) -> Reply {
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let (date, hour, want) = match segments.as_slice() {
        [date, hour] => (*date, *hour, Want::List),
        [date, hour, id] => (*date, *hour, Want::Meta(id)),
        [date, hour, id, "download"] => (*date, *hour, Want::Download(id)),
        _ => {
            return Reply::error(&Error::NotFound(
                "expected /v2/batches/{YYYY-MM-DD}/{HH}[/{identifier}[/download]]".into(),
            ));
        }
    };
    let is_head = method == http::Method::HEAD;
    if is_head && !matches!(want, Want::Download(_)) || !(is_head || method == http::Method::GET) {
        return Reply::error(&Error::MethodNotAllowed(format!(
            "method {method} is not allowed"
        )));
    }
    let peeked = gate::peek(principal).await;
    if peeked.as_ref().is_some_and(|d| d.limit == 0) {
        return Reply::error(&Error::Forbidden(
            "Your plan does not include realtime".into(),
        ))
        .rate_limit(peeked.as_ref());
    }
    let (start, end) = match hour_range(date, hour) {
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
    match want {
        Want::List => {
            let mut list = Vec::new();
            for (id, docs) in &groups {
                match build(id, docs) {
                    Ok(built) => list.push(built.meta),
                    Err(err) => return Reply::error(&err),
                }
            }
            Reply::json(200, serde_json::to_vec(&list).unwrap_or_default())
                .rate_limit(peeked.as_ref())
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
                return Reply::json(200, serde_json::to_vec(&built.meta).unwrap_or_default())
                    .rate_limit(peeked.as_ref());
            }
            download(principal, is_head, start, built).await
        }
    }
}

async fn download(principal: &Principal, is_head: bool, start: i64, built: Built) -> Reply {
    let headers = |reply: Reply| {
        reply
            .header(
                "content-disposition",
                format!("attachment; filename=\"{}.tar.gz\"", built.meta.identifier),
            )
            .header("etag", format!("\"{}\"", built.meta.version))
            .header("accept-ranges", "none")
            .header("last-modified", httpdate(start + 3_600_000))
    };
    let mut reply = headers(Reply {
        status: 200,
        headers: vec![("content-type", "application/gzip".into())],
        body: Vec::new(),
    });
    if is_head {
        reply = reply.header("content-length", built.archive.len().to_string());
        return reply.rate_limit(gate::peek(principal).await.as_ref());
    }
    let decision = match gate::consume(principal).await {
        Ok(decision) => decision,
        Err(err) => return Reply::error(&err),
    };
    if !decision.admitted {
        let denied = gate::denied(&decision);
        if let Err(e) =
            gate::record(principal, false, denied.status, denied.body.len() as u64).await
        {
            eprintln!("realtime: metering a denied download failed: {e}");
        }
        return denied;
    }
    reply.body = built.archive;
    let reply = reply.rate_limit(Some(&decision));
    match gate::record(principal, true, 200, reply.body.len() as u64).await {
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
