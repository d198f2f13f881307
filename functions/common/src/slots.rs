//! Per-account caps on long-lived work (snapshot and batch downloads,
//! realtime streams): at most `max` at a time, counted with atomic increments.
//! The caps and the lease are application variables ([`take`]):
//! `max_concurrent_streams`, `max_concurrent_downloads` and
//! `concurrency_lease_seconds` (docs/limits.md).
//!
//! A slot is one increment of `slots:{kind}:{account}:{window}`, where the
//! window is the current lease-long period; the slots in use
//! are this window's counter plus the previous one's (a stream started
//! late in a window is still counted in the next). Dropping the [`Slot`]
//! gives it back (a decrement). An instance that dies without dropping it
//! leaks the slot for at most two windows: older counters are never read
//! again, so nothing is held forever. The price is that work running longer
//! than two windows stops being counted.
//!
//! No read-then-write: taking a slot is one increment (and, when over the
//! cap, one decrement); the previous window is read with an increment of 0.

use spin_sdk::experimental::wasi::keyvalue::{atomics, store as wkv};
use wikiedge_core::Error;

/// How long a slot counts without being given back, unless the variable
/// `concurrency_lease_seconds` says otherwise.
pub const DEFAULT_LEASE_SECONDS: u64 = 300;

/// Download bodies of one kind (snapshots and chunks; realtime batches)
/// one account may have open at the same time, unless the variable
/// `max_concurrent_downloads` says otherwise.
pub const DEFAULT_MAX_CONCURRENT_DOWNLOADS: u64 = 10;

/// A per-account cap: how many slots, and how long one counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    /// Slots one account may hold at once (at least 1).
    pub max: u64,
    /// Seconds a slot counts without being given back (10 s to a day).
    pub lease: u64,
}

impl Cap {
    /// A cap from the variables' raw values: a missing or malformed value
    /// takes its default; `max` is at least 1 and `lease` 10 s to a day.
    pub fn from_values(max: Option<String>, lease: Option<String>, default_max: u64) -> Cap {
        Cap {
            max: crate::config::number(max, default_max).max(1),
            lease: crate::config::number(lease, DEFAULT_LEASE_SECONDS).clamp(10, 86_400),
        }
    }
}

/// The cap held in the variable `max_variable` (default `default_max`),
/// with the lease of `concurrency_lease_seconds`.
async fn cap(max_variable: &str, default_max: u64) -> Cap {
    Cap::from_values(
        crate::config::variable(max_variable).await,
        crate::config::variable("concurrency_lease_seconds").await,
        default_max,
    )
}

/// A slot held: given back when dropped.
pub struct Slot {
    bucket: wkv::Bucket,
    key: String,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot").field("key", &self.key).finish()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Err(e) = atomics::increment(&self.bucket, &self.key, -1) {
            eprintln!("giving back {}: {e:?}", self.key);
        }
    }
}

fn key(kind: &str, account: &str, window: u64) -> String {
    format!("slots:{kind}:{account}:{window}")
}

/// Takes a slot of `kind` for `account` now, under the cap in the variable
/// `max_variable` (default `default_max`), or refuses with 429 and
/// `Retry-After`.
pub async fn take(
    kind: &str,
    account: &str,
    max_variable: &str,
    default_max: u64,
) -> Result<Slot, Error> {
    let cap = cap(max_variable, default_max).await;
    acquire(kind, account, cap, u64::try_from(crate::now()).unwrap_or(0))
}

/// Takes a download slot of `kind` for `account` now, under
/// `max_concurrent_downloads`.
pub async fn take_download(kind: &str, account: &str) -> Result<Slot, Error> {
    take(
        kind,
        account,
        "max_concurrent_downloads",
        DEFAULT_MAX_CONCURRENT_DOWNLOADS,
    )
    .await
}

/// Takes one of the `cap.max` concurrent slots of `kind` for `account` at
/// `now` (unix seconds), or refuses with 429 and `Retry-After`.
fn acquire(kind: &str, account: &str, cap: Cap, now: u64) -> Result<Slot, Error> {
    let Cap { max, lease } = cap;
    let unavailable = |e: wkv::Error| {
        eprintln!("slots: key-value: {e:?}");
        Error::Unavailable {
            message: "Storage is unavailable".into(),
            retry_after: 1,
        }
    };
    let bucket = wkv::open(crate::kv::STORE).map_err(unavailable)?;
    let window = now / lease.max(1);
    let current = key(kind, account, window);
    let mine = atomics::increment(&bucket, &current, 1).map_err(unavailable)?;
    let earlier = atomics::increment(&bucket, &key(kind, account, window.saturating_sub(1)), 0)
        .map_err(unavailable)?;
    let slot = Slot {
        bucket,
        key: current,
    };
    if window > 0 && mine.saturating_add(earlier.max(0)) > max as i64 || mine > max as i64 {
        drop(slot);
        return Err(Error::TooManyRequests {
            message: format!("at most {max} concurrent {kind} per account; retry when one ends"),
            retry_after: 5,
        });
    }
    Ok(slot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_come_from_the_variables_with_safe_fallbacks() {
        let v = |s: &str| Some(s.to_string());
        assert_eq!(
            Cap::from_values(v("2"), None, 8),
            Cap { max: 2, lease: 300 }
        );
        assert_eq!(
            Cap::from_values(v(" 12 "), v("60"), 8),
            Cap { max: 12, lease: 60 }
        );
        // Malformed: the defaults; zero would refuse everyone: 1.
        assert_eq!(Cap::from_values(v("many"), v("-1"), 8).max, 8);
        assert_eq!(Cap::from_values(v("0"), None, 8).max, 1);
        assert_eq!(Cap::from_values(None, v("1"), 8).lease, 10);
        assert_eq!(Cap::from_values(None, v("999999999"), 8).lease, 86_400);
    }
}
