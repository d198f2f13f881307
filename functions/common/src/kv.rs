//! Key-value access over `wasi:keyvalue` (draft2): reads, batched reads,
//! writes, atomic increments, create-if-absent and compare-and-swap
//! updates, with storage failures mapped to 503 (the component's storage
//! message, see [`crate::Component`]).
//!
//! Compare-and-swap goes through [`wikiedge_core::cas`], which stays exact
//! when the store misreports a swap (Spin 4.1's Redis store reports every
//! swap as failed); values it writes carry an envelope of operation ids, so
//! every read here returns the payload only.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::opened::{self, Slot};

use spin_sdk::experimental::wasi::keyvalue::{atomics, batch, store};
use wikiedge_core::listing::{self, Listing};
use wikiedge_core::metering::counter::counter_or_zero;
use wikiedge_core::{Error, cas};

pub use store::Bucket;

/// Accounts, sessions, counters, markers, the realtime log
/// ([`wikiedge_core::stores`]).
pub const STORE: &str = wikiedge_core::stores::DEFAULT;
/// Cached articles, snapshot and batch parts, and their records.
pub const BULK: &str = wikiedge_core::stores::BULK;
/// How many keys one `get-many` call asks for.
const BATCH: usize = 256;

/// A storage failure: logged with its detail, reported as a 503.
pub fn unavailable(context: &str, err: impl std::fmt::Debug) -> Error {
    let component = crate::component();
    eprintln!("{}: storage: {context}: {err:?}", component.name);
    Error::Unavailable {
        message: component.storage_unavailable.into(),
        retry_after: 1,
    }
}

thread_local! {
    static DEFAULT_BUCKET: Slot<Bucket> = const { RefCell::new(None) };
    static BULK_BUCKET: Slot<Bucket> = const { RefCell::new(None) };
}

/// The default store, opened once per instance ([`crate::opened`]).
pub fn open() -> Result<Rc<Bucket>, Error> {
    opened::get_or_open(&DEFAULT_BUCKET, || {
        store::open(STORE).map_err(|e| unavailable("open", e))
    })
}

/// The bulk store, opened once per instance ([`crate::opened`]).
pub fn open_bulk() -> Result<Rc<Bucket>, Error> {
    opened::get_or_open(&BULK_BUCKET, || {
        store::open(BULK).map_err(|e| unavailable("open bulk", e))
    })
}

/// Reads one key.
pub fn get(bucket: &Bucket, key: &str) -> Result<Option<Vec<u8>>, Error> {
    let value = bucket.get(key).map_err(|e| unavailable(key, e))?;
    Ok(value.map(strip))
}

/// A stored value's payload (see [`wikiedge_core::cas`]).
fn strip(value: Vec<u8>) -> Vec<u8> {
    let payload = cas::payload(&value);
    if payload.len() == value.len() {
        value
    } else {
        payload.to_vec()
    }
}

/// Writes one key.
pub fn set(bucket: &Bucket, key: &str, value: &[u8]) -> Result<(), Error> {
    bucket.set(key, value).map_err(|e| unavailable(key, e))
}

/// Deletes one key (absent is fine).
pub fn delete(bucket: &Bucket, key: &str) -> Result<(), Error> {
    bucket.delete(key).map_err(|e| unavailable(key, e))
}

/// Reads many keys in batches; missing keys are absent from the map.
pub fn get_many(bucket: &Bucket, keys: &[String]) -> Result<HashMap<String, Vec<u8>>, Error> {
    let mut found = HashMap::new();
    for chunk in keys.chunks(BATCH) {
        let pairs = batch::get_many(bucket, chunk).map_err(|e| unavailable("get-many", e))?;
        found.extend(
            pairs
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, strip(v)))),
        );
    }
    Ok(found)
}

/// Atomically adds `delta` to a counter and returns its new value; a
/// `delta` of 0 reads it.
pub fn increment(bucket: &Bucket, key: &str, delta: i64) -> Result<i64, Error> {
    atomics::increment(bucket, key, delta).map_err(|e| unavailable(key, e))
}

/// Adds `member` to `listing` unless its marker says it is there: the entry
/// first, then the marker that makes it count (see
/// [`wikiedge_core::listing`]). O(1) whatever the listing's size.
pub fn add_to_listing(bucket: &Bucket, listing: &Listing, member: &str) -> Result<(), Error> {
    let marker = listing.marker_key(member);
    if get(bucket, &marker)?.is_some() {
        return Ok(());
    }
    let seq = listing::seq(increment(bucket, &listing.count_key(), 1)?)?;
    set(bucket, &listing.entry_key(seq), member.as_bytes())?;
    set(bucket, &marker, &listing::encode_marker(seq))
}

/// One page of `listing`: its members in the order they were added, and
/// the entries appended so far (for [`listing::Page::next_link`]).
pub fn listing_page(
    bucket: &Bucket,
    listing: &Listing,
    page: listing::Page,
) -> Result<(Vec<String>, u64), Error> {
    let count = listing::seq(counter_or_zero(
        get(bucket, &listing.count_key())?.as_deref(),
    )?)?;
    let entries = get_many(bucket, &listing.entry_keys(page, count))?;
    let markers = get_many(bucket, &listing.marker_keys(&entries))?;
    Ok((listing.members(page, count, &entries, &markers), count))
}

/// What an update function decided.
pub use cas::Step as Update;

/// The bucket as [`wikiedge_core::cas`] sees it.
struct Cas<'a>(&'a Bucket);

impl cas::CasStore for Cas<'_> {
    type Error = Error;
    type Handle = atomics::Cas;

    fn begin(&self, key: &str) -> Result<(atomics::Cas, Option<Vec<u8>>), Error> {
        let handle = atomics::Cas::new(self.0, key).map_err(|e| unavailable(key, e))?;
        let current = handle.current().map_err(|e| unavailable(key, e))?;
        Ok((handle, current))
    }

    fn swap(&self, handle: atomics::Cas, value: &[u8]) -> Result<bool, Error> {
        match atomics::swap(handle, value) {
            Ok(()) => Ok(true),
            Err(atomics::CasError::CasFailed(_)) => Ok(false),
            Err(atomics::CasError::StoreError(e)) => Err(unavailable("swap", e)),
        }
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.0.get(key).map_err(|e| unavailable(key, e))
    }

    fn op_id(&self) -> Result<cas::OpId, Error> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|e| Error::Internal(format!("random: {e}")))?;
        Ok(id)
    }

    fn contention(&self, key: &str) -> Error {
        unavailable(key, "compare-and-swap kept conflicting")
    }

    fn unknown(&self, key: &str) -> Error {
        unavailable(key, "compare-and-swap outcome unknown (too many writers)")
    }
}

/// Read-modify-write of one key with compare-and-swap: `f` sees the current
/// value and decides; a conflicting writer makes it run again on the new
/// value. An error from `f` aborts without writing.
pub fn update<R>(
    bucket: &Bucket,
    key: &str,
    f: impl FnMut(Option<Vec<u8>>) -> Result<Update<R>, Error>,
) -> Result<R, Error> {
    cas::update(&Cas(bucket), key, f)
}

/// Read-modify-write of one key with compare-and-swap: `f` maps the current
/// value to the new one (`None` writes nothing); `true` when it wrote.
pub fn update_bytes(
    bucket: &Bucket,
    key: &str,
    mut f: impl FnMut(Option<Vec<u8>>) -> Option<Vec<u8>>,
) -> Result<bool, Error> {
    update(bucket, key, |current| {
        Ok(match f(current) {
            Some(bytes) => Update::Write(bytes, true),
            None => Update::Keep(false),
        })
    })
}
