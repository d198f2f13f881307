//! `/v2/articles/{name}` and `/v2/structured-contents/{name}`.
//!
//! The pipeline, after authentication:
//! 1. Normalise the title and pick candidate projects: the project of an
//!    `is_part_of.identifier` filter; else every project in the title index
//!    (`article-projects:{Title}`), plus, with an `in_language.identifier`
//!    filter, every open project of that language (fetched from its own
//!    upstream on a miss); else, for a title nobody has cached, the
//!    `unfiltered_projects` (default: the projects of `upstream_overrides`,
//!    or `enwiki`).
//! 2. Read the index (one key-value get) for revisions and fetch times.
//! 3. A conditional request (`If-None-Match`) whose ETag matches a copy
//!    known from the index alone (no refresh due) gets 304 without
//!    consuming quota (RateLimit headers from `quota.peek`; not metered:
//!    nothing was served). `If-None-Match: *` matches only fresh cached
//!    copies and is charged (and metered) like any other request.
//! 4. Otherwise consume one unit of quota (429 when denied, metered as
//!    denied). Every request that needs an upstream refresh is charged
//!    before the refresh, conditional or not: upstream traffic is never
//!    free, whatever `If-None-Match` says.
//! 5. Refresh missing or stale (older than `article_max_age`) copies from
//!    upstream within `upstream_timeout_ms`. When upstream fails, a stale
//!    copy is served with `Warning: 110 - "Response is Stale"` and upstream
//!    is not retried for that copy for a backoff period; with no copy the
//!    answer is 502/504.
//! 6. Read the article JSON (one get per article) and send it as stored
//!    unless `fields`, document filters or structured contents need a parse.
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
//!   none (looking in all ~1000 wikis per miss is not an option). An `is_part_of.identifier` filter picks the project
//!   directly and needs no parse of the documents.
//! - The `{name}` comes from the raw request path (after `/v2/articles/`),
//!   percent-decoded exactly once by the core.

use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::join_all;
use serde_json::Value;
use wikiedge_core::Error;
use wikiedge_core::article::projection::{Filter, matches_all, project};
use wikiedge_core::article::request::ArticlesRequest;
use wikiedge_core::article::schema::Article;
use wikiedge_core::article::sections::structured_content;
use wikiedge_core::article::title;
use wikiedge_core::article::transform::ProjectContext;

use crate::config::{self, Config};
use crate::store::{self, Entry};
use wikiedge_fn::bindings::wikiedge::auth::auth::Principal;
use wikiedge_fn::bindings::wikiedge::quota::quota::Decision;
use wikiedge_fn::respond::Reply;
use wikiedge_fn::{gate, upstream};

/// The filter field that selects projects without parsing documents.
const PROJECT_FIELD: &str = "is_part_of.identifier";
/// The document filter that names a language.
const LANGUAGE_FIELD: &str = "in_language.identifier";

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

/// One project's copy of the title, as it moves through the pipeline.
#[derive(Debug)]
struct Candidate {
    project: String,
    /// The display title under the project's case rule.
    title: String,
    entry: Option<Entry>,
    /// The article JSON, once read or fetched.
    json: Option<Vec<u8>>,
    /// Served past its max age.
    stale: bool,
}

impl Candidate {
    fn rev(&self) -> u64 {
        self.entry.map_or(0, |e| e.rev)
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Splits filters into the project selection and the document filters.
/// `Some(None)` in the first slot means the project filters contradict
/// (two different projects, or a non-string value): nothing matches.
fn split_filters(request: &ArticlesRequest) -> (Option<Option<String>>, Vec<Filter>) {
    let mut project: Option<Option<String>> = None;
    let mut rest = Vec::new();
    for filter in request.filters.iter().flatten() {
        if filter.field != PROJECT_FIELD {
            rest.push(filter.clone());
            continue;
        }
        let value = filter.value.as_str().map(str::to_string);
        project = match (project, value) {
            (None, value) => Some(value),
            (Some(Some(a)), Some(b)) if a == b => Some(Some(a)),
            _ => Some(None),
        };
    }
    (project, rest)
}

/// The language an `in_language.identifier` document filter names.
fn language_filter(filters: &[Filter]) -> Option<String> {
    filters
        .iter()
        .find(|f| f.field == LANGUAGE_FIELD)
        .and_then(|f| f.value.as_str())
        .map(str::to_string)
}

/// The projects of a language that can be fetched from: open ones, and
/// closed ones with an upstream override.
fn projects_of_language(config: &Config, language: &str) -> Result<Vec<String>, Error> {
    let registry = wikiedge_fn::config::registry()?;
    Ok(registry
        .projects()
        .into_iter()
        .filter(|p| {
            p.in_language
                .as_ref()
                .is_some_and(|l| l.identifier == language)
        })
        .filter(|p| {
            !registry.is_closed(&p.identifier) || config.overrides.contains_key(&p.identifier)
        })
        .map(|p| p.identifier)
        .collect())
}

/// Step 1 and 2: the candidate projects with their index entries.
async fn candidates(
    config: &Config,
    kv: &spin_sdk::key_value::Store,
    raw_name: &str,
    project_filter: Option<Option<String>>,
    language: Option<String>,
) -> Result<Vec<Candidate>, Error> {
    let decoded = title::decode_path_segment(raw_name)?;
    let candidate = |project: &str, title: &str, entry: Option<Entry>| Candidate {
        project: project.to_string(),
        title: title.to_string(),
        entry,
        json: None,
        stale: false,
    };
    match project_filter {
        Some(None) => Ok(Vec::new()),
        Some(Some(project)) => {
            let name = title::normalize(&decoded, first_letter_upper(&project))?;
            let index = store::read_index(kv, &name).await?;
            if let Some(entry) = index.get(&project) {
                return Ok(vec![candidate(&project, &name, Some(*entry))]);
            }
            // Not cached: only a project we can fetch from is worth trying.
            let known = config.overrides.contains_key(&project)
                || wikiedge_fn::config::registry()?.project(&project).is_ok();
            Ok(if known {
                vec![candidate(&project, &name, None)]
            } else {
                Vec::new()
            })
        }
        None => {
            // Most projects uppercase the first letter; Wiktionaries keep
            // the title as given. Look under both spellings when they differ.
            let upper = title::normalize(&decoded, true)?;
            let exact = title::normalize(&decoded, false)?;
            let mut out = Vec::new();
            let mut spellings = vec![upper.clone()];
            if exact != upper {
                spellings.push(exact);
            }
            for name in &spellings {
                for (project, entry) in store::read_index(kv, name).await? {
                    if !out.iter().any(|c: &Candidate| c.project == project) {
                        out.push(candidate(&project, name, Some(entry)));
                    }
                }
            }
            if let Some(language) = language {
                // A language filter: every project of that language is a
                // candidate, fetched from its upstream when no one has yet.
                for project in projects_of_language(config, &language)? {
                    if !out.iter().any(|c| c.project == project) {
                        let name = title::normalize(&decoded, first_letter_upper(&project))?;
                        out.push(candidate(&project, &name, None));
                    }
                }
            } else if out.is_empty() {
                for project in config.default_projects() {
                    let name = title::normalize(&decoded, first_letter_upper(&project))?;
                    out.push(candidate(&project, &name, None));
                }
            }
            out.sort_by(|a, b| a.project.cmp(&b.project));
            Ok(out)
        }
    }
}

/// The project's title case rule without parsing the site matrix (which
/// would cost milliseconds on every request where instances are not
/// reused): Wiktionaries are case-sensitive, every other project
/// uppercases the first letter, as `Registry::first_letter_case` says.
fn first_letter_upper(project: &str) -> bool {
    !project.ends_with("wiktionary")
}

/// Whether a copy must be (re)fetched now: missing, or stale and not in
/// its retry backoff.
fn needs_fetch(config: &Config, entry: Option<Entry>, now: u64) -> bool {
    match entry {
        None => true,
        Some(e) => is_stale(config, e, now) && now >= e.retry_at,
    }
}

fn is_stale(config: &Config, entry: Entry, now: u64) -> bool {
    now.saturating_sub(entry.fetched) > config.max_age
}

/// Step 5 for one candidate. Returns the upstream error, if any, for the
/// case that nothing at all can be served.
async fn refresh(
    config: &Config,
    kv: &spin_sdk::key_value::Store,
    c: &mut Candidate,
    now: u64,
) -> Option<Error> {
    let result = async {
        let registry = wikiedge_fn::config::registry()?;
        if registry.is_closed(&c.project) && !config.overrides.contains_key(&c.project) {
            return Err(Error::NotFound("article not found".into()));
        }
        let base = wikiedge_fn::config::base_url(&config.overrides, &c.project)?;
        // Article URLs use the project's public URL even when the fetch
        // goes to an override; a project only the overrides know uses that.
        let ctx = ProjectContext::from_registry(registry, &c.project).unwrap_or_else(|_| {
            ProjectContext {
                identifier: c.project.clone(),
                base_url: base.clone(),
                language: String::new(),
                localisation: Default::default(),
            }
        });
        let mut article = upstream::fetch(&base, &c.title, &ctx, config.timeout).await?;
        if let Some(url) = &config.revertrisk_url {
            upstream::add_revertrisk(&mut article, url).await;
        }
        Ok(article)
    }
    .await;
    match result {
        Ok(article) => {
            let json = match serde_json::to_vec(&article) {
                Ok(json) => json,
                Err(e) => return Some(Error::Internal(e.to_string())),
            };
            let entry = Entry {
                rev: article
                    .version
                    .as_ref()
                    .and_then(|v| v.identifier)
                    .unwrap_or(0),
                fetched: now,
                retry_at: 0,
            };
            if let Err(err) = store::write_article(kv, &c.project, &c.title, &json, entry).await {
                eprintln!(
                    "articles: caching {}:{} failed: {err:?}",
                    c.project, c.title
                );
            }
            c.entry = Some(entry);
            c.json = Some(json);
            c.stale = false;
            None
        }
        Err(err) => {
            match (c.entry, &err) {
                // Upstream says the page is gone: serve nothing for it.
                (_, Error::NotFound(_)) => c.entry = None,
                (Some(mut entry), _) => {
                    eprintln!("articles: serving stale {}:{}: {err}", c.project, c.title);
                    entry.retry_at = now + config.retry_backoff();
                    if let Err(e) = store::update_entry(&c.project, &c.title, entry) {
                        eprintln!("articles: recording retry backoff failed: {e:?}");
                    }
                    c.entry = Some(entry);
                    c.stale = true;
                }
                (None, _) => {}
            }
            Some(err)
        }
    }
}

/// Whether an `If-None-Match` value names the ETag (`*` is handled
/// apart: see [`is_wildcard`]).
fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .any(|tag| tag.trim().trim_start_matches("W/") == etag)
}

/// Whether an `If-None-Match` value is (or lists) `*`, which matches any
/// current copy: answered 304 only for fresh cached copies, and charged.
fn is_wildcard(if_none_match: &str) -> bool {
    if_none_match.split(',').any(|tag| tag.trim() == "*")
}

fn etag<'a>(revs: impl IntoIterator<Item = &'a Candidate>) -> String {
    let revs: Vec<String> = revs.into_iter().map(|c| c.rev().to_string()).collect();
    format!("\"{}\"", revs.join("-"))
}

/// Turns stored JSON into the document to send: as stored on the fast
/// path, else parsed, converted, filtered and projected. `None` when a
/// filter drops it.
fn render(
    product: Product,
    json: Vec<u8>,
    filters: &[Filter],
    fields: &[String],
    first_letter_upper: bool,
) -> Result<Option<Vec<u8>>, Error> {
    if product == Product::Articles && filters.is_empty() && fields.is_empty() {
        return Ok(Some(json));
    }
    let corrupt = |e: serde_json::Error| Error::Internal(format!("stored article is corrupt: {e}"));
    let doc: Value = match product {
        Product::Articles => serde_json::from_slice(&json).map_err(corrupt)?,
        Product::Structured => {
            let article: Article = serde_json::from_slice(&json).map_err(corrupt)?;
            let loc = wikiedge_core::article::wikitext::Localisation {
                first_letter_upper,
                ..Default::default()
            };
            serde_json::to_value(structured_content(article, &loc)).map_err(corrupt)?
        }
    };
    if !matches_all(&doc, filters) {
        return Ok(None);
    }
    let doc = project(&doc, fields);
    serde_json::to_vec(&doc).map(Some).map_err(corrupt)
}

/// Joins documents into a JSON array or NDJSON.
fn join_documents(docs: &[Vec<u8>], ndjson: bool) -> Vec<u8> {
    let size: usize = docs.iter().map(|d| d.len() + 1).sum::<usize>() + 2;
    let mut out = Vec::with_capacity(size);
    if ndjson {
        for doc in docs {
            out.extend_from_slice(doc);
            out.push(b'\n');
        }
    } else {
        out.push(b'[');
        for (i, doc) in docs.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(doc);
        }
        out.push(b']');
    }
    out
}

/// Serves an article request for an authenticated caller.
pub async fn serve(principal: &Principal, query: ArticleQuery) -> Reply {
    let product = query.product.name();
    match pipeline(principal, &query).await {
        Outcome::Free(reply) => reply,
        Outcome::Metered { admitted, reply } => {
            let bytes = reply.body.len() as u64;
            gate::metered(principal, product, admitted, bytes, reply).await
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
    let now = now();
    let free_error = |err: Error| async move {
        let decision = gate::peek(principal, product).await;
        Outcome::Free(Reply::error(&err).rate_limit(decision.as_ref()))
    };
    let kv = match store::open().await {
        Ok(kv) => kv,
        Err(err) => return free_error(err).await,
    };
    let (project_filter, doc_filters) = split_filters(&query.request);
    let fields = query.request.fields.clone().unwrap_or_default();
    let limit = query.request.limit();
    let language = language_filter(&doc_filters);
    let mut found = match candidates(config, &kv, &query.raw_name, project_filter, language).await {
        Ok(found) => found,
        Err(err) => return free_error(err).await,
    };
    if doc_filters.is_empty() {
        // Without document filters the first `limit` candidates are the answer.
        found.truncate(limit);
    }
    let fetch_needed = found.iter().any(|c| needs_fetch(config, c.entry, now));

    // Step 3: a conditional request answered from the index alone.
    if let Some(inm) = &query.if_none_match
        && !fetch_needed
        && doc_filters.is_empty()
        && !found.is_empty()
    {
        let tag = etag(&found);
        let any_stale = found
            .iter()
            .any(|c| c.entry.is_some_and(|e| is_stale(config, e, now)));
        if etag_matches(inm, &tag) {
            let decision = gate::peek(principal, product).await;
            let mut reply = Reply::not_modified(&tag).rate_limit(decision.as_ref());
            if any_stale {
                reply = reply.header("warning", STALE_WARNING);
            }
            return Outcome::Free(reply);
        }
        if is_wildcard(inm) && !any_stale && found.iter().all(|c| c.entry.is_some()) {
            // `*`: a fresh copy exists. Charged like any other answer.
            return match consume(principal, product).await {
                Ok(d) => Outcome::Metered {
                    admitted: true,
                    reply: Reply::not_modified(&tag).rate_limit(Some(&d)),
                },
                Err(outcome) => outcome,
            };
        }
    }

    // Step 4: quota. A conditional request that needs no upstream refresh
    // defers consumption so a matching 304 is free; anything that goes
    // upstream is charged first.
    let mut decision: Option<Decision> = None;
    let deferred = query.if_none_match.is_some() && !fetch_needed;
    if !deferred {
        match consume(principal, product).await {
            Ok(d) => decision = Some(d),
            Err(outcome) => return outcome,
        }
    }

    // Step 5: refresh what is missing or stale.
    let mut upstream_errors = Vec::new();
    for c in found.iter_mut() {
        if needs_fetch(config, c.entry, now) {
            if let Some(err) = refresh(config, &kv, c, now).await {
                upstream_errors.push(err);
            }
        } else if c.entry.is_some_and(|e| is_stale(config, e, now)) {
            c.stale = true;
        }
    }

    // Step 6: read the stored documents that were not just fetched.
    let kv_ref = &kv;
    let reads = found
        .iter()
        .map(|c| async move {
            match (&c.json, c.entry) {
                (None, Some(_)) => store::read_article(kv_ref, &c.project, &c.title).await,
                _ => Ok(None),
            }
        })
        .collect::<Vec<_>>();
    let results = join_all(reads).await;
    for (c, read) in found.iter_mut().zip(results) {
        match read {
            Ok(Some(json)) => c.json = Some(json),
            Ok(None) => {}
            Err(err) => return finish_error(principal, product, decision, err).await,
        }
    }
    let mut served: Vec<&Candidate> = Vec::new();
    let mut docs: Vec<Vec<u8>> = Vec::new();
    for c in found.iter_mut() {
        if served.len() >= limit {
            break;
        }
        let Some(json) = c.json.take() else { continue };
        let upper = first_letter_upper(&c.project);
        match render(query.product, json, &doc_filters, &fields, upper) {
            Ok(Some(doc)) => docs.push(doc),
            Ok(None) => continue,
            Err(err) => return finish_error(principal, product, decision, err).await,
        }
        served.push(c);
    }

    if served.is_empty() {
        // Nothing to serve: an upstream failure explains it, else 404.
        let err = upstream_errors
            .into_iter()
            .find(|e| !matches!(e, Error::NotFound(_)))
            .unwrap_or_else(|| {
                let name = title::decode_path_segment(&query.raw_name)
                    .unwrap_or_else(|_| query.raw_name.clone());
                Error::NotFound(format!("article '{name}' not found"))
            });
        return finish_error(principal, product, decision, err).await;
    }
    let tag = etag(served.iter().copied());
    let stale = served.iter().any(|c| c.stale);
    if let Some(inm) = &query.if_none_match
        && decision.is_none()
        && etag_matches(inm, &tag)
    {
        let headers = gate::peek(principal, product).await;
        let mut reply = Reply::not_modified(&tag).rate_limit(headers.as_ref());
        if stale {
            reply = reply.header("warning", STALE_WARNING);
        }
        return Outcome::Free(reply);
    }
    let decision = match decision {
        Some(d) => d,
        None => match consume(principal, product).await {
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
        body: join_documents(&docs, query.ndjson),
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

/// Consumes one unit; a denial or an unavailable quota ends the pipeline.
async fn consume(principal: &Principal, product: &str) -> Result<Decision, Outcome> {
    match gate::consume(principal, product).await {
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
async fn finish_error(
    principal: &Principal,
    product: &str,
    decision: Option<Decision>,
    err: Error,
) -> Outcome {
    let decision = match decision {
        Some(d) => d,
        None => match consume(principal, product).await {
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
