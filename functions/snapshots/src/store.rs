//! Reading snapshot records (store `bulk`) and the download markers (store
//! `default`); the layout is `wikiedge_core::snapshot`'s.
//!
//! The download marker makes one download cost one unit however many
//! requests (parallel ranges, resumptions) it takes. The first request of a
//! download claims the marker with compare-and-swap (`pending:{ms}`,
//! through `wikiedge_fn::kv::update`, exact on Spin's Redis store too),
//! consumes quota, and sets it to `admitted` (or deletes it when denied).
//! A request that finds a fresh `pending` marker waits, polling, for that
//! decision, so five workers starting at once cost one unit and an
//! over-quota caller gets nothing free by racing. A `pending` marker older
//! than [`STALE_PENDING_MS`] (its holder died) is claimed over; a waiter
//! that runs out of patience ([`WAIT_MS`]) consumes a unit on its own,
//! which may count a download twice but never lets one go uncounted.

use std::time::Duration;

use spin_sdk::experimental::wasi::keyvalue::store as wasi_store;
use spin_sdk::key_value::Store;
use wikiedge_core::Error;
use wikiedge_core::snapshot::{
    INDEX_KEY, MARKER_ADMITTED, MARKER_PENDING, Record, STRUCTURED_INDEX_KEY, record_key,
    structured_record_key,
};
use wikiedge_fn::kv::Update;

/// The store every wikiedge component uses.
const STORE: &str = "default";
/// A pending claim older than this is abandoned.
const STALE_PENDING_MS: i64 = 10_000;
/// How long a request waits for another request's quota decision.
const WAIT_MS: i64 = 3_000;
/// How often it looks.
const POLL: Duration = Duration::from_millis(15);

/// A storage failure: logged with its detail, reported as a 503.
pub fn unavailable(err: impl std::fmt::Debug) -> Error {
    eprintln!("snapshots: key-value error: {err:?}");
    Error::Unavailable {
        message: "snapshot storage is temporarily unavailable".into(),
        retry_after: 1,
    }
}

/// Opens the `default` store (download markers).
pub async fn open() -> Result<Store, Error> {
    Store::open_default().await.map_err(unavailable)
}

/// Opens the `bulk` store (records and parts).
pub async fn open_bulk() -> Result<Store, Error> {
    Store::open(wikiedge_fn::kv::BULK)
        .await
        .map_err(unavailable)
}

/// The two kinds of snapshot records.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Articles,
    Structured,
}

impl Kind {
    fn key(self, identifier: &str) -> String {
        match self {
            Kind::Articles => record_key(identifier),
            Kind::Structured => structured_record_key(identifier),
        }
    }

    fn index(self) -> &'static str {
        match self {
            Kind::Articles => INDEX_KEY,
            Kind::Structured => STRUCTURED_INDEX_KEY,
        }
    }

    fn what(self) -> &'static str {
        match self {
            Kind::Articles => "snapshot",
            Kind::Structured => "structured-contents snapshot",
        }
    }
}

/// The record of a snapshot, or `NotFound`.
pub async fn record(store: &Store, identifier: &str) -> Result<Record, Error> {
    read(store, Kind::Articles, identifier).await
}

/// The record of a structured-contents snapshot, or `NotFound`.
pub async fn structured_record(store: &Store, identifier: &str) -> Result<Record, Error> {
    read(store, Kind::Structured, identifier).await
}

async fn read(store: &Store, kind: Kind, identifier: &str) -> Result<Record, Error> {
    let what = kind.what();
    let bytes = store
        .get(kind.key(identifier))
        .await
        .map_err(unavailable)?
        .ok_or_else(|| Error::NotFound(format!("{what} '{identifier}' not found")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::Internal(format!("{what} record {identifier} is corrupt: {e}")))
}

/// Every snapshot record, in identifier order.
pub async fn all(store: &Store) -> Result<Vec<Record>, Error> {
    all_of(store, Kind::Articles).await
}

/// Every structured-contents snapshot record, in identifier order.
pub async fn all_structured(store: &Store) -> Result<Vec<Record>, Error> {
    all_of(store, Kind::Structured).await
}

async fn all_of(store: &Store, kind: Kind) -> Result<Vec<Record>, Error> {
    let ids: Vec<String> = match store.get(kind.index()).await.map_err(unavailable)? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| Error::Internal(format!("snapshot index is corrupt: {e}")))?,
        None => Vec::new(),
    };
    let mut records = Vec::with_capacity(ids.len());
    for id in ids {
        match read(store, kind, &id).await {
            Ok(record) => records.push(record),
            // Listed but gone: skip rather than fail the whole list.
            Err(Error::NotFound(_)) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(records)
}

/// The outcome of claiming a download marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This download was already counted: serve it free.
    Counted,
    /// This request must consume quota, then [`settle`] the marker.
    Mine,
}

/// What one look at the marker decided.
enum Look {
    Counted,
    Mine,
    Wait,
}

/// Claims the download marker `key` (see the module docs).
pub async fn claim(key: &str) -> Result<Claim, Error> {
    let bucket = wasi_store::open(STORE).map_err(unavailable)?;
    let deadline = wikiedge_fn::now_ms() + WAIT_MS;
    loop {
        let now = wikiedge_fn::now_ms();
        let look = wikiedge_fn::kv::update(&bucket, key, |current| {
            let pending_since = current
                .as_deref()
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.strip_prefix(MARKER_PENDING))
                .and_then(|ms| ms.parse::<i64>().ok());
            Ok(match (current.as_deref(), pending_since) {
                (Some(v), _) if v == MARKER_ADMITTED.as_bytes() => Update::Keep(Look::Counted),
                (Some(_), Some(since)) if now.saturating_sub(since) < STALE_PENDING_MS => {
                    Update::Keep(Look::Wait)
                }
                // Absent, stale or unreadable: claim it.
                _ => Update::Write(format!("{MARKER_PENDING}{now}").into_bytes(), Look::Mine),
            })
        })?;
        match look {
            Look::Counted => return Ok(Claim::Counted),
            Look::Mine => return Ok(Claim::Mine),
            Look::Wait if now >= deadline => return Ok(Claim::Mine),
            Look::Wait => spin_sdk::time::sleep(POLL).await,
        }
    }
}

/// Records the quota decision of a claimed download: `admitted` marks it
/// counted; otherwise the marker is removed so a later request can try.
pub async fn settle(store: &Store, key: &str, admitted: bool) -> Result<(), Error> {
    if admitted {
        store.set(key, MARKER_ADMITTED.as_bytes()).await
    } else {
        store.delete(key).await
    }
    .map_err(unavailable)
}
