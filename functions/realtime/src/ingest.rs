//! `POST /v1/admin/ingest`: EventStreams page changes in, WME events out.
//!
//! For each event of the batch (one JSON object, an array, or NDJSON):
//! 1. classify it (core `realtime::change`): skipped events are reported;
//! 2. a known event id (`rt-seen:{id}`) is a duplicate and changes nothing;
//! 3. refresh the article (up to 16 pages of a batch at once): fetch it
//!    from upstream as the articles function does and store it in the
//!    same layout (`article:{project}:{Title}` and
//!    the title index); a delete removes the stored copy instead. When
//!    upstream cannot answer, the stored copy (or a minimal article built
//!    from the event) is published, so the stream never loses a change;
//! 4. claim the id with an atomic increment of `rt-claim:{id}` (the
//!    ingest that makes it 1 publishes; a concurrent ingest of the same id
//!    loses here and reports a duplicate);
//! 5. append the event to its partition and compact that partition, one
//!    event at a time in the batch's order.
//!
//! A storage failure in step 5 releases the claim, so the sender's retry
//! publishes the event; the batch answers 503 and earlier events of it
//! stay published (a retry reports them as duplicates).

use futures::future::join_all;
use serde_json::{Value, json};
use wikiedge_core::Error;
use wikiedge_core::article::layout;
use wikiedge_core::article::schema::Article;
use wikiedge_core::article::title;
use wikiedge_core::article::transform::ProjectContext;
use wikiedge_core::realtime::change::{Change, Classified, EventType, classify, parse_batch};
use wikiedge_core::realtime::event::{Placement, event_document, minimal_article, stored_document};
use wikiedge_core::realtime::log::{Meta, claim_key, partition_of, seen_key};

use crate::config::{self, Config};
use crate::log;
use wikiedge_fn::kv::{self, Bucket};
use wikiedge_fn::now_ms;
use wikiedge_fn::respond::Reply;
use wikiedge_fn::upstream;

/// The most events one request may carry.
pub const MAX_EVENTS: usize = 1000;
/// How many articles of a batch are fetched from upstream at once.
const FETCH_CONCURRENCY: usize = 16;

/// What happened to one event.
enum Outcome {
    Published { partition: u32, offset: u64 },
    Duplicate,
}

/// Handles one ingest request whose caller the router has authorised
/// (`gate::authorize_ingest`, before the body was read).
pub async fn serve(body: Result<Vec<u8>, Error>) -> Reply {
    let body = match body {
        Ok(body) => body,
        Err(err) => return Reply::error(&err),
    };
    let values = match parse_batch(&body) {
        Ok(values) => values,
        Err(err) => return Reply::error(&err),
    };
    if values.len() > MAX_EVENTS {
        return Reply::error(&Error::PayloadTooLarge(format!(
            "at most {MAX_EVENTS} events per request"
        )));
    }
    let bucket = match kv::open() {
        Ok(bucket) => bucket,
        Err(err) => return Reply::error(&err),
    };
    let bulk = match kv::open_bulk() {
        Ok(bulk) => bulk,
        Err(err) => return Reply::error(&err),
    };
    let config = config::config().await;
    let classified: Vec<Classified> = values
        .iter()
        .map(|v| known_project(config, classify(v)))
        .collect();
    // Step 3 for the whole batch, FETCH_CONCURRENCY pages at a time (one
    // page's changes in order, so its stored copy ends as the last change
    // left it); the appends below then run one by one in the batch's order.
    let mut articles: Vec<Option<Article>> = vec![None; classified.len()];
    let mut pages: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, c) in classified.iter().enumerate() {
        if let Classified::Publish(change) = c {
            let key = change.page_key();
            match pages.iter_mut().find(|(k, _)| *k == key) {
                Some((_, indexes)) => indexes.push(i),
                None => pages.push((key, vec![i])),
            }
        }
    }
    for group in pages.chunks(FETCH_CONCURRENCY) {
        let work = group.iter().map(|(_, indexes)| {
            let (classified, bucket, bulk) = (&classified, &bucket, &bulk);
            async move {
                let mut out = Vec::with_capacity(indexes.len());
                for &i in indexes {
                    let Classified::Publish(change) = &classified[i] else {
                        continue;
                    };
                    let article = match kv::get(bucket, &seen_key(&change.id)) {
                        Ok(Some(_)) => None,
                        // A storage error surfaces when the id is claimed.
                        Ok(None) | Err(_) => Some(refresh(config, bulk, change).await),
                    };
                    out.push((i, article));
                }
                out
            }
        });
        for (i, article) in join_all(work).await.into_iter().flatten() {
            articles[i] = article;
        }
    }
    let mut report = Vec::with_capacity(values.len());
    let (mut published, mut duplicates, mut skipped) = (0, 0, 0);
    for (classified, article) in classified.into_iter().zip(articles) {
        match classified {
            Classified::Skip { id, reason } => {
                skipped += 1;
                report.push(json!({"id": id, "status": "skipped", "reason": reason}));
            }
            Classified::Publish(change) => match publish(config, &bucket, &change, article) {
                Ok(Outcome::Published { partition, offset }) => {
                    published += 1;
                    report.push(json!({"id": change.id, "status": "published",
                        "type": change.kind.as_str(), "partition": partition, "offset": offset}));
                }
                Ok(Outcome::Duplicate) => {
                    duplicates += 1;
                    report.push(json!({"id": change.id, "status": "duplicate"}));
                }
                Err(err) => return Reply::error(&err),
            },
        }
    }
    let body = json!({
        "received": values.len(),
        "published": published,
        "duplicates": duplicates,
        "skipped": skipped,
        "events": report,
    });
    Reply::json(200, serde_json::to_vec(&body).unwrap_or_default())
}

/// Steps 4 and 5 for one change whose article is ready (`None`: the id
/// was already known before the fetch).
fn publish(
    config: &Config,
    bucket: &Bucket,
    change: &Change,
    article: Option<Article>,
) -> Result<Outcome, Error> {
    let claim = claim_key(&change.id);
    let Some(article) = article else {
        return Ok(Outcome::Duplicate);
    };
    if kv::increment(bucket, &claim, 1)? != 1 {
        return Ok(Outcome::Duplicate);
    }
    match append(config, bucket, change, article) {
        Ok(outcome) => Ok(outcome),
        Err(err) => {
            if let Err(e) = kv::delete(bucket, &claim) {
                eprintln!("realtime: releasing {claim} failed: {e:?}");
            }
            Err(err)
        }
    }
}

fn append(
    config: &Config,
    bucket: &Bucket,
    change: &Change,
    article: Article,
) -> Result<Outcome, Error> {
    let partition = partition_of(&change.page_key());
    let offset = log::allocate(bucket, partition)?;
    let published_ms = now_ms();
    let at = Placement {
        partition,
        offset,
        published_ms,
    };
    let document = event_document(article, change, at);
    let json = serde_json::to_vec(&document).map_err(|e| Error::Internal(e.to_string()))?;
    let meta = Meta {
        published_ms,
        event_id: change.id.clone(),
    };
    log::write(bucket, partition, offset, &json, &meta)?;
    kv::set(
        bucket,
        &seen_key(&change.id),
        format!("{partition}:{offset}").as_bytes(),
    )?;
    if let Err(err) = log::compact(bucket, partition, now_ms(), config.retention_seconds) {
        eprintln!("realtime: compacting partition {partition} failed: {err:?}");
    }
    Ok(Outcome::Published { partition, offset })
}

/// Skips a change whose `wiki_id` is neither in the project registry (the
/// site matrix) nor configured as an upstream override: an ingest key
/// cannot create article keys, index entries or partitions for projects
/// that do not exist.
fn known_project(config: &Config, classified: Classified) -> Classified {
    let Classified::Publish(change) = classified else {
        return classified;
    };
    let known = config.overrides.contains_key(&change.project)
        || wikiedge_fn::config::registry().is_ok_and(|r| r.project(&change.project).is_ok());
    if known {
        Classified::Publish(change)
    } else {
        Classified::Skip {
            id: Some(change.id.clone()),
            reason: "unknown wiki_id".into(),
        }
    }
}

/// The project context of a change: the registry's, else one built from
/// the override or the event's domain.
fn context(config: &Config, change: &Change) -> ProjectContext {
    let registry = wikiedge_fn::config::registry().ok();
    registry
        .and_then(|r| ProjectContext::from_registry(r, &change.project).ok())
        .unwrap_or_else(|| ProjectContext {
            identifier: change.project.clone(),
            base_url: change
                .domain
                .as_ref()
                .map(|d| format!("https://{d}"))
                .or_else(|| config.overrides.get(&change.project).cloned())
                .unwrap_or_default(),
            language: String::new(),
            localisation: Default::default(),
        })
}

/// Step 3: the article to publish, refreshed in the article store.
async fn refresh(config: &Config, bucket: &Bucket, change: &Change) -> Article {
    let ctx = context(config, change);
    let language = (!ctx.language.is_empty()).then_some(ctx.language.as_str());
    let minimal = || minimal_article(change, Some(&ctx.base_url), language);
    if change.kind == EventType::Delete {
        if let Err(err) = forget(bucket, change) {
            eprintln!(
                "realtime: removing deleted {}:{}: {err:?}",
                change.project, change.title
            );
        }
        return minimal();
    }
    let fetched = match wikiedge_fn::config::base_url(&config.overrides, &change.project) {
        Ok(base) => upstream::fetch(&base, &change.title, &ctx, config.timeout).await,
        Err(err) => Err(err),
    };
    match fetched {
        Ok(article) => {
            // On-demand gets the fetched document with what the event
            // knows laid over it (editor details, comment, event).
            if let Err(err) = store(bucket, change, &stored_document(article.clone(), change)) {
                eprintln!(
                    "realtime: storing {}:{}: {err:?}",
                    change.project, change.title
                );
            }
            article
        }
        Err(err) => {
            eprintln!(
                "realtime: fetching {}:{} failed ({err}); publishing what is known",
                change.project, change.title
            );
            let stored = kv::get(bucket, &title::storage_key(&change.project, &change.title))
                .ok()
                .flatten()
                .and_then(|b| serde_json::from_slice::<Article>(layout::document(&b)).ok());
            stored.unwrap_or_else(minimal)
        }
    }
}

fn index_key(change: &Change) -> String {
    format!("article-projects:{}", title::key_form(&change.title))
}

/// Stores a fetched article as the articles function does.
fn store(bucket: &Bucket, change: &Change, article: &Article) -> Result<(), Error> {
    let json = layout::to_stored(article).map_err(|e| Error::Internal(e.to_string()))?;
    kv::set(
        bucket,
        &title::storage_key(&change.project, &change.title),
        &json,
    )?;
    let rev = article
        .version
        .as_ref()
        .and_then(|v| v.identifier)
        .unwrap_or(0);
    let fetched = now_ms() / 1000;
    kv::update_bytes(bucket, &index_key(change), |current| {
        let mut index: serde_json::Map<String, Value> = current
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        index.insert(
            change.project.clone(),
            json!({"rev": rev, "fetched": fetched}),
        );
        serde_json::to_vec(&index).ok()
    })?;
    Ok(())
}

/// Removes a deleted page's stored copy and its index entry.
fn forget(bucket: &Bucket, change: &Change) -> Result<(), Error> {
    kv::delete(bucket, &title::storage_key(&change.project, &change.title))?;
    kv::update_bytes(bucket, &index_key(change), |current| {
        let mut index: serde_json::Map<String, Value> = serde_json::from_slice(&current?).ok()?;
        index.remove(&change.project)?;
        serde_json::to_vec(&index).ok()
    })?;
    Ok(())
}
