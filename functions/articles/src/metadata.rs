//! The metadata routes: `/v2/projects`, `/v2/languages`, `/v2/namespaces`
//! and `/v2/codes`, each as a list or `/{id}`, from the registry built from
//! the embedded site matrix.
//!
//! Choices: these routes require authentication (WME does) but consume no
//! quota and are not metered: WME counts only On-demand article calls
//! against the plan. They carry the `RateLimit` headers of a peek at the
//! on-demand quota, like every authenticated response. `fields`, `filters`
//! and `limit` (when given; lists are whole without it) apply to lists;
//! `Accept: application/x-ndjson` gets one object per line.

use serde::Serialize;
use serde_json::Value;
use wikiedge_core::Error;
use wikiedge_core::article::projection::{matches_all, project};
use wikiedge_core::article::request::ArticlesRequest;
use wikiedge_core::article::title::decode_path_segment;
use wikiedge_core::projects;

use wikiedge_fn::bindings::wikiedge::auth::auth::Principal;
use wikiedge_fn::config::registry;
use wikiedge_fn::gate;
use wikiedge_fn::respond::Reply;

/// The four metadata collections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Projects,
    Languages,
    Namespaces,
    Codes,
}

impl Kind {
    /// Every collection.
    pub const ALL: [Kind; 4] = [
        Kind::Projects,
        Kind::Languages,
        Kind::Namespaces,
        Kind::Codes,
    ];

    /// The route base, e.g. `/v2/projects`.
    pub fn base(self) -> &'static str {
        match self {
            Kind::Projects => "/v2/projects",
            Kind::Languages => "/v2/languages",
            Kind::Namespaces => "/v2/namespaces",
            Kind::Codes => "/v2/codes",
        }
    }
}

fn to_values<T: Serialize>(items: impl IntoIterator<Item = T>) -> Result<Vec<Value>, Error> {
    items
        .into_iter()
        .map(|item| serde_json::to_value(item).map_err(|e| Error::Internal(e.to_string())))
        .collect()
}

/// The whole collection, in WME's order.
fn list(kind: Kind) -> Result<Vec<Value>, Error> {
    match kind {
        Kind::Projects => to_values(registry()?.projects()),
        Kind::Languages => to_values(registry()?.languages()),
        Kind::Namespaces => to_values(projects::namespaces()),
        Kind::Codes => to_values(projects::codes()),
    }
}

/// One item by identifier, or `NotFound`.
fn one(kind: Kind, id: &str) -> Result<Value, Error> {
    let value = match kind {
        Kind::Projects => serde_json::to_value(registry()?.project(id)?),
        Kind::Languages => serde_json::to_value(registry()?.language(id)?),
        Kind::Namespaces => {
            let number = id
                .parse::<i64>()
                .map_err(|_| Error::NotFound(format!("namespace '{id}' not found")))?;
            serde_json::to_value(projects::namespace(number)?)
        }
        Kind::Codes => serde_json::to_value(projects::code(id)?),
    };
    value.map_err(|e| Error::Internal(e.to_string()))
}

fn answer(kind: Kind, raw_id: &str, request: &ArticlesRequest) -> Result<Value, Error> {
    let fields = request.fields.as_deref().unwrap_or_default();
    if raw_id.is_empty() {
        let filters = request.filters.as_deref().unwrap_or_default();
        let limit = request.limit.map_or(usize::MAX, |l| l as usize);
        let items: Vec<Value> = list(kind)?
            .into_iter()
            .filter(|item| matches_all(item, filters))
            .take(limit)
            .map(|item| project(item, fields))
            .collect();
        Ok(Value::Array(items))
    } else {
        let id = decode_path_segment(raw_id)
            .map_err(|_| Error::NotFound(format!("'{raw_id}' not found")))?;
        Ok(project(one(kind, &id)?, fields))
    }
}

/// JSON, or NDJSON with one object (or list item) per line.
fn encode(body: Value, ndjson: bool) -> Result<Vec<u8>, Error> {
    let internal = |e: serde_json::Error| Error::Internal(e.to_string());
    if !ndjson {
        return serde_json::to_vec(&body).map_err(internal);
    }
    let items = match body {
        Value::Array(items) => items,
        one => vec![one],
    };
    let mut out = Vec::new();
    for item in items {
        serde_json::to_writer(&mut out, &item).map_err(internal)?;
        out.push(b'\n');
    }
    Ok(out)
}

/// What the request asks besides the route.
pub struct Ask<'a> {
    /// POST (a JSON body) rather than GET (the query).
    pub is_post: bool,
    /// The query string.
    pub query: &'a str,
    /// The body.
    pub body: &'a [u8],
    /// `Accept: application/x-ndjson`.
    pub ndjson: bool,
}

/// Serves a metadata request for an authenticated caller.
pub fn serve(principal: &Principal, kind: Kind, raw_id: &str, ask: Ask<'_>) -> Reply {
    let request = if ask.is_post {
        ArticlesRequest::from_json(ask.body)
    } else {
        ArticlesRequest::from_query(ask.query)
    };
    let reply = match request
        .and_then(|request| answer(kind, raw_id, &request))
        .and_then(|body| encode(body, ask.ndjson))
    {
        Ok(bytes) if ask.ndjson => Reply {
            status: 200,
            headers: vec![("content-type", "application/x-ndjson".into())],
            body: bytes,
            keep: None,
        },
        Ok(json) => Reply::json(200, json),
        Err(err) => Reply::error(&err),
    };
    let decision = gate::peek(principal, "ondemand");
    reply.rate_limit(decision.as_ref())
}
