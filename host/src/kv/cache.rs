//! A read cache for the SQLite store.
//!
//! Every read from SQLite is a read transaction: file-lock system calls,
//! page lookups, and for a cached article (100-200 KB) dozens of overflow
//! pages and a copy. A request reads a handful of records that rarely
//! change (its session, the article index, the article) and writes only
//! counters, so the store keeps recently read values in memory.
//!
//! Coherence. Every write of this process goes through the store's one
//! writer connection, whose committer (`super::sqlite::commit`), after each
//! commit and under the cache lock, drops the written keys and bumps a
//! generation counter. A reader remembers the
//! generation before it reads from SQLite and inserts what it read only if
//! the generation is unchanged (checked under the same lock), so a value
//! read before a commit can never be inserted after it. Writes from *other*
//! processes (another host, `wikiedge import`) are seen within [`TTL`]:
//! entries expire, as `wasi:keyvalue` allows ("a client running in a
//! different context may or may not immediately see the result").

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Values larger than this are not cached: they are parts of bulk data
/// (snapshot blobs, 1 MiB) that are streamed once, not records read again.
pub const MAX_VALUE: usize = 512 << 10;
/// How long an entry is trusted without a write from this process.
pub const TTL: Duration = Duration::from_secs(1);
/// The most bytes the cache holds; it is emptied when an insert would exceed it.
pub const MAX_BYTES: usize = 64 << 20;

struct Entry {
    value: Arc<Vec<u8>>,
    at: Instant,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<(String, String), Entry>,
    bytes: usize,
    generation: u64,
}

/// The cache. Keys are `(store, key)`.
#[derive(Default)]
pub struct ReadCache {
    inner: Mutex<Inner>,
}

impl ReadCache {
    /// A cached value that is still fresh.
    pub fn get(&self, store: &str, key: &str) -> Option<Arc<Vec<u8>>> {
        let inner = self.inner.lock().ok()?;
        let entry = inner.entries.get(&(store.to_string(), key.to_string()))?;
        (entry.at.elapsed() < TTL).then(|| entry.value.clone())
    }

    /// The current generation (read it before reading from SQLite).
    pub fn generation(&self) -> u64 {
        self.inner.lock().map(|i| i.generation).unwrap_or(u64::MAX)
    }

    /// Insert a value read at `generation`, unless a write happened since.
    pub fn insert(&self, store: &str, key: &str, value: &Arc<Vec<u8>>, generation: u64) {
        if value.len() > MAX_VALUE {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.generation != generation {
            return;
        }
        if inner.bytes + value.len() > MAX_BYTES {
            inner.entries.clear();
            inner.bytes = 0;
        }
        let entry = Entry {
            value: Arc::clone(value),
            at: Instant::now(),
        };
        inner.bytes += value.len();
        if let Some(old) = inner
            .entries
            .insert((store.to_string(), key.to_string()), entry)
        {
            inner.bytes -= old.value.len();
        }
    }

    /// Forget everything (the generation moves on, so a read in progress
    /// does not refill it with a value from before).
    pub fn clear(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.entries = HashMap::new();
            inner.bytes = 0;
            inner.generation += 1;
        }
    }

    /// After a commit: forget the written keys and start a new generation.
    pub fn invalidate<'a>(&self, written: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        for (store, key) in written {
            if let Some(old) = inner.entries.remove(&(store.to_string(), key.to_string())) {
                inner.bytes -= old.value.len();
            }
        }
        inner.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big(b: u8) -> Arc<Vec<u8>> {
        Arc::new(vec![b; 100])
    }

    #[test]
    fn values_are_cached_per_store_and_key() {
        let c = ReadCache::default();
        let g = c.generation();
        c.insert("s", "big", &big(1), g);
        assert_eq!(c.get("s", "big").map(|v| v[0]), Some(1));
        assert!(c.get("other", "big").is_none());
        assert!(c.get("s", "other").is_none());
    }

    #[test]
    fn bulk_values_are_not_cached() {
        let c = ReadCache::default();
        c.insert(
            "s",
            "part",
            &Arc::new(vec![0u8; MAX_VALUE + 1]),
            c.generation(),
        );
        assert!(c.get("s", "part").is_none());
    }

    #[test]
    fn a_value_read_before_a_write_is_not_inserted_after_it() {
        let c = ReadCache::default();
        let before = c.generation();
        // The writer commits and invalidates while the reader is reading.
        c.invalidate([("s", "k")]);
        c.insert("s", "k", &big(1), before);
        assert!(c.get("s", "k").is_none());
    }

    #[test]
    fn clearing_empties_the_cache_and_refuses_reads_from_before() {
        let c = ReadCache::default();
        let before = c.generation();
        c.insert("s", "k", &big(1), before);
        c.clear();
        assert!(c.get("s", "k").is_none());
        c.insert("s", "k", &big(1), before);
        assert!(c.get("s", "k").is_none());
        c.insert("s", "k", &big(2), c.generation());
        assert_eq!(c.get("s", "k").map(|v| v[0]), Some(2));
    }

    #[test]
    fn writes_drop_cached_values() {
        let c = ReadCache::default();
        c.insert("s", "k", &big(1), c.generation());
        assert!(c.get("s", "k").is_some());
        c.invalidate([("s", "k")]);
        assert!(c.get("s", "k").is_none());
        c.insert("s", "k", &big(2), c.generation());
        assert_eq!(c.get("s", "k").map(|v| v[0]), Some(2));
    }
}
