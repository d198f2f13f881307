//! The Realtime API core: EventStreams page changes in, WME events out,
//! over a partitioned, offset-addressed log.
//!
//! - [`batch`]: hourly batches (hour ranges, metadata, a one-file tar).
//! - [`batch_build`]: building a range's batches: selection, the two
//!   passes, parts under the byte budget, what a build stores and replaces.
//! - [`change`]: `mediawiki.page_change.v1` events -> [`change::Change`]s
//!   (event type, suppression, batches as JSON, arrays or NDJSON).
//! - [`media`]: the Commons `upload.wikimedia.org` URL of a file.
//! - [`log`]: partitions (FNV-1a of the page), key names, the small meta
//!   record kept beside each entry, and the SSE cursor.
//! - [`log_policy`]: the log's decisions over what a component reads: gap
//!   staleness, compaction plans, the `since` search.
//! - [`request`]: the stream request (`since`, `fields`, `filters`, `parts`,
//!   `offsets`, `since_per_partition`, `Last-Event-ID`), validated.
//! - [`event`]: building the published WME event document.

pub mod batch;
pub mod batch_build;
pub mod change;
pub mod event;
pub mod log;
pub mod log_policy;
pub mod media;
pub mod request;
