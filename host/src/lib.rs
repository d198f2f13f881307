//! wikiedge-host: a Spin-compatible runtime on wasmtime, as a library.
//!
//! It runs a Spin application (`spin.toml` and its `.wasm` components) with
//! the Spin behaviour such an application relies on, and knows nothing of
//! what the application does: no articles, no accounts. The `wikiedge`
//! command (crate `cli/`) puts the app's own operator commands on top.
//!
//! Layout:
//! - [`manifest`] (with its Spin rules) and [`compose`]: loading `spin.toml`
//!   and composing component dependencies as `spin up` does.
//! - [`router`]: Spin's route matching.
//! - [`variables`]: application/component variables and `SPIN_VARIABLE_*`.
//! - [`outbound`]: the `allowed_outbound_hosts` allow-list.
//! - [`kv`]: key-value stores (SQLite in Spin's layout, Redis), and
//!   [`kv_host`], the component-facing bindings of key-value and variables.
//! - [`engine`], [`app`], [`state`], [`server`]: compiling, instantiating
//!   and serving components over HTTP, with the limits in `docs/limits.md`.
//! - [`build_cmd`]: the manifest's build commands (`spin build`).
//! - [`idle`]: giving memory back once the host goes quiet.
//! - [`shard`]: one instance pool per serving thread.
//! - [`runtime_config`], [`metrics`].

pub mod app;
pub mod build_cmd;
pub mod compiled;
pub mod compose;
pub mod engine;
pub mod idle;
pub mod kv;
pub mod kv_host;
pub mod manifest;
pub mod metrics;
pub mod outbound;
pub mod router;
pub mod runtime_config;
pub mod server;
pub mod shard;
pub mod state;
pub mod variables;
