//! Who commits the queued writes, and when: group commit without a hand-off
//! when nobody else is committing.
//!
//! Every write is queued. Whoever holds the writer connection takes what
//! has queued up (at most [`MAX_BATCH`]), applies it in one transaction
//! ([`super::writer::apply_batch`]), drops the read cache's entries of what
//! it changed, and only then answers the writers. Two kinds of committer:
//!
//! - **The caller itself** (in [`super::Durability::Interval`] mode, for a
//!   write that is not [heavy](super::writer::Op::is_heavy)): it queues
//!   its write and, if the connection is free, commits at once on its own
//!   thread — the answer is ready before its future is first polled, with
//!   no wake-up of another thread on either side. Handing every write to a
//!   writer thread cost two thread switches per write (about ten per
//!   authenticated article request, most of the kernel time in its
//!   profile); see BENCHMARKS.md.
//! - **The background committer**, a thread of its own: heavy writes (a
//!   request's thread must not sit in a long transaction), every write in
//!   [`super::Durability::Fsync`] mode (a commit waits for the disk), a
//!   caller's batch when another process holds the database's write lock
//!   (the caller does not wait for it: the background committer does, up to
//!   the busy timeout), and whatever a caller left after
//!   [`MAX_INLINE_ROUNDS`] batches.
//!
//! Nothing queued is stranded: a caller whose `try_lock` fails queued its
//! write before trying, so the holder — which looks at the queue again
//! after releasing the connection, and commits again if it can — sees it.
//! Callers of one connection are never blocked on a lock (only `try_lock`),
//! so a tokio worker never waits for another's commit.

use super::KvResult;
use super::writer::{Failed, OpResult, Write, apply_batch};
use crate::kv::cache::ReadCache;
use rusqlite::Connection;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// The most writes committed in one transaction.
const MAX_BATCH: usize = 512;
/// Batches a caller commits for others before it leaves the rest to the
/// background committer.
const MAX_INLINE_ROUNDS: usize = 4;
/// How long the background committer waits for another process's write
/// lock before failing the batch.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The queues and the connection of one database.
pub(super) struct Committer {
    /// Writes a caller may commit on its own thread.
    light: Mutex<VecDeque<Write>>,
    /// Writes only the background committer commits.
    heavy: Mutex<VecDeque<Write>>,
    /// The writer connection: whoever holds it commits.
    conn: Mutex<Connection>,
    /// Whether callers may commit on their own thread.
    inline: bool,
    /// Set when there is work for the background committer.
    wake: Mutex<bool>,
    woken: Condvar,
    /// Set when the database is dropped: the background committer stops
    /// once the queues are empty.
    closed: AtomicBool,
    /// Set after each commit, for the WAL's fsync thread.
    dirty: Arc<AtomicBool>,
    cache: Arc<ReadCache>,
}

impl Committer {
    pub(super) fn new(
        conn: Connection,
        inline: bool,
        dirty: Arc<AtomicBool>,
        cache: Arc<ReadCache>,
    ) -> Self {
        Committer {
            light: Mutex::new(VecDeque::new()),
            heavy: Mutex::new(VecDeque::new()),
            conn: Mutex::new(conn),
            inline,
            wake: Mutex::new(false),
            woken: Condvar::new(),
            closed: AtomicBool::new(false),
            dirty,
            cache,
        }
    }

    /// Queues `write`, and commits it on this thread when it can.
    pub(super) fn submit(&self, write: Write) {
        if self.inline && !write.op.is_heavy() {
            lock(&self.light).push_back(write);
            self.commit_here();
        } else {
            lock(&self.heavy).push_back(write);
            self.wake_background();
        }
    }

    /// Commits what is queued on the caller's thread, while the connection
    /// is free and for at most [`MAX_INLINE_ROUNDS`] batches.
    fn commit_here(&self) {
        for _ in 0..MAX_INLINE_ROUNDS {
            // Held by someone else: they look at the queue after releasing.
            let Ok(mut conn) = self.conn.try_lock() else {
                return;
            };
            let batch = take(&self.light, MAX_BATCH);
            if !batch.is_empty() {
                // Never wait on another process's lock on this thread.
                let _ = conn.busy_timeout(Duration::ZERO);
                match apply_batch(&mut conn, &batch) {
                    Err(Failed::Busy) => {
                        drop(conn);
                        let mut light = lock(&self.light);
                        for w in batch.into_iter().rev() {
                            light.push_front(w);
                        }
                        drop(light);
                        self.wake_background();
                        return;
                    }
                    outcome => self.finish(batch, outcome.map_err(Failed::into_error)),
                }
            }
            drop(conn);
            // Anything queued while the connection was held is ours to
            // commit (its writer's `try_lock` failed).
            if lock(&self.light).is_empty() {
                return;
            }
        }
        self.wake_background();
    }

    /// Runs `f` on the writer connection, waiting for it: for the WAL sync
    /// thread, never a request's thread. Writes queued meanwhile (their
    /// callers' `try_lock` failed) are committed afterwards.
    pub(super) fn with_writer<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        let out = f(&mut lock(&self.conn));
        if !lock(&self.light).is_empty() {
            self.commit_here();
        }
        out
    }

    fn wake_background(&self) {
        *lock(&self.wake) = true;
        self.woken.notify_one();
    }

    /// Stops the background committer once what is queued is committed.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake_background();
    }

    /// The background committer: commits both queues until they are empty,
    /// then sleeps until woken; returns after [`Committer::close`].
    pub(super) fn run_background(&self) {
        loop {
            loop {
                let mut conn = lock(&self.conn);
                let _ = conn.busy_timeout(BUSY_TIMEOUT);
                let mut batch = take(&self.heavy, MAX_BATCH);
                batch.extend(take(&self.light, MAX_BATCH - batch.len()));
                if batch.is_empty() {
                    break;
                }
                let outcome = apply_batch(&mut conn, &batch).map_err(Failed::into_error);
                self.finish(batch, outcome);
                drop(conn);
            }
            // The queues were empty after the connection was released (the
            // check above ran with it held, so look again without it).
            if !lock(&self.heavy).is_empty() || !lock(&self.light).is_empty() {
                continue;
            }
            if self.closed.load(Ordering::Acquire) {
                return;
            }
            let mut woken = lock(&self.wake);
            while !*woken {
                woken = self
                    .woken
                    .wait(woken)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            *woken = false;
        }
    }

    /// After a batch: mark the WAL dirty, drop the cache's entries of what
    /// the batch changed, then answer its writers.
    fn finish(&self, batch: Vec<Write>, outcome: KvResult<Vec<KvResult<OpResult>>>) {
        self.dirty.store(true, Ordering::Release);
        self.cache.invalidate(batch.iter().flat_map(|w| {
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

/// Locks a mutex, recovering it if a thread panicked while holding it (the
/// queues and the connection stay consistent: nothing is half-applied
/// outside a transaction).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Up to `n` writes from the front of `queue`.
fn take(queue: &Mutex<VecDeque<Write>>, n: usize) -> Vec<Write> {
    let mut q = lock(queue);
    let n = n.min(q.len());
    q.drain(..n).collect()
}

#[cfg(test)]
mod tests {
    use super::super::SqliteDatabase;
    use std::collections::HashSet;
    use std::time::{Duration, Instant};

    /// Light writes committed on the callers' threads and heavy ones in the
    /// background, raced from many threads: every increment answered with a
    /// distinct value, none lost, every bulk write stored.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn writers_racing_on_many_threads_lose_and_repeat_nothing() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = SqliteDatabase::open(&dir.path().join("kv.db"))?;
        let tasks: Vec<_> = (0..8)
            .map(|t| {
                let s = db.store("default");
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    for i in 0..150 {
                        seen.push(s.increment("c".into(), 1).await?);
                        if i % 30 == 0 {
                            let pairs = (0..100)
                                .map(|k| (format!("bulk:{t}:{i}:{k}"), vec![7u8; 64]))
                                .collect();
                            s.set_many(pairs).await?;
                        }
                    }
                    anyhow::Ok(seen)
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await??);
        }
        let distinct: HashSet<i64> = all.iter().copied().collect();
        assert_eq!(distinct.len(), 1200, "an increment was answered twice");
        assert_eq!(all.iter().max(), Some(&1200));
        let s = db.store("default");
        assert_eq!(
            s.get("c".into()).await?,
            Some(1200i64.to_le_bytes().to_vec())
        );
        let bulk = s.get_keys_with_prefix("bulk:".into()).await?;
        assert_eq!(bulk.len(), 8 * 5 * 100);
        Ok(())
    }

    /// While another process holds the database's write lock, a write is
    /// not committed on the caller's thread (which would wait there for the
    /// busy timeout): the call returns at once and the background committer
    /// commits the write once the lock is free.
    #[test]
    fn a_locked_database_is_waited_for_in_the_background() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("kv.db");
        let db = SqliteDatabase::open(&path)?;
        let s = db.store("default");
        let other = rusqlite::Connection::open(&path)?;
        other.execute_batch("BEGIN IMMEDIATE")?;
        let called = Instant::now();
        let pending = s.increment("c".into(), 1);
        // A bound far above any scheduling delay and far below the busy
        // timeout: the call did not wait for the lock.
        assert!(called.elapsed() < super::BUSY_TIMEOUT / 2);
        std::thread::sleep(Duration::from_millis(100));
        other.execute_batch("COMMIT")?;
        let value = futures::executor::block_on(pending)?;
        assert_eq!(value, 1);
        Ok(())
    }
}
