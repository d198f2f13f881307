//! The counters of the writer connection: the value each holds, so that
//! an increment need not read its counter first, and the increments not
//! yet written, so that a counter's row is written once per transaction.
//!
//! An increment was a read (`SELECT`) and a write (`UPSERT`) of the
//! counter's row, and an article request makes four, of the same four
//! counters for every request of one account. The value a counter holds
//! after this connection wrote it is known: the connection is the
//! process's only writer, and inside a transaction (`BEGIN IMMEDIATE`,
//! which holds the database's write lock) no other connection writes. So
//! the writer keeps the value of each counter it increments, answers an
//! increment of a kept counter from it, and writes each changed counter's
//! row once, just before the transaction commits
//! ([`Counters::take_unwritten`]): the increments of one counter by the
//! requests sharing a commit cost one `UPDATE`. Nothing outside the
//! process can tell: no other connection sees the transaction before it
//! commits, and a read of a key it wrote commits it first
//! (`super::commit`).
//!
//! A kept value is right only while nothing else changed the row, so:
//!
//! - every transaction begins by reading `PRAGMA data_version`, which
//!   changes when another connection (another process: a second host on
//!   the same file, `wikiedge import`) committed since the last reading;
//!   when it changed, or cannot be read, everything is forgotten;
//! - a set, delete or compare-and-swap of a key forgets it (its own write
//!   supersedes an unwritten value);
//! - a batch rolled back to its savepoint restores what it changed
//!   ([`Counters::end_batch`]); a transaction rolled back or failed to
//!   commit, and any use of the connection outside the committer's batches
//!   (after a commit), forget everything;
//! - at most [`MAX`] written counters are kept; past that they are all
//!   forgotten (burst counters have a new key every second). Unwritten
//!   ones are bounded by the transaction, which commits within its window.

use rusqlite::Connection;
use std::collections::HashMap;
use std::sync::Arc;

/// The most counters kept (not counting those not yet written).
pub const MAX: usize = 4096;

/// A kept counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    value: i64,
    /// Incremented in the open transaction and not yet written to its row.
    unwritten: bool,
    /// Its row exists (as the open transaction sees the database).
    exists: bool,
}

/// The kept counters, by store and key.
#[derive(Debug, Default)]
pub(super) struct Counters {
    values: HashMap<Arc<str>, HashMap<String, Entry>>,
    len: usize,
    /// How many of them are unwritten.
    unwritten: usize,
    /// `PRAGMA data_version` at the start of the last transaction.
    version: Option<i64>,
    /// While a batch runs under a savepoint: what each counter it changed
    /// held before, so that a batch rolled back to its savepoint takes its
    /// increments with it. `None` when nothing is being recorded.
    journal: Option<Vec<Undo>>,
}

/// A counter as it was before a batch changed it (`None`: not kept).
type Undo = (Arc<str>, String, Option<Entry>);

/// A counter to write to its row before the transaction commits.
pub(super) struct Unwritten {
    pub(super) store: Arc<str>,
    pub(super) key: String,
    pub(super) value: i64,
    /// Its row exists, so an `UPDATE` writes it.
    pub(super) exists: bool,
}

impl Counters {
    /// The value `key` of `store` holds in the open transaction, if kept.
    pub(super) fn get(&self, store: &str, key: &str) -> Option<i64> {
        Some(self.values.get(store)?.get(key)?.value)
    }

    /// Keeps `value` as what `key` of `store` now holds in the open
    /// transaction, to be written to its row (which `exists` or not) before
    /// the transaction commits ([`Counters::take_unwritten`]): increments of
    /// one counter by many requests in one transaction write its row once.
    pub(super) fn increment_to(&mut self, store: &Arc<str>, key: &str, value: i64, exists: bool) {
        if let Some(kept) = self.values.get_mut(&**store).and_then(|m| m.get_mut(key)) {
            let before = *kept;
            kept.value = value;
            kept.unwritten = true;
            let now = *kept;
            self.changed(store, key, Some(before), Some(now));
            return;
        }
        if self.len >= MAX && self.len > self.unwritten {
            self.forget_written();
        }
        let entry = Entry {
            value,
            unwritten: true,
            exists,
        };
        self.values
            .entry(store.clone())
            .or_default()
            .insert(key.to_string(), entry);
        self.changed(store, key, None, Some(entry));
    }

    /// Forgets `key` of `store`: it is being written some other way (a
    /// set, a delete, a compare-and-swap), which supersedes an unwritten
    /// value.
    pub(super) fn forget(&mut self, store: &Arc<str>, key: &str) {
        let before = self.values.get_mut(&**store).and_then(|m| m.remove(key));
        if before.is_some() {
            self.changed(store, key, before, None);
        }
    }

    /// Counts a change of `key` of `store` from `before` to `now` (`None`:
    /// not kept), and records it while a batch runs.
    fn changed(&mut self, store: &Arc<str>, key: &str, before: Option<Entry>, now: Option<Entry>) {
        let unwritten = |e: Option<Entry>| usize::from(e.is_some_and(|e| e.unwritten));
        self.len = self.len + usize::from(now.is_some()) - usize::from(before.is_some());
        self.unwritten = self.unwritten + unwritten(now) - unwritten(before);
        if let Some(journal) = &mut self.journal {
            journal.push((store.clone(), key.to_string(), before));
        }
    }

    /// Starts recording what the next batch changes, for
    /// [`Counters::end_batch`].
    pub(super) fn begin_batch(&mut self) {
        self.journal = Some(Vec::new());
    }

    /// Ends the batch begun last: when it was rolled back to its
    /// savepoint (`kept` false), every counter it changed holds again
    /// what it held before it.
    pub(super) fn end_batch(&mut self, kept: bool) {
        let Some(journal) = self.journal.take() else {
            return;
        };
        if kept {
            return;
        }
        // The journal is taken: restoring records nothing.
        for (store, key, before) in journal.into_iter().rev() {
            let m = self.values.entry(store.clone()).or_default();
            let now = match before {
                Some(entry) => m.insert(key.clone(), entry),
                None => m.remove(&key),
            };
            self.changed(&store, &key, now, before);
        }
    }

    /// The counters to write before the transaction commits, each now
    /// counted as written (and its row as existing). A failed write fails
    /// the transaction, whose rollback [clears](Counters::clear) them all.
    pub(super) fn take_unwritten(&mut self) -> Vec<Unwritten> {
        let mut out = Vec::with_capacity(self.unwritten);
        if self.unwritten == 0 {
            return out;
        }
        for (store, m) in &mut self.values {
            for (key, entry) in m.iter_mut().filter(|(_, e)| e.unwritten) {
                out.push(Unwritten {
                    store: store.clone(),
                    key: key.clone(),
                    value: entry.value,
                    exists: entry.exists,
                });
                entry.unwritten = false;
                entry.exists = true;
            }
        }
        self.unwritten = 0;
        out
    }

    /// How many counters are unwritten.
    pub(super) fn unwritten(&self) -> usize {
        self.unwritten
    }

    /// Forgets every counter, unwritten values too: for a transaction
    /// rolled back, or a connection used outside the committer's batches
    /// (after a commit, when nothing is unwritten).
    pub(super) fn clear(&mut self) {
        self.values.clear();
        self.len = 0;
        self.unwritten = 0;
    }

    /// Forgets the counters already written, at the bound.
    fn forget_written(&mut self) {
        for m in self.values.values_mut() {
            m.retain(|_, e| e.unwritten);
        }
        self.values.retain(|_, m| !m.is_empty());
        self.len = self.unwritten;
    }

    /// Called once a transaction has begun on `conn` (with nothing
    /// unwritten: the last one wrote or dropped everything): forgets every
    /// counter if another connection committed since the last transaction
    /// began (or if that cannot be told).
    pub(super) fn begun(&mut self, conn: &Connection) {
        debug_assert_eq!(self.unwritten, 0, "unwritten counters across transactions");
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

    fn store(name: &str) -> Arc<str> {
        Arc::from(name)
    }

    #[test]
    fn kept_values_are_per_store_and_key_and_forgotten_one_by_one() {
        let mut c = Counters::default();
        let (a, b) = (store("a"), store("b"));
        c.increment_to(&a, "k", 1, false);
        c.increment_to(&b, "k", 2, false);
        c.increment_to(&a, "k", 3, false);
        assert_eq!(
            (c.get("a", "k"), c.get("b", "k"), c.len(), c.unwritten()),
            (Some(3), Some(2), 2, 2)
        );
        c.forget(&a, "k");
        c.forget(&a, "k");
        c.forget(&store("c"), "k");
        assert_eq!(
            (c.get("a", "k"), c.get("b", "k"), c.len(), c.unwritten()),
            (None, Some(2), 1, 1)
        );
    }

    /// Each changed counter is handed out once, with its last value,
    /// whatever the number of increments; afterwards its row exists.
    #[test]
    fn each_counter_is_written_once_with_its_last_value() {
        let mut c = Counters::default();
        let s = store("s");
        for v in 1..=5 {
            c.increment_to(&s, "n", v, false);
        }
        c.increment_to(&s, "m", 9, true);
        let mut out: Vec<_> = c
            .take_unwritten()
            .into_iter()
            .map(|u| (u.key, u.value, u.exists))
            .collect();
        out.sort();
        assert_eq!(out, [("m".into(), 9, true), ("n".into(), 5, false)]);
        assert!(c.take_unwritten().is_empty(), "handed out twice");
        c.increment_to(&s, "n", 6, false);
        let again: Vec<_> = c.take_unwritten().into_iter().map(|u| u.exists).collect();
        assert_eq!(
            again,
            [true],
            "the row written before is not known to exist"
        );
    }

    /// A batch rolled back to its savepoint restores what it changed,
    /// unwritten values of earlier batches included; a kept batch keeps.
    #[test]
    fn a_batch_rolled_back_restores_what_it_changed() {
        let mut c = Counters::default();
        let s = store("s");
        c.increment_to(&s, "a", 1, false);
        c.begin_batch();
        c.increment_to(&s, "a", 2, false);
        c.increment_to(&s, "a", 3, false);
        c.increment_to(&s, "b", 1, false);
        c.forget(&s, "a");
        c.end_batch(false);
        assert_eq!(
            (c.get("s", "a"), c.get("s", "b"), c.len(), c.unwritten()),
            (Some(1), None, 1, 1)
        );
        c.begin_batch();
        c.increment_to(&s, "b", 4, false);
        c.end_batch(true);
        assert_eq!((c.get("s", "b"), c.len(), c.unwritten()), (Some(4), 2, 2));
        // Outside a batch nothing is recorded: a later end restores nothing.
        c.increment_to(&s, "b", 5, false);
        c.end_batch(false);
        assert_eq!(c.get("s", "b"), Some(5));
    }

    #[test]
    fn past_the_bound_the_written_ones_are_forgotten() {
        let mut c = Counters::default();
        let s = store("s");
        for i in 0..MAX {
            c.increment_to(&s, &i.to_string(), 1, false);
        }
        assert_eq!(c.take_unwritten().len(), MAX);
        // Updating a kept counter adds nothing.
        c.increment_to(&s, "0", 2, true);
        assert_eq!((c.len(), c.get("s", "0")), (MAX, Some(2)));
        c.increment_to(&s, "new", 1, false);
        assert_eq!(
            (c.len(), c.get("s", "0"), c.get("s", "1"), c.get("s", "new")),
            (2, Some(2), None, Some(1)),
            "an unwritten value was dropped, or a written one kept"
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
        let s = store("s");
        let mut c = Counters::default();
        mine.execute_batch("BEGIN IMMEDIATE")?;
        c.begun(&mine);
        c.increment_to(&s, "k", 7, false);
        c.take_unwritten();
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
