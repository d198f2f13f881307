//! Key-value access over `wasi:keyvalue` (draft2): reads, batched reads,
//! writes, atomic increments, create-if-absent and compare-and-swap
//! updates, with storage failures mapped to 503 (the component's storage
//! message, see [`crate::Component`]).

use std::collections::HashMap;

use spin_sdk::experimental::wasi::keyvalue::{atomics, batch, store};
use wikiedge_core::Error;

pub use store::Bucket;

/// The store every wikiedge component uses.
pub const STORE: &str = "default";
/// How many keys one `get-many` call asks for.
const BATCH: usize = 256;
/// How many times a compare-and-swap update is retried on conflict.
const CAS_ATTEMPTS: usize = 8;

/// A storage failure: logged with its detail, reported as a 503.
pub fn unavailable(context: &str, err: impl std::fmt::Debug) -> Error {
    let component = crate::component();
    eprintln!("{}: storage: {context}: {err:?}", component.name);
    Error::Unavailable {
        message: component.storage_unavailable.into(),
        retry_after: 1,
    }
}

/// Opens the default store.
pub fn open() -> Result<Bucket, Error> {
    store::open(STORE).map_err(|e| unavailable("open", e))
}

/// Reads one key.
pub fn get(bucket: &Bucket, key: &str) -> Result<Option<Vec<u8>>, Error> {
    bucket.get(key).map_err(|e| unavailable(key, e))
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
        found.extend(pairs.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
    }
    Ok(found)
}

/// Atomically adds `delta` to a counter and returns its new value; a
/// `delta` of 0 reads it.
pub fn increment(bucket: &Bucket, key: &str, delta: i64) -> Result<i64, Error> {
    atomics::increment(bucket, key, delta).map_err(|e| unavailable(key, e))
}

/// Creates `key` with `value` unless it exists; `false` when it did.
pub fn create(bucket: &Bucket, key: &str, value: &[u8]) -> Result<bool, Error> {
    let cas = atomics::Cas::new(bucket, key).map_err(|e| unavailable(key, e))?;
    if cas.current().map_err(|e| unavailable(key, e))?.is_some() {
        return Ok(false);
    }
    match atomics::swap(cas, value) {
        Ok(()) => Ok(true),
        Err(atomics::CasError::CasFailed(_)) => Ok(false),
        Err(atomics::CasError::StoreError(e)) => Err(unavailable(key, e)),
    }
}

/// What an update function decided.
pub enum Update<R> {
    /// Write these bytes, then return the value.
    Write(Vec<u8>, R),
    /// Write nothing and return the value.
    Keep(R),
}

/// Read-modify-write of one key with compare-and-swap: `f` sees the current
/// value and decides; a conflicting writer makes it run again on the new
/// value. An error from `f` aborts without writing.
pub fn update<R>(
    bucket: &Bucket,
    key: &str,
    mut f: impl FnMut(Option<Vec<u8>>) -> Result<Update<R>, Error>,
) -> Result<R, Error> {
    for _ in 0..CAS_ATTEMPTS {
        let cas = atomics::Cas::new(bucket, key).map_err(|e| unavailable(key, e))?;
        let current = cas.current().map_err(|e| unavailable(key, e))?;
        match f(current)? {
            Update::Keep(r) => return Ok(r),
            Update::Write(bytes, r) => match atomics::swap(cas, &bytes) {
                Ok(()) => return Ok(r),
                Err(atomics::CasError::CasFailed(_)) => continue,
                Err(atomics::CasError::StoreError(e)) => return Err(unavailable(key, e)),
            },
        }
    }
    Err(unavailable(key, "compare-and-swap kept conflicting"))
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
