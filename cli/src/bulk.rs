//! Bulk writes through the runtime's store trait, so the operator commands
//! (`wikiedge import`, ...) load whatever store the app is served from:
//! SQLite in the state directory by default, or the store a runtime config
//! names (Redis, say), opened by the same code `wikiedge up` uses
//! ([`wikiedge_host::kv::open`]).
//!
//! Writes are buffered and go out as one `set_many` per batch (one SQLite
//! transaction; one Redis pipeline), bounded by count and by bytes, so memory
//! stays bounded whatever the input (at most two batches: the one filling
//! and the one being written). A full batch is written in the background
//! while the caller goes on filling the next, so parsing and transforming
//! overlap the store's writing instead of waiting for it; at most one batch
//! is in flight, and batches reach the store in order. Reads see the
//! unflushed and in-flight writes first.
//! Values are read out of their compare-and-swap envelope
//! ([`wikiedge_core::cas`]), as components read them.
//!
//! Bulk writes are plain sets: a title index the serving app updates by
//! compare-and-swap at the same moment may lose that update (it is fetched
//! again later); bulk loads are meant for loading, not for a busy store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use wikiedge_host::kv::Store;
use wikiedge_host::kv::open::{OpenStores, StoreOptions, open_stores};
use wikiedge_host::kv::sqlite::Durability;
use wikiedge_host::runtime_config::{RuntimeConfig, StoreConfig};

/// The stores the app's components declare beyond `default`, as `wikiedge
/// up` defines them when no runtime config file is given: `bulk`
/// ([`wikiedge_core::stores::BULK`]) in the state directory's SQLite file,
/// next to `default`. With a file, the file must define them (as Spin
/// requires).
pub fn store_defaults(state_dir: &Path) -> BTreeMap<String, StoreConfig> {
    BTreeMap::from([(
        wikiedge_core::stores::BULK.to_string(),
        StoreConfig::Sqlite(state_dir.join(wikiedge_host::kv::sqlite::FILE_NAME)),
    )])
}

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
const MAX_BYTES: usize = 4 << 20;

/// A store opened for bulk loading.
pub struct Bulk {
    rt: tokio::runtime::Runtime,
    store: Arc<dyn Store>,
    // Keeps the SQLite writer alive as long as the store.
    _open: OpenStores,
    pending: BTreeMap<String, Vec<u8>>,
    pending_bytes: usize,
    /// The batch being written, if any: its pairs (for reads meanwhile)
    /// and the write's task.
    in_flight: Option<InFlight>,
}

/// A batch handed to the store and not yet known written.
struct InFlight {
    pairs: BTreeMap<String, Vec<u8>>,
    write: tokio::task::JoinHandle<Result<()>>,
}

impl Bulk {
    /// Open the target's store.
    pub fn open(target: &Target) -> Result<Bulk> {
        std::fs::create_dir_all(&target.state_dir)
            .with_context(|| format!("creating {}", target.state_dir.display()))?;
        let runtime = RuntimeConfig::resolve(
            target.runtime_config.as_deref(),
            &target.state_dir,
            &store_defaults(&target.state_dir),
        )?;
        // One worker drives the batch in flight (a Redis pipeline needs
        // polling; SQLite's background committer needs only its reply awaited)
        // while the caller's thread fills the next.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bulk-store")
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
                    commit: Default::default(),
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
            in_flight: None,
        })
    }

    /// A value written but maybe not yet stored: buffered, or in flight.
    fn unstored(&self, key: &str) -> Option<&Vec<u8>> {
        self.pending
            .get(key)
            .or_else(|| self.in_flight.as_ref()?.pairs.get(key))
    }

    /// The value at `key` (its payload), the unflushed writes included.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        if let Some(v) = self.unstored(key) {
            return Ok(Some(v.clone()));
        }
        let value = self
            .rt
            .block_on(self.store.get(key.to_string()))
            .map_err(|e| anyhow!("reading {key}: {e}"))?;
        Ok(value.map(|v| wikiedge_core::cas::payload(&v).to_vec()))
    }

    /// The values (payloads) of `keys`, in order, the unflushed writes
    /// included; `None` where absent.
    pub fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        let missing: Vec<String> = keys
            .iter()
            .filter(|k| self.unstored(k).is_none())
            .cloned()
            .collect();
        let n = missing.len();
        let mut stored = self
            .rt
            .block_on(self.store.get_many(missing))
            .map_err(|e| anyhow!("reading {n} keys: {e}"))?
            .into_iter();
        keys.iter()
            .map(|key| match self.unstored(key) {
                Some(v) => Ok(Some(v.clone())),
                None => match stored.next() {
                    Some((k, v)) if &k == key => {
                        Ok(v.map(|v| wikiedge_core::cas::payload(&v).to_vec()))
                    }
                    _ => Err(anyhow!("the store answered get-many out of order")),
                },
            })
            .collect()
    }

    /// The stored keys under `prefix`, sorted (flushes first, so the
    /// unflushed writes are among them).
    pub fn keys(&mut self, prefix: &str) -> Result<Vec<String>> {
        self.flush()?;
        self.rt
            .block_on(self.store.get_keys_with_prefix(prefix.to_string()))
            .map_err(|e| anyhow!("listing {prefix}*: {e}"))
    }

    /// At most `limit` stored keys under `prefix`, sorted, each after
    /// `after` (from the first when `None`); flushes first, as
    /// [`Bulk::keys`]. `None` when the store has no ordered pages (Redis):
    /// list them with [`Bulk::keys`] instead.
    pub fn keys_page(
        &mut self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Option<Vec<String>>> {
        self.flush()?;
        self.rt
            .block_on(self.store.get_keys_page(
                prefix.to_string(),
                after.map(str::to_string),
                limit,
            ))
            .map_err(|e| anyhow!("listing a page of {prefix}*: {e}"))
    }

    /// One step of listing the stored keys under `prefix` in no set order
    /// (`Store::scan_keys`): about `count` keys, perhaps some given before,
    /// and the cursor of the next step (`None` after the last); flushes
    /// first, as [`Bulk::keys`].
    pub fn scan_keys(
        &mut self,
        prefix: &str,
        cursor: Option<String>,
        count: usize,
    ) -> Result<(Vec<String>, Option<String>)> {
        self.flush()?;
        self.rt
            .block_on(self.store.scan_keys(prefix.to_string(), cursor, count))
            .map_err(|e| anyhow!("listing {prefix}* a step at a time: {e}"))
    }

    /// Deletes `keys` (after flushing what is buffered, so a delete is
    /// never overtaken by an earlier write).
    pub fn delete_many(&mut self, keys: Vec<String>) -> Result<()> {
        self.flush()?;
        let n = keys.len();
        for batch in keys.chunks(MAX_ENTRIES) {
            self.rt
                .block_on(self.store.delete_many(batch.to_vec()))
                .map_err(|e| anyhow!("deleting {n} keys: {e}"))?;
        }
        Ok(())
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
            self.submit()?;
        }
        Ok(())
    }

    /// Waits for the batch in flight, if any; its error, if it failed.
    fn settle(&mut self) -> Result<()> {
        let Some(InFlight { pairs, write }) = self.in_flight.take() else {
            return Ok(());
        };
        let n = pairs.len();
        self.rt
            .block_on(write)
            .map_err(|e| anyhow!("writing {n} keys: the write task failed: {e}"))?
    }

    /// Hands what is buffered to the store in the background, once the
    /// previous batch is written (so batches land in order, and a failed
    /// one stops the caller at its next batch or flush).
    fn submit(&mut self) -> Result<()> {
        self.settle()?;
        if self.pending.is_empty() {
            return Ok(());
        }
        let pairs = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let batch: Vec<(String, Vec<u8>)> =
            pairs.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let n = batch.len();
        let store = self.store.clone();
        let write = self.rt.spawn(async move {
            store
                .set_many(batch)
                .await
                .map_err(|e| anyhow!("writing {n} keys: {e}"))
        });
        self.in_flight = Some(InFlight { pairs, write });
        Ok(())
    }

    /// Writes what is buffered, and waits until the store has it (and
    /// every earlier batch).
    pub fn flush(&mut self) -> Result<()> {
        self.submit()?;
        self.settle()
    }
}

impl Drop for Bulk {
    fn drop(&mut self) {
        let unflushed = self.pending.len() + self.in_flight.as_ref().map_or(0, |f| f.pairs.len());
        if unflushed > 0 {
            tracing::warn!(
                "bulk store dropped with {unflushed} writes not confirmed stored (an error stopped the command)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use wikiedge_host::manifest::Manifest;

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("cli/ is one level below the workspace")
            .to_path_buf()
    }

    /// The stores the app's components declare in spin.toml.
    fn declared() -> Result<BTreeSet<String>> {
        let manifest = Manifest::load(&repo().join("spin.toml"))?;
        Ok(manifest
            .components
            .values()
            .flat_map(|c| c.key_value_stores.iter().cloned())
            .collect())
    }

    /// The TOML of the runtime-config secret in deploy/spinapp.yaml.
    fn spinapp_runtime_config() -> Result<String> {
        let yaml = std::fs::read_to_string(repo().join("deploy/spinapp.yaml"))?;
        let mut lines = yaml
            .lines()
            .skip_while(|l| !l.ends_with("runtime-config.toml: |"));
        lines.next();
        Ok(lines
            .take_while(|l| l.is_empty() || l.starts_with("    "))
            .map(|l| l.strip_prefix("    ").unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// Every runtime config the repository ships is one `wikiedge up
    /// --runtime-config-file` (and so Spin) accepts for this app: it parses,
    /// and it defines, itself, every store a component declares.
    #[test]
    fn the_shipped_runtime_configs_define_every_store_the_app_declares() -> Result<()> {
        let declared = declared()?;
        assert_eq!(
            declared,
            BTreeSet::from([
                wikiedge_core::stores::DEFAULT.to_string(),
                wikiedge_core::stores::BULK.to_string()
            ])
        );
        let tmp = tempfile::tempdir()?;
        let spinapp = tmp.path().join("spinapp-runtime-config.toml");
        std::fs::write(&spinapp, spinapp_runtime_config()?)?;
        let mut files = vec![repo().join("runtime-config.toml"), spinapp];
        for entry in std::fs::read_dir(repo().join("deploy"))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "toml") {
                files.push(path);
            }
        }
        assert!(files.len() >= 5, "{files:?}");
        for file in &files {
            let text = std::fs::read_to_string(file)?;
            let config = RuntimeConfig::load(file, Path::new("/state"))?;
            for label in &declared {
                // Spin adds only `default` by itself: the file must say.
                assert!(
                    text.contains(&format!("[key_value_store.{label}]")),
                    "{} does not define {label}",
                    file.display()
                );
                assert!(config.key_value_stores.contains_key(label));
            }
        }
        // The enwiki configurations keep counters apart from bulk bytes.
        let split = RuntimeConfig::load(
            &repo().join("deploy/runtime-config.enwiki-sqlite-bulk.toml"),
            Path::new("/state"),
        )?;
        assert!(matches!(
            split.key_value_stores["default"],
            StoreConfig::Redis(_)
        ));
        assert_eq!(
            split.key_value_stores["bulk"],
            StoreConfig::Sqlite(PathBuf::from("/var/lib/wikiedge/bulk.db"))
        );
        Ok(())
    }

    /// Without a runtime config file, `wikiedge up` and the bulk commands
    /// define both stores, in the state directory's SQLite file.
    #[test]
    fn without_a_file_both_stores_live_in_the_state_dir() -> Result<()> {
        let state = Path::new("/state");
        let config = RuntimeConfig::resolve(None, state, &store_defaults(state))?;
        let file = StoreConfig::Sqlite(state.join("sqlite_key_value.db"));
        for label in declared()? {
            assert_eq!(config.key_value_stores.get(&label), Some(&file), "{label}");
        }
        Ok(())
    }

    /// What a bulk command writes lands in the labelled store only.
    /// A full batch is written in the background; meanwhile reads see it
    /// (not the older stored value under the same key), later batches
    /// land after it, and after a flush a fresh open reads the last value
    /// of every key.
    #[test]
    fn reads_see_the_batch_in_flight_and_batches_land_in_order() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let target = Target::new(dir.path(), wikiedge_core::stores::BULK);
        let mut bulk = Bulk::open(&target)?;
        let key = |i: usize| format!("k:{i:05}");
        // Round r writes every key with value r; each round is more than
        // one batch, so a key's earlier value is stored or in flight when
        // the next round overwrites it.
        let keys = MAX_ENTRIES * 2 + 7;
        for round in 0..3u8 {
            for i in 0..keys {
                bulk.set(key(i), vec![round; 8])?;
                if i % 997 == 0 {
                    assert_eq!(bulk.get(&key(i))?, Some(vec![round; 8]));
                }
            }
            assert!(bulk.in_flight.is_some(), "round {round}: a batch in flight");
            let in_flight: Vec<String> = bulk
                .in_flight
                .as_ref()
                .map(|f| f.pairs.keys().cloned().collect())
                .unwrap_or_default();
            for k in in_flight.iter().step_by(101) {
                assert_eq!(bulk.get(k)?, Some(vec![round; 8]), "{k} in flight");
            }
            let sample: Vec<String> = (0..keys).step_by(331).map(key).collect();
            assert!(
                bulk.get_many(&sample)?
                    .iter()
                    .all(|v| v.as_deref() == Some(&[round; 8][..]))
            );
        }
        bulk.flush()?;
        assert!(bulk.in_flight.is_none() && bulk.pending.is_empty());
        drop(bulk);
        let reopened = Bulk::open(&target)?;
        let all: Vec<String> = (0..keys).map(key).collect();
        let values = reopened.get_many(&all)?;
        assert!(values.iter().all(|v| v.as_deref() == Some(&[2u8; 8][..])));
        Ok(())
    }

    #[test]
    fn a_bulk_target_writes_its_own_label() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let mut bulk = Bulk::open(&Target::new(dir.path(), wikiedge_core::stores::BULK))?;
        bulk.set("k:1".into(), b"one".to_vec())?;
        bulk.set("k:2".into(), b"two".to_vec())?;
        bulk.set("other".into(), b"x".to_vec())?;
        assert_eq!(bulk.keys("k:")?, ["k:1", "k:2"]);
        assert_eq!(
            bulk.get_many(&["k:2".into(), "none".into(), "k:1".into()])?,
            [Some(b"two".to_vec()), None, Some(b"one".to_vec())]
        );
        bulk.delete_many(vec!["k:1".into()])?;
        assert_eq!(bulk.keys("k:")?, ["k:2"]);
        drop(bulk);
        let default = Bulk::open(&Target::new(dir.path(), wikiedge_core::stores::DEFAULT))?;
        assert_eq!(default.get("k:2")?, None);
        Ok(())
    }
}
