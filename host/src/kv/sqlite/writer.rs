//! The one writer of a SQLite key-value database: every write is queued to
//! this thread, which applies what has queued up (at most [`MAX_BATCH`]) in
//! one transaction, commits it once (group commit), drops the read cache's
//! entries of what it changed, and only then answers the writers; and, in
//! [`super::Durability::Interval`] mode, the thread that fsyncs the WAL.

use super::{KvError, KvResult, sql_err};
use crate::kv::cache::ReadCache;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::{Arc, mpsc};
use tokio::sync::oneshot;

/// The most operations committed in one transaction.
const MAX_BATCH: usize = 512;

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
}

/// What a write answers.
pub(super) enum OpResult {
    Unit,
    Counter(i64),
    Swapped(bool),
}

/// A write on its way to the writer thread, with where to answer.
pub(super) struct Write {
    pub(super) store: Arc<str>,
    pub(super) op: Op,
    pub(super) reply: oneshot::Sender<KvResult<OpResult>>,
}

/// Every `every`, if something was committed since the last pass, fsync
/// the WAL file. Runs for the life of the process (the store lives as long).
pub(super) fn wal_sync_loop(
    wal: &Path,
    dirty: &std::sync::atomic::AtomicBool,
    every: std::time::Duration,
) {
    use std::sync::atomic::Ordering;
    loop {
        std::thread::sleep(every);
        if dirty.swap(false, Ordering::AcqRel) {
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
    }
}

/// Applies queued writes in batches until every sender is gone.
pub(super) fn writer_loop(
    mut conn: Connection,
    rx: mpsc::Receiver<Write>,
    dirty: &std::sync::atomic::AtomicBool,
    cache: &ReadCache,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        let outcome = apply_batch(&mut conn, &batch);
        dirty.store(true, std::sync::atomic::Ordering::Release);
        // Before anyone is answered: drop what this batch may have changed.
        cache.invalidate(batch.iter().flat_map(|w| {
            let store: &str = &w.store;
            w.op.keys().map(move |k| (store, k))
        }));
        match outcome {
            Ok(results) => {
                for (w, r) in batch.into_iter().zip(results) {
                    let _ = w.reply.send(r);
                }
            }
            Err(e) => {
                for w in batch {
                    let _ = w.reply.send(Err(e.clone()));
                }
            }
        }
    }
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

fn apply_batch(conn: &mut Connection, batch: &[Write]) -> KvResult<Vec<KvResult<OpResult>>> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql_err)?;
    let mut results = Vec::with_capacity(batch.len());
    {
        let mut upsert = tx
            .prepare_cached(
                "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT(store, key) DO UPDATE SET value = excluded.value",
            )
            .map_err(sql_err)?;
        let mut delete = tx
            .prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")
            .map_err(sql_err)?;
        let mut select = tx
            .prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")
            .map_err(sql_err)?;
        for w in batch {
            let store: &str = &w.store;
            let r = match &w.op {
                Op::Set(k, v) => upsert
                    .execute(params![store, k, v])
                    .map(|_| OpResult::Unit)
                    .map_err(sql_err)?,
                Op::Delete(k) => delete
                    .execute(params![store, k])
                    .map(|_| OpResult::Unit)
                    .map_err(sql_err)?,
                Op::SetMany(pairs) => {
                    for (k, v) in pairs {
                        upsert.execute(params![store, k, v]).map_err(sql_err)?;
                    }
                    OpResult::Unit
                }
                Op::DeleteMany(keys) => {
                    for k in keys {
                        delete.execute(params![store, k]).map_err(sql_err)?;
                    }
                    OpResult::Unit
                }
                Op::Increment(k, delta) => {
                    let current: Option<Vec<u8>> = select
                        .query_row(params![store, k], |row| row.get(0))
                        .optional()
                        .map_err(sql_err)?;
                    let value = match current.as_deref().map(decode_counter).transpose() {
                        Ok(v) => v.unwrap_or(0),
                        Err(e) => {
                            results.push(Err(e));
                            continue;
                        }
                    };
                    let Some(new) = value.checked_add(*delta) else {
                        results.push(Err(KvError::Other("counter overflow".into())));
                        continue;
                    };
                    upsert
                        .execute(params![store, k, new.to_le_bytes().to_vec()])
                        .map_err(sql_err)?;
                    OpResult::Counter(new)
                }
                Op::Cas(k, expected, new) => {
                    let current: Option<Vec<u8>> = select
                        .query_row(params![store, k], |row| row.get(0))
                        .optional()
                        .map_err(sql_err)?;
                    if current == *expected {
                        upsert.execute(params![store, k, new]).map_err(sql_err)?;
                        OpResult::Swapped(true)
                    } else {
                        OpResult::Swapped(false)
                    }
                }
            };
            results.push(Ok(r));
        }
    }
    tx.commit().map_err(sql_err)?;
    Ok(results)
}
