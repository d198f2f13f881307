//! Effective limits: the plans (variable `plans`, read by
//! [`wikiedge_fn::config::plans`]) and each account's plan name and grants
//! (the account record).
//!
//! Consumption reads the account record to learn its current plan and
//! grants. To keep an admitted request at two key-value operations (the two
//! increments), each instance caches what it read for [`ACCOUNT_TTL`]
//! seconds: a plan change or a new grant reaches every instance within that
//! time (and at once in the instance that made it, which drops its entry).
//! The stored plan wins over the plan the caller passes (taken from a token
//! that may predate a plan change); the passed plan applies only when the
//! account has no record.

use std::cell::RefCell;
use std::collections::HashMap;

use wikiedge_core::Error;
use wikiedge_core::auth::{Account, keys};
use wikiedge_core::quota::Grant;

use wikiedge_fn::kv::{self, Bucket};

/// Seconds an instance trusts a cached account record.
pub const ACCOUNT_TTL: i64 = 5;
/// Entries kept before the cache is cleared wholesale.
const MAX_ENTRIES: usize = 10_000;

/// What quota needs from an account record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountLimits {
    /// The plan name.
    pub plan: String,
    /// Every grant, active or not.
    pub grants: Vec<Grant>,
}

thread_local! {
    static ACCOUNTS: RefCell<HashMap<String, (i64, Option<AccountLimits>)>> =
        RefCell::new(HashMap::new());
}

/// Reads an account record (no cache); `None` when there is none.
pub fn read_account(bucket: &Bucket, username: &str) -> Result<Option<Account>, Error> {
    kv::get(bucket, &keys::account(username))?
        .map(|bytes| Account::from_json(&bytes))
        .transpose()
}

/// The account's plan and grants, from the instance cache when fresh.
pub fn account_limits(
    bucket: &Bucket,
    username: &str,
    now: i64,
) -> Result<Option<AccountLimits>, Error> {
    let cached = ACCOUNTS.with(|c| {
        c.borrow()
            .get(username)
            .filter(|(at, _)| now >= *at && now - *at < ACCOUNT_TTL)
            .map(|(_, v)| v.clone())
    });
    if let Some(hit) = cached {
        return Ok(hit);
    }
    let fresh = read_account(bucket, username)?.map(|a| AccountLimits {
        plan: a.plan,
        grants: a.grants,
    });
    ACCOUNTS.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(username.to_string(), (now, fresh.clone()));
    });
    Ok(fresh)
}

/// Drops an account from this instance's cache after changing it.
pub fn forget(username: &str) {
    ACCOUNTS.with(|c| {
        c.borrow_mut().remove(username);
    });
}
