//! Bulk writes through the runtime's store trait, so the operator commands
//! (`wikiedge import`, ...) load whatever store the app is served from:
//! SQLite in the state directory by default, or the store a runtime config
//! names (Redis, say), opened by the same code `wikiedge up` uses
//! ([`wikiedge_host::kv::open`]).
//!
//! Writes are buffered and go out as one `set_many` per batch (one SQLite
//! transaction; one Redis pipeline), bounded by count and by bytes, so memory
//! stays bounded whatever the input. Reads see the unflushed writes first.
//! Values are read out of their compare-and-swap envelope
//! ([`wikiedge_core::cas`]), as components read them.
//!
//! Bulk writes are plain sets: a title index the serving app updates by
//! compare-and-swap at the same moment may lose that update (it is fetched
//! again later); bulk loads are meant for loading, not for a busy store.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use wikiedge_host::kv::Store;
use wikiedge_host::kv::open::{OpenStores, StoreOptions, open_stores};
use wikiedge_host::kv::sqlite::Durability;
use wikiedge_host::runtime_config::RuntimeConfig;

/// Where a bulk command writes: a store label of the app, as the state
/// directory and an optional runtime config define it (as for `wikiedge up`).
#[derive(Debug, Clone)]
pub struct Target {
    /// The state directory (its SQLite file is the default store).
    pub state_dir: PathBuf,
    /// A runtime config file defining the stores, as `wikiedge up` takes.
    pub runtime_config: Option<PathBuf>,
    /// The store label.
    pub label: String,
}

impl Target {
    /// Store `label` as `wikiedge up --state-dir state_dir` would open it.
    pub fn new(state_dir: impl Into<PathBuf>, label: &str) -> Self {
        Target {
            state_dir: state_dir.into(),
            runtime_config: None,
            label: label.to_string(),
        }
    }
}

/// Flush after this many buffered writes...
const MAX_ENTRIES: usize = 2_000;
/// ... or this many buffered bytes.
const MAX_BYTES: usize = 32 << 20;

/// A store opened for bulk loading.
pub struct Bulk {
    rt: tokio::runtime::Runtime,
    store: Arc<dyn Store>,
    // Keeps the SQLite writer alive as long as the store.
    _open: OpenStores,
    pending: BTreeMap<String, Vec<u8>>,
    pending_bytes: usize,
}

impl Bulk {
    /// Open the target's store.
    pub fn open(target: &Target) -> Result<Bulk> {
        std::fs::create_dir_all(&target.state_dir)
            .with_context(|| format!("creating {}", target.state_dir.display()))?;
        let runtime = match &target.runtime_config {
            Some(path) => RuntimeConfig::load(path, &target.state_dir)?,
            None => RuntimeConfig::defaults(&target.state_dir),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        // Every batch is a checkpoint a re-run starts from, so each one is
        // made durable before the next (one fsync per batch, not per key).
        let open = rt.block_on(async {
            open_stores(
                &runtime,
                [target.label.as_str()],
                StoreOptions {
                    durability: Durability::Fsync,
                    emulate_spin_redis_cas: false,
                },
            )
        })?;
        let store = open
            .registry
            .get(&target.label)
            .ok_or_else(|| anyhow!("no key-value store \"{}\"", target.label))?;
        Ok(Bulk {
            rt,
            store,
            _open: open,
            pending: BTreeMap::new(),
            pending_bytes: 0,
        })
    }

    /// The value at `key` (its payload), the unflushed writes included.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        if let Some(v) = self.pending.get(key) {
            return Ok(Some(v.clone()));
        }
        let value = self
            .rt
            .block_on(self.store.get(key.to_string()))
            .map_err(|e| anyhow!("reading {key}: {e}"))?;
        Ok(value.map(|v| wikiedge_core::cas::payload(&v).to_vec()))
    }

    /// Sets `key` (buffered; flushed in batches).
    pub fn set(&mut self, key: String, value: Vec<u8>) -> Result<()> {
        self.set_all([(key, value)])
    }

    /// Sets every pair in the same batch: they reach the store together
    /// (one SQLite transaction, one Redis `MSET`) or not at all.
    pub fn set_all(&mut self, pairs: impl IntoIterator<Item = (String, Vec<u8>)>) -> Result<()> {
        for (key, value) in pairs {
            self.pending_bytes += key.len() + value.len();
            if let Some(old) = self.pending.insert(key, value) {
                self.pending_bytes -= old.len();
            }
        }
        if self.pending.len() >= MAX_ENTRIES || self.pending_bytes >= MAX_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes what is buffered, and waits until the store has it.
    pub fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pairs: Vec<(String, Vec<u8>)> = std::mem::take(&mut self.pending).into_iter().collect();
        self.pending_bytes = 0;
        let n = pairs.len();
        self.rt
            .block_on(self.store.set_many(pairs))
            .map_err(|e| anyhow!("writing {n} keys: {e}"))
    }
}

impl Drop for Bulk {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            tracing::warn!(
                "bulk store dropped with {} unflushed writes (an error stopped the command)",
                self.pending.len()
            );
        }
    }
}
