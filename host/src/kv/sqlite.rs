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
//! whatever has queued up in one transaction (group commit, [`commit`]).
//! When that transaction commits is the [`CommitMode`]'s: before its
//! writers are answered ([`CommitMode::EachWrite`], for tools), or, for a
//! server ([`CommitMode::BeforeReply`]), later, together with the writes of
//! the requests running beside it, but always before anything that depends
//! on them — a response head, an outbound request — leaves the process
//! ([`SqliteDatabase::settle`]). The database runs in WAL mode, so a
//! commit has reached the WAL file (the kernel's page cache) before anyone
//! outside the process can learn of the write: a write whose effects were
//! seen survives a kill -9 of the host at any moment. What survives a power
//! loss depends on [`Durability`]:
//!
//! - [`Durability::Fsync`] (`synchronous = FULL`): every group commit is
//!   fsynced before its writers are answered (in either commit mode); an
//!   acknowledged write also survives a power loss (on a disk that honours
//!   fsync).
//! - [`Durability::Interval`] (the default, `synchronous = NORMAL`): a
//!   background thread fsyncs the WAL every interval (1 s by default)
//!   when something was committed; a power loss can lose the writes of at
//!   most the last interval, never corrupt the store, and never reorder it
//!   (the WAL is a log: what survives is a prefix of what was committed).
//!
//! Reads use a small pool of read-only connections and see every
//! acknowledged write: a read of a key the open transaction wrote commits
//! that transaction first.
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
mod counters;
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

pub use super::durability::{CommitMode, Durability};
pub use commit::COMMIT_WITHIN;

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
        Self::open_with(path, Durability::default(), CommitMode::EachWrite)
    }

    /// Open with an explicit durability and commit mode. The commit mode
    /// matters only in [`Durability::Interval`] mode: with `Fsync` every
    /// write waits for its own commit.
    pub fn open_with(
        path: &Path,
        durability: Durability,
        mode: CommitMode,
    ) -> anyhow::Result<Arc<Self>> {
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
            mode,
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

    /// Returns once every write answered so far is committed: call it
    /// before anything that depends on those writes leaves the process (in
    /// [`CommitMode::BeforeReply`]; at once otherwise). An error when their
    /// transaction failed.
    pub async fn settle(&self) -> KvResult<()> {
        self.committer.settle().await
    }

    /// Transactions this database has committed.
    pub fn commits(&self) -> u64 {
        self.committer.commits()
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

    /// Runs the read `f` at once, or, when `settle_first` (the open
    /// transaction wrote what it reads: readers see only committed data),
    /// once that transaction is committed.
    fn reading<T: Send + 'static>(
        &self,
        settle_first: bool,
        f: impl FnOnce(&SqliteStore) -> KvResult<T> + Send + 'static,
    ) -> BoxFuture<'static, KvResult<T>> {
        if !settle_first {
            return futures::future::ready(f(self)).boxed();
        }
        let me = SqliteStore {
            db: self.db.clone(),
            name: self.name.clone(),
        };
        async move {
            me.db.settle().await?;
            f(&me)
        }
        .boxed()
    }

    /// Whether the open transaction wrote `key`.
    fn pending(&self, key: &str) -> bool {
        self.db.committer.is_pending(&self.name, key)
    }
}

fn unit(f: BoxFuture<'static, KvResult<OpResult>>) -> BoxFuture<'static, KvResult<()>> {
    f.map(|r| r.map(|_| ())).boxed()
}

impl Store for SqliteStore {
    fn get_shared(&self, key: String) -> BoxFuture<'static, KvResult<Option<Arc<Vec<u8>>>>> {
        self.reading(self.pending(&key), move |s| s.read(key))
    }

    fn set(&self, key: String, value: Vec<u8>) -> BoxFuture<'static, KvResult<()>> {
        unit(self.db.write(&self.name, Op::Set(key, value)))
    }

    fn delete(&self, key: String) -> BoxFuture<'static, KvResult<()>> {
        unit(self.db.write(&self.name, Op::Delete(key)))
    }

    fn exists(&self, key: String) -> BoxFuture<'static, KvResult<bool>> {
        self.reading(self.pending(&key), move |s| {
            s.db.with_reader(|c| {
                c.prepare_cached(
                    "SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2 LIMIT 1",
                )?
                .exists(params![&*s.name, key])
            })
        })
    }

    fn get_keys(&self) -> BoxFuture<'static, KvResult<Vec<String>>> {
        // Any key the open transaction wrote may be one of them.
        self.reading(self.db.committer.has_open(), |s| {
            s.db.with_reader(|c| {
                let mut stmt =
                    c.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1")?;
                let rows = stmt.query_map(params![&*s.name], |row| row.get::<_, String>(0))?;
                rows.collect()
            })
        })
    }

    fn get_keys_with_prefix(&self, prefix: String) -> BoxFuture<'static, KvResult<Vec<String>>> {
        self.reading(self.db.committer.has_open(), move |s| {
            s.db.with_reader(|c| super::prefix::sqlite(c, &s.name, &prefix))
        })
    }

    fn get_keys_page(
        &self,
        prefix: String,
        after: Option<String>,
        limit: usize,
    ) -> BoxFuture<'static, KvResult<Option<Vec<String>>>> {
        self.reading(self.db.committer.has_open(), move |s| {
            s.db.with_reader(|c| {
                super::prefix::sqlite_page(c, &s.name, &prefix, after.as_deref(), limit).map(Some)
            })
        })
    }

    fn scan_keys(
        &self,
        prefix: String,
        cursor: Option<String>,
        count: usize,
    ) -> BoxFuture<'static, KvResult<(Vec<String>, Option<String>)>> {
        // Ordered pages, the cursor the last key of the one before.
        let count = count.max(1);
        self.reading(self.db.committer.has_open(), move |s| {
            s.db.with_reader(|c| {
                let keys =
                    super::prefix::sqlite_page(c, &s.name, &prefix, cursor.as_deref(), count)?;
                let next = keys.last().filter(|_| keys.len() == count).cloned();
                Ok((keys, next))
            })
        })
    }

    fn get_many(&self, keys: Vec<String>) -> BoxFuture<'static, KvResult<super::KeyValues>> {
        let settle_first = keys.iter().any(|k| self.pending(k));
        self.reading(settle_first, move |s| {
            s.db.with_reader(|c| {
                let mut stmt = c.prepare_cached(
                    "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2",
                )?;
                keys.into_iter()
                    .map(|k| {
                        let v: Option<Vec<u8>> = stmt
                            .query_row(params![&*s.name, k], |row| row.get(0))
                            .optional()?;
                        Ok((k, v))
                    })
                    .collect()
            })
        })
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
mod tests;
