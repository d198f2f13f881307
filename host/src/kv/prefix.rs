//! Listing the keys under a prefix ([`super::Store::get_keys_with_prefix`]),
//! for each backend: a range scan of SQLite's primary key, Redis's `SCAN
//! MATCH` (never `KEYS`, which blocks the server), a filter otherwise.

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
    let mut stmt = conn.prepare_cached(
        "SELECT key FROM spin_key_value WHERE store = ?1 AND key >= ?2 ORDER BY key",
    )?;
    let mut rows = stmt.query(params![store, prefix])?;
    let mut keys = Vec::new();
    while let Some(row) = rows.next()? {
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

    #[test]
    fn a_filter_keeps_the_prefix_sorted_once() {
        let keys = ["b:2", "a:1", "b:1", "b:2", "c"].map(String::from).to_vec();
        assert_eq!(filter(keys, "b:"), ["b:1", "b:2"]);
    }
}
