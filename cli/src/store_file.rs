//! Direct, synchronous access to the SQLite store file, for the bulk
//! commands that run beside or instead of `wikiedge up` (`wikiedge import`,
//! `wikiedge snapshot build`). Same file, same table as the served store
//! ([`wikiedge_host::kv::sqlite`]), so what they write is what components read.

use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::time::Duration;

pub use wikiedge_host::kv::sqlite::{CREATE_TABLE, FILE_NAME};

/// Open (creating the table if needed) for bulk writes: WAL, `synchronous =
/// NORMAL` (the bulk commands can be re-run; they fsync at checkpoints), and
/// a long busy timeout so they wait for a running host's writer.
pub fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute(CREATE_TABLE, [])?;
    Ok(conn)
}

/// The value at `key` in `store` (its payload, when a component wrote it
/// through `wikiedge_core::cas`).
pub fn get(conn: &Connection, store: &str, key: &str) -> Result<Option<Vec<u8>>> {
    let value: Option<Vec<u8>> = conn
        .prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
        .query_row(params![store, key], |row| row.get(0))
        .optional()?;
    Ok(value.map(|v| wikiedge_core::cas::payload(&v).to_vec()))
}

/// Set `key` in `store`.
pub fn set(conn: &Connection, store: &str, key: &str, value: &[u8]) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![store, key, value])?;
    Ok(())
}
