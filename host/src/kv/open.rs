//! Opening an application's key-value stores from its runtime
//! configuration: what `wikiedge up` serves components from, and what bulk
//! tools write through, so both see one store whatever backs it.

use super::sqlite::{CommitMode, Durability, SqliteDatabase};
use super::{Store, StoreRegistry};
use crate::runtime_config::{RuntimeConfig, StoreConfig};
use anyhow::{Context, Result, anyhow};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// How stores are opened.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreOptions {
    /// When SQLite writes reach the disk.
    pub durability: Durability,
    /// When a SQLite transaction commits: after each write, or before a
    /// reply (a server, which then settles the databases before each
    /// response and outbound request).
    pub commit: CommitMode,
    /// Report every compare-and-swap as failed after doing it, as Spin
    /// 4.1's Redis store does ([`super::misreport`]).
    pub emulate_spin_redis_cas: bool,
}

/// The opened stores, by label, and the SQLite databases behind them (kept
/// open as long as the stores are used).
pub struct OpenStores {
    /// Each label's store.
    pub registry: StoreRegistry,
    /// The distinct SQLite database files, each opened once.
    pub databases: Vec<Arc<SqliteDatabase>>,
}

/// Open the stores named by `labels`, each as the runtime configuration
/// defines it (an undefined label is an error, as in Spin).
pub fn open_stores<'a>(
    runtime: &RuntimeConfig,
    labels: impl IntoIterator<Item = &'a str>,
    opts: StoreOptions,
) -> Result<OpenStores> {
    let mut registry = StoreRegistry::default();
    let mut databases: BTreeMap<PathBuf, Arc<SqliteDatabase>> = BTreeMap::new();
    for label in labels {
        let config = runtime.key_value_stores.get(label).ok_or_else(|| {
            anyhow!(
                "key-value store \"{label}\" is used by a component but not defined; define [key_value_store.{label}] in a runtime config file"
            )
        })?;
        let store: Arc<dyn Store> = match config {
            StoreConfig::Sqlite(path) => {
                let db = match databases.get(path) {
                    Some(db) => db.clone(),
                    None => {
                        let db = SqliteDatabase::open_with(path, opts.durability, opts.commit)
                            .with_context(|| {
                                format!("cannot open key-value store {}", path.display())
                            })?;
                        databases.insert(path.clone(), db.clone());
                        db
                    }
                };
                db.store(label)
            }
            StoreConfig::Redis(url) => Arc::new(
                super::redis::RedisStore::new(url)
                    .with_context(|| format!("key-value store \"{label}\": invalid Redis URL"))?,
            ),
        };
        let store = if opts.emulate_spin_redis_cas {
            Arc::new(super::misreport::Misreporting(store))
        } else {
            store
        };
        registry.insert(label, store);
    }
    Ok(OpenStores {
        registry,
        databases: databases.into_values().collect(),
    })
}

/// An app's SQLite databases, shared by its server and the outbound hooks
/// of its instances: what is settled before a response head or an outbound
/// request leaves the process ([`CommitMode::BeforeReply`]).
#[derive(Clone, Default)]
pub struct Databases(Arc<[Arc<SqliteDatabase>]>);

impl Databases {
    /// These databases.
    pub fn new(databases: Vec<Arc<SqliteDatabase>>) -> Self {
        Databases(databases.into())
    }

    /// Returns once every write answered so far, in every database, is
    /// committed; the first failure otherwise.
    pub async fn settle(&self) -> super::KvResult<()> {
        for db in self.0.iter() {
            db.settle().await?;
        }
        Ok(())
    }

    /// The databases.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<SqliteDatabase>> {
        self.0.iter()
    }
}
