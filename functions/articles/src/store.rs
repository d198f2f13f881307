//! Cached articles in store `bulk`, in the layout defined once in the
//! core (`wikiedge_core::article::layout`, which `wikiedge import` writes
//! too). The article JSON is never parsed on the hot path (no `fields`, no
//! filters beyond the project). Every article write updates the title index.
//!
//! The index update is a compare-and-swap through
//! `wikiedge_fn::kv::update` (as realtime ingest's), so two projects of one
//! title refreshed at the same instant both keep their entries, also on a
//! store that misreports swaps; readers take the payload out of the CAS
//! envelope (`wikiedge_core::cas`).

use spin_sdk::key_value::Store;
use std::cell::RefCell;
use std::rc::Rc;
use wikiedge_core::Error;
pub use wikiedge_core::article::layout::{Entry, Index, index_key};
use wikiedge_core::article::layout::{article_key, parse_index};
use wikiedge_fn::opened::{self, Slot};

fn unavailable(err: impl std::fmt::Debug) -> Error {
    eprintln!("articles: key-value error: {err:?}");
    Error::Unavailable {
        message: "article storage is temporarily unavailable".into(),
        retry_after: 1,
    }
}

thread_local! {
    static BULK: Slot<Store> = const { RefCell::new(None) };
}

/// The `bulk` store, opened once per instance (`wikiedge_fn::opened`).
pub async fn open() -> Result<Rc<Store>, Error> {
    opened::get_or_open_async(&BULK, || async {
        Store::open(wikiedge_fn::kv::BULK)
            .await
            .map_err(unavailable)
    })
    .await
}

/// Reads the index of a title; a missing or unreadable record is empty.
pub async fn read_index(store: &Store, display_title: &str) -> Result<Index, Error> {
    let bytes = store
        .get(index_key(display_title))
        .await
        .map_err(unavailable)?;
    Ok(parse_index(bytes.as_deref()))
}

/// Reads one stored article's JSON bytes.
pub async fn read_article(
    store: &Store,
    project: &str,
    display_title: &str,
) -> Result<Option<Vec<u8>>, Error> {
    store
        .get(article_key(project, display_title))
        .await
        .map_err(unavailable)
}

/// A new write's `copy` for the title index (`Entry::copy`).
pub fn new_copy() -> u64 {
    let random = spin_sdk::wasip3::random::random::get_random_u64();
    wikiedge_core::article::layout::new_copy(random.to_le_bytes())
}

/// Stores an article and records it in the title index (`entry.copy`
/// names this write: [`new_copy`]).
pub async fn write_article(
    store: &Store,
    project: &str,
    display_title: &str,
    json: &[u8],
    entry: Entry,
) -> Result<(), Error> {
    store
        .set(article_key(project, display_title), json)
        .await
        .map_err(unavailable)?;
    update_entry(project, display_title, entry)
}

/// Sets one project's entry in a title's index.
pub fn update_entry(project: &str, display_title: &str, entry: Entry) -> Result<(), Error> {
    let bucket = wikiedge_fn::kv::open_bulk()?;
    wikiedge_fn::kv::update(&bucket, &index_key(display_title), |current| {
        let mut index = parse_index(current.as_deref());
        index.insert(project.to_string(), entry);
        let bytes = serde_json::to_vec(&index).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(wikiedge_fn::kv::Update::Write(bytes, ()))
    })
}
