use super::super::{CommitMode, Durability, SqliteDatabase};
use rusqlite::OptionalExtension;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A fresh database whose transactions stay open until settled, or for
/// `window` at most, with its file's path. Its WAL is synced and
/// checkpointed only every [`LONG`]: a checkpoint commits the open
/// transaction first, and would commit before a settle does.
fn deferring(
    window: Duration,
) -> anyhow::Result<(tempfile::TempDir, PathBuf, Arc<SqliteDatabase>)> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("kv.db");
    let db = SqliteDatabase::open_with(
        &path,
        Durability::Interval(LONG),
        CommitMode::BeforeReply(window),
    )?;
    Ok((dir, path, db))
}

/// What another connection (another process) reads at `key` of store
/// `default`: only what is committed.
fn committed(path: &Path, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
    let c = rusqlite::Connection::open(path)?;
    Ok(c.query_row(
        "SELECT value FROM spin_key_value WHERE store = 'default' AND key = ?1",
        [key],
        |row| row.get(0),
    )
    .optional()?)
}

/// Waits until another connection sees counter `key` at `value`, for
/// 20 s at most.
async fn until_committed(path: &Path, key: &str, value: i64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while committed(path, key)? != Some(value.to_le_bytes().to_vec()) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{key} = {value} was never committed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Far longer than any test: only a settle commits.
const LONG: Duration = Duration::from_secs(600);

/// Writes are answered at once, with exact values, but committed only
/// when settled: until then another connection does not see them.
#[tokio::test]
async fn deferred_writes_are_answered_at_once_and_committed_by_a_settle() -> anyhow::Result<()> {
    let (_dir, path, db) = deferring(LONG)?;
    let s = db.store("default");
    assert_eq!(s.increment("c".into(), 2).await?, 2);
    assert_eq!(s.increment("c".into(), 3).await?, 5);
    s.set("k".into(), b"v".to_vec()).await?;
    assert_eq!(committed(&path, "c")?, None, "committed before a settle");
    assert_eq!(committed(&path, "k")?, None, "committed before a settle");
    db.settle().await?;
    assert_eq!(committed(&path, "c")?, Some(5i64.to_le_bytes().to_vec()));
    assert_eq!(committed(&path, "k")?, Some(b"v".to_vec()));
    // Nothing open: a settle returns at once, and later writes wait
    // for the next one.
    db.settle().await?;
    s.set("k".into(), b"w".to_vec()).await?;
    assert_eq!(committed(&path, "k")?, Some(b"v".to_vec()));
    db.settle().await?;
    assert_eq!(committed(&path, "k")?, Some(b"w".to_vec()));
    Ok(())
}

/// Requests ready on one serving thread (a single-threaded runtime) share
/// a commit: a settle first lets the tasks beside it write, so the two
/// settles below take one commit between them, not one each.
#[tokio::test(flavor = "current_thread")]
async fn settles_of_tasks_ready_together_share_one_commit() -> anyhow::Result<()> {
    let (_dir, path, db) = deferring(LONG)?;
    let before = db.commits();
    let tasks: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|key| {
            let db = db.clone();
            tokio::spawn(async move {
                db.store("default").increment(key.into(), 1).await?;
                db.settle().await
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    assert_eq!(committed(&path, "a")?, Some(1i64.to_le_bytes().to_vec()));
    assert_eq!(committed(&path, "b")?, Some(1i64.to_le_bytes().to_vec()));
    assert_eq!(db.commits() - before, 1, "one commit for both settles");
    Ok(())
}

/// Reads use other connections, which see only committed data: a read
/// of a key the open transaction wrote commits it first, so a caller
/// reads its own writes; a read of another key does not commit.
#[tokio::test]
async fn a_read_of_a_key_the_open_transaction_wrote_commits_it_first() -> anyhow::Result<()> {
    let (_dir, path, db) = deferring(LONG)?;
    let s = db.store("default");
    s.set("a".into(), b"1".to_vec()).await?;
    assert_eq!(s.get("b".into()).await?, None);
    assert!(!s.exists("b".into()).await?);
    assert_eq!(
        committed(&path, "a")?,
        None,
        "a read of another key committed"
    );
    assert_eq!(s.get("a".into()).await?, Some(b"1".to_vec()));
    assert_eq!(committed(&path, "a")?, Some(b"1".to_vec()));

    s.set("p:1".into(), b"x".to_vec()).await?;
    assert_eq!(
        s.get_keys_with_prefix("p:".into()).await?,
        vec!["p:1".to_string()]
    );
    s.delete("a".into()).await?;
    assert!(!s.exists("a".into()).await?);
    s.increment("n".into(), 7).await?;
    let many = s.get_many(vec!["n".into(), "z".into()]).await?;
    assert_eq!(many[0].1, Some(7i64.to_le_bytes().to_vec()));
    assert_eq!(many[1].1, None);
    Ok(())
}

/// A transaction nobody settles is committed by the background
/// committer once its window has passed.
#[tokio::test]
async fn an_open_transaction_is_committed_when_its_window_ends() -> anyhow::Result<()> {
    let (_dir, path, db) = deferring(Duration::from_millis(50))?;
    let s = db.store("default");
    s.increment("c".into(), 1).await?;
    until_committed(&path, "c", 1).await?;
    // And again for a transaction opened after the committer slept.
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.increment("c".into(), 1).await?;
    until_committed(&path, "c", 2).await
}

/// When the commit fails (here a commit hook turns it into a
/// rollback), the settle fails, and the writes are gone, never half
/// kept; the next transaction works.
#[tokio::test]
async fn a_failed_commit_fails_its_settle() -> anyhow::Result<()> {
    let (_dir, path, db) = deferring(LONG)?;
    let s = db.store("default");
    db.committer.with_writer(|c| c.commit_hook(Some(|| true)));
    s.increment("c".into(), 1).await?;
    s.set("k".into(), b"v".to_vec()).await?;
    assert!(db.settle().await.is_err(), "a rolled-back commit settled");
    assert_eq!(committed(&path, "c")?, None);
    assert_eq!(
        s.get("k".into()).await?,
        None,
        "the read cache kept a lost write"
    );
    db.committer
        .with_writer(|c| c.commit_hook(None::<fn() -> bool>));
    assert_eq!(s.increment("c".into(), 1).await?, 1);
    db.settle().await?;
    assert_eq!(committed(&path, "c")?, Some(1i64.to_le_bytes().to_vec()));
    Ok(())
}

/// A transaction that fails to commit takes its increments with it, also
/// out of the values the writer keeps to count on from
/// (`super::super::counters`): the next increment counts from what is
/// committed.
#[tokio::test]
async fn a_failed_commit_takes_its_increments_with_it() -> anyhow::Result<()> {
    let (_dir, path, db) = deferring(LONG)?;
    let s = db.store("default");
    assert_eq!(s.increment("c".into(), 1).await?, 1);
    db.settle().await?;
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let once = fail.clone();
    db.committer.with_writer(move |c| {
        c.commit_hook(Some(move || {
            once.swap(false, std::sync::atomic::Ordering::SeqCst)
        }))
    });
    assert_eq!(s.increment("c".into(), 1).await?, 2);
    assert!(db.settle().await.is_err(), "a rolled-back commit settled");
    assert!(!fail.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(
        s.increment("c".into(), 1).await?,
        2,
        "counted on from a rolled-back value"
    );
    db.settle().await?;
    assert_eq!(committed(&path, "c")?, Some(2i64.to_le_bytes().to_vec()));
    Ok(())
}

/// Rows the writer connection has changed since it opened
/// (`sqlite3_total_changes`); reading it commits the open transaction.
fn rows_written(db: &SqliteDatabase) -> u64 {
    db.committer.with_writer(|c| c.total_changes())
}

/// The increments of one counter in one transaction write its row once,
/// with the last value, at commit: eleven increments of two counters, in
/// a transaction of their own, change two rows (an insert each), and five
/// more of one counter in the next change one row (an update).
#[tokio::test]
async fn increments_of_a_counter_in_one_transaction_write_its_row_once() -> anyhow::Result<()> {
    let (_dir, path, db) = deferring(LONG)?;
    let s = db.store("default");
    let before = rows_written(&db);
    for i in 1..=10 {
        assert_eq!(s.increment("c".into(), 1).await?, i);
    }
    assert_eq!(s.increment("d".into(), 4).await?, 4);
    assert_eq!(committed(&path, "c")?, None, "written before a settle");
    db.settle().await?;
    assert_eq!(
        rows_written(&db) - before,
        2,
        "rows changed by 11 increments"
    );
    assert_eq!(committed(&path, "c")?, Some(10i64.to_le_bytes().to_vec()));
    assert_eq!(committed(&path, "d")?, Some(4i64.to_le_bytes().to_vec()));

    let before = rows_written(&db);
    for _ in 0..5 {
        s.increment("c".into(), 1).await?;
    }
    db.settle().await?;
    assert_eq!(
        rows_written(&db) - before,
        1,
        "rows changed by 5 increments"
    );
    assert_eq!(committed(&path, "c")?, Some(15i64.to_le_bytes().to_vec()));
    Ok(())
}

/// A compare-and-swap, a set and a delete of a counter incremented in the
/// open transaction see, and replace, the value not yet written to its
/// row; the counter then counts on from what they left.
#[tokio::test]
async fn writes_of_a_counter_see_its_unwritten_increments() -> anyhow::Result<()> {
    let (_dir, path, db) = deferring(LONG)?;
    let s = db.store("default");
    let le = |v: i64| v.to_le_bytes().to_vec();
    s.increment("c".into(), 1).await?;
    db.settle().await?;
    assert_eq!(s.increment("c".into(), 1).await?, 2);
    assert!(
        !s.compare_and_swap("c".into(), Some(le(1)), le(9)).await?,
        "swapped against the row's stale value"
    );
    assert!(s.compare_and_swap("c".into(), Some(le(2)), le(7)).await?);
    assert_eq!(s.increment("c".into(), 1).await?, 8);
    s.set("c".into(), le(20)).await?;
    assert_eq!(s.increment("c".into(), 1).await?, 21);
    s.delete("c".into()).await?;
    assert_eq!(s.increment("c".into(), 5).await?, 5);
    db.settle().await?;
    assert_eq!(committed(&path, "c")?, Some(le(5)));
    Ok(())
}

/// A batch that fails under its savepoint takes back only its own writes:
/// here a trigger refuses the second key of a `set_many`, after the first
/// replaced a counter incremented (and answered) before. The counter's
/// increment is still written at commit, and counts on.
#[tokio::test]
async fn a_failed_batch_keeps_the_increments_answered_before_it() -> anyhow::Result<()> {
    let (_dir, path, db) = deferring(LONG)?;
    let s = db.store("default");
    db.committer.with_writer(|c| {
        c.execute_batch(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON main.spin_key_value
             WHEN NEW.key = 'refused' BEGIN SELECT RAISE(ABORT, 'refused'); END",
        )
    })?;
    assert_eq!(s.increment("c".into(), 3).await?, 3);
    let failed = s
        .set_many(vec![
            ("c".into(), b"x".to_vec()),
            ("refused".into(), b"y".to_vec()),
        ])
        .await;
    assert!(failed.is_err(), "the trigger did not refuse");
    assert_eq!(s.increment("c".into(), 1).await?, 4);
    db.settle().await?;
    assert_eq!(committed(&path, "c")?, Some(4i64.to_le_bytes().to_vec()));
    assert_eq!(committed(&path, "refused")?, None);
    Ok(())
}

/// Light writes committed on the callers' threads and heavy ones in the
/// background, raced from many threads: every increment answered with a
/// distinct value, none lost, every bulk write stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_racing_on_many_threads_lose_and_repeat_nothing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = SqliteDatabase::open(&dir.path().join("kv.db"))?;
    race(db).await
}

/// The same race with transactions left open and settled by the
/// writers as a server settles before each reply: after the last
/// settle everything is committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_racing_with_settles_lose_and_repeat_nothing() -> anyhow::Result<()> {
    let (_dir, path, db) = deferring(LONG)?;
    race(db).await?;
    assert_eq!(committed(&path, "c")?, Some(1200i64.to_le_bytes().to_vec()));
    Ok(())
}

async fn race(db: Arc<SqliteDatabase>) -> anyhow::Result<()> {
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let s = db.store("default");
            let db = db.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for i in 0..150 {
                    seen.push(s.increment("c".into(), 1).await?);
                    if i % 3 == 0 {
                        db.settle().await?;
                    }
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
