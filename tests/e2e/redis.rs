//! The Redis key-value backend (`type = "redis"`), through the real host and
//! a real `redis-server` on loopback.

use crate::{BIN, host_test_manifest};
use anyhow::{Result, ensure};
use wikiedge_tests::{Host, RedisServer, TempDir, get, post};

fn start(redis: &RedisServer, dir: &TempDir) -> Result<Host> {
    builder(redis, dir)?.start()
}

/// The test app on `redis`, not yet started.
fn builder(redis: &RedisServer, dir: &TempDir) -> Result<wikiedge_tests::Builder> {
    Ok(Host::builder(BIN, &host_test_manifest())
        .env("SPIN_VARIABLE_SECRET_WORD", "x")
        .runtime_config(&redis.runtime_config(dir.path())?))
}

#[test]
fn key_value_operations_work_on_redis_as_spin_stores_them() -> Result<()> {
    let redis = RedisServer::start()?;
    let dir = TempDir::new("redis-kv")?;
    let host = start(&redis, &dir)?;
    assert_eq!(
        post(&host.url("/kv/set?key=greeting"), &[], b"hi")?.text(),
        "ok"
    );
    assert_eq!(get(&host.url("/kv/get?key=greeting"), &[])?.text(), "hi");
    assert_eq!(
        get(&host.url("/kv/exists?key=greeting"), &[])?.text(),
        "true"
    );
    assert_eq!(get(&host.url("/kv/keys"), &[])?.text(), r#"["greeting"]"#);
    // Plain Redis keys and values, as Spin's Redis store writes them.
    assert_eq!(redis.cli(&["GET", "greeting"])?, "hi");
    assert_eq!(
        get(&host.url("/atomic/increment?key=n&delta=5"), &[])?.text(),
        "5"
    );
    assert_eq!(redis.cli(&["GET", "n"])?, "5");
    assert_eq!(get(&host.url("/kv/delete?key=greeting"), &[])?.text(), "ok");
    assert_eq!(
        get(&host.url("/kv/exists?key=greeting"), &[])?.text(),
        "false"
    );
    Ok(())
}

#[test]
fn concurrent_increments_on_redis_are_distinct_across_two_hosts() -> Result<()> {
    let redis = RedisServer::start()?;
    let dir = TempDir::new("redis-incr")?;
    let a = start(&redis, &dir)?;
    let b = start(&redis, &dir)?;
    let urls = [
        a.url("/atomic/increment?key=race"),
        b.url("/atomic/increment?key=race"),
    ];
    let values: Vec<i64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..64)
            .map(|i| {
                let url = urls[i % 2].clone();
                s.spawn(move || {
                    get(&url, &[])
                        .ok()
                        .and_then(|r| r.text().parse().ok())
                        .unwrap_or(-1)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(-1))
            .collect()
    });
    let mut values = values;
    values.sort();
    assert_eq!(values, (1..=64).collect::<Vec<i64>>());
    Ok(())
}

#[test]
fn a_redis_cas_whose_transaction_aborts_reports_the_conflict() -> Result<()> {
    let redis = RedisServer::start()?;
    let dir = TempDir::new("redis-cas")?;
    let host = start(&redis, &dir)?;
    let r = get(&host.url("/atomic/cas-conflict?key=c"), &[])?;
    assert_eq!(r.text(), "conflict seen=v1 now=v2-from-someone-else");
    assert_eq!(
        get(&host.url("/atomic/cas-ok?key=fresh"), &[])?.text(),
        "swapped"
    );
    Ok(())
}

#[test]
fn an_unreachable_redis_fails_requests_promptly_and_recovers() -> Result<()> {
    let mut redis = RedisServer::start()?;
    let dir = TempDir::new("redis-down")?;
    let host = start(&redis, &dir)?;
    assert_eq!(
        post(&host.url("/kv/set?key=k"), &[], b"before")?.text(),
        "ok"
    );
    redis.stop()?;
    let started = std::time::Instant::now();
    let r = get(&host.url("/atomic/increment?key=n"), &[])?;
    assert_eq!(
        r.status,
        500,
        "the store error reaches the component: {}",
        r.text()
    );
    assert!(r.text().contains("redis unavailable"), "{}", r.text());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "no hang"
    );
    redis.restart()?;
    // Service resumes by itself, and acknowledged data survived.
    let mut value = String::new();
    for _ in 0..50 {
        let r = get(&host.url("/kv/get?key=k"), &[])?;
        if r.status == 200 {
            value = r.text();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(value, "before");
    Ok(())
}

/// The keys under `article:en*wiki:` of [`prefixed_pairs`], in order.
fn prefixed_keys() -> Vec<String> {
    (0..2500)
        .map(|n| format!("article:en*wiki:{n:04}"))
        .collect()
}

/// 2,500 keys under `article:en*wiki:` (a glob character in the prefix),
/// and three keys outside it that a glob would let in or a careless
/// prefix test would: another project, the prefix without its colon, and
/// another kind of key.
fn prefixed_pairs() -> Vec<(String, Vec<u8>)> {
    let mut pairs: Vec<(String, Vec<u8>)> = prefixed_keys()
        .into_iter()
        .map(|key| (key, b"x".to_vec()))
        .collect();
    pairs.push(("article:enXwiki:0001".into(), b"x".to_vec()));
    pairs.push(("article:en*wiki".into(), b"x".to_vec()));
    pairs.push(("other:0".into(), b"x".to_vec()));
    pairs
}

/// The bulk commands' prefix listing on Redis: `SCAN MATCH` through many
/// cursor steps, only the prefix (glob characters in it match only
/// themselves), each key once, sorted.
#[test]
fn a_prefix_listing_on_redis_sees_the_prefix_only_once_each_sorted() -> Result<()> {
    use wikiedge_host::kv::Store;
    let redis = RedisServer::start()?;
    let store = wikiedge_host::kv::redis::RedisStore::new(&format!("{}/1", redis.url()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let pairs = prefixed_pairs();
    rt.block_on(store.set_many(pairs))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let keys = rt
        .block_on(store.get_keys_with_prefix("article:en*wiki:".into()))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(keys, prefixed_keys());
    // In database 1 only: the default store's database has none of them.
    assert_eq!(redis.cli(&["DBSIZE"])?, "0");
    Ok(())
}

/// Every key under `prefix`, walked with `scan_keys` `count` at a time,
/// and the number of steps it took.
fn scanned(
    rt: &tokio::runtime::Runtime,
    store: &dyn wikiedge_host::kv::Store,
    prefix: &str,
    count: usize,
) -> Result<(std::collections::BTreeSet<String>, usize)> {
    let (mut keys, mut steps, mut cursor) = (std::collections::BTreeSet::new(), 0, None);
    loop {
        let (batch, next) = rt
            .block_on(store.scan_keys(prefix.into(), cursor, count))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        steps += 1;
        ensure!(
            batch.iter().all(|k| k.starts_with(prefix)),
            "a step listed a key outside {prefix}: {batch:?}"
        );
        keys.extend(batch);
        match next {
            Some(next) => cursor = Some(next),
            None => return Ok((keys, steps)),
        }
    }
}

/// The listing a snapshot build on Redis spills to disk, a step at a time
/// (`Store::scan_keys`): on Redis and on SQLite, the steps together give
/// every key of the prefix (glob characters in it match only themselves)
/// and nothing else, in more than one step.
#[test]
fn scanning_keys_in_steps_sees_every_key_of_the_prefix_on_redis_and_sqlite() -> Result<()> {
    use wikiedge_host::kv::Store;
    let redis = RedisServer::start()?;
    let on_redis = wikiedge_host::kv::redis::RedisStore::new(&format!("{}/1", redis.url()))?;
    let dir = TempDir::new("scan")?;
    let db = wikiedge_host::kv::sqlite::SqliteDatabase::open(&dir.path().join("kv.db"))?;
    let on_sqlite = db.store("default");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let pairs = prefixed_pairs();
    let expected: std::collections::BTreeSet<String> = prefixed_keys().into_iter().collect();
    let stores: [(&str, &dyn Store); 2] = [("redis", &on_redis), ("sqlite", on_sqlite.as_ref())];
    for (name, store) in stores {
        rt.block_on(store.set_many(pairs.clone()))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let (keys, steps) = scanned(&rt, store, "article:en*wiki:", 100)?;
        assert_eq!(keys, expected, "{name}");
        assert!(steps > 2, "{name}: {steps} steps for 2500 keys, 100 a step");
    }
    Ok(())
}

/// Each serving thread has a Redis connection of its own. A connection's
/// answers are read by a task on the runtime that opened it: a thread
/// sharing its neighbour's connection waited, for each command, until the
/// neighbour's runtime next polled for I/O, which behind a busy guest is a
/// tick or two (10-20 ms), so an article request's six commands took
/// tens of milliseconds behind a busy thread.
#[test]
fn a_serving_thread_s_redis_commands_do_not_wait_for_a_busy_neighbour() -> Result<()> {
    use crate::instances::on_connection;
    use std::time::{Duration, Instant};
    let redis = RedisServer::start()?;
    let dir = TempDir::new("redis-threads")?;
    let host = builder(&redis, &dir)?
        .arg("--worker-threads")
        .arg("2")
        .arg("--request-cpu-limit-ms")
        .arg("5000")
        .start()?;
    let addr = host.addr().to_string();
    // Connections are handed to the threads in turn: one to each.
    let mut busy = std::net::TcpStream::connect(&addr)?;
    let mut other = std::net::TcpStream::connect(&addr)?;
    let increment = "/atomic/increment?key=n&delta=1";
    // The busy thread uses Redis first: a connection shared by both
    // threads would have been opened, and read, by its runtime.
    assert_eq!(on_connection(&mut busy, &addr, increment)?, "1");
    const ROUNDS: i64 = 60;
    let mut increments = |from: i64| -> Result<Duration> {
        let start = Instant::now();
        for i in 0..ROUNDS {
            let n = on_connection(&mut other, &addr, increment)?;
            ensure!(
                n == (from + i + 1).to_string(),
                "increment {i} answered {n}"
            );
        }
        Ok(start.elapsed())
    };
    let idle = increments(1)?;
    // A guest looping until its 5 s CPU limit holds the busy thread.
    crate::instances::send_on(&mut busy, &addr, "/loop")?;
    std::thread::sleep(Duration::from_millis(200));
    let beside = increments(1 + ROUNDS)?;
    // Sharing a connection they took 1.2 s: two ticks each. (Before a
    // guest yielded to I/O at every tick, they waited for the loop to end.)
    assert!(
        beside < idle * 4 + Duration::from_millis(300),
        "{ROUNDS} increments took {beside:?} beside a busy thread, {idle:?} with it idle"
    );
    assert_eq!(redis.cli(&["GET", "n"])?, (1 + 2 * ROUNDS).to_string());
    Ok(())
}
