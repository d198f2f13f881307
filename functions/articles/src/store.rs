//! The key-value layout of cached articles (store `default`).
//!
//! - `article:{project}:{Title_Key}` (core `title::storage_key`) holds the
//!   WME Article JSON, compact, exactly as it is served. It is never parsed
//!   on the hot path (no `fields`, no filters beyond the project).
//! - `article-projects:{Title_Key}` is the title index: a small JSON object
//!   mapping each project that has the title to its metadata,
//!   `{"enwiki": {"rev": 716551092, "fetched": 1764374400}}`, plus
//!   `"retry_at"` (Unix seconds) after an upstream failure. It answers
//!   "which projects have this title", the ETag and the freshness check in
//!   one read. Every article write updates it (`wikiedge import` writes the
//!   same layout: cli/src/import.rs).
//!
//! The title in both keys is the display title normalised with the
//! project's case rule, in key form (underscores).
//!
//! The index update is a compare-and-swap through
//! `wikiedge_fn::kv::update` (as realtime ingest's), so two projects of one
//! title refreshed at the same instant both keep their entries, also on a
//! store that misreports swaps; readers take the payload out of the CAS
//! envelope (`wikiedge_core::cas`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use spin_sdk::key_value::Store;
use wikiedge_core::article::title;
use wikiedge_core::{Error, cas};

/// The prefix of title index keys.
pub const INDEX_PREFIX: &str = "article-projects:";

/// What the index knows about one project's copy of a title.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The revision id of the stored article (its ETag).
    pub rev: u64,
    /// When the article was fetched or imported (Unix seconds).
    pub fetched: u64,
    /// Not before this time (Unix seconds) try upstream again after a failure.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retry_at: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Project id -> entry, ordered by project id.
pub type Index = BTreeMap<String, Entry>;

/// The index key of a (normalised, display-form) title.
pub fn index_key(display_title: &str) -> String {
    format!("{INDEX_PREFIX}{}", title::key_form(display_title))
}

fn unavailable(err: impl std::fmt::Debug) -> Error {
    eprintln!("articles: key-value error: {err:?}");
    Error::Unavailable {
        message: "article storage is temporarily unavailable".into(),
        retry_after: 1,
    }
}

/// Opens the `default` store.
pub async fn open() -> Result<Store, Error> {
    Store::open_default().await.map_err(unavailable)
}

/// Reads the index of a title; a missing or unreadable record is empty.
pub async fn read_index(store: &Store, display_title: &str) -> Result<Index, Error> {
    let bytes = store
        .get(index_key(display_title))
        .await
        .map_err(unavailable)?;
    Ok(parse_index(bytes.as_deref()))
}

/// An index record's entries; a missing or unreadable record is empty.
fn parse_index(bytes: Option<&[u8]>) -> Index {
    bytes
        .and_then(|b| serde_json::from_slice(cas::payload(b)).ok())
        .unwrap_or_default()
}

/// Reads one stored article's JSON bytes.
pub async fn read_article(
    store: &Store,
    project: &str,
    display_title: &str,
) -> Result<Option<Vec<u8>>, Error> {
    store
        .get(title::storage_key(project, display_title))
        .await
        .map_err(unavailable)
}

/// Stores an article and records it in the title index.
pub async fn write_article(
    store: &Store,
    project: &str,
    display_title: &str,
    json: &[u8],
    entry: Entry,
) -> Result<(), Error> {
    store
        .set(title::storage_key(project, display_title), json)
        .await
        .map_err(unavailable)?;
    update_entry(project, display_title, entry)
}

/// Sets one project's entry in a title's index.
pub fn update_entry(project: &str, display_title: &str, entry: Entry) -> Result<(), Error> {
    let bucket = wikiedge_fn::kv::open()?;
    wikiedge_fn::kv::update(&bucket, &index_key(display_title), |current| {
        let mut index = parse_index(current.as_deref());
        index.insert(project.to_string(), entry);
        let bytes = serde_json::to_vec(&index).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(wikiedge_fn::kv::Update::Write(bytes, ()))
    })
}
