//! Key-value access: plain reads and writes through Spin's key-value store,
//! and compare-and-swap updates through `wasi:keyvalue/atomics` (draft2).
//!
//! Both interfaces address the same store (label `default`). Every storage
//! failure becomes [`Error::Unavailable`] (503, `Retry-After: 1`) with the
//! detail logged, never a client error.

use spin_sdk::experimental::wasi::keyvalue::{atomics, store as wkv};
use spin_sdk::key_value::Store;
use wikiedge_core::{Error, Result};

/// How often a compare-and-swap is retried under contention before the
/// request is answered 503 (observed: 16 parallel refreshes of one token
/// sometimes exhausted 16 attempts).
const CAS_ATTEMPTS: usize = 64;

/// What an update function decided.
pub enum Update<T> {
    /// Write these bytes, then return the value.
    Write(Vec<u8>, T),
    /// Leave the record as it is and return the value.
    Keep(T),
}

/// The store, opened once per request.
pub struct Kv {
    store: Store,
    bucket: Option<wkv::Bucket>,
}

/// A storage failure: logged here, reported as 503.
pub fn unavailable(what: &str, err: impl std::fmt::Debug) -> Error {
    eprintln!("auth: key-value {what}: {err:?}");
    Error::Unavailable {
        message: "Storage is unavailable".into(),
        retry_after: 1,
    }
}

impl Kv {
    /// Opens the `default` store.
    pub async fn open() -> Result<Kv> {
        let store = Store::open_default()
            .await
            .map_err(|e| unavailable("open", e))?;
        Ok(Kv {
            store,
            bucket: None,
        })
    }

    /// Reads a key.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.store.get(key).await.map_err(|e| unavailable("get", e))
    }

    /// Writes a key.
    pub async fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        self.store
            .set(key, value)
            .await
            .map_err(|e| unavailable("set", e))
    }

    /// Deletes a key.
    pub async fn delete(&self, key: &str) -> Result<()> {
        self.store
            .delete(key)
            .await
            .map_err(|e| unavailable("delete", e))
    }

    fn bucket(&mut self) -> Result<&wkv::Bucket> {
        if self.bucket.is_none() {
            self.bucket = Some(wkv::open("default").map_err(|e| unavailable("open bucket", e))?);
        }
        self.bucket
            .as_ref()
            .ok_or_else(|| Error::Internal("bucket vanished".into()))
    }

    /// Adds `delta` to a counter atomically (`wasi:keyvalue/atomics`) and
    /// returns the new value; an absent counter counts from 0.
    pub fn increment(&mut self, key: &str, delta: i64) -> Result<i64> {
        let bucket = self.bucket()?;
        atomics::increment(bucket, key, delta).map_err(|e| unavailable("increment", e))
    }

    /// Updates a key atomically: `f` sees the current value (`None` when
    /// absent) and decides; on a concurrent change it runs again with the
    /// new value. An error from `f` aborts the update and is returned.
    pub fn update<T>(
        &mut self,
        key: &str,
        mut f: impl FnMut(Option<Vec<u8>>) -> Result<Update<T>>,
    ) -> Result<T> {
        let bucket = self.bucket()?;
        for _ in 0..CAS_ATTEMPTS {
            let cas = atomics::Cas::new(bucket, key).map_err(|e| unavailable("cas", e))?;
            let current = cas.current().map_err(|e| unavailable("cas current", e))?;
            match f(current)? {
                Update::Keep(value) => return Ok(value),
                Update::Write(bytes, value) => match atomics::swap(cas, &bytes) {
                    Ok(()) => return Ok(value),
                    Err(atomics::CasError::CasFailed(_)) => continue,
                    Err(atomics::CasError::StoreError(e)) => {
                        return Err(unavailable("cas swap", e));
                    }
                },
            }
        }
        Err(unavailable("cas", format!("{key}: too much contention")))
    }
}
