//! Who commits the queued writes, and when: group commit without a hand-off
//! when nobody else is committing, and, for a server, one transaction kept
//! open across requests and committed before anything that depends on it
//! leaves the process.
//!
//! Every write is queued. Whoever holds the writer connection takes what
//! has queued up (at most [`MAX_BATCH`]) and applies it inside the open
//! transaction, beginning one if none is open, under a savepoint of its own
//! ([`super::writer::apply_batch`]; a lone write that changes the database
//! in one statement needs none, SQLite's statement being atomic). Two kinds
//! of committer:
//!
//! - **The caller itself** (in [`super::Durability::Interval`] mode, for a
//!   write that is not [heavy](super::writer::Op::is_heavy)): it queues
//!   its write and, if the connection is free, applies it at once on its own
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
//!   [`MAX_INLINE_ROUNDS`] batches. It commits what it applied, except a
//!   batch of light writes in [`CommitMode::BeforeReply`], which stays in
//!   the open transaction as a caller's would.
//!
//! When the transaction commits depends on the [`CommitMode`]:
//!
//! - [`CommitMode::EachWrite`] (bulk tools, tests): before any writer is
//!   answered, as Spin's own store does.
//! - [`CommitMode::BeforeReply`] (`wikiedge up`): a caller's batch is
//!   answered as soon as it is applied, and the transaction stays open for
//!   the next writes, of this request or of others. It is committed — by
//!   whoever gets there first — when a response head or an outbound request
//!   is about to leave the process ([`Committer::settle`], called by the
//!   server and the outbound hook), when a read touches a key it wrote
//!   ([`Committer::is_pending`]: reads go to other connections, which see
//!   only committed data), before a heavy write or a checkpoint, and at the
//!   latest [`COMMIT_WITHIN`] after it began (the background committer's
//!   timer; the window is the mode's). So the four counter increments of an article request, and those
//!   of the requests running beside it, share one commit instead of taking
//!   four, and each counter's row is written once, at the commit
//!   ([`super::counters`]); what the transaction returns is still exact, because
//!   `BEGIN IMMEDIATE` holds the database's write lock from its first write.
//!   Nothing a client or another server sees ever depends on a write that
//!   is not committed; a kill -9 can lose only writes whose effects have
//!   not left the process. Should a commit fail, every settle waiting on it
//!   fails, and the server answers 503 instead of a response that depends
//!   on lost writes.
//!
//! Nothing queued is stranded: a caller whose `try_lock` fails queued its
//! write before trying, so the holder — which looks at the queue again
//! after releasing the connection, and commits again if it can — sees it.
//! Callers of one connection are never blocked on a lock (only `try_lock`),
//! so a tokio worker never waits for another's commit: a settle that finds
//! the connection held asks its holder to commit and awaits the outcome.

use super::KvResult;
use super::counters::Counters;
use super::writer::{Failed, OpResult, Write, apply_batch, begin, commit};
use crate::kv::KvError;
use crate::kv::cache::ReadCache;
use rusqlite::Connection;
use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use super::super::durability::CommitMode;

/// The most writes applied in one batch.
const MAX_BATCH: usize = 512;
/// Batches a caller applies for others before it leaves the rest to the
/// background committer.
const MAX_INLINE_ROUNDS: usize = 4;
/// How long the background committer waits for another process's write
/// lock before failing the batch.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a transaction stays open in [`CommitMode::BeforeReply`]
/// when nothing settles it sooner: the bound on what a kill -9 can take of
/// writes whose effects have not left the process (a guest's writes after
/// its response head, say).
pub const COMMIT_WITHIN: Duration = Duration::from_millis(10);
/// Failed transactions remembered for the settles still waiting on them.
const FAILURES_KEPT: usize = 1024;

/// The queues and the connection of one database.
pub(super) struct Committer {
    /// Writes a caller may commit on its own thread.
    light: Mutex<VecDeque<Write>>,
    /// Writes only the background committer commits.
    heavy: Mutex<VecDeque<Write>>,
    /// The writer connection: whoever holds it applies and commits.
    conn: Mutex<Writer>,
    /// Whether callers may commit on their own thread.
    inline: bool,
    /// When transactions commit.
    mode: CommitMode,
    /// Set when there is work for the background committer.
    wake: Mutex<bool>,
    woken: Condvar,
    /// Set while the background committer sleeps without a timer.
    idle: AtomicBool,
    /// Set when the database is dropped: the background committer stops
    /// once the queues are empty and the transaction committed.
    closed: AtomicBool,
    /// Set after each commit, for the WAL's fsync thread.
    dirty: Arc<AtomicBool>,
    cache: Arc<ReadCache>,
    /// The open transaction's id, 0 when none is open. Changed only with
    /// `conn` held.
    open: AtomicU64,
    /// Every transaction up to this id has committed or failed.
    settled: AtomicU64,
    /// Set by a settle that found the connection held: the holder commits
    /// before it lets go.
    wanted: AtomicBool,
    /// Woken after each commit, for the settles awaiting it.
    settled_tx: tokio::sync::Notify,
    /// Hashes of the (store, key) pairs the open transaction wrote. A
    /// collision only makes a read settle when it did not need to.
    pending: Mutex<HashSet<u64>>,
    hasher: std::hash::RandomState,
    /// Recently failed transactions, with why.
    failed: Mutex<VecDeque<(u64, KvError)>>,
    /// Transactions committed.
    commits: AtomicU64,
}

/// The writer connection and its open transaction.
struct Writer {
    conn: Connection,
    /// The last transaction id given out.
    last_id: u64,
    /// What the open transaction wrote, for the read cache once it commits.
    keys: Vec<(Arc<str>, String)>,
    /// The counters it last wrote ([`super::counters`]).
    counters: Counters,
}

impl Committer {
    pub(super) fn new(
        conn: Connection,
        inline: bool,
        mode: CommitMode,
        dirty: Arc<AtomicBool>,
        cache: Arc<ReadCache>,
    ) -> Self {
        Committer {
            light: Mutex::new(VecDeque::new()),
            heavy: Mutex::new(VecDeque::new()),
            conn: Mutex::new(Writer {
                conn,
                last_id: 0,
                keys: Vec::new(),
                counters: Counters::default(),
            }),
            inline,
            mode,
            wake: Mutex::new(false),
            woken: Condvar::new(),
            idle: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            dirty,
            cache,
            open: AtomicU64::new(0),
            settled: AtomicU64::new(0),
            wanted: AtomicBool::new(false),
            settled_tx: tokio::sync::Notify::new(),
            pending: Mutex::new(HashSet::new()),
            hasher: std::hash::RandomState::new(),
            failed: Mutex::new(VecDeque::new()),
            commits: AtomicU64::new(0),
        }
    }

    /// Queues `write`, and applies it on this thread when it can.
    pub(super) fn submit(&self, write: Write) {
        if self.inline && !write.op.is_heavy() {
            lock(&self.light).push_back(write);
            self.commit_here();
        } else {
            lock(&self.heavy).push_back(write);
            self.wake_background();
        }
    }

    /// Applies what is queued on the caller's thread, while the connection
    /// is free and for at most [`MAX_INLINE_ROUNDS`] batches.
    fn commit_here(&self) {
        for _ in 0..MAX_INLINE_ROUNDS {
            // Held by someone else: they look at the queue after releasing.
            let Ok(mut w) = self.conn.try_lock() else {
                return;
            };
            let batch = take(&self.light, MAX_BATCH);
            if !batch.is_empty() {
                // Never wait on another process's lock on this thread.
                let _ = w.conn.busy_timeout(Duration::ZERO);
                if let Err(batch) = self.run(&mut w, batch, self.mode == CommitMode::EachWrite) {
                    self.release(w);
                    let mut light = lock(&self.light);
                    for w in batch.into_iter().rev() {
                        light.push_front(w);
                    }
                    drop(light);
                    self.wake_background();
                    return;
                }
            }
            self.release(w);
            // Anything queued while the connection was held is ours to
            // apply (its writer's `try_lock` failed).
            if lock(&self.light).is_empty() {
                return;
            }
        }
        self.wake_background();
    }

    /// Applies `batch` in the open transaction (beginning one if needed),
    /// commits it when `commit_now`, and answers the writers. Gives the
    /// batch back when another process holds the write lock.
    fn run(&self, w: &mut Writer, batch: Vec<Write>, commit_now: bool) -> Result<(), Vec<Write>> {
        if self.open.load(Ordering::Acquire) == 0 {
            match begin(&w.conn) {
                Ok(()) => {}
                Err(Failed::Busy) => return Err(batch),
                Err(Failed::Error(e)) => {
                    answer(batch, Err(e));
                    return Ok(());
                }
            }
            w.counters.begun(&w.conn);
            w.last_id += 1;
            self.open.store(w.last_id, Ordering::SeqCst);
            if !commit_now && self.idle.swap(false, Ordering::SeqCst) {
                // The background committer sleeps without a timer: this
                // transaction needs one.
                self.wake_background();
            }
        }
        let outcome = apply_batch(&w.conn, &mut w.counters, &batch);
        if outcome.is_err() && w.conn.is_autocommit() {
            // SQLite rolled the whole transaction back (an I/O error, a
            // full disk): the batches applied before are gone too.
            let lost = KvError::Other("sqlite: the transaction was rolled back".into());
            self.end(w, Err(lost));
        } else if outcome.is_ok() {
            let mut pending = lock(&self.pending);
            for write in &batch {
                for key in write.op.keys() {
                    pending.insert(self.hash(&write.store, key));
                    w.keys.push((write.store.clone(), key.to_string()));
                }
            }
        }
        if commit_now {
            let committed = self.commit_open(w);
            answer(batch, committed.and(outcome));
        } else {
            answer(batch, outcome);
        }
        Ok(())
    }

    /// Commits the open transaction, if one is open, and settles it.
    fn commit_open(&self, w: &mut Writer) -> KvResult<()> {
        if self.open.load(Ordering::Acquire) == 0 {
            return Ok(());
        }
        let outcome = commit(&w.conn, &mut w.counters);
        if outcome.is_ok() {
            self.commits.fetch_add(1, Ordering::Relaxed);
            crate::metrics::metrics().kv_commit();
        }
        self.end(w, outcome.clone());
        outcome
    }

    /// After the open transaction committed or was rolled back: the read
    /// cache forgets what it wrote, then its keys stop being pending, then
    /// its settles are answered.
    fn end(&self, w: &mut Writer, outcome: KvResult<()>) {
        let id = self.open.load(Ordering::Acquire);
        self.dirty.store(true, Ordering::Release);
        let keys = std::mem::take(&mut w.keys);
        self.cache
            .invalidate(keys.iter().map(|(s, k)| (&**s, k.as_str())));
        lock(&self.pending).clear();
        if let Err(e) = outcome {
            // Rolled back: what its increments wrote is gone.
            w.counters.clear();
            tracing::error!("key-value: a transaction failed: {e}");
            let mut failed = lock(&self.failed);
            if failed.len() == FAILURES_KEPT {
                failed.pop_front();
            }
            failed.push_back((id, e));
        }
        self.open.store(0, Ordering::Release);
        self.settled.store(id, Ordering::Release);
        self.wanted.store(false, Ordering::SeqCst);
        self.settled_tx.notify_waiters();
    }

    /// Lets go of the connection, committing first when a settle asked for
    /// it, and wakes settles that may now take it.
    fn release(&self, mut w: MutexGuard<'_, Writer>) {
        if self.wanted.load(Ordering::SeqCst) {
            let _ = self.commit_open(&mut w);
        }
        drop(w);
        if self.wanted.load(Ordering::SeqCst) {
            self.settled_tx.notify_waiters();
        }
    }

    /// How long a transaction may stay open.
    fn window(&self) -> Duration {
        match self.mode {
            CommitMode::BeforeReply(within) => within,
            CommitMode::EachWrite => Duration::ZERO,
        }
    }

    fn hash(&self, store: &str, key: &str) -> u64 {
        self.hasher.hash_one((store, key))
    }

    /// Whether the open transaction wrote `key` of `store`: a reader must
    /// [`settle`](Self::settle) first to see it.
    pub(super) fn is_pending(&self, store: &str, key: &str) -> bool {
        self.has_open() && lock(&self.pending).contains(&self.hash(store, key))
    }

    /// Whether a transaction is open.
    pub(super) fn has_open(&self) -> bool {
        self.open.load(Ordering::Acquire) != 0
    }

    /// Transactions committed so far.
    pub(super) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Returns once every write answered before the call is committed
    /// (at once when none is pending); an error when the transaction
    /// holding them failed.
    ///
    /// It first yields once to the caller's runtime, so that the tasks
    /// ready beside it (other requests on the same serving thread) add
    /// their writes to the open transaction before it is committed, and
    /// one commit answers all their settles: a serving thread runs one
    /// task at a time, so without the yield every response head took a
    /// commit of its own. Under 32 connections this cut the WAL writes and
    /// the WAL index's file locks per request by about two fifths
    /// (BENCHMARKS.md, "A settle lets the requests beside it write first").
    pub(super) async fn settle(&self) -> KvResult<()> {
        let target = self.open.load(Ordering::Acquire);
        if target == 0 {
            return Ok(());
        }
        tokio::task::yield_now().await;
        loop {
            if self.settled.load(Ordering::Acquire) >= target {
                return self.outcome(target);
            }
            let notified = self.settled_tx.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            self.wanted.store(true, Ordering::SeqCst);
            if let Ok(w) = self.conn.try_lock() {
                // `release` commits, since `wanted` is set.
                self.release(w);
                if !lock(&self.light).is_empty() {
                    self.commit_here();
                }
                continue;
            }
            if self.settled.load(Ordering::Acquire) >= target {
                continue;
            }
            notified.await;
        }
    }

    fn outcome(&self, id: u64) -> KvResult<()> {
        match lock(&self.failed).iter().find(|(f, _)| *f == id) {
            Some((_, e)) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Runs `f` on the writer connection, waiting for it: for the WAL sync
    /// thread, never a request's thread. The open transaction is committed
    /// first; writes queued meanwhile (their callers' `try_lock` failed) are
    /// applied afterwards.
    pub(super) fn with_writer<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        let mut w = lock(&self.conn);
        let _ = self.commit_open(&mut w);
        let out = f(&mut w.conn);
        // `f` may have written anything.
        w.counters.clear();
        self.release(w);
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

    /// The background committer: applies and commits both queues until they
    /// are empty, commits a transaction left open for its window,
    /// then sleeps until woken; returns after [`Committer::close`].
    pub(super) fn run_background(&self) {
        // The open transaction this thread saw last, and since when.
        let mut seen: (u64, Instant) = (0, Instant::now());
        loop {
            loop {
                let mut w = lock(&self.conn);
                let _ = w.conn.busy_timeout(BUSY_TIMEOUT);
                let mut batch = take(&self.heavy, MAX_BATCH);
                batch.extend(take(&self.light, MAX_BATCH - batch.len()));
                if batch.is_empty() {
                    let open = self.open.load(Ordering::Acquire);
                    let due = seen.0 == open && seen.1.elapsed() >= self.window();
                    if open != 0 && (due || self.closed.load(Ordering::Acquire)) {
                        let _ = self.commit_open(&mut w);
                    }
                    self.release(w);
                    break;
                }
                // Light writes a caller could not apply wait for a settle
                // or the window, as the caller's own would have.
                let deferred = self.inline
                    && self.mode != CommitMode::EachWrite
                    && batch.iter().all(|write| !write.op.is_heavy());
                if let Err(batch) = self.run(&mut w, batch, !deferred) {
                    // Still busy after the timeout: fail these writes.
                    let busy = Failed::Busy.into_error();
                    answer(batch, Err(busy));
                }
                self.release(w);
            }
            // The queues were empty after the connection was released (the
            // check above ran with it held, so look again without it).
            if !lock(&self.heavy).is_empty() || !lock(&self.light).is_empty() {
                continue;
            }
            let open = self.open.load(Ordering::Acquire);
            if self.closed.load(Ordering::Acquire) && open == 0 {
                return;
            }
            if open != seen.0 {
                seen = (open, Instant::now());
            }
            let mut woken = lock(&self.wake);
            if !*woken {
                if open == 0 {
                    // Nothing open: sleep until woken; a transaction that
                    // opens meanwhile wakes this thread (see `run`).
                    self.idle.store(true, Ordering::SeqCst);
                    if self.open.load(Ordering::SeqCst) == 0 {
                        while !*woken {
                            woken = self
                                .woken
                                .wait(woken)
                                .unwrap_or_else(std::sync::PoisonError::into_inner);
                        }
                    }
                    self.idle.store(false, Ordering::SeqCst);
                } else {
                    // Until the open transaction is due (or a spurious
                    // wake-up: the loop looks again either way).
                    let left = self.window().saturating_sub(seen.1.elapsed());
                    woken = self
                        .woken
                        .wait_timeout(woken, left)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0;
                }
            }
            *woken = false;
        }
    }
}

/// Answers every writer of `batch`: each its own result, or all the error.
fn answer(batch: Vec<Write>, outcome: KvResult<Vec<KvResult<OpResult>>>) {
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

/// Locks a mutex, recovering it if a thread panicked while holding it (the
/// queues and the connection stay consistent: nothing is half-applied
/// outside a savepoint).
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
mod tests;
