//! Per-account caps on long-lived work (snapshot downloads, realtime
//! streams): at most `max` at a time, counted with atomic increments.
//!
//! A slot is one increment of `slots:{kind}:{account}:{window}`, where the
//! window is the current [`LEASE_SECONDS`]-long period; the slots in use
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

/// How long a slot counts without being given back.
pub const LEASE_SECONDS: u64 = 300;

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

/// Takes one of the `max` concurrent slots of `kind` for `account` at
/// `now` (unix seconds), or refuses with 429 and `Retry-After`.
pub fn acquire(kind: &str, account: &str, max: u64, now: u64) -> Result<Slot, Error> {
    let unavailable = |e: wkv::Error| {
        eprintln!("slots: key-value: {e:?}");
        Error::Unavailable {
            message: "Storage is unavailable".into(),
            retry_after: 1,
        }
    };
    let bucket = wkv::open("default").map_err(unavailable)?;
    let window = now / LEASE_SECONDS;
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
