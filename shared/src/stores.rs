//! The key-value stores by purpose: the one definition of the labels the
//! components declare in `spin.toml`, open, and the bulk commands write.
//!
//! - [`DEFAULT`] (`default`): what must be exact and shared by every
//!   instance: accounts, sessions and refresh tokens, quota and usage
//!   counters, download markers, concurrency slots, the realtime log.
//!   Small values, many atomic increments: Redis in a deployment of
//!   several instances.
//! - [`BULK`] (`bulk`): the large bytes, and the records that say where
//!   they are: cached articles and their title index
//!   ([`crate::article::layout`]), snapshot records and parts
//!   ([`crate::snapshot`]), realtime batch indexes and parts
//!   ([`crate::realtime::batch`]). Everything here can be rebuilt (fetched
//!   again, imported, built again), so it may sit on a store sized for
//!   bytes rather than for increments: SQLite per node as a cache, or a
//!   shared store (deploy/capacity.md).
//!
//! Spin defines `default` by itself; `bulk`, like any other label, must be
//! defined in the runtime config file (`[key_value_store.bulk]`), or Spin
//! refuses to load the app (spinframework/spin
//! `crates/factor-key-value/src/lib.rs`, `configure_app`: "unknown
//! key_value_stores label"). `wikiedge up` without a runtime config file
//! puts both in the state directory's SQLite file.

/// Accounts, sessions, counters, markers, the realtime log.
pub const DEFAULT: &str = "default";
/// Cached articles, snapshot parts, realtime batch parts, and their records.
pub const BULK: &str = "bulk";
