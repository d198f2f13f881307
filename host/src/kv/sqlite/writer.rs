//! What a group commit does with the writes queued for it ([`begin`],
//! [`apply_batch`] under a savepoint, [`commit`]), and, in [`super::Durability::Interval`]
//! mode, the thread that fsyncs the WAL. Who commits, and when, is
//! [`super::commit`].

use super::commit::Committer;
use super::counters::Counters;
use super::{KvError, KvResult, sql_err};
use rusqlite::{CachedStatement, Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::oneshot;

/// One queued write.
pub(super) enum Op {
    Set(String, Vec<u8>),
    Delete(String),
    SetMany(Vec<(String, Vec<u8>)>),
    DeleteMany(Vec<String>),
    Increment(String, i64),
    Cas(String, Option<Vec<u8>>, Vec<u8>),
}

impl Op {
    /// The keys this operation writes.
    pub(super) fn keys(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            Op::Set(k, _) | Op::Delete(k) | Op::Increment(k, _) | Op::Cas(k, _, _) => {
                Box::new(std::iter::once(k.as_str()))
            }
            Op::SetMany(pairs) => Box::new(pairs.iter().map(|(k, _)| k.as_str())),
            Op::DeleteMany(keys) => Box::new(keys.iter().map(String::as_str)),
        }
    }

    /// Whether this write changes the database in at most one statement
    /// (an increment and a compare-and-swap read first, then write once).
    pub(super) fn writes_once(&self) -> bool {
        match self {
            Op::Set(..) | Op::Delete(_) | Op::Increment(..) | Op::Cas(..) => true,
            Op::SetMany(pairs) => pairs.len() <= 1,
            Op::DeleteMany(keys) => keys.len() <= 1,
        }
    }

    /// Whether committing this write may take long enough that it must not
    /// run on a request's thread: a bulk write of many keys or many bytes.
    pub(super) fn is_heavy(&self) -> bool {
        const KEYS: usize = 64;
        const BYTES: usize = 1 << 20;
        match self {
            Op::Set(_, v) | Op::Cas(_, _, v) => v.len() > BYTES,
            Op::Delete(_) | Op::Increment(..) => false,
            Op::SetMany(pairs) => {
                pairs.len() > KEYS || pairs.iter().map(|(_, v)| v.len()).sum::<usize>() > BYTES
            }
            Op::DeleteMany(keys) => keys.len() > KEYS,
        }
    }
}

/// What a write answers.
pub(super) enum OpResult {
    Unit,
    Counter(i64),
    Swapped(bool),
}

/// A write on its way to a commit, with where to answer.
pub(super) struct Write {
    pub(super) store: Arc<str>,
    pub(super) op: Op,
    pub(super) reply: oneshot::Sender<KvResult<OpResult>>,
}

/// How often the WAL is checkpointed into the database file while writes
/// keep coming (see [`wal_sync_loop`]).
pub(super) const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The size the WAL file is cut back to when it starts over
/// (`journal_size_limit`): a burst of writes (an import) does not leave a
/// WAL of its size behind.
pub(super) const WAL_SIZE_LIMIT: i64 = 64 << 20;

/// Every `every`, if something was committed since the last pass, fsync
/// the WAL file; and at most every [`CHECKPOINT_EVERY`], checkpoint the WAL
/// into the database file `db`. In this mode the writer connection does not
/// checkpoint on commit (`wal_autocheckpoint = 0`): its commits run on
/// request threads, and a checkpoint syncs the files, which must not hold
/// up a request.
///
/// A checkpoint has two steps. The first copies the WAL's pages into the
/// database file from the checkpointer's own connection, without stopping
/// writers. Under steady writes it never catches up with them, and SQLite
/// starts the WAL over only after a checkpoint that did, so the WAL would
/// grow without bound (628 MB after an hour of benchmarks). The second
/// step copies the few pages committed meanwhile while holding the writer
/// connection ([`Committer::with_writer`]), so nothing is appended during
/// it, and the next commit starts the WAL over from its beginning.
///
/// Returns once the database is gone (`committer` dropped), after a last
/// pass.
pub(super) fn wal_sync_loop(
    db: &Path,
    wal: &Path,
    committer: &std::sync::Weak<Committer>,
    dirty: &std::sync::atomic::AtomicBool,
    every: std::time::Duration,
) {
    use std::sync::atomic::Ordering;
    let mut checkpointer: Option<Connection> = None;
    let mut last_checkpoint = std::time::Instant::now();
    let mut pending = false;
    loop {
        std::thread::sleep(every);
        let live = committer.upgrade();
        if dirty.swap(false, Ordering::AcqRel) {
            pending = true;
            // Opening by path each time follows a WAL that SQLite recreated.
            match std::fs::File::open(wal).and_then(|f| f.sync_data()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::error!("key-value: fsync of {} failed: {e}", wal.display());
                    dirty.store(true, Ordering::Release);
                }
            }
        }
        if pending && (live.is_none() || last_checkpoint.elapsed() >= CHECKPOINT_EVERY) {
            last_checkpoint = std::time::Instant::now();
            let outcome = checkpoint(&mut checkpointer, db).and_then(|()| match &live {
                Some(c) => c.with_writer(|conn| passive_checkpoint(conn)),
                None => Ok(()),
            });
            match outcome {
                Ok(()) => pending = false,
                Err(e) => {
                    tracing::error!("key-value: checkpoint of {} failed: {e}", db.display());
                    checkpointer = None;
                }
            }
        }
        if live.is_none() {
            return;
        }
    }
}

/// Folds a WAL left behind by an earlier process into the database file
/// and empties the WAL file (`wal_checkpoint(TRUNCATE)`), at open, before
/// anything is served.
///
/// Why: SQLite reads such a WAL from start to end when it opens it, and on
/// a cold page cache those reads go through the kernel's readahead. A later
/// WAL write into a page cached that way cost 4.5-5 times a write into a
/// page cached by an earlier write, the time going to ext4 functions that
/// walk every block of the cached folio (so, most likely, readahead's
/// larger folios). The WAL is rewritten in place for as long as the host
/// runs, so every commit paid it (BENCHMARKS.md, "A WAL read at open made
/// every later write dear"). Truncating drops those pages; the WAL grows
/// again from small writes.
///
/// Only speed is at stake, so the step never waits: if another process is
/// using the database, or anything else fails, it is logged and skipped.
pub(super) fn fold_wal_left_behind(conn: &Connection) {
    let folded = conn.busy_timeout(std::time::Duration::ZERO).and_then(|()| {
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
            row.get::<_, i64>(0)
        })
    });
    match folded {
        Ok(0) => {}
        Ok(_) => {
            tracing::info!("key-value: the WAL is in use by another process; not emptied at open")
        }
        Err(e) => tracing::info!("key-value: the WAL was not emptied at open: {e}"),
    }
    if let Err(e) = conn.busy_timeout(super::commit::BUSY_TIMEOUT) {
        tracing::error!("key-value: restoring the busy timeout failed: {e}");
    }
}

/// One PASSIVE checkpoint through the checkpointer's own connection.
fn checkpoint(conn: &mut Option<Connection>, db: &Path) -> rusqlite::Result<()> {
    if conn.is_none() {
        let c = Connection::open(db)?;
        c.pragma_update(None, "synchronous", "NORMAL")?;
        *conn = Some(c);
    }
    match conn {
        Some(c) => passive_checkpoint(c),
        None => Ok(()),
    }
}

/// Copies what the WAL holds into the database file, waiting for no reader
/// or writer.
fn passive_checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}

fn decode_counter(bytes: &[u8]) -> KvResult<i64> {
    let arr: [u8; 8] = bytes.try_into().map_err(|_| {
        KvError::Other(format!(
            "value is not a counter (8-byte little-endian i64): {} bytes",
            bytes.len()
        ))
    })?;
    Ok(i64::from_le_bytes(arr))
}

/// Why a batch was not committed.
pub(super) enum Failed {
    /// Another connection (another process) holds the write lock and the
    /// connection's busy timeout ran out; nothing was applied.
    Busy,
    /// The transaction failed; every write of the batch gets this error.
    Error(KvError),
}

impl Failed {
    /// The error every write of the batch gets (after the background
    /// committer has waited out the busy timeout, a lock is one too).
    pub(super) fn into_error(self) -> KvError {
        match self {
            Failed::Busy => {
                KvError::Other("sqlite: the database is locked by another process".into())
            }
            Failed::Error(e) => e,
        }
    }
}

/// Opens a write transaction (`BEGIN IMMEDIATE`: it takes the database's
/// write lock now, so what the transaction reads stays current until it
/// commits). [`Failed::Busy`] when another process holds the lock and the
/// connection's busy timeout ran out.
pub(super) fn begin(conn: &Connection) -> Result<(), Failed> {
    match run(conn, "BEGIN IMMEDIATE") {
        Ok(()) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::DatabaseBusy =>
        {
            Err(Failed::Busy)
        }
        Err(e) => Err(Failed::Error(sql_err(e))),
    }
}

/// Writes the counters the open transaction incremented to their rows
/// ([`Counters::take_unwritten`]) and commits it; when either fails, rolls
/// it back, so the connection is never left inside a transaction.
pub(super) fn commit(conn: &Connection, counters: &mut Counters) -> KvResult<()> {
    write_counters(conn, counters)
        .and_then(|()| run(conn, "COMMIT").map_err(sql_err))
        .inspect_err(|_| {
            if !conn.is_autocommit() {
                let _ = run(conn, "ROLLBACK");
            }
        })
}

/// Writes each counter incremented in the open transaction to its row,
/// once however many increments it took: an `UPDATE` of a row known to
/// exist, an `UPSERT` otherwise.
fn write_counters(conn: &Connection, counters: &mut Counters) -> KvResult<()> {
    if counters.unwritten() == 0 {
        return Ok(());
    }
    let (mut update, mut upsert) = (None, None);
    for u in counters.take_unwritten() {
        let value = u.value.to_le_bytes();
        let params = params![&*u.store, u.key, &value[..]];
        let updated = if u.exists {
            prepared(&mut update, conn, UPDATE)?
                .execute(params)
                .map_err(sql_err)?
        } else {
            0
        };
        if updated == 0 {
            prepared(&mut upsert, conn, UPSERT)?
                .execute(params)
                .map_err(sql_err)?;
        }
    }
    Ok(())
}

/// Applies `batch` inside the open transaction, under a savepoint of its
/// own: a batch that fails leaves nothing behind and takes nothing of the
/// batches applied before it in the same transaction.
pub(super) fn apply_batch(
    conn: &Connection,
    counters: &mut Counters,
    batch: &[Write],
) -> KvResult<Vec<KvResult<OpResult>>> {
    // A lone write that changes the database in at most one statement needs
    // no savepoint: SQLite undoes a failed statement by itself, and an
    // error that rolls back the whole transaction takes a savepoint with
    // it anyway (the caller checks for that). An article request's four
    // increments are such writes (they only read, if anything: see
    // `apply`), and a savepoint's two statements would cost more than
    // they do.
    if let [only] = batch
        && only.op.writes_once()
    {
        return apply(conn, counters, batch);
    }
    run(conn, "SAVEPOINT batch").map_err(sql_err)?;
    counters.begin_batch();
    let outcome = apply(conn, counters, batch).and_then(|results| {
        run(conn, "RELEASE batch")
            .map(|()| results)
            .map_err(sql_err)
    });
    if outcome.is_err() {
        let undone = run(conn, "ROLLBACK TO batch").and_then(|()| run(conn, "RELEASE batch"));
        if undone.is_err() && !conn.is_autocommit() {
            // What the batch left behind cannot be told: the whole
            // transaction goes, and its settles fail (the caller sees the
            // connection out of its transaction).
            let _ = run(conn, "ROLLBACK");
        }
    }
    // The batch's increments and forgets are undone with it.
    counters.end_batch(outcome.is_ok());
    outcome
}

/// Runs a statement without parameters or rows, prepared once per
/// connection (`execute_batch` would parse it on every call).
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// A statement of the batch, prepared when the batch first needs it: a
/// cached statement is looked up by its text and handed back to the cache
/// after use, which cost more than some of the statements themselves.
fn prepared<'a, 'c>(
    slot: &'a mut Option<CachedStatement<'c>>,
    tx: &'c Connection,
    sql: &str,
) -> KvResult<&'a mut CachedStatement<'c>> {
    match slot {
        Some(stmt) => Ok(stmt),
        None => Ok(slot.insert(tx.prepare_cached(sql).map_err(sql_err)?)),
    }
}

const UPSERT: &str = "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
             ON CONFLICT(store, key) DO UPDATE SET value = excluded.value";
const UPDATE: &str = "UPDATE spin_key_value SET value = ?3 WHERE store = ?1 AND key = ?2";
const DELETE: &str = "DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2";
const SELECT: &str = "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2";

/// What `key` of `store` holds as the transaction sees it, through the
/// batch's `SELECT` (prepared on first use).
fn stored<'c>(
    select: &mut Option<CachedStatement<'c>>,
    tx: &'c Connection,
    store: &str,
    key: &str,
) -> KvResult<Option<Vec<u8>>> {
    prepared(select, tx, SELECT)?
        .query_row(params![store, key], |row| row.get(0))
        .optional()
        .map_err(sql_err)
}

/// Applies each write of `batch`. An increment only reads (a counter not
/// kept) and is written at commit ([`write_counters`]); a write that
/// supersedes a kept counter forgets it once its own statement succeeded,
/// so a lone write that fails leaves the counters as they were.
fn apply(
    tx: &Connection,
    counters: &mut Counters,
    batch: &[Write],
) -> KvResult<Vec<KvResult<OpResult>>> {
    let mut results = Vec::with_capacity(batch.len());
    let (mut upsert, mut delete, mut select) = (None, None, None);
    for w in batch {
        let store: &str = &w.store;
        let r = match &w.op {
            Op::Set(k, v) => {
                prepared(&mut upsert, tx, UPSERT)?
                    .execute(params![store, k, v])
                    .map_err(sql_err)?;
                counters.forget(&w.store, k);
                OpResult::Unit
            }
            Op::Delete(k) => {
                prepared(&mut delete, tx, DELETE)?
                    .execute(params![store, k])
                    .map_err(sql_err)?;
                counters.forget(&w.store, k);
                OpResult::Unit
            }
            Op::SetMany(pairs) => {
                let upsert = prepared(&mut upsert, tx, UPSERT)?;
                for (k, v) in pairs {
                    upsert.execute(params![store, k, v]).map_err(sql_err)?;
                    counters.forget(&w.store, k);
                }
                OpResult::Unit
            }
            Op::DeleteMany(keys) => {
                let delete = prepared(&mut delete, tx, DELETE)?;
                for k in keys {
                    delete.execute(params![store, k]).map_err(sql_err)?;
                    counters.forget(&w.store, k);
                }
                OpResult::Unit
            }
            Op::Increment(k, delta) => {
                // A kept counter's row exists, or will once its first
                // increment is written; `increment_to` keeps which.
                let (value, exists) = match counters.get(store, k) {
                    Some(kept) => (kept, true),
                    None => {
                        let current = stored(&mut select, tx, store, k)?;
                        match current.as_deref().map(decode_counter).transpose() {
                            Ok(v) => (v.unwrap_or(0), current.is_some()),
                            Err(e) => {
                                results.push(Err(e));
                                continue;
                            }
                        }
                    }
                };
                let Some(new) = value.checked_add(*delta) else {
                    results.push(Err(KvError::Other("counter overflow".into())));
                    continue;
                };
                counters.increment_to(&w.store, k, new, exists);
                OpResult::Counter(new)
            }
            Op::Cas(k, expected, new) => {
                // A kept counter may hold a value its row does not yet.
                let current: Option<Vec<u8>> = match counters.get(store, k) {
                    Some(kept) => Some(kept.to_le_bytes().to_vec()),
                    None => stored(&mut select, tx, store, k)?,
                };
                if current == *expected {
                    prepared(&mut upsert, tx, UPSERT)?
                        .execute(params![store, k, new])
                        .map_err(sql_err)?;
                    counters.forget(&w.store, k);
                    OpResult::Swapped(true)
                } else {
                    OpResult::Swapped(false)
                }
            }
        };
        results.push(Ok(r));
    }
    Ok(results)
}
