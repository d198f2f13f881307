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
    let db =
        SqliteDatabase::open_with(&path, Durability::Interval(INTERVAL), CommitMode::EachWrite)?;
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

/// An increment writes without reading a counter this connection wrote
/// last (`counters`), so every other way the counter can change must be
/// seen: a set, a delete, a compare-and-swap, and another process's write.
#[tokio::test]
async fn an_increment_sees_every_other_write_of_its_counter() -> anyhow::Result<()> {
    let (_d, path, db) = interval_db()?;
    let s = db.store("default");
    assert_eq!(s.increment("c".into(), 1).await?, 1);
    s.set("c".into(), 10i64.to_le_bytes().to_vec()).await?;
    assert_eq!(s.increment("c".into(), 1).await?, 11);
    s.delete("c".into()).await?;
    assert_eq!(s.increment("c".into(), 1).await?, 1);
    let swapped = s
        .compare_and_swap(
            "c".into(),
            Some(1i64.to_le_bytes().to_vec()),
            20i64.to_le_bytes().to_vec(),
        )
        .await?;
    assert!(swapped);
    assert_eq!(s.increment("c".into(), 1).await?, 21);
    s.set_many(vec![("c".into(), 30i64.to_le_bytes().to_vec())])
        .await?;
    assert_eq!(s.increment("c".into(), 1).await?, 31);
    s.delete_many(vec!["c".into()]).await?;
    assert_eq!(s.increment("c".into(), 1).await?, 1);
    // Another process (its own connection) counts too, between two of
    // this store's transactions.
    let other = rusqlite::Connection::open(&path)?;
    other.busy_timeout(std::time::Duration::from_secs(10))?;
    other.execute(
        "UPDATE spin_key_value SET value = ?1 WHERE store = 'default' AND key = 'c'",
        [100i64.to_le_bytes().to_vec()],
    )?;
    assert_eq!(s.increment("c".into(), 1).await?, 101);
    // And the same counter in another store is another counter.
    assert_eq!(db.store("other").increment("c".into(), 5).await?, 5);
    assert_eq!(s.increment("c".into(), 1).await?, 102);
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
async fn an_increment_past_the_counters_range_fails_alone_and_changes_nothing() -> anyhow::Result<()>
{
    let (_d, db) = temp_db();
    let s = db.store("default");
    assert_eq!(s.increment("max".into(), i64::MAX - 1).await?, i64::MAX - 1);
    assert_eq!(s.increment("down".into(), -3).await?, -3);
    let (over, ok) = futures::join!(s.increment("max".into(), 2), s.increment("down".into(), -4));
    let err = over.err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(err, "counter overflow");
    assert_eq!(ok?, -7);
    assert_eq!(
        s.get("max".into()).await?,
        Some((i64::MAX - 1).to_le_bytes().to_vec())
    );
    s.set("text".into(), b"hello".to_vec()).await?;
    let err = s
        .increment("text".into(), 1)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.starts_with("value is not a counter"), "{err}");
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
        let db = SqliteDatabase::open_with(
            &dir.path().join("kv.db"),
            durability,
            CommitMode::EachWrite,
        )?;
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
