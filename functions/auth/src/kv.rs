//! Key-value access: plain reads and writes through Spin's key-value store,
//! and compare-and-swap updates through `wasi:keyvalue/atomics` (draft2).
//!
//! Both interfaces address the same store (label `default`). Every storage
//! failure becomes [`Error::Unavailable`] (503, `Retry-After: 1`) with the
//! detail logged, never a client error.

use spin_sdk::experimental::wasi::keyvalue::{atomics, store as wkv};
use spin_sdk::key_value::Store;
use std::cell::RefCell;
use std::rc::Rc;
use wikiedge_core::listing::{Listing, Page};
use wikiedge_core::{Error, Result, cas};
use wikiedge_fn::opened::{self, Slot};

/// What an update function decided.
pub use wikiedge_core::cas::Step as Update;

/// The store, opened once per instance (`wikiedge_fn::opened`).
pub struct Kv {
    store: Rc<Store>,
}

thread_local! {
    static STORE: Slot<Store> = const { RefCell::new(None) };
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
        let store = opened::get_or_open_async(&STORE, || async {
            Store::open_default()
                .await
                .map_err(|e| unavailable("open", e))
        })
        .await?;
        Ok(Kv { store })
    }

    /// Reads a key.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let value = self
            .store
            .get(key)
            .await
            .map_err(|e| unavailable("get", e))?;
        Ok(value.map(|v| {
            let payload = cas::payload(&v);
            if payload.len() == v.len() {
                v
            } else {
                payload.to_vec()
            }
        }))
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

    /// The same store through `wasi:keyvalue`, for atomics and listings
    /// (opened once per instance by [`wikiedge_fn::kv::open`]).
    fn bucket(&self) -> Result<Rc<wkv::Bucket>> {
        wikiedge_fn::kv::open()
    }

    /// Adds `member` to `listing` (see [`wikiedge_fn::kv::add_to_listing`]).
    pub fn add_to_listing(&mut self, listing: &Listing, member: &str) -> Result<()> {
        wikiedge_fn::kv::add_to_listing(&*self.bucket()?, listing, member)
    }

    /// A page of `listing` (see [`wikiedge_fn::kv::listing_page`]).
    pub fn listing_page(&mut self, listing: &Listing, page: Page) -> Result<(Vec<String>, u64)> {
        wikiedge_fn::kv::listing_page(&*self.bucket()?, listing, page)
    }

    /// Adds `delta` to a counter atomically (`wasi:keyvalue/atomics`) and
    /// returns the new value; an absent counter counts from 0.
    pub fn increment(&mut self, key: &str, delta: i64) -> Result<i64> {
        let bucket = self.bucket()?;
        atomics::increment(&bucket, key, delta).map_err(|e| unavailable("increment", e))
    }

    /// Updates a key atomically: `f` sees the current value (`None` when
    /// absent) and decides; on a concurrent change it runs again with the
    /// new value. An error from `f` aborts the update and is returned.
    /// Exact even where the store misreports swaps ([`wikiedge_core::cas`]).
    pub fn update<T>(
        &mut self,
        key: &str,
        f: impl FnMut(Option<Vec<u8>>) -> Result<Update<T>>,
    ) -> Result<T> {
        cas::update(&Cas(&*self.bucket()?), key, f)
    }
}

/// The bucket as [`wikiedge_core::cas`] sees it.
struct Cas<'a>(&'a wkv::Bucket);

impl cas::CasStore for Cas<'_> {
    type Error = Error;
    type Handle = atomics::Cas;

    fn begin(&self, key: &str) -> Result<(atomics::Cas, Option<Vec<u8>>)> {
        let handle = atomics::Cas::new(self.0, key).map_err(|e| unavailable("cas", e))?;
        let current = handle
            .current()
            .map_err(|e| unavailable("cas current", e))?;
        Ok((handle, current))
    }

    fn swap(&self, handle: atomics::Cas, value: &[u8]) -> Result<bool> {
        match atomics::swap(handle, value) {
            Ok(()) => Ok(true),
            Err(atomics::CasError::CasFailed(_)) => Ok(false),
            Err(atomics::CasError::StoreError(e)) => Err(unavailable("cas swap", e)),
        }
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.0.get(key).map_err(|e| unavailable("cas get", e))
    }

    fn op_id(&self) -> Result<cas::OpId> {
        crate::records::random::<16>()
    }

    fn contention(&self, key: &str) -> Error {
        unavailable("cas", format!("{key}: too much contention"))
    }

    fn unknown(&self, key: &str) -> Error {
        unavailable("cas", format!("{key}: outcome unknown (too many writers)"))
    }
}
