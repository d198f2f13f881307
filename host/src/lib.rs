//! The wikiedge host: runs a Spin application (`spin.toml` and its `.wasm`
//! components) on wasmtime with the Spin behaviour the app relies on.
//!
//! Layout:
//! - [`manifest`]: parsing `spin.toml` (manifest v2).
//! - [`router`]: Spin's route matching.
//! - [`variables`]: application/component variables and `SPIN_VARIABLE_*`.
//! - [`outbound`]: the `allowed_outbound_hosts` allow-list.
//! - [`kv`]: key-value stores (SQLite, in Spin's layout, with group commit).
//! - [`kv_host`]: the component-facing bindings of key-value and variables.

pub mod account;
pub mod app;
pub mod build_cmd;
pub mod compose;
pub mod devkeys;
pub mod engine;
pub mod follow;
pub mod import;
pub mod import_wme;
pub mod kv;
pub mod kv_host;
pub mod manifest;
pub mod metrics;
pub mod outbound;
pub mod progress;
pub mod router;
pub mod runtime_config;
pub mod sample;
pub mod server;
pub mod snapshot;
pub mod snapshot_structured;
pub mod state;
pub mod variables;
