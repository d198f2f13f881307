//! `GET|HEAD /v2/snapshots/{id}/download`,
//! `GET|HEAD /v2/snapshots/{id}/chunks/{chunk}/download` and
//! `GET|HEAD /v2/snapshots/structured-contents/{id}/download`.
//!
//! - Headers: `Accept-Ranges: bytes`, `Content-Length`, `ETag` (the quoted
//!   version), `Last-Modified` (the version's `date_modified`),
//!   `Content-Type: application/gzip`, `Content-Disposition`.
//! - `Range: bytes=a-b | a- | -n` gets 206 with `Content-Range`; a range
//!   outside the file gets 416 with `Content-Range: bytes */len` (free,
//!   unmetered); malformed and multi-range headers are ignored (200, whole
//!   file), as RFC 9110 allows. `If-Range` is not supported: a client that
//!   resumes should compare the `ETag`.
//! - Quota: products `snapshot` and `chunk`. A download is counted once per
//!   account, version and UTC month, by the first GET (whole or a range)
//!   through the download marker (see `store`); later GETs of that version
//!   are free. HEAD is always free and unmetered. Every GET is metered with
//!   the bytes it sends, before the body starts.
//! - With the variable `snapshot_redirect_base` set, a GET is counted the
//!   same way and answered `307` to `{base}/{identifier}/{version}.tar.gz`
//!   (an object store or CDN serves the bytes); HEAD answers the same 307.
//! - The body streams part by part from key-value (`respond`).
//! - A structured-contents snapshot is the same in every respect; its parts
//!   and download marker are keyed by its blob id
//!   (`structured-contents_{id}`), so it is counted apart from the article
//!   snapshot of the same identifier (one unit each), and a redirect goes to
//!   `{base}/structured-contents_{id}/{version}.tar.gz`.

use std::sync::OnceLock;

use wikiedge_core::Error;
use wikiedge_core::quota::Month;
use wikiedge_core::snapshot::{
    Blob, RangeRequest, download_name, http_date, marker_key, parse_range, parse_rfc3339,
    part_slices, structured_blob_id,
};

use crate::SNAPSHOT;
use crate::respond::{Payload, Reply};
use crate::store::{self, Claim};
use wikiedge_fn::bindings::wikiedge::auth::auth::Principal;
use wikiedge_fn::gate;

/// What is downloaded.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The snapshot.
    pub snapshot: &'a str,
    /// A chunk of it, or the whole file.
    pub chunk: Option<&'a str>,
    /// The structured-contents snapshot of that identifier.
    pub structured: bool,
}

/// The request facts a download needs.
#[derive(Debug, Clone)]
pub struct Ask {
    /// HEAD rather than GET.
    pub head: bool,
    /// The `Range` header.
    pub range: Option<String>,
}

static REDIRECT_BASE: OnceLock<String> = OnceLock::new();

/// The `snapshot_redirect_base` variable, read once; empty when unset.
async fn redirect_base() -> &'static str {
    if let Some(base) = REDIRECT_BASE.get() {
        return base;
    }
    let base = spin_sdk::variables::get("snapshot_redirect_base")
        .await
        .unwrap_or_default()
        .trim()
        .trim_end_matches('/')
        .to_string();
    REDIRECT_BASE.get_or_init(|| base)
}

/// The file being downloaded, resolved from its record.
struct File {
    identifier: String,
    /// What its parts and download marker are keyed by.
    blob_id: String,
    version: String,
    date_modified: String,
    blob: Blob,
    product: &'static str,
}

async fn resolve(target: Target<'_>) -> Result<File, Error> {
    let kv = store::open_bulk().await?;
    if target.structured {
        let record = store::structured_record(&kv, target.snapshot).await?;
        return Ok(File {
            blob_id: structured_blob_id(&record.meta.identifier),
            identifier: record.meta.identifier,
            version: record.meta.version,
            date_modified: record.meta.date_modified,
            blob: record.blob,
            product: "snapshot",
        });
    }
    let record = store::record(&kv, target.snapshot).await?;
    Ok(match target.chunk {
        None => File {
            blob_id: record.meta.identifier.clone(),
            identifier: record.meta.identifier,
            version: record.meta.version,
            date_modified: record.meta.date_modified,
            blob: record.blob,
            product: "snapshot",
        },
        Some(chunk_id) => {
            let chunk = record.chunk(chunk_id).ok_or_else(|| {
                Error::NotFound(format!(
                    "chunk '{chunk_id}' of snapshot '{}' not found",
                    target.snapshot
                ))
            })?;
            File {
                blob_id: chunk.meta.identifier.clone(),
                identifier: chunk.meta.identifier.clone(),
                version: chunk.meta.version.clone(),
                date_modified: chunk.meta.date_modified.clone(),
                blob: chunk.blob,
                product: "chunk",
            }
        }
    })
}

/// The headers every download answer carries.
fn describe(reply: Reply, file: &File) -> Reply {
    let reply = reply
        .header("accept-ranges", "bytes")
        .header("etag", format!("\"{}\"", file.version))
        .header(
            "content-disposition",
            format!(
                "attachment; filename=\"{}\"",
                download_name(&file.identifier)
            ),
        );
    match parse_rfc3339(&file.date_modified) {
        Some(t) => reply.header("last-modified", http_date(t)),
        None => reply,
    }
}

fn empty(status: u16) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: Payload::Empty,
        keep: None,
    }
}

/// Serves a download request for an authenticated caller.
pub async fn serve(principal: &Principal, target: Target<'_>, ask: Ask) -> Reply {
    let file = match resolve(target).await {
        Ok(file) => file,
        Err(err) => return gate::unmetered_error(principal, SNAPSHOT, &err),
    };
    let len = file.blob.bytes;
    let base = redirect_base().await;
    let range = if base.is_empty() && !ask.head {
        parse_range(ask.range.as_deref(), len)
    } else {
        RangeRequest::Full
    };
    if range == RangeRequest::Unsatisfiable {
        let body = wikiedge_core::ErrorBody {
            status: 416,
            message: format!("range not satisfiable: the file has {len} bytes"),
        };
        let decision = gate::peek(principal, file.product);
        return describe(
            Reply::json(416, serde_json::to_vec(&body).unwrap_or_default()),
            &file,
        )
        .header("content-range", format!("bytes */{len}"))
        .rate_limit(decision.as_ref());
    }
    let location = format!("{base}/{}/{}.tar.gz", file.blob_id, file.version);
    if ask.head {
        let reply = if base.is_empty() {
            describe(empty(200), &file)
                .header("content-type", "application/gzip")
                .header("content-length", len.to_string())
        } else {
            empty(307).header("location", location)
        };
        let decision = gate::peek(principal, file.product);
        return reply.rate_limit(decision.as_ref());
    }

    // At most `max_concurrent_downloads` bodies per account at a time (the
    // WME SDKs download in a few parallel ranges); refused before quota.
    let slot = if base.is_empty() {
        match wikiedge_fn::slots::take_download("downloads", &principal.account).await {
            Ok(slot) => Some(std::sync::Arc::new(slot)),
            Err(err) => return gate::unmetered_error(principal, SNAPSHOT, &err),
        }
    } else {
        None
    };

    // Count the download once per account, version and month.
    let month = Month::from_unix(wikiedge_fn::now());
    let key = marker_key(&principal.account, &file.blob_id, &file.version, month);
    let decision = match store::claim(&key).await {
        Err(err) => return gate::unmetered_error(principal, SNAPSHOT, &err),
        Ok(Claim::Counted) => gate::peek(principal, file.product),
        Ok(Claim::Mine) => {
            let consumed = gate::consume(principal, file.product);
            let admitted = matches!(&consumed, Ok(d) if d.admitted);
            let settled = match store::open().await {
                Ok(kv) => store::settle(&kv, &key, admitted).await,
                Err(err) => Err(err),
            };
            let decision = match consumed {
                Err(err) => return Reply::error(&err),
                Ok(decision) if !decision.admitted => {
                    let reply = gate::denied(&decision);
                    return gate::metered(principal, file.product, false, 0, reply);
                }
                Ok(decision) => decision,
            };
            if let Err(err) = settled {
                // Counted but not remembered: serve it; a later request of
                // this download may be counted again, never left uncounted.
                eprintln!("snapshots: could not mark {key} counted: {err:?}");
            }
            Some(decision)
        }
    };

    let (status, start, end) = match range {
        RangeRequest::Partial { start, end } => (206, start, end),
        _ => (200, 0, len.saturating_sub(1)),
    };
    let sent = if len == 0 { 0 } else { end - start + 1 };
    let reply = if base.is_empty() {
        let mut reply = describe(empty(status), &file)
            .header("content-type", "application/gzip")
            .header("content-length", sent.to_string());
        if status == 206 {
            reply = reply.header("content-range", format!("bytes {start}-{end}/{len}"));
        }
        reply.body = Payload::Parts {
            identifier: file.blob_id.clone(),
            version: file.version.clone(),
            slices: if len == 0 {
                Vec::new()
            } else {
                part_slices(&file.blob, start, end)
            },
            slot,
        };
        reply
    } else {
        describe(empty(307), &file).header("location", location)
    };
    let bytes = if base.is_empty() { sent } else { 0 };
    let reply = reply.rate_limit(decision.as_ref());
    gate::metered(principal, file.product, true, bytes, reply)
}
