//! The pure core of wikiedge.
//!
//! Everything a wikiedge function decides lives here, free of I/O, of
//! spin-sdk and of wasmtime, so that it can be unit-tested natively and
//! compiled unchanged into every wasm32-wasip2 component.
//!
//! Layout:
//! - [`error`]: the crate's typed error and its single mapping to HTTP.
//! - [`reply`]: the error response and the JSON request body rules every component applies.
//! - [`auth`]: accounts, passwords (Argon2id), JWTs (EdDSA), refresh tokens.
//! - [`quota`]: plans, overrides, periods, admit/deny decisions, RateLimit headers.
//! - [`metering`]: usage keys, daily rows, reports.
//! - [`article`]: the WME article schema, MediaWiki and dump transforms, projection.
//! - [`projects`]: the project registry built from the site matrix.
//! - [`realtime`]: page changes, the partitioned event log, stream requests.
//! - [`snapshot`]: snapshot metadata, key layout, byte ranges, HTTP dates.
//! - [`listing`]: append-only listings (accounts, a month's accounts with usage), O(1) to add to, read in pages.
//! - [`cas`]: compare-and-swap updates that stay exact when a store misreports them.
//! - [`stores`]: the key-value store labels by purpose (`default`, `bulk`).
//! - [`sse`]: the Server-Sent Events parser every SSE reader uses.
//! - [`time`]: calendar arithmetic, RFC 3339 timestamps and HTTP dates, once.

#![deny(missing_docs)]

pub mod error;

pub use error::{Error, ErrorBody, Result};
pub mod article;
pub mod auth;
pub mod cas;
pub mod listing;
pub mod metering;
pub mod projects;
pub mod quota;
pub mod realtime;
pub mod reply;
pub mod snapshot;
pub mod sse;
pub mod stores;
pub mod time;
