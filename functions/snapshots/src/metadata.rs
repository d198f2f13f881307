//! The metadata routes: `/v2/snapshots`, `/v2/snapshots/{id}`,
//! `/v2/snapshots/{id}/chunks`, `/v2/snapshots/{id}/chunks/{chunk}`,
//! `/v2/snapshots/structured-contents` and
//! `/v2/snapshots/structured-contents/{id}`.
//!
//! Choices: like On-demand's metadata routes they require authentication
//! but consume no quota and are not metered; they carry the `RateLimit`
//! headers of a peek at the `snapshot` quota. `fields` and `filters` apply
//! as in On-demand (`limit` is validated and ignored: lists are small);
//! `Accept: application/x-ndjson` gets one object per line.

use serde_json::Value;
use wikiedge_core::Error;
use wikiedge_core::article::projection::{matches_all, project};
use wikiedge_core::article::request::ArticlesRequest;
use wikiedge_core::snapshot::Snapshot;

use crate::respond::Reply;
use crate::store;
use wikiedge_fn::bindings::wikiedge::auth::auth::Principal;
use wikiedge_fn::gate;

/// Which metadata is asked for.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// Every snapshot.
    List,
    /// One snapshot.
    One(&'a str),
    /// A snapshot's chunks.
    Chunks(&'a str),
    /// One chunk.
    Chunk(&'a str, &'a str),
    /// Every structured-contents snapshot.
    StructuredList,
    /// One structured-contents snapshot.
    StructuredOne(&'a str),
}

fn value(meta: &Snapshot) -> Result<Value, Error> {
    serde_json::to_value(meta).map_err(|e| Error::Internal(e.to_string()))
}

fn list(items: &[Snapshot], request: &ArticlesRequest) -> Result<Vec<Value>, Error> {
    let filters = request.filters.as_deref().unwrap_or_default();
    let fields = request.fields.as_deref().unwrap_or_default();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let doc = value(item)?;
        if matches_all(&doc, filters) {
            out.push(project(doc, fields));
        }
    }
    Ok(out)
}

fn encode(body: Value, ndjson: bool) -> Result<Vec<u8>, Error> {
    let internal = |e: serde_json::Error| Error::Internal(e.to_string());
    match body {
        Value::Array(items) if ndjson => {
            let mut out = Vec::new();
            for item in items {
                serde_json::to_writer(&mut out, &item).map_err(internal)?;
                out.push(b'\n');
            }
            Ok(out)
        }
        other => serde_json::to_vec(&other).map_err(internal),
    }
}

async fn answer(target: Target<'_>, request: &ArticlesRequest) -> Result<Value, Error> {
    let fields = request.fields.as_deref().unwrap_or_default();
    let kv = store::open_bulk().await?;
    Ok(match target {
        Target::List => {
            let metas: Vec<Snapshot> = store::all(&kv).await?.into_iter().map(|r| r.meta).collect();
            Value::Array(list(&metas, request)?)
        }
        Target::One(id) => project(value(&store::record(&kv, id).await?.meta)?, fields),
        Target::Chunks(id) => {
            let record = store::record(&kv, id).await?;
            let metas: Vec<Snapshot> = record.chunks.into_iter().map(|c| c.meta).collect();
            Value::Array(list(&metas, request)?)
        }
        Target::Chunk(id, chunk_id) => {
            let record = store::record(&kv, id).await?;
            let chunk = record.chunk(chunk_id).ok_or_else(|| {
                Error::NotFound(format!("chunk '{chunk_id}' of snapshot '{id}' not found"))
            })?;
            project(value(&chunk.meta)?, fields)
        }
        Target::StructuredList => {
            let metas: Vec<Snapshot> = store::all_structured(&kv)
                .await?
                .into_iter()
                .map(|r| r.meta)
                .collect();
            Value::Array(list(&metas, request)?)
        }
        Target::StructuredOne(id) => project(
            value(&store::structured_record(&kv, id).await?.meta)?,
            fields,
        ),
    })
}

/// Serves a metadata request for an authenticated caller.
pub async fn serve(
    principal: &Principal,
    target: Target<'_>,
    request: Result<ArticlesRequest, Error>,
    ndjson: bool,
) -> Reply {
    let body = match request {
        Ok(request) => answer(target, &request).await,
        Err(err) => Err(err),
    };
    let reply = match body.and_then(|body| encode(body, ndjson)) {
        Ok(bytes) if ndjson => ndjson_content_type(Reply::json(200, bytes)),
        Ok(bytes) => Reply::json(200, bytes),
        Err(err) => Reply::error(&err),
    };
    let decision = gate::peek(principal, "snapshot");
    reply.rate_limit(decision.as_ref())
}

/// Marks a JSON reply as NDJSON.
fn ndjson_content_type(mut reply: Reply) -> Reply {
    reply.headers.retain(|(name, _)| *name != "content-type");
    reply.header("content-type", "application/x-ndjson")
}
