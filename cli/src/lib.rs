//! The `wikiedge` command's own operations, on top of the runtime in
//! `wikiedge-host`: loading dumps and WME NDJSON into the articles store,
//! building snapshots, following a change stream, account administration,
//! and the development secrets `wikiedge up` generates on first start.

pub mod account;
pub mod bulk;
pub mod compile;
pub mod devkeys;
pub mod follow;
pub mod import;
pub mod import_wme;
pub mod progress;
pub mod readahead;
pub mod sample;
pub mod snapshot;
pub mod snapshot_structured;
