//! `/v2/articles/{name}` and `/v2/structured-contents/{name}`.
//!
//! The pipeline, after authentication. What it decides (steps 3 to 5, the
//! ETag, the answer) is decided by the core's
//! `wikiedge_core::article::pipeline`, where each rule is unit-tested; this
//! module and its parts do the I/O (store, upstream, quota, metering) and
//! render:
//! 1. ([`candidates`]) Normalise the title and pick candidate projects: the
//!    project of an `is_part_of.identifier` filter; else every project in
//!    the title index (`article-projects:{Title}`), plus, with an
//!    `in_language.identifier` filter, every open project of that language
//!    (fetched from its own upstream on a miss); else, for a title nobody
//!    has cached, the `unfiltered_projects` (default: the projects of
//!    `upstream_overrides`, or `enwiki`).
//! 2. Read the index (one key-value get) for revisions and fetch times.
//! 3. (`pipeline::plan`) A conditional request (`If-None-Match`) whose ETag
//!    matches a copy known from the index alone (no refresh due) gets 304
//!    without consuming quota (RateLimit headers from `quota.peek`; not
//!    metered: nothing was served). `If-None-Match: *` matches only fresh
//!    cached copies and is charged (and metered) like any other request.
//! 4. Otherwise consume one unit of quota (429 when denied, metered as
//!    denied). Every request that needs an upstream refresh is charged
//!    before the refresh, conditional or not: upstream traffic is never
//!    free, whatever `If-None-Match` says. Other conditional requests are
//!    charged at step 6, unless their answer is a 304.
//! 5. ([`refresh`]) Refresh missing or stale (older than `article_max_age`)
//!    copies from upstream within `upstream_timeout_ms`. When upstream
//!    fails, a stale copy is served with `Warning: 110 - "Response is
//!    Stale"` and upstream is not retried for that copy for a backoff
//!    period; with no copy the answer is 502/504.
//! 6. ([`render`]) Read the article JSON (one get per article, none when
//!    this instance kept the bytes it sent for the same write of the
//!    article: `wikiedge_fn::kept`) and send it as stored unless `fields`,
//!    document filters or structured contents need a parse
//!    (`pipeline::answer`: 200, a free 304, or 404/502/504). A lone
//!    document (an article as stored, the structured contents made from
//!    it, or a small document made for the `fields` and filters asked) is
//!    kept to send again, under its route and selection.
//! 7. Meter the answer (admitted, status, bytes) before it leaves.
//!
//! ETag: `"{rev}"` for one article, `"{rev1}-{rev2}-..."` in response order
//! for several.
//!
//! Choices:
//! - Both routes draw on the `ondemand` quota; metering records them as
//!   `ondemand` and `structured-contents`.
//! - Once quota is consumed, every answer is metered as admitted with its
//!   status, a 404 or 502 included (the lookup was made on the caller's
//!   behalf). Validation errors before that are free and unmetered; a 304 is
//!   free and unmetered (nothing was served).
//! - The title index lists the projects that have a title; a title no
//!   project has is looked up upstream in the `unfiltered_projects`, by
//!   default the `upstream_overrides` projects, or `enwiki` when there are
//!   none (looking in all ~1000 wikis per miss is not an option). An
//!   `is_part_of.identifier` filter picks the project directly and needs
//!   no parse of the documents.
//! - The `{name}` comes from the raw request path (after `/v2/articles/`),
//!   percent-decoded exactly once by the core.

mod candidates;
mod refresh;
mod render;

use futures::future::join_all;
use wikiedge_core::Error;
use wikiedge_core::article::pipeline::{self, Answer, Charge, Plan, Served, Source};
use wikiedge_core::article::request::ArticlesRequest;
use wikiedge_core::article::title;

use crate::config;
use crate::store;
use candidates::{candidates, first_letter_upper, language_filter, split_filters};
use refresh::refresh;
use render::{join_documents, joins_as_is, kept_form, render};
use wikiedge_fn::bindings::wikiedge::auth::auth::Principal;
use wikiedge_fn::bindings::wikiedge::quota::quota::Decision;
use wikiedge_fn::gate;
use wikiedge_fn::kept;
use wikiedge_fn::respond::Reply;

/// The `Warning` header of a stale answer (RFC 7234 warn-code 110).
const STALE_WARNING: &str = "110 - \"Response is Stale\"";

/// Which document the route serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// `/v2/articles`: the WME Article.
    Articles,
    /// `/v2/structured-contents`: the structured-contents document.
    Structured,
}

impl Product {
    /// The product metering records: `ondemand` or `structured-contents`.
    pub fn name(self) -> &'static str {
        match self {
            Product::Articles => "ondemand",
            Product::Structured => "structured-contents",
        }
    }
}

/// What a stored copy, or `form` made from it, is kept under once sent:
/// its key and the write its index entry names (`Entry::copy`; 0, never
/// kept, for entries written before it existed).
fn kept_tag(c: &candidates::Candidate, entry: store::Entry, form: kept::Form) -> kept::Tag {
    kept::Tag {
        key: wikiedge_core::article::layout::article_key(&c.project, &c.title),
        copy: entry.copy,
        form,
    }
}

/// The quota product both routes draw on: structured contents is part of
/// the On-demand API and counts against the plan's on-demand allowance
/// (quota knows no separate product); metering keeps them apart.
const QUOTA_PRODUCT: &str = "ondemand";

/// A parsed article request.
#[derive(Debug, Clone)]
pub struct ArticleQuery {
    /// The route.
    pub product: Product,
    /// The `{name}` path segment, still percent-encoded.
    pub raw_name: String,
    /// `fields`, `filters`, `limit`.
    pub request: ArticlesRequest,
    /// Whether the caller asked for NDJSON.
    pub ndjson: bool,
    /// The `If-None-Match` header.
    pub if_none_match: Option<String>,
}

/// Serves an article request for an authenticated caller.
pub async fn serve(principal: &Principal, query: ArticleQuery) -> Reply {
    let product = query.product.name();
    match pipeline(principal, &query).await {
        Outcome::Free(reply) => reply,
        Outcome::Metered { admitted, reply } => {
            let bytes = reply.body.len() as u64;
            gate::metered(principal, product, admitted, bytes, reply)
        }
    }
}

/// How a pipeline ended: with or without a metered quota decision.
enum Outcome {
    /// No quota consumed (a 304, an early validation error, quota unavailable).
    Free(Reply),
    /// A quota decision was made; meter it.
    Metered { admitted: bool, reply: Reply },
}

async fn pipeline(principal: &Principal, query: &ArticleQuery) -> Outcome {
    let product = QUOTA_PRODUCT;
    let config = config::config().await;
    let now = u64::try_from(wikiedge_fn::now()).unwrap_or(0);
    let free_error = |err: Error| {
        let decision = gate::peek(principal, product);
        Outcome::Free(Reply::error(&err).rate_limit(decision.as_ref()))
    };
    let kv = match store::open().await {
        Ok(kv) => kv,
        Err(err) => return free_error(err),
    };
    let (project_filter, doc_filters) = split_filters(&query.request);
    let fields = query.request.fields.clone().unwrap_or_default();
    let limit = query.request.limit();
    let language = language_filter(&doc_filters);
    let mut found = match candidates(config, &kv, &query.raw_name, project_filter, language).await {
        Ok(found) => found,
        Err(err) => return free_error(err),
    };
    if doc_filters.is_empty() {
        // Without document filters the first `limit` candidates are the answer.
        found.truncate(limit);
    }
    let if_none_match = query.if_none_match.as_deref();

    // Steps 3 and 4: a 304 from the index alone, or when to charge.
    let entries: Vec<_> = found.iter().map(|c| c.entry).collect();
    let filtered = !doc_filters.is_empty();
    let (charge, sources) =
        match pipeline::plan(config.freshness(), if_none_match, &entries, filtered, now) {
            Plan::NotModified { etag, stale } => {
                return not_modified(principal, &etag, stale);
            }
            Plan::WildcardNotModified { etag } => {
                return match consume(principal, product) {
                    Ok(d) => Outcome::Metered {
                        admitted: true,
                        reply: Reply::not_modified(&etag).rate_limit(Some(&d)),
                    },
                    Err(outcome) => outcome,
                };
            }
            Plan::Lookup { charge, sources } => (charge, sources),
        };
    let mut decision: Option<Decision> = None;
    if charge == Charge::Now {
        match consume(principal, product) {
            Ok(d) => decision = Some(d),
            Err(outcome) => return outcome,
        }
    }

    // Step 5: refresh what is missing or stale.
    let mut upstream_errors = Vec::new();
    for (c, source) in found.iter_mut().zip(sources) {
        match source {
            Source::Upstream => {
                if let Some(err) = refresh(config, &kv, c, now).await {
                    upstream_errors.push(err);
                }
            }
            Source::Cache { stale } => c.stale = stale,
        }
    }

    // Step 6: read the stored documents that were not just fetched, or
    // take what this instance kept after sending them (`kept`): the
    // stored value an article request sends, or the document made from it
    // for this route and selection, ready to send (`rendered`).
    let kv_ref = &kv;
    let form = kept_form(query.product, &doc_filters, &fields);
    let form_ref = &form;
    let reads = found
        .iter()
        .map(|c| async move {
            let (None, Some(entry)) = (&c.json, c.entry) else {
                return Ok(None);
            };
            if let Some(form) = form_ref.as_ref().filter(|f| **f != kept::Form::Stored)
                && let Some(body) = kept::take(&kept_tag(c, entry, form.clone()))
            {
                return Ok(Some((body, true)));
            }
            // The stored value, kept by an article request, serves any
            // route, `fields` and filters.
            if let Some(body) = kept::take(&kept_tag(c, entry, kept::Form::Stored)) {
                return Ok(Some((body, false)));
            }
            let read = store::read_article(kv_ref, &c.project, &c.title).await?;
            Ok(read.map(|body| (body, false)))
        })
        .collect::<Vec<_>>();
    let results = join_all(reads).await;
    let mut rendered = vec![false; found.len()];
    for ((c, read), rendered) in found.iter_mut().zip(results).zip(&mut rendered) {
        match read {
            Ok(Some((json, ready))) => (c.json, *rendered) = (Some(json), ready),
            Ok(None) => {}
            Err(err) => return finish_error(principal, product, decision, err),
        }
    }
    let mut served: Vec<Served> = Vec::new();
    let mut docs: Vec<Vec<u8>> = Vec::new();
    // The tag of the last document sent as it can be kept.
    let mut keepable: Option<kept::Tag> = None;
    for (c, rendered) in found.iter_mut().zip(rendered) {
        if served.len() >= limit {
            break;
        }
        let Some(json) = c.json.take() else { continue };
        let upper = first_letter_upper(&c.project);
        if rendered {
            docs.push(json);
        } else {
            match render(query.product, json, &doc_filters, &fields, upper) {
                Ok(Some(doc)) => docs.push(doc),
                Ok(None) => continue,
                Err(err) => return finish_error(principal, product, decision, err),
            }
        }
        if let (Some(form), Some(entry)) = (&form, c.entry) {
            keepable = Some(kept_tag(c, entry, form.clone()));
        }
        served.push(Served {
            rev: c.rev(),
            stale: c.stale,
        });
    }
    // A lone document that can be kept is the body itself (and the only
    // document, so `keepable` is its tag): the instance keeps it to send
    // again.
    let keep = keepable.filter(|_| joins_as_is(&docs, query.ndjson));

    let (tag, stale) = match pipeline::answer(if_none_match, charge, &served) {
        Answer::Missing => {
            let name = title::decode_path_segment(&query.raw_name)
                .unwrap_or_else(|_| query.raw_name.clone());
            let err = pipeline::missing_error(upstream_errors, &name);
            return finish_error(principal, product, decision, err);
        }
        Answer::NotModified { etag, stale } => return not_modified(principal, &etag, stale),
        Answer::Documents { etag, stale } => (etag, stale),
    };
    let decision = match decision {
        Some(d) => d,
        None => match consume(principal, product) {
            Ok(d) => d,
            Err(outcome) => return outcome,
        },
    };
    let content_type = if query.ndjson {
        "application/x-ndjson"
    } else {
        "application/json"
    };
    let mut reply = Reply {
        status: 200,
        headers: vec![("content-type", content_type.into()), ("etag", tag)],
        body: join_documents(docs, query.ndjson),
        keep,
    }
    .rate_limit(Some(&decision));
    if stale {
        reply = reply.header("warning", STALE_WARNING);
    }
    Outcome::Metered {
        admitted: true,
        reply,
    }
}

/// A free 304: no quota consumed, RateLimit headers from a peek, not
/// metered (nothing was served).
fn not_modified(principal: &Principal, etag: &str, stale: bool) -> Outcome {
    let decision = gate::peek(principal, QUOTA_PRODUCT);
    let mut reply = Reply::not_modified(etag).rate_limit(decision.as_ref());
    if stale {
        reply = reply.header("warning", STALE_WARNING);
    }
    Outcome::Free(reply)
}

/// Consumes one unit; a denial or an unavailable quota ends the pipeline.
fn consume(principal: &Principal, product: &str) -> Result<Decision, Outcome> {
    match gate::consume(principal, product) {
        Ok(d) if d.admitted => Ok(d),
        Ok(d) => Err(Outcome::Metered {
            admitted: false,
            reply: gate::denied(&d),
        }),
        Err(err) => Err(Outcome::Free(Reply::error(&err))),
    }
}

/// An error after the title was understood: it costs quota like any
/// answered lookup (consumed now if it was deferred) and is metered.
fn finish_error(
    principal: &Principal,
    product: &str,
    decision: Option<Decision>,
    err: Error,
) -> Outcome {
    let decision = match decision {
        Some(d) => d,
        None => match consume(principal, product) {
            Ok(d) => d,
            Err(outcome) => return outcome,
        },
    };
    Outcome::Metered {
        admitted: true,
        reply: Reply::error(&err).rate_limit(Some(&decision)),
    }
}

#[cfg(test)]
mod tests;
