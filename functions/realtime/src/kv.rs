//! Key-value access over `wasi:keyvalue` (draft2): reads, writes, atomic
//! increments and create-if-absent, with storage failures mapped to 503.

use spin_sdk::experimental::wasi::keyvalue::{atomics, store};
use wikiedge_core::Error;

pub use store::Bucket;

/// The store every wikiedge component uses.
const STORE: &str = "default";
/// How many times a compare-and-swap update is retried on conflict.
const CAS_ATTEMPTS: usize = 8;

/// A storage failure: logged with its detail, reported as a 503.
pub fn unavailable(context: &str, err: impl std::fmt::Debug) -> Error {
    eprintln!("realtime: storage: {context}: {err:?}");
    Error::Unavailable {
        message: "realtime storage is temporarily unavailable".into(),
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

/// Read-modify-write of one key with compare-and-swap: `f` maps the current
/// value to the new one (`None` writes nothing).
pub fn update(
    bucket: &Bucket,
    key: &str,
    mut f: impl FnMut(Option<Vec<u8>>) -> Option<Vec<u8>>,
) -> Result<bool, Error> {
    for _ in 0..CAS_ATTEMPTS {
        let cas = atomics::Cas::new(bucket, key).map_err(|e| unavailable(key, e))?;
        let current = cas.current().map_err(|e| unavailable(key, e))?;
        let Some(bytes) = f(current) else {
            return Ok(false);
        };
        match atomics::swap(cas, &bytes) {
            Ok(()) => return Ok(true),
            Err(atomics::CasError::CasFailed(_)) => continue,
            Err(atomics::CasError::StoreError(e)) => return Err(unavailable(key, e)),
        }
    }
    Err(unavailable(key, "compare-and-swap kept conflicting"))
}
