//! End-to-end tests: the real `wikiedge` host running real components.
//! See tests/README.md.

use std::path::PathBuf;
use wikiedge_tests::{Host, repo_root};

/// Declares one scenario as two tests: `$plain` on the store as it is and
/// `$misreported` on one that reports every compare-and-swap as failed
/// after doing it (Spin 4.1's Redis store), where nothing may be lost or
/// counted twice. `$scenario` takes that `misreport` flag.
macro_rules! on_both_stores {
    ($(#[$doc:meta])* $plain:ident, $misreported:ident => $scenario:path) => {
        $(#[$doc])*
        #[test]
        fn $plain() -> anyhow::Result<()> {
            $scenario(false)
        }

        $(#[$doc])*
        #[test]
        fn $misreported() -> anyhow::Result<()> {
            $scenario(true)
        }
    };
}

mod abuse;
mod accounts;
mod articles;
mod auth;
mod browser;
mod common;
mod host;
mod instances;
mod journey;
mod kept;
mod live_fields;
mod metering;
mod portal;
mod quota;
mod readme;
mod realtime;
mod realtime_partitions;
mod redis;
mod responses;
mod scaleout;
mod schema;
mod sdk;
mod signup;
mod snapshots;
mod tooling;
mod wme_import;

/// The freshly built host binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_wikiedge");

/// The admin key the app tests run with.
pub const ADMIN_KEY: &str = "e2e-admin-key-0123456789";

/// The host test manifest.
pub fn host_test_manifest() -> PathBuf {
    repo_root().join("tests/host-test.toml")
}

/// Start the real application (`spin.toml`) with a fresh state dir.
pub fn app() -> anyhow::Result<Host> {
    Host::builder(BIN, &repo_root().join("spin.toml"))
        .env("SPIN_VARIABLE_ADMIN_API_KEY", ADMIN_KEY)
        .start()
}
