//! Key-value storage behind Spin's `spin:key-value` and `wasi:keyvalue`.
//!
//! A [`Store`] is one labelled store (`default`, ...). Backends implement it;
//! the component bindings in [`crate::kv_host`] only ever see this trait, so
//! SQLite (the embedded default) and any other backend behave the same to a
//! component. Every write a backend acknowledges is durable before anything
//! that depends on it leaves the process: at once (Redis; SQLite for
//! tools), or, for SQLite under `wikiedge up`, when the server settles the
//! databases before a response head or an outbound request
//! ([`sqlite::CommitMode`]).

pub mod cache;
mod durability;
pub mod misreport;
pub mod open;
mod prefix;
pub mod redis;
pub mod sqlite;

use futures::FutureExt;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Arc;

/// What can go wrong in a store operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// The label names no store.
    #[error("no such store")]
    NoSuchStore,
    /// The component may not open this store.
    #[error("access denied")]
    AccessDenied,
    /// A backend error (I/O, a value that is not a counter, ...).
    #[error("{0}")]
    Other(String),
}

/// Result alias for store operations.
pub type KvResult<T> = Result<T, KvError>;

/// Keys with their values (`None` where absent), as `get_many` returns them.
pub type KeyValues = Vec<(String, Option<Vec<u8>>)>;

/// One labelled key-value store.
pub trait Store: Send + Sync + 'static {
    /// The value at `key`, if any, in a buffer the store may share with
    /// its read cache: what a component's `get` lowers into guest memory
    /// without a copy of its own ([`crate::kv_host`]). Required, so that a
    /// store wrapping another cannot fall back to a copy by omission.
    fn get_shared(&self, key: String) -> BoxFuture<'static, KvResult<Option<Arc<Vec<u8>>>>>;
    /// The value at `key`, if any, as a buffer of the caller's own.
    fn get(&self, key: String) -> BoxFuture<'static, KvResult<Option<Vec<u8>>>> {
        let value = self.get_shared(key);
        async move { Ok(value.await?.map(Arc::unwrap_or_clone)) }.boxed()
    }
    /// Set `key` to `value`, overwriting.
    fn set(&self, key: String, value: Vec<u8>) -> BoxFuture<'static, KvResult<()>>;
    /// Delete `key`; no error if absent.
    fn delete(&self, key: String) -> BoxFuture<'static, KvResult<()>>;
    /// Whether `key` exists.
    fn exists(&self, key: String) -> BoxFuture<'static, KvResult<bool>>;
    /// All keys of the store.
    fn get_keys(&self) -> BoxFuture<'static, KvResult<Vec<String>>>;
    /// The keys that start with `prefix`, sorted: what bulk tools list
    /// (Spin's interface has only [`Store::get_keys`]; this default filters
    /// its answer, the backends ask for the prefix alone).
    fn get_keys_with_prefix(&self, prefix: String) -> BoxFuture<'static, KvResult<Vec<String>>> {
        let all = self.get_keys();
        async move { Ok(prefix::filter(all.await?, &prefix)) }.boxed()
    }
    /// A page of [`Store::get_keys_with_prefix`]: at most `limit` keys
    /// under `prefix`, sorted, each after `after` (from the first when
    /// `None`), for a lister that must not hold every key at once. `None`
    /// when the backend has no ordered pages (Redis's `SCAN` has no order):
    /// the caller lists them all. Required, so that a store wrapping
    /// another cannot lose its backend's pages by omission.
    fn get_keys_page(
        &self,
        prefix: String,
        after: Option<String>,
        limit: usize,
    ) -> BoxFuture<'static, KvResult<Option<Vec<String>>>>;
    /// One step of listing the keys under `prefix` in no set order, for a
    /// lister that must not hold every key at once on a backend without
    /// ordered pages: about `count` keys (Redis may give a key twice, in
    /// two steps) and the cursor of the next step, `None` after the last.
    /// The first step takes `None`. Required, as [`Store::get_keys_page`].
    fn scan_keys(
        &self,
        prefix: String,
        cursor: Option<String>,
        count: usize,
    ) -> BoxFuture<'static, KvResult<(Vec<String>, Option<String>)>>;
    /// Values of many keys; absent keys are `None`.
    fn get_many(&self, keys: Vec<String>) -> BoxFuture<'static, KvResult<KeyValues>>;
    /// Set many keys (atomically in this backend; the interface promises less).
    fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> BoxFuture<'static, KvResult<()>>;
    /// Delete many keys.
    fn delete_many(&self, keys: Vec<String>) -> BoxFuture<'static, KvResult<()>>;
    /// Atomically add `delta` to the counter at `key` (absent = 0) and return
    /// the new value. Counters are 8-byte little-endian i64, as Spin stores them.
    fn increment(&self, key: String, delta: i64) -> BoxFuture<'static, KvResult<i64>>;
    /// Replace the value at `key` with `new` only if it is still `expected`
    /// (`None` = absent). Returns whether the swap happened.
    fn compare_and_swap(
        &self,
        key: String,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
    ) -> BoxFuture<'static, KvResult<bool>>;
}

/// The stores an application can open, by label.
#[derive(Clone, Default)]
pub struct StoreRegistry {
    stores: HashMap<String, Arc<dyn Store>>,
}

impl StoreRegistry {
    /// Add a store under a label.
    pub fn insert(&mut self, label: impl Into<String>, store: Arc<dyn Store>) {
        // Every operation is counted for `/metrics`.
        let store: Arc<dyn Store> = Arc::new(crate::metrics::MeteredStore(store));
        self.stores.insert(label.into(), store);
    }

    /// The store with this label.
    pub fn get(&self, label: &str) -> Option<Arc<dyn Store>> {
        self.stores.get(label).cloned()
    }

    /// Whether a label is defined.
    pub fn contains(&self, label: &str) -> bool {
        self.stores.contains_key(label)
    }

    /// The subset a component declared in `key_value_stores`: only these can
    /// be opened by it (others fail with `access-denied`, as in Spin).
    pub fn restricted_to(&self, labels: &[String]) -> ComponentStores {
        ComponentStores {
            allowed: labels
                .iter()
                .filter_map(|l| self.stores.get(l).map(|s| (l.clone(), s.clone())))
                .collect(),
        }
    }
}

/// The stores one component may open.
#[derive(Clone, Default)]
pub struct ComponentStores {
    allowed: HashMap<String, Arc<dyn Store>>,
}

impl ComponentStores {
    /// Open a store by label, with Spin's errors: a label the component did
    /// not declare is `access-denied`.
    pub fn open(&self, label: &str) -> KvResult<Arc<dyn Store>> {
        self.allowed
            .get(label)
            .cloned()
            .ok_or(KvError::AccessDenied)
    }
}
