//! Where tests find the real public fixtures (`../shared/fixtures` beside
//! the checkout, or `WIKIEDGE_FIXTURES`), and how they skip without them.
//!
//! The fixtures are real public data that is not this project's to commit;
//! a clone on its own does not have them. A test that reads them starts with
//! `let Some(fx) = crate::testdata::fixtures_or_skip() else { return };`.
//! The skip is printed straight to stderr (past the test harness's output
//! capture), so `cargo test` lists every skipped test. With
//! `WIKIEDGE_REQUIRE_FIXTURES=1` (CI) a missing folder fails the test
//! instead. The same rules are in `wikiedge_tests::fixtures_or_skip`.

use std::io::Write;
use std::path::PathBuf;

/// The fixtures folder: `WIKIEDGE_FIXTURES`, else `../shared/fixtures`
/// beside the repository.
pub fn fixtures() -> PathBuf {
    match std::env::var_os("WIKIEDGE_FIXTURES") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/fixtures"
        )),
    }
}

/// The fixtures folder when it exists; otherwise prints why the running
/// test is skipped and returns `None` (or panics under
/// `WIKIEDGE_REQUIRE_FIXTURES=1`).
pub fn fixtures_or_skip() -> Option<PathBuf> {
    let dir = fixtures();
    if dir.is_dir() {
        return Some(dir);
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    let reason = format!(
        "{test}: skipped: the real-data fixtures are not at {} (put ../shared/fixtures beside the checkout or set WIKIEDGE_FIXTURES)",
        dir.display()
    );
    if std::env::var("WIKIEDGE_REQUIRE_FIXTURES").is_ok_and(|v| v == "1") {
        panic!("{reason}, and WIKIEDGE_REQUIRE_FIXTURES=1");
    }
    let _ = writeln!(std::io::stderr(), "{reason}");
    None
}
