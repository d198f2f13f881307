//! The embedded key-value backend: SQLite, in Spin's own table layout.
//!
//! Layout and encodings match Spin's `key-value-spin` store exactly (table
//! `spin_key_value(store, key, value)`, counters as 8-byte little-endian
//! i64), so a `.spin/sqlite_key_value.db` is interchangeable with `spin up`.
//!
//! Durability and speed. Spin commits every write on its own with a full
//! sync, which caps it at a few hundred writes per second. Here writes are
//! queued and whoever holds the one writer connection — the caller itself
//! when nobody else is committing, else a background committer — applies
//! whatever has queued up in a single transaction and commits it once
//! (group commit, [`commit`]); each writer is answered only after that
//! commit returned. The database runs in WAL mode, so a
//! commit has reached the WAL file (the kernel's page cache) before anyone is
//! answered: an acknowledged write survives a kill -9 of the host at any
//! moment. What survives a power loss depends on [`Durability`]:
//!
//! - [`Durability::Fsync`] (`synchronous = FULL`): every group commit is
//!   fsynced before its writers are answered; an acknowledged write also
//!   survives a power loss (on a disk that honours fsync).
//! - [`Durability::Interval`] (the default, `synchronous = NORMAL`): a
//!   background thread fsyncs the WAL every interval (1 s by default)
//!   when something was committed; a power loss can lose the writes of at
//!   most the last interval, never corrupt the store, and never reorder it
//!   (the WAL is a log: what survives is a prefix of what was acknowledged).
//!
//! Reads use a small pool of read-only connections and see every
//! acknowledged write.
//!
//! This module is the database and its readers; [`commit`] who commits
//! when; [`writer`] what a commit applies, and the WAL's fsync.

use super::{KvError, KvResult, Store};
use futures::FutureExt;
use futures::future::BoxFuture;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

mod commit;
mod release;
mod writer;

use commit::Committer;
use writer::{Op, OpResult, Write, wal_sync_loop};

/// The store file's name inside a state directory, as `spin up` names it.
pub const FILE_NAME: &str = "sqlite_key_value.db";

/// Spin's table: every store of the file in one table, keyed by label.
pub const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS spin_key_value (
    store TEXT NOT NULL,
    key   TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (store, key)
)";

pub use super::durability::Durability;

/// A SQLite database file holding any number of labelled stores.
pub struct SqliteDatabase {
    path: PathBuf,
    committer: Arc<Committer>,
    readers: Mutex<Vec<Connection>>,
    cache: Arc<super::cache::ReadCache>,
}

fn sql_err(e: rusqlite::Error) -> KvError {
    KvError::Other(format!("sqlite: {e}"))
}

fn open(path: &Path, read_only: bool) -> rusqlite::Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(commit::BUSY_TIMEOUT)?;
    if read_only {
        conn.pragma_update(None, "cache_size", -16_384)?;
    }
    Ok(conn)
}

impl SqliteDatabase {
    /// Open (creating if needed) the database file and start its writer,
    /// with the default durability.
    pub fn open(path: &Path) -> anyhow::Result<Arc<Self>> {
        Self::open_with(path, Durability::default())
    }

    /// Open with an explicit durability.
    pub fn open_with(path: &Path, durability: Durability) -> anyhow::Result<Arc<Self>> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let conn = open(path, false)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        let sync = match durability {
            Durability::Fsync => "FULL",
            Durability::Interval(_) => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync)?;
        conn.execute(CREATE_TABLE, [])?;
        conn.pragma_update(None, "journal_size_limit", writer::WAL_SIZE_LIMIT)?;
        writer::fold_wal_left_behind(&conn);
        let cache = Arc::new(super::cache::ReadCache::default());
        let dirty = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let interval = match durability {
            // Commits run on request threads: the WAL is checkpointed by the
            // sync thread instead (see `wal_sync_loop`).
            Durability::Interval(every) => {
                conn.pragma_update(None, "wal_autocheckpoint", 0)?;
                Some(every)
            }
            Durability::Fsync => None,
        };
        // In `Interval` mode commits run on the callers' threads.
        let committer = Arc::new(Committer::new(
            conn,
            interval.is_some(),
            dirty.clone(),
            cache.clone(),
        ));
        if let Some(every) = interval {
            let db = path.to_path_buf();
            let wal = PathBuf::from(format!("{}-wal", path.display()));
            let weak = Arc::downgrade(&committer);
            std::thread::Builder::new()
                .name("kv-sqlite-wal-sync".into())
                .spawn(move || wal_sync_loop(&db, &wal, &weak, &dirty, every))?;
        }
        let background = committer.clone();
        std::thread::Builder::new()
            .name("kv-sqlite-writer".into())
            .spawn(move || background.run_background())?;
        Ok(Arc::new(SqliteDatabase {
            path: path.to_path_buf(),
            committer,
            readers: Mutex::new(Vec::new()),
            cache,
        }))
    }

    /// The store with this label inside the database.
    pub fn store(self: &Arc<Self>, label: &str) -> Arc<dyn Store> {
        Arc::new(SqliteStore {
            db: self.clone(),
            name: Arc::from(label),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> KvResult<T> {
        let conn = self
            .readers
            .lock()
            .map_err(|_| KvError::Other("reader pool poisoned".into()))?
            .pop();
        let conn = match conn {
            Some(c) => c,
            None => open(&self.path, true).map_err(sql_err)?,
        };
        let out = f(&conn).map_err(sql_err);
        if let Ok(mut pool) = self.readers.lock()
            && pool.len() < 16
        {
            pool.push(conn);
        }
        out
    }

    fn write(&self, store: &Arc<str>, op: Op) -> BoxFuture<'static, KvResult<OpResult>> {
        let (reply, rx) = oneshot::channel();
        self.committer.submit(Write {
            store: store.clone(),
            op,
            reply,
        });
        async move {
            rx.await
                .map_err(|_| KvError::Other("key-value writer has stopped".into()))?
        }
        .boxed()
    }
}

impl Drop for SqliteDatabase {
    /// The background committer commits what is queued, then stops.
    fn drop(&mut self) {
        self.committer.close();
    }
}

struct SqliteStore {
    db: Arc<SqliteDatabase>,
    name: Arc<str>,
}

impl SqliteStore {
    /// The value at `key`: from the read cache when it holds it, else read
    /// from SQLite (and kept in the cache, the same buffer).
    fn read(&self, key: String) -> KvResult<Option<Arc<Vec<u8>>>> {
        if let Some(hit) = self.db.cache.get(&self.name, &key) {
            return Ok(Some(hit));
        }
        let generation = self.db.cache.generation();
        let value = self.db.with_reader(|c| {
            c.prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .query_row(params![&*self.name, &key], |row| row.get::<_, Vec<u8>>(0))
                .optional()
        })?;
        Ok(value.map(|value| {
            let value = Arc::new(value);
            self.db.cache.insert(&self.name, &key, &value, generation);
            value
        }))
    }
}

fn unit(f: BoxFuture<'static, KvResult<OpResult>>) -> BoxFuture<'static, KvResult<()>> {
    f.map(|r| r.map(|_| ())).boxed()
}

impl Store for SqliteStore {
    fn get_shared(&self, key: String) -> BoxFuture<'static, KvResult<Option<Arc<Vec<u8>>>>> {
        futures::future::ready(self.read(key)).boxed()
    }

    fn set(&self, key: String, value: Vec<u8>) -> BoxFuture<'static, KvResult<()>> {
        unit(self.db.write(&self.name, Op::Set(key, value)))
    }

    fn delete(&self, key: String) -> BoxFuture<'static, KvResult<()>> {
        unit(self.db.write(&self.name, Op::Delete(key)))
    }

    fn exists(&self, key: String) -> BoxFuture<'static, KvResult<bool>> {
        let r = self.db.with_reader(|c| {
            c.prepare_cached("SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2 LIMIT 1")?
                .exists(params![&*self.name, key])
        });
        futures::future::ready(r).boxed()
    }

    fn get_keys(&self) -> BoxFuture<'static, KvResult<Vec<String>>> {
        let r = self.db.with_reader(|c| {
            let mut stmt = c.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1")?;
            let rows = stmt.query_map(params![&*self.name], |row| row.get::<_, String>(0))?;
            rows.collect()
        });
        futures::future::ready(r).boxed()
    }

    fn get_keys_with_prefix(&self, prefix: String) -> BoxFuture<'static, KvResult<Vec<String>>> {
        let r = self
            .db
            .with_reader(|c| super::prefix::sqlite(c, &self.name, &prefix));
        futures::future::ready(r).boxed()
    }

    fn get_many(&self, keys: Vec<String>) -> BoxFuture<'static, KvResult<super::KeyValues>> {
        let r = self.db.with_reader(|c| {
            let mut stmt =
                c.prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?;
            keys.into_iter()
                .map(|k| {
                    let v: Option<Vec<u8>> = stmt
                        .query_row(params![&*self.name, k], |row| row.get(0))
                        .optional()?;
                    Ok((k, v))
                })
                .collect()
        });
        futures::future::ready(r).boxed()
    }

    fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> BoxFuture<'static, KvResult<()>> {
        unit(self.db.write(&self.name, Op::SetMany(pairs)))
    }

    fn delete_many(&self, keys: Vec<String>) -> BoxFuture<'static, KvResult<()>> {
        unit(self.db.write(&self.name, Op::DeleteMany(keys)))
    }

    fn increment(&self, key: String, delta: i64) -> BoxFuture<'static, KvResult<i64>> {
        self.db
            .write(&self.name, Op::Increment(key, delta))
            .map(|r| match r? {
                OpResult::Counter(n) => Ok(n),
                _ => Err(KvError::Other("unexpected writer reply".into())),
            })
            .boxed()
    }

    fn compare_and_swap(
        &self,
        key: String,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
    ) -> BoxFuture<'static, KvResult<bool>> {
        self.db
            .write(&self.name, Op::Cas(key, expected, new))
            .map(|r| match r? {
                OpResult::Swapped(b) => Ok(b),
                _ => Err(KvError::Other("unexpected writer reply".into())),
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_db() -> (tempfile::TempDir, Arc<SqliteDatabase>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = SqliteDatabase::open(&dir.path().join("kv.db")).expect("open");
        (dir, db)
    }

    /// A fresh database whose WAL is synced (and checkpointed) on a 10 ms
    /// interval, with its file's path.
    fn interval_db() -> anyhow::Result<(tempfile::TempDir, PathBuf, Arc<SqliteDatabase>)> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("kv.db");
        let db = SqliteDatabase::open_with(&path, Durability::Interval(INTERVAL))?;
        Ok((dir, path, db))
    }

    const INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

    /// Commits run on request threads and do not checkpoint; the sync
    /// thread does, so the WAL's pages reach the database file.
    #[tokio::test]
    async fn the_wal_is_checkpointed_into_the_database_file() -> anyhow::Result<()> {
        let (_dir, path, db) = interval_db()?;
        let s = db.store("default");
        for i in 0..300 {
            s.set(format!("k{i}"), vec![i as u8; 16 << 10]).await?;
        }
        let wanted = 300 * (16 << 10);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::fs::metadata(&path)?.len() < wanted {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "the WAL was not checkpointed: the database file holds {} bytes",
                std::fs::metadata(&path)?.len()
            );
            tokio::time::sleep(INTERVAL).await;
        }
        assert_eq!(s.get("k299".into()).await?, Some(vec![43u8; 16 << 10]));
        Ok(())
    }

    /// Under writes that never pause, the WAL still starts over after each
    /// checkpoint instead of growing for as long as the writes last: at the
    /// end it holds far fewer frames than were committed (each commit of an
    /// increment appends at least one).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_starts_over_under_steady_writes() -> anyhow::Result<()> {
        let (_dir, path, db) = interval_db()?;
        let s = db.store("default");
        let until = std::time::Instant::now() + writer::CHECKPOINT_EVERY * 7 / 2;
        let mut commits = 0i64;
        while std::time::Instant::now() < until {
            commits = s.increment("c".into(), 1).await?;
        }
        let frames: i64 =
            Connection::open(&path)?
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))?;
        assert!(
            frames < commits / 2,
            "the WAL holds {frames} frames after {commits} commits"
        );
        Ok(())
    }

    /// A WAL that an earlier process left behind (killed, or still open
    /// elsewhere when it stopped) is folded into the database file and
    /// emptied at open: its pages, read in at open, are not the ones later
    /// writes go to.
    #[tokio::test]
    async fn a_wal_left_behind_is_emptied_at_open() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("kv.db");
        let wal = dir.path().join("kv.db-wal");
        // An earlier process: WAL mode, no checkpoints, 200 commits, and a
        // connection still open so that SQLite keeps the WAL file.
        let earlier = Connection::open(&path)?;
        earlier.pragma_update(None, "journal_mode", "WAL")?;
        earlier.pragma_update(None, "wal_autocheckpoint", 0)?;
        earlier.execute(CREATE_TABLE, [])?;
        for i in 0..200i64 {
            earlier.execute(
                "INSERT OR REPLACE INTO spin_key_value (store, key, value) VALUES ('default', ?1, ?2)",
                rusqlite::params![format!("k{i}"), vec![7u8; 1000]],
            )?;
        }
        assert!(std::fs::metadata(&wal)?.len() > 200 * 1000);
        let db = SqliteDatabase::open(&path)?;
        assert_eq!(std::fs::metadata(&wal)?.len(), 0, "the WAL was not emptied");
        // Nothing was lost: it is all in the database file now.
        drop(earlier);
        let s = db.store("default");
        assert_eq!(s.get("k199".into()).await?, Some(vec![7u8; 1000]));
        assert_eq!(s.get_keys().await?.len(), 200);
        Ok(())
    }

    #[tokio::test]
    async fn set_get_delete_round_trip() -> anyhow::Result<()> {
        let (_d, db) = temp_db();
        let s = db.store("default");
        assert_eq!(s.get("k".into()).await?, None);
        s.set("k".into(), b"v".to_vec()).await?;
        assert_eq!(s.get("k".into()).await?, Some(b"v".to_vec()));
        assert!(s.exists("k".into()).await?);
        s.delete("k".into()).await?;
        assert!(!s.exists("k".into()).await?);
        Ok(())
    }

    #[tokio::test]
    async fn stores_with_different_labels_are_separate() -> anyhow::Result<()> {
        let (_d, db) = temp_db();
        db.store("a").set("k".into(), b"1".to_vec()).await?;
        assert_eq!(db.store("b").get("k".into()).await?, None);
        assert_eq!(db.store("a").get_keys().await?, vec!["k".to_string()]);
        Ok(())
    }

    #[tokio::test]
    async fn concurrent_increments_are_all_distinct() -> anyhow::Result<()> {
        let (_d, db) = temp_db();
        let s = db.store("default");
        let futs: Vec<_> = (0..200).map(|_| s.increment("c".into(), 1)).collect();
        let mut got: Vec<i64> = futures::future::try_join_all(futs).await?;
        got.sort();
        assert_eq!(got, (1..=200).collect::<Vec<_>>());
        // Spin's encoding: 8-byte little-endian.
        assert_eq!(
            s.get("c".into()).await?,
            Some(200i64.to_le_bytes().to_vec())
        );
        Ok(())
    }

    #[tokio::test]
    async fn increment_of_a_non_counter_fails_without_harming_the_batch() -> anyhow::Result<()> {
        let (_d, db) = temp_db();
        let s = db.store("default");
        s.set("text".into(), b"hello".to_vec()).await?;
        let (bad, good) = futures::join!(s.increment("text".into(), 1), s.increment("n".into(), 5));
        assert!(bad.is_err());
        assert_eq!(good?, 5);
        assert_eq!(s.get("text".into()).await?, Some(b"hello".to_vec()));
        Ok(())
    }

    #[tokio::test]
    async fn compare_and_swap_detects_conflicts() -> anyhow::Result<()> {
        let (_d, db) = temp_db();
        let s = db.store("default");
        assert!(s.compare_and_swap("k".into(), None, b"1".to_vec()).await?);
        assert!(!s.compare_and_swap("k".into(), None, b"2".to_vec()).await?);
        assert!(
            s.compare_and_swap("k".into(), Some(b"1".to_vec()), b"3".to_vec())
                .await?
        );
        assert_eq!(s.get("k".into()).await?, Some(b"3".to_vec()));
        Ok(())
    }

    #[tokio::test]
    async fn both_durabilities_store_the_same_data() -> anyhow::Result<()> {
        for durability in [
            Durability::Fsync,
            Durability::Interval(std::time::Duration::from_millis(5)),
        ] {
            let dir = tempfile::tempdir()?;
            let db = SqliteDatabase::open_with(&dir.path().join("kv.db"), durability)?;
            let s = db.store("default");
            assert_eq!(s.increment("n".into(), 2).await?, 2);
            s.set("k".into(), b"v".to_vec()).await?;
            assert_eq!(s.get("k".into()).await?, Some(b"v".to_vec()));
        }
        Ok(())
    }

    #[tokio::test]
    async fn cached_large_values_see_every_write_at_once() -> anyhow::Result<()> {
        let (_d, db) = temp_db();
        let s = db.store("default");
        for round in 0u8..5 {
            let value = vec![round; 100_000];
            s.set("article".into(), value.clone()).await?;
            // Read twice: the second read is served from the cache.
            assert_eq!(s.get("article".into()).await?, Some(value.clone()));
            assert_eq!(s.get("article".into()).await?, Some(value));
        }
        s.delete("article".into()).await?;
        assert_eq!(s.get("article".into()).await?, None);
        Ok(())
    }

    /// What a component's `get` lowers into guest memory is the cache's
    /// own buffer, not a copy of it; a write replaces it.
    #[tokio::test]
    async fn a_cached_value_is_shared_not_copied() -> anyhow::Result<()> {
        let (_d, db) = temp_db();
        let s = db.store("default");
        s.set("article".into(), vec![1; 100_000]).await?;
        let first = s.get_shared("article".into()).await?.expect("stored");
        let second = s.get_shared("article".into()).await?.expect("cached");
        assert!(Arc::ptr_eq(&first, &second));
        s.set("article".into(), vec![2; 100_000]).await?;
        let third = s.get_shared("article".into()).await?.expect("stored");
        assert!(!Arc::ptr_eq(&first, &third));
        assert_eq!(third[0], 2);
        // The same through every wrapper a component's store passes
        // through: the metrics of the registry and the CAS misreporting.
        let mut registry = crate::kv::StoreRegistry::default();
        registry.insert("default", Arc::new(crate::kv::misreport::Misreporting(s)));
        let opened = registry
            .restricted_to(&["default".to_string()])
            .open("default")?;
        let fourth = opened.get_shared("article".into()).await?.expect("cached");
        assert!(Arc::ptr_eq(&third, &fourth));
        Ok(())
    }

    #[tokio::test]
    async fn data_survives_reopening() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("kv.db");
        {
            let db = SqliteDatabase::open(&path)?;
            db.store("default").set("k".into(), b"v".to_vec()).await?;
        }
        let db = SqliteDatabase::open(&path)?;
        assert_eq!(
            db.store("default").get("k".into()).await?,
            Some(b"v".to_vec())
        );
        Ok(())
    }
}
