//! A store that reports every compare-and-swap as failed, as Spin 4.1's
//! Redis store does.
//!
//! spinframework/spin `crates/key-value-redis/src/store.rs`,
//! `CompareAndSwap::swap`: `WATCH`, `MULTI`, `SET`, `EXEC`, then
//! `UNWATCH <key>`, which Redis refuses (`ERR wrong number of arguments for
//! 'unwatch' command`); the error is returned as the swap's outcome. So a
//! swap whose `EXEC` went through reports a CAS failure, and so does one
//! whose `EXEC` was aborted by a concurrent write. `wikiedge up
//! --emulate-spin-redis-cas` wraps every store in [`Misreporting`] so the
//! app's tolerance of that is tested on any backend.

use super::{KeyValues, KvResult, Store};
use futures::FutureExt;
use futures::future::BoxFuture;
use std::sync::Arc;

/// Delegates everything; `compare_and_swap` does its work and says `false`.
pub struct Misreporting(pub Arc<dyn Store>);

impl Store for Misreporting {
    fn get_shared(&self, key: String) -> BoxFuture<'static, KvResult<Option<Arc<Vec<u8>>>>> {
        self.0.get_shared(key)
    }
    fn set(&self, key: String, value: Vec<u8>) -> BoxFuture<'static, KvResult<()>> {
        self.0.set(key, value)
    }
    fn delete(&self, key: String) -> BoxFuture<'static, KvResult<()>> {
        self.0.delete(key)
    }
    fn exists(&self, key: String) -> BoxFuture<'static, KvResult<bool>> {
        self.0.exists(key)
    }
    fn get_keys(&self) -> BoxFuture<'static, KvResult<Vec<String>>> {
        self.0.get_keys()
    }
    fn get_keys_with_prefix(&self, prefix: String) -> BoxFuture<'static, KvResult<Vec<String>>> {
        self.0.get_keys_with_prefix(prefix)
    }
    fn get_keys_page(
        &self,
        prefix: String,
        after: Option<String>,
        limit: usize,
    ) -> BoxFuture<'static, KvResult<Option<Vec<String>>>> {
        self.0.get_keys_page(prefix, after, limit)
    }
    fn scan_keys(
        &self,
        prefix: String,
        cursor: Option<String>,
        count: usize,
    ) -> BoxFuture<'static, KvResult<(Vec<String>, Option<String>)>> {
        self.0.scan_keys(prefix, cursor, count)
    }
    fn get_many(&self, keys: Vec<String>) -> BoxFuture<'static, KvResult<KeyValues>> {
        self.0.get_many(keys)
    }
    fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> BoxFuture<'static, KvResult<()>> {
        self.0.set_many(pairs)
    }
    fn delete_many(&self, keys: Vec<String>) -> BoxFuture<'static, KvResult<()>> {
        self.0.delete_many(keys)
    }
    fn increment(&self, key: String, delta: i64) -> BoxFuture<'static, KvResult<i64>> {
        self.0.increment(key, delta)
    }
    fn compare_and_swap(
        &self,
        key: String,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
    ) -> BoxFuture<'static, KvResult<bool>> {
        self.0
            .compare_and_swap(key, expected, new)
            .map(|outcome| outcome.map(|_| false))
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::sqlite::SqliteDatabase;

    #[tokio::test]
    async fn writes_yet_reports_failure_and_aborts_still_report_failure() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = SqliteDatabase::open(&dir.path().join("kv.db"))?;
        let store = Misreporting(db.store("default"));
        // A swap that goes through: written, reported failed.
        assert!(
            !store
                .compare_and_swap("k".into(), None, b"one".to_vec())
                .await?
        );
        assert_eq!(store.get("k".into()).await?, Some(b"one".to_vec()));
        // A swap that conflicts: not written, reported failed.
        assert!(
            !store
                .compare_and_swap("k".into(), None, b"two".to_vec())
                .await?
        );
        assert_eq!(store.get("k".into()).await?, Some(b"one".to_vec()));
        Ok(())
    }
}
