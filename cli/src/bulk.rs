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

    /// The values (payloads) of `keys`, in order, the unflushed writes
    /// included; `None` where absent.
    pub fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        let missing: Vec<String> = keys
            .iter()
            .filter(|k| !self.pending.contains_key(*k))
            .cloned()
            .collect();
        let n = missing.len();
        let mut stored = self
            .rt
            .block_on(self.store.get_many(missing))
            .map_err(|e| anyhow!("reading {n} keys: {e}"))?
            .into_iter();
        keys.iter()
            .map(|key| match self.pending.get(key) {
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
