//! A key-value backend on Redis, stored the way Spin's Redis store stores it.
//!
//! Like Spin's `key-value-redis`: keys are plain Redis keys (each labelled
//! store has its own URL, so labels need no prefix), values are raw bytes,
//! `increment` is `INCRBY` (so counters are stored as decimal text, which is
//! what Spin's Redis store leaves behind too), and compare-and-swap uses
//! `WATCH`/`MULTI`/`EXEC` on a dedicated connection. Unlike Spin's, a CAS
//! whose transaction is aborted (because the key changed) reports the
//! conflict instead of succeeding silently.
//!
//! A thread that runs one runtime for its whole life (a serving thread:
//! [`serve_on_this_thread`]) has a connection of its own. A connection's
//! reader is a task on the runtime that opened it, so a serving thread
//! sharing another's connection had each command's answer wait until that
//! thread next polled its runtime (behind whatever guest it was running)
//! and woke it across cores for every command; an article request makes
//! six. Other threads (the CLI, startup) share one connection.
//!
//! When Redis is unreachable every operation fails promptly (commands time
//! out after [`OP_TIMEOUT`]) with an error the components map to 503; the
//! connection manager reconnects by itself when Redis is back. A command
//! that may run twice (everything but `INCRBY` and CAS) is sent once more
//! when it finds its connection dropped (Redis restarted since the
//! connection was last used): a store the outage did not touch (the
//! `bulk` store, say) would otherwise fail its first request after it.

use super::{KvError, KvResult, Store};
use futures::FutureExt;
use futures::future::BoxFuture;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

/// How long one Redis command may take before it counts as a failure.
pub const OP_TIMEOUT: Duration = Duration::from_secs(2);

/// A Redis-backed store (cheap to clone; clones share its connections).
#[derive(Clone)]
pub struct RedisStore(Arc<Inner>);

/// A connection, opened on first use.
type Lazy = Arc<tokio::sync::OnceCell<ConnectionManager>>;

struct Inner {
    client: redis::Client,
    /// The connection of the threads not marked by [`serve_on_this_thread`].
    shared: Lazy,
    /// Each marked thread's own connection, kept for the store's life (the
    /// serving threads live as long as the server that holds the store).
    per_thread: Mutex<HashMap<ThreadId, Lazy>>,
    url: String,
}

thread_local! {
    static SERVING: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread as one that runs a single runtime until it
/// ends, so that every store opens a connection of its own for it, whose
/// reader runs on that runtime. Unmarked threads share one connection: a
/// thread that built and dropped one runtime and then another (a test, a
/// CLI command) would otherwise keep a connection whose reader is gone.
pub fn serve_on_this_thread() {
    SERVING.with(|s| s.set(true));
}

fn unavailable(e: impl std::fmt::Display) -> KvError {
    KvError::Other(format!("redis unavailable: {e}"))
}

impl RedisStore {
    /// A store for this `redis://` URL. Connects lazily.
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        Ok(RedisStore(Arc::new(Inner {
            client,
            shared: Lazy::default(),
            per_thread: Mutex::new(HashMap::new()),
            url: url.to_string(),
        })))
    }

    /// The URL (for startup messages; it may hold a password, so callers
    /// should print only the host part).
    pub fn url(&self) -> &str {
        &self.0.url
    }

    /// The connection for the calling thread, opened on first use.
    async fn conn(&self) -> KvResult<ConnectionManager> {
        let lazy = if SERVING.with(Cell::get) {
            let mut per_thread = self.0.per_thread.lock().unwrap_or_else(|e| e.into_inner());
            per_thread
                .entry(std::thread::current().id())
                .or_default()
                .clone()
        } else {
            self.0.shared.clone()
        };
        // Configured only when a connection is opened, not per command.
        lazy.get_or_try_init(|| async {
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(OP_TIMEOUT))
                .set_response_timeout(Some(OP_TIMEOUT))
                .set_number_of_retries(1);
            tokio::time::timeout(
                OP_TIMEOUT * 2,
                self.0.client.get_connection_manager_with_config(config),
            )
            .await
            .map_err(|_| unavailable("connect timed out"))?
            .map_err(unavailable)
        })
        .await
        .cloned()
    }

    async fn attempt<T>(
        &self,
        f: impl AsyncFnOnce(ConnectionManager) -> redis::RedisResult<T>,
    ) -> KvResult<redis::RedisResult<T>> {
        let conn = self.conn().await?;
        tokio::time::timeout(OP_TIMEOUT, f(conn))
            .await
            .map_err(|_| unavailable("command timed out"))
    }

    /// Runs a command once (one that must not run twice: `INCRBY`).
    async fn run<T>(
        &self,
        f: impl AsyncFnOnce(ConnectionManager) -> redis::RedisResult<T>,
    ) -> KvResult<T> {
        self.attempt(f).await?.map_err(unavailable)
    }

    /// Runs a command that may run twice, and runs it again if its
    /// connection had dropped (the manager has reconnected by then).
    async fn run_idempotent<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> KvResult<T> {
        match self
            .attempt(async |mut c| cmd.query_async(&mut c).await)
            .await?
        {
            Err(e) if e.is_connection_dropped() || e.is_io_error() => self
                .attempt(async |mut c| cmd.query_async(&mut c).await)
                .await?
                .map_err(unavailable),
            other => other.map_err(unavailable),
        }
    }

    /// One `SCAN` step from `cursor` over the keys matching `pattern`:
    /// the next cursor (0 after the last step) and the keys, a key perhaps
    /// given again in another step. Each step is one short command: `SCAN`
    /// never blocks the server.
    async fn scan(&self, cursor: u64, pattern: &str, count: usize) -> KvResult<(u64, Vec<String>)> {
        let scan = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(count.max(1))
            .to_owned();
        self.run_idempotent(&scan).await
    }

    async fn cas(&self, key: String, expected: Option<Vec<u8>>, new: Vec<u8>) -> KvResult<bool> {
        // A dedicated connection: WATCH is per connection.
        let fut = async {
            let mut conn = self
                .0
                .client
                .get_multiplexed_async_connection()
                .await
                .map_err(unavailable)?;
            redis::cmd("WATCH")
                .arg(&key)
                .exec_async(&mut conn)
                .await
                .map_err(unavailable)?;
            let current: Option<Vec<u8>> = conn.get(&key).await.map_err(unavailable)?;
            if current != expected {
                let _: redis::RedisResult<()> = redis::cmd("UNWATCH").query_async(&mut conn).await;
                return Ok(false);
            }
            // EXEC answers nil when a watched key changed: the conflict.
            let result: Option<(String,)> = redis::pipe()
                .atomic()
                .set(&key, new)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            Ok(result.is_some())
        };
        tokio::time::timeout(OP_TIMEOUT * 2, fut)
            .await
            .map_err(|_| unavailable("CAS timed out"))?
    }
}

impl Store for RedisStore {
    fn get_shared(&self, key: String) -> BoxFuture<'static, KvResult<Option<Arc<Vec<u8>>>>> {
        let this = self.arc();
        async move {
            let value = this
                .run_idempotent::<Option<Vec<u8>>>(redis::cmd("GET").arg(&key))
                .await?;
            Ok(value.map(Arc::new))
        }
        .boxed()
    }

    fn set(&self, key: String, value: Vec<u8>) -> BoxFuture<'static, KvResult<()>> {
        let this = self.arc();
        async move {
            this.run_idempotent::<()>(redis::cmd("SET").arg(&key).arg(&value))
                .await
        }
        .boxed()
    }

    fn delete(&self, key: String) -> BoxFuture<'static, KvResult<()>> {
        let this = self.arc();
        async move { this.run_idempotent::<()>(redis::cmd("DEL").arg(&key)).await }.boxed()
    }

    fn exists(&self, key: String) -> BoxFuture<'static, KvResult<bool>> {
        let this = self.arc();
        async move {
            this.run_idempotent::<bool>(redis::cmd("EXISTS").arg(&key))
                .await
        }
        .boxed()
    }

    fn get_keys(&self) -> BoxFuture<'static, KvResult<Vec<String>>> {
        let this = self.arc();
        async move {
            this.run_idempotent::<Vec<String>>(redis::cmd("KEYS").arg("*"))
                .await
        }
        .boxed()
    }

    fn get_keys_page(
        &self,
        _prefix: String,
        _after: Option<String>,
        _limit: usize,
    ) -> BoxFuture<'static, KvResult<Option<Vec<String>>>> {
        // SCAN's cursor walks the hash table, not the keys in order.
        async { Ok(None) }.boxed()
    }

    fn scan_keys(
        &self,
        prefix: String,
        cursor: Option<String>,
        count: usize,
    ) -> BoxFuture<'static, KvResult<(Vec<String>, Option<String>)>> {
        let this = self.arc();
        async move {
            let cursor: u64 = match cursor.as_deref().map(str::parse).transpose() {
                Ok(cursor) => cursor.unwrap_or(0),
                Err(_) => return Err(KvError::Other(format!("not a SCAN cursor: {cursor:?}"))),
            };
            let pattern = super::prefix::redis_pattern(&prefix);
            let (next, mut keys) = this.scan(cursor, &pattern, count).await?;
            // MATCH is a glob: keep only what starts with the prefix itself.
            keys.retain(|k| k.starts_with(&prefix));
            Ok((keys, (next != 0).then(|| next.to_string())))
        }
        .boxed()
    }

    fn get_keys_with_prefix(&self, prefix: String) -> BoxFuture<'static, KvResult<Vec<String>>> {
        let this = self.arc();
        async move {
            let pattern = super::prefix::redis_pattern(&prefix);
            let (mut keys, mut cursor) = (Vec::new(), 0u64);
            loop {
                let (next, batch) = this.scan(cursor, &pattern, 1000).await?;
                keys.extend(batch);
                if next == 0 {
                    // SCAN may repeat a key; the prefix filter sorts and dedups.
                    return Ok(super::prefix::filter(keys, &prefix));
                }
                cursor = next;
            }
        }
        .boxed()
    }

    fn get_many(&self, keys: Vec<String>) -> BoxFuture<'static, KvResult<super::KeyValues>> {
        let this = self.arc();
        async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let values: Vec<Option<Vec<u8>>> =
                this.run_idempotent(redis::cmd("MGET").arg(&keys)).await?;
            Ok(keys.into_iter().zip(values).collect())
        }
        .boxed()
    }

    fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> BoxFuture<'static, KvResult<()>> {
        let this = self.arc();
        async move {
            if pairs.is_empty() {
                return Ok(());
            }
            this.run_idempotent::<()>(redis::cmd("MSET").arg(&pairs))
                .await
        }
        .boxed()
    }

    fn delete_many(&self, keys: Vec<String>) -> BoxFuture<'static, KvResult<()>> {
        let this = self.arc();
        async move {
            if keys.is_empty() {
                return Ok(());
            }
            this.run_idempotent::<()>(redis::cmd("DEL").arg(&keys))
                .await
        }
        .boxed()
    }

    fn increment(&self, key: String, delta: i64) -> BoxFuture<'static, KvResult<i64>> {
        let this = self.arc();
        async move {
            this.run(async |mut c| c.incr::<_, _, i64>(&key, delta).await)
                .await
        }
        .boxed()
    }

    fn compare_and_swap(
        &self,
        key: String,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
    ) -> BoxFuture<'static, KvResult<bool>> {
        let this = self.arc();
        async move { this.cas(key, expected, new).await }.boxed()
    }
}

impl RedisStore {
    fn arc(&self) -> RedisStore {
        self.clone()
    }
}
