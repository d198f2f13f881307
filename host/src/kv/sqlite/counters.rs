//! The counters the writer connection wrote last, so that an increment
//! need not read its counter back first.
//!
//! An increment was a read (`SELECT`) and a write (`UPSERT`) of the
//! counter's row, and an article request makes four. The value a counter
//! holds after this connection wrote it is known: the connection is the
//! process's only writer, and inside a transaction (`BEGIN IMMEDIATE`,
//! which holds the database's write lock) no other connection writes. So
//! the writer keeps the last value it wrote for each counter, and an
//! increment of a kept counter only writes.
//!
//! A kept value is right only while nothing else changed the row, so:
//!
//! - every transaction begins by reading `PRAGMA data_version`, which
//!   changes when another connection (another process: a second host on
//!   the same file, `wikiedge import`) committed since the last reading;
//!   when it changed, or cannot be read, everything is forgotten;
//! - a set, delete or compare-and-swap of a key forgets it;
//! - a batch that fails (its savepoint rolled back), a transaction rolled
//!   back or failed to commit, and any use of the connection outside the
//!   committer's batches forget everything;
//! - at most [`MAX`] counters are kept; past that everything is forgotten
//!   (burst counters have a new key every second).

use rusqlite::Connection;
use std::collections::HashMap;
use std::sync::Arc;

/// The most counters kept.
pub const MAX: usize = 4096;

/// The kept counters, by store and key.
#[derive(Debug, Default)]
pub(super) struct Counters {
    values: HashMap<Arc<str>, HashMap<String, i64>>,
    len: usize,
    /// `PRAGMA data_version` at the start of the last transaction.
    version: Option<i64>,
}

impl Counters {
    /// The value this connection last wrote to `key` of `store`, if kept.
    pub(super) fn get(&self, store: &str, key: &str) -> Option<i64> {
        self.values.get(store)?.get(key).copied()
    }

    /// Keeps `value` as what `key` of `store` now holds.
    pub(super) fn put(&mut self, store: &Arc<str>, key: &str, value: i64) {
        if let Some(kept) = self.values.get_mut(&**store).and_then(|m| m.get_mut(key)) {
            *kept = value;
            return;
        }
        if self.len >= MAX {
            self.clear();
        }
        self.values
            .entry(store.clone())
            .or_default()
            .insert(key.to_string(), value);
        self.len += 1;
    }

    /// Forgets `key` of `store` (it was written some other way).
    pub(super) fn forget(&mut self, store: &str, key: &str) {
        if let Some(m) = self.values.get_mut(store)
            && m.remove(key).is_some()
        {
            self.len -= 1;
        }
    }

    /// Forgets every counter.
    pub(super) fn clear(&mut self) {
        self.values.clear();
        self.len = 0;
    }

    /// Called once a transaction has begun on `conn`: forgets every
    /// counter if another connection committed since the last transaction
    /// began (or if that cannot be told).
    pub(super) fn begun(&mut self, conn: &Connection) {
        let version = conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut s| s.query_row([], |row| row.get::<_, i64>(0)))
            .ok();
        if version.is_none() || version != self.version {
            self.clear();
        }
        self.version = version;
    }

    /// How many counters are kept.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_values_are_per_store_and_key_and_forgotten_one_by_one() {
        let mut c = Counters::default();
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        c.put(&a, "k", 1);
        c.put(&b, "k", 2);
        c.put(&a, "k", 3);
        assert_eq!(
            (c.get("a", "k"), c.get("b", "k"), c.len()),
            (Some(3), Some(2), 2)
        );
        c.forget("a", "k");
        c.forget("a", "k");
        c.forget("c", "k");
        assert_eq!(
            (c.get("a", "k"), c.get("b", "k"), c.len()),
            (None, Some(2), 1)
        );
    }

    #[test]
    fn past_the_bound_everything_is_forgotten() {
        let mut c = Counters::default();
        let s: Arc<str> = Arc::from("s");
        for i in 0..MAX {
            c.put(&s, &i.to_string(), 1);
        }
        assert_eq!(c.len(), MAX);
        // Updating a kept counter adds nothing.
        c.put(&s, "0", 2);
        assert_eq!((c.len(), c.get("s", "0")), (MAX, Some(2)));
        c.put(&s, "new", 1);
        assert_eq!(
            (c.len(), c.get("s", "0"), c.get("s", "new")),
            (1, None, Some(1))
        );
    }

    /// Another connection's commit changes `data_version`; this
    /// connection's own commits do not.
    #[test]
    fn another_connections_commit_forgets_everything() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("kv.db");
        let mine = Connection::open(&path)?;
        mine.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (v INTEGER)")?;
        let other = Connection::open(&path)?;
        let s: Arc<str> = Arc::from("s");
        let mut c = Counters::default();
        mine.execute_batch("BEGIN IMMEDIATE")?;
        c.begun(&mine);
        c.put(&s, "k", 7);
        mine.execute_batch("INSERT INTO t VALUES (1); COMMIT")?;
        mine.execute_batch("BEGIN IMMEDIATE")?;
        c.begun(&mine);
        assert_eq!(c.get("s", "k"), Some(7), "forgotten after its own commit");
        mine.execute_batch("COMMIT")?;
        other.execute_batch("INSERT INTO t VALUES (2)")?;
        mine.execute_batch("BEGIN IMMEDIATE")?;
        c.begun(&mine);
        assert_eq!(
            c.get("s", "k"),
            None,
            "kept past another connection's commit"
        );
        mine.execute_batch("COMMIT")?;
        Ok(())
    }
}
