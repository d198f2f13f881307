//! Generated accounts with usage, written straight into a state
//! directory's store (no HTTP sign-up: far too slow for 100k accounts).
//!
//! For one month, account `i` gets the usage counters a few days of
//! requests to two products would leave (the metering component's
//! [`increments`], summed per key, stored as the SQLite store keeps
//! counters: [`encode_counter`]), and its entry in the month's listing
//! exactly as the component appends it (the listing
//! [`wikiedge_core::metering::index::accounts`]: entry `#{i + 1}` naming the
//! account, its marker naming that entry, and the count). The writes go through the CLI's bulk store, the store
//! `wikiedge up` opens on the same state directory.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use wikiedge_cli::bulk::{Bulk, Target};
use wikiedge_core::listing::encode_marker;
use wikiedge_core::metering::counter::encode_counter;
use wikiedge_core::metering::index;
use wikiedge_core::metering::{AccountUsageRow, MeteredProduct, Outcome, increments};
use wikiedge_core::quota::Month;

/// The month the usage is in.
pub(crate) const MONTH: Month = Month {
    year: 2024,
    month: 3,
};

/// The days of the month with usage.
const DAYS: [i64; 3] = [1, 11, 21];

/// The products used.
const PRODUCTS: [MeteredProduct; 2] = [MeteredProduct::Ondemand, MeteredProduct::Snapshot];

/// Account `i`'s username.
pub(crate) fn account_name(i: usize) -> String {
    format!("cc-{i:07}")
}

/// Account `i`'s requests on day index `d` to product index `p`: admitted
/// (with their body bytes each) and denied.
fn requests(i: usize, d: usize, p: usize) -> (u64, u64, u64) {
    let admitted = 1 + ((i + d + p) % 5) as u64;
    let bytes = 1_000 * (1 + (i % 13) as u64);
    let denied = u64::from(p == 0 && (i + d).is_multiple_of(4));
    (admitted, bytes, denied)
}

/// Noon (UTC) of day `day` of `month`.
fn noon(month: Month, day: i64) -> i64 {
    month.start() + (day - 1) * 86_400 + 43_200
}

/// The keys and values of account `i` in `month`: its counters and its
/// listing entry and marker (the count is written once, by [`write`]).
pub(crate) fn pairs(month: Month, i: usize) -> Vec<(String, Vec<u8>)> {
    let name = account_name(i);
    let mut counters: BTreeMap<String, i64> = BTreeMap::new();
    for (d, &day) in DAYS.iter().enumerate() {
        for (p, &product) in PRODUCTS.iter().enumerate() {
            let (admitted, bytes, denied) = requests(i, d, p);
            let now = noon(month, day);
            let events = (0..admitted)
                .map(|_| Outcome::Admitted { bytes })
                .chain((0..denied).map(|_| Outcome::Denied));
            for outcome in events {
                for (key, delta) in increments(&name, product, outcome, now) {
                    *counters.entry(key).or_default() += delta;
                }
            }
        }
    }
    let seq = i as u64 + 1;
    let mut out: Vec<(String, Vec<u8>)> = counters
        .into_iter()
        .map(|(k, v)| (k, encode_counter(v).to_vec()))
        .collect();
    let listing = index::accounts(month);
    out.push((listing.entry_key(seq), name.clone().into_bytes()));
    out.push((listing.marker_key(&name), encode_marker(seq)));
    out
}

/// The admin report's rows for account `i` in `month`, in report order.
pub(crate) fn expected_rows(month: Month, i: usize) -> Vec<AccountUsageRow> {
    PRODUCTS
        .iter()
        .enumerate()
        .map(|(p, &product)| {
            let (mut admitted, mut denied, mut bytes) = (0, 0, 0);
            for d in 0..DAYS.len() {
                let (a, b, n) = requests(i, d, p);
                admitted += a;
                bytes += a * b;
                denied += n;
            }
            AccountUsageRow {
                account: account_name(i),
                month: month.to_string(),
                product,
                admitted,
                denied,
                bytes,
            }
        })
        .collect()
}

/// Writes `accounts` accounts with usage in [`MONTH`] into the state
/// directory's default store.
pub(crate) fn write(state: &Path, accounts: usize) -> Result<()> {
    let mut bulk = Bulk::open(&Target::new(state, wikiedge_core::stores::DEFAULT))?;
    for i in 0..accounts {
        bulk.set_all(pairs(MONTH, i))?;
    }
    bulk.set(
        index::accounts(MONTH).count_key(),
        encode_counter(i64::try_from(accounts)?).to_vec(),
    )?;
    bulk.flush()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use wikiedge_core::listing::Page;
    use wikiedge_core::metering::counter::decode_counter;
    use wikiedge_core::metering::rows::month_keys;
    use wikiedge_core::metering::{Kind, monthly_rows, usage_key};
    use wikiedge_core::quota::Date;

    use super::*;

    /// The store after writing `n` accounts, as a map.
    fn store(n: usize) -> HashMap<String, Vec<u8>> {
        let mut kv: HashMap<String, Vec<u8>> = (0..n).flat_map(|i| pairs(MONTH, i)).collect();
        kv.insert(
            index::accounts(MONTH).count_key(),
            encode_counter(n as i64).to_vec(),
        );
        kv
    }

    #[test]
    fn names_are_valid_usernames_and_distinct() {
        for i in [0, 1, 99_999, 1_000_000] {
            let name = account_name(i);
            assert_eq!(
                wikiedge_core::auth::username::validate(&name).as_deref(),
                Ok(name.as_str())
            );
        }
        assert_ne!(account_name(1), account_name(10));
    }

    #[test]
    fn counters_use_the_metering_keys_and_encoding() {
        let kv: HashMap<String, Vec<u8>> = pairs(MONTH, 4).into_iter().collect();
        let day = Date::from_unix(noon(MONTH, 11));
        assert_eq!(day.to_string(), "2024-03-11");
        // Day index 1, product index 0: (4 + 1 + 0) % 5 + 1 = 1 admitted of
        // 5,000 bytes, and one denial ((4 + 1) % 4 != 0: none).
        let key = |product, kind| usage_key("cc-0000004", day, product, kind);
        let value = |k: &str| kv.get(k).map(|v| decode_counter(v).expect("counter"));
        assert_eq!(
            value(&key(MeteredProduct::Ondemand, Kind::Admitted)),
            Some(1)
        );
        assert_eq!(
            value(&key(MeteredProduct::Ondemand, Kind::Bytes)),
            Some(5_000)
        );
        assert_eq!(value(&key(MeteredProduct::Ondemand, Kind::Denied)), None);
        assert_eq!(
            value(&key(MeteredProduct::Snapshot, Kind::Admitted)),
            Some(2)
        );
        // The counters are 8-byte little-endian, as SQLite keeps them.
        assert_eq!(
            kv[&key(MeteredProduct::Snapshot, Kind::Bytes)],
            10_000i64.to_le_bytes()
        );
        // Every usage key is one the report reads for the month.
        let read: std::collections::HashSet<String> =
            month_keys("cc-0000004", MONTH).into_iter().collect();
        for k in kv.keys().filter(|k| k.starts_with("usage:")) {
            assert!(read.contains(k), "{k}");
        }
        let listing = index::accounts(MONTH);
        assert_eq!(kv[&listing.entry_key(5)], b"cc-0000004");
        assert_eq!(kv[&listing.marker_key("cc-0000004")], b"5");
    }

    /// Reads the store as the admin report does (the core's listing and
    /// rows) and checks it finds every account once with its expected rows.
    #[test]
    fn the_report_reads_back_every_account_with_its_expected_rows() {
        let n = 7;
        let kv = store(n);
        let listing = index::accounts(MONTH);
        let count = decode_counter(&kv[&listing.count_key()]).expect("count") as u64;
        assert_eq!(count, 7);
        let mut rows = Vec::new();
        let mut page = Some(Page { after: 0, limit: 3 });
        while let Some(p) = page {
            let entries: HashMap<String, Vec<u8>> = listing
                .entry_keys(p, count)
                .into_iter()
                .filter_map(|k| kv.get(&k).map(|v| (k, v.clone())))
                .collect();
            let markers: HashMap<String, Vec<u8>> = listing
                .marker_keys(&entries)
                .into_iter()
                .filter_map(|k| kv.get(&k).map(|v| (k, v.clone())))
                .collect();
            let accounts = listing.members(p, count, &entries, &markers);
            rows.extend(monthly_rows(
                accounts.iter().map(String::as_str),
                MONTH,
                |k| kv.get(k).map(|v| decode_counter(v).expect("counter")),
            ));
            page = p.next(count);
        }
        let expected: Vec<AccountUsageRow> = (0..n).flat_map(|i| expected_rows(MONTH, i)).collect();
        assert_eq!(rows, expected);
        // Denials were generated for some accounts, and counted.
        assert!(rows.iter().any(|r| r.denied > 0));
        assert!(rows.iter().all(|r| r.admitted > 0 && r.bytes > 0));
    }
}
