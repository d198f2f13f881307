//! The exported `wikiedge:metering/metering` interface: `record-usage`.
//!
//! Each event becomes the atomic increments of
//! [`wikiedge_core::metering::increments`]: an admitted request adds 1 to
//! `usage:{account}:{day}:{product}:admitted` and its body size to
//! `...:bytes`; a denied one adds 1 to `...:denied`. When the count
//! increment returns exactly 1, this is the first such event of the
//! account, product and kind that day, and the account is listed for the
//! month if it is not yet ([`wikiedge_core::listing`]: a read of its
//! marker; the first time in a month an increment and two writes, O(1)
//! whatever the number of accounts). An instance also remembers the
//! (account, month) pairs it has listed and skips them. So an admitted
//! request costs two increments (one without body bytes), plus a read of
//! the marker a few times per account and day.
//!
//! Spin acknowledges a key-value write only after it is committed, so the
//! event is durable when this returns `Ok`. Should a later increment fail
//! after an earlier one succeeded, the error is returned and the earlier
//! count stays (a retry by the caller could count it twice; callers do not
//! retry).

use std::cell::RefCell;
use std::collections::HashSet;

use wikiedge_core::auth::username;
use wikiedge_core::metering::index;
use wikiedge_core::metering::{MeteredProduct, Outcome, increments};
use wikiedge_core::quota::Month;

use crate::exports::wikiedge::metering::metering::UsageEvent;
use wikiedge_fn::kv;
use wikiedge_fn::now;

/// Entries remembered before the set is cleared wholesale.
const MAX_INDEXED: usize = 10_000;

thread_local! {
    static INDEXED: RefCell<HashSet<(String, String)>> = RefCell::new(HashSet::new());
}

fn storage_failed(err: wikiedge_core::Error) -> String {
    eprintln!("wikiedge-metering: record-usage: {err:?}");
    "usage storage is unavailable".to_string()
}

/// Records one event; see the module docs.
pub fn record(event: UsageEvent) -> Result<(), String> {
    let product: MeteredProduct = event.product.parse().map_err(|e| format!("{e}"))?;
    let account = username::validate(&event.account).map_err(|e| format!("{e}"))?;
    let outcome = if event.admitted {
        Outcome::Admitted { bytes: event.bytes }
    } else {
        Outcome::Denied
    };
    let now = now();
    let bucket = kv::open().map_err(storage_failed)?;
    let mut first_today = false;
    for (i, (key, delta)) in increments(&account, product, outcome, now)
        .into_iter()
        .enumerate()
    {
        let value = kv::increment(&bucket, &key, delta).map_err(storage_failed)?;
        if i == 0 && value == delta {
            first_today = true;
        }
    }
    if first_today {
        let month = Month::from_unix(now).to_string();
        let pair = (account.clone(), month);
        if INDEXED.with(|s| s.borrow().contains(&pair)) {
            return Ok(());
        }
        kv::add_to_listing(&bucket, &index::accounts(Month::from_unix(now)), &account)
            .map_err(storage_failed)?;
        INDEXED.with(|s| {
            let mut set = s.borrow_mut();
            if set.len() >= MAX_INDEXED {
                set.clear();
            }
            set.insert(pair);
        });
    }
    Ok(())
}
