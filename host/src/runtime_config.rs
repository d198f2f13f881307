//! The runtime configuration file (`--runtime-config-file`), as Spin reads it.
//!
//! Only key-value stores are configured here:
//!
//! ```toml
//! [key_value_store.default]
//! type = "spin"                    # SQLite; path relative to this file
//! path = ".spin/sqlite_key_value.db"
//!
//! [key_value_store.shared]
//! type = "redis"                   # Redis, stored as Spin's Redis store does
//! url = "redis://127.0.0.1:6379"
//! ```
//!
//! Without a file (or without an entry for `default`), the `default` store is
//! SQLite at `<state-dir>/sqlite_key_value.db`, as with `spin up`. Every
//! other label a component declares must be defined here, or the app does
//! not load, as in Spin (spinframework/spin `crates/runtime-config/src/lib.rs`,
//! `key_value_config_resolver`, adds only `default`;
//! `crates/factor-key-value/src/lib.rs`, `configure_app`, refuses an
//! "unknown key_value_stores label"). Only without a file may the embedding
//! tool define more ([`RuntimeConfig::resolve`]): its own defaults.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A configured key-value store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// SQLite at this path.
    Sqlite(PathBuf),
    /// Redis at this URL.
    Redis(String),
}

/// The parsed runtime configuration.
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    /// Key-value stores by label.
    pub key_value_stores: BTreeMap<String, StoreConfig>,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    key_value_store: BTreeMap<String, RawStore>,
}

#[derive(Deserialize)]
struct RawStore {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

impl RuntimeConfig {
    /// The configuration with only the default store, in the state dir.
    pub fn defaults(state_dir: &Path) -> Self {
        let mut key_value_stores = BTreeMap::new();
        key_value_stores.insert(
            "default".to_string(),
            StoreConfig::Sqlite(state_dir.join("sqlite_key_value.db")),
        );
        RuntimeConfig { key_value_stores }
    }

    /// The stores an app runs with: the file's (and `default`) when there is
    /// a file; without one, `default` plus the embedding tool's `fallback`
    /// stores (never over what a file says: a file is the whole truth, as in
    /// Spin).
    pub fn resolve(
        file: Option<&Path>,
        state_dir: &Path,
        fallback: &BTreeMap<String, StoreConfig>,
    ) -> Result<Self> {
        match file {
            Some(path) => Self::load(path, state_dir),
            None => {
                let mut config = Self::defaults(state_dir);
                for (label, store) in fallback {
                    config
                        .key_value_stores
                        .entry(label.clone())
                        .or_insert_with(|| store.clone());
                }
                Ok(config)
            }
        }
    }

    /// Read a runtime config file, filling in the default store if absent.
    pub fn load(path: &Path, state_dir: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read runtime config {}", path.display()))?;
        let raw: Raw = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("invalid runtime config {}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut config = Self::defaults(state_dir);
        for (label, store) in raw.key_value_store {
            let entry = match store.kind.as_str() {
                "spin" => {
                    let p = store.path.unwrap_or_else(|| "sqlite_key_value.db".into());
                    let p = PathBuf::from(p);
                    StoreConfig::Sqlite(if p.is_absolute() { p } else { base.join(p) })
                }
                "redis" => match store.url {
                    Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
                        StoreConfig::Redis(url)
                    }
                    Some(url) => bail!(
                        "invalid runtime config {}: [key_value_store.{label}] url = \"{url}\" must be a redis:// URL",
                        path.display()
                    ),
                    None => bail!(
                        "invalid runtime config {}: [key_value_store.{label}] type = \"redis\" needs `url`",
                        path.display()
                    ),
                },
                other => bail!(
                    "invalid runtime config {}: [key_value_store.{label}] type = \"{other}\" is not supported (use \"spin\")",
                    path.display()
                ),
            };
            config.key_value_stores.insert(label, entry);
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_store_lives_in_the_state_dir() {
        let c = RuntimeConfig::defaults(Path::new(".spin"));
        assert_eq!(
            c.key_value_stores["default"],
            StoreConfig::Sqlite(PathBuf::from(".spin/sqlite_key_value.db"))
        );
    }

    #[test]
    fn fallback_stores_apply_only_without_a_file() -> Result<()> {
        let tmp = tempfile::tempdir()?;
        let fallback = BTreeMap::from([(
            "bulk".to_string(),
            StoreConfig::Sqlite(PathBuf::from("/s/bulk.db")),
        )]);
        let c = RuntimeConfig::resolve(None, Path::new("/s"), &fallback)?;
        assert_eq!(
            c.key_value_stores.keys().collect::<Vec<_>>(),
            ["bulk", "default"]
        );
        let file = tmp.path().join("rc.toml");
        std::fs::write(&file, "[key_value_store.default]\ntype = \"spin\"\n")?;
        let c = RuntimeConfig::resolve(Some(&file), Path::new("/s"), &fallback)?;
        assert!(!c.key_value_stores.contains_key("bulk"), "{c:?}");
        Ok(())
    }

    #[test]
    fn paths_are_relative_to_the_config_file() -> Result<()> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().to_path_buf();
        let file = dir.join("rc.toml");
        std::fs::write(
            &file,
            "[key_value_store.other]\ntype = \"spin\"\npath = \"data/o.db\"\n",
        )?;
        let c = RuntimeConfig::load(&file, Path::new("/state"))?;
        assert_eq!(
            c.key_value_stores["other"],
            StoreConfig::Sqlite(dir.join("data/o.db"))
        );
        assert_eq!(
            c.key_value_stores["default"],
            StoreConfig::Sqlite(PathBuf::from("/state/sqlite_key_value.db"))
        );
        std::fs::write(
            &file,
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:6390\"\n",
        )?;
        let c = RuntimeConfig::load(&file, Path::new("/s"))?;
        assert_eq!(
            c.key_value_stores["default"],
            StoreConfig::Redis("redis://127.0.0.1:6390".into())
        );
        std::fs::write(&file, "[key_value_store.default]\ntype = \"redis\"\n")?;
        assert!(RuntimeConfig::load(&file, Path::new("/s")).is_err());
        std::fs::write(&file, "[key_value_store.x]\ntype = \"mysql\"\n")?;
        assert!(RuntimeConfig::load(&file, Path::new("/s")).is_err());
        Ok(())
    }
}
