//! Metering: usage counters per account, product and UTC day, and reports.
//!
//! The metering component increments the counters [`increments`] names
//! (atomically, once per request), lists each month's accounts with usage
//! ([`index`]: O(1) per account, read back in pages), and answers `GET /v1/usage` by reading the keys of a
//! [`UsageQuery`] and building [`UsageRow`]s. No storage access happens
//! here; counter bytes are decoded with [`decode_counter`].
//!
//! Layout:
//! - [`product`]: the metered products (structured contents apart).
//! - [`event`]: counter keys and one event's increments.
//! - [`counter`]: the store's 8-byte little-endian counter encoding.
//! - [`index`]: the per-month listing of accounts with usage.
//! - [`query`]: the validated date range of a usage query.
//! - [`rows`]: daily rows, admin monthly rows, CSV rendering.

pub mod counter;
pub mod event;
pub mod index;
pub mod product;
pub mod query;
pub mod rows;

pub use counter::decode_counter;
pub use event::{Kind, Outcome, increments, usage_key};
pub use product::MeteredProduct;
pub use query::UsageQuery;
pub use rows::{AccountUsageRow, UsageRow, build_rows, monthly_rows, to_csv};
