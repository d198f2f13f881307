//! Keeping per-second burst counters from piling up.
//!
//! Burst counters live under `burst:{account}:{unix_second}`, one key per
//! second in which the account made a request. The first request of a
//! second (its increment returned 1) does the bookkeeping: the record
//! `burst-seconds:{account}` lists the seconds whose counters may still
//! exist; counters at least two seconds old are deleted (one `delete-many`)
//! and the list is rewritten with compare-and-swap (so concurrent
//! bookkeepers do not lose each other's seconds). Counters of the current
//! and the previous second are kept, so a request still in flight in the
//! previous second never sees its counter vanish.
//!
//! Cost: nothing for the second and later requests of a second; for the
//! first one, a CAS read, at most one `delete-many` and a CAS write. At
//! rest an account keeps at most three small keys. Failures are logged and
//! ignored: bookkeeping never decides a request.

use spin_sdk::experimental::wasi::keyvalue::batch;
use wikiedge_core::quota::decision::burst_key;

use wikiedge_fn::kv::{self, Bucket, Update};

/// The bookkeeping record of an account: `burst-seconds:{account}`.
pub fn seconds_key(account: &str) -> String {
    format!("burst-seconds:{account}")
}

/// Splits the known seconds into `(stale, kept)` at `now`, adding `now`.
fn split(known: &[i64], now: i64) -> (Vec<i64>, Vec<i64>) {
    let (stale, mut kept): (Vec<i64>, Vec<i64>) = known.iter().partition(|s| **s <= now - 2);
    kept.push(now);
    kept.sort_unstable();
    kept.dedup();
    (stale, kept)
}

/// Bookkeeping for the first request of second `now`.
pub fn first_of_second(bucket: &Bucket, account: &str, now: i64) {
    let key = seconds_key(account);
    let result = kv::update(bucket, &key, |current| {
        let known: Vec<i64> = current
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        let (stale, kept) = split(&known, now);
        if kept == known {
            return Ok(Update::Keep(()));
        }
        if !stale.is_empty() {
            let keys: Vec<String> = stale.iter().map(|s| burst_key(account, *s)).collect();
            batch::delete_many(bucket, &keys).map_err(|e| kv::unavailable(&key, e))?;
        }
        let bytes = serde_json::to_vec(&kept).unwrap_or_default();
        Ok(Update::Write(bytes, ()))
    });
    if let Err(e) = result {
        eprintln!("wikiedge-quota: burst bookkeeping for {account}: {e:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn counters_two_seconds_old_are_stale_and_now_is_added() {
        assert_eq!(split(&[], 10), (vec![], vec![10]));
        assert_eq!(split(&[7, 8, 9], 10), (vec![7, 8], vec![9, 10]));
        assert_eq!(split(&[9, 10], 10), (vec![], vec![9, 10]));
        assert_eq!(split(&[11], 10), (vec![], vec![10, 11]));
    }
}
