//! Listing the keys under a prefix ([`super::Store::get_keys_with_prefix`]),
//! for each backend: a range scan of SQLite's primary key, Redis's `SCAN
//! MATCH` (never `KEYS`, which blocks the server), a filter otherwise; and
//! in sorted pages ([`super::Store::get_keys_page`]) on SQLite, whose range
//! scan can start after any key.

use rusqlite::{Connection, params};

/// The keys of `keys` under `prefix`, sorted and without duplicates.
pub(super) fn filter(keys: Vec<String>, prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> = keys.into_iter().filter(|k| k.starts_with(prefix)).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// SQLite: the primary key `(store, key)` is ordered by bytes (`BINARY`
/// collation), so the keys under a prefix are one range from the prefix on.
pub(super) fn sqlite(
    conn: &Connection,
    store: &str,
    prefix: &str,
) -> rusqlite::Result<Vec<String>> {
    sqlite_page(conn, store, prefix, None, usize::MAX)
}

/// SQLite, a page at a time: the same range, from just after `after` when
/// that is past the prefix's start, so each page is a seek in the primary
/// key and never a scan of the keys before it; at most `limit` keys.
pub(super) fn sqlite_page(
    conn: &Connection,
    store: &str,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> rusqlite::Result<Vec<String>> {
    // SQLite's LIMIT is an i64; more than that many keys is all of them.
    let rows = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt;
    let mut found = match after.filter(|a| *a >= prefix) {
        Some(after) => {
            stmt = conn.prepare_cached(
                "SELECT key FROM spin_key_value WHERE store = ?1 AND key > ?2 ORDER BY key LIMIT ?3",
            )?;
            stmt.query(params![store, after, rows])?
        }
        None => {
            stmt = conn.prepare_cached(
                "SELECT key FROM spin_key_value WHERE store = ?1 AND key >= ?2 ORDER BY key LIMIT ?3",
            )?;
            stmt.query(params![store, prefix, rows])?
        }
    };
    let mut keys = Vec::new();
    while let Some(row) = found.next()? {
        let key: String = row.get(0)?;
        if !key.starts_with(prefix) {
            break;
        }
        keys.push(key);
    }
    Ok(keys)
}

/// Redis: the `MATCH` pattern of the keys under `prefix` (its glob
/// characters escaped).
pub(super) fn redis_pattern(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('*');
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_in_a_prefix_match_only_themselves() {
        assert_eq!(redis_pattern("article:en:"), "article:en:*");
        assert_eq!(redis_pattern("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\*");
    }

    #[test]
    fn a_sqlite_scan_stops_at_the_end_of_the_prefix() -> rusqlite::Result<()> {
        let conn = Connection::open_in_memory()?;
        conn.execute(super::super::sqlite::CREATE_TABLE, [])?;
        for (store, key) in [
            ("s", "a:1"),
            ("s", "a:2"),
            ("s", "a;"),
            ("s", "a"),
            ("t", "a:3"),
        ] {
            conn.execute(
                "INSERT INTO spin_key_value VALUES (?1, ?2, x'00')",
                params![store, key],
            )?;
        }
        assert_eq!(sqlite(&conn, "s", "a:")?, ["a:1", "a:2"]);
        assert_eq!(sqlite(&conn, "t", "a:")?, ["a:3"]);
        assert!(sqlite(&conn, "s", "b")?.is_empty());
        Ok(())
    }

    /// Pages walk the prefix's range in order, each from just after the
    /// last key of the one before, and end where the prefix does.
    #[test]
    fn sqlite_pages_list_the_prefix_in_order_and_nothing_else() -> rusqlite::Result<()> {
        let conn = Connection::open_in_memory()?;
        conn.execute(super::super::sqlite::CREATE_TABLE, [])?;
        let mut keys: Vec<String> = (0..7).map(|n| format!("a:{n}")).collect();
        keys.extend(["a", "a;", "b:1", "a:"].map(String::from));
        for key in &keys {
            conn.execute(
                "INSERT INTO spin_key_value VALUES ('s', ?1, x'00')",
                params![key],
            )?;
        }
        conn.execute("INSERT INTO spin_key_value VALUES ('t', 'a:x', x'00')", [])?;
        let mut walked = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = sqlite_page(&conn, "s", "a:", after.as_deref(), 3)?;
            assert!(page.len() <= 3, "{page:?}");
            walked.extend(page.iter().cloned());
            if page.len() < 3 {
                break;
            }
            after = page.last().cloned();
        }
        assert_eq!(walked, sqlite(&conn, "s", "a:")?);
        assert_eq!(
            walked,
            ["a:", "a:0", "a:1", "a:2", "a:3", "a:4", "a:5", "a:6"]
        );
        // A cursor before the prefix starts at the prefix; one past it
        // finds nothing.
        assert_eq!(sqlite_page(&conn, "s", "a:", Some("a"), 2)?, ["a:", "a:0"]);
        assert!(sqlite_page(&conn, "s", "a:", Some("a;"), 2)?.is_empty());
        assert_eq!(
            sqlite_page(&conn, "s", "a:", Some("a:5"), usize::MAX)?,
            ["a:6"]
        );
        Ok(())
    }

    #[test]
    fn a_filter_keeps_the_prefix_sorted_once() {
        let keys = ["b:2", "a:1", "b:1", "b:2", "c"].map(String::from).to_vec();
        assert_eq!(filter(keys, "b:"), ["b:1", "b:2"]);
    }
}
