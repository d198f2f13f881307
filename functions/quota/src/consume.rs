//! The exported `wikiedge:quota/quota` interface: atomic consumption.
//!
//! One `consume` of an included product, in order:
//!
//! 1. validate product and units (`invalid`, nothing counted);
//! 2. effective limits = plan + active grants ([`crate::limits`]); a product
//!    the limits do not include is a denied decision with `limit: 0` and
//!    nothing is counted (the caller answers 403 for `limit == 0`);
//! 3. `increment(burst:{account}:{second}, 1)`: the burst limit counts
//!    requests, across products. Denied: give the unit back and stop;
//! 4. `increment(quota:{account}:{product}:{YYYY-MM}, units)`. Denied: give
//!    the units back, and the burst unit too.
//!
//! An admitted request thus costs two key-value operations (plus one read
//! of the account record per instance every few seconds, and the burst
//! bookkeeping of [`crate::burst`] once per account and second). A storage
//! failure before both increments succeeded is `unavailable` and admits
//! nothing; units already counted for that request are given back.

use wikiedge_core::Error;
use wikiedge_core::auth::username;
use wikiedge_core::metering::counter::counter_or_zero;
use wikiedge_core::quota::decision::{burst_key, decide_burst, decide_monthly, monthly_key};
use wikiedge_core::quota::headers::headers;
use wikiedge_core::quota::period::seconds_until_next_month;
use wikiedge_core::quota::{Decision, Limits, Product, Window, effective_limits};

use crate::exports::wikiedge::quota::quota as wit;
use crate::{burst, limits};
use wikiedge_fn::kv::{self, Bucket};
use wikiedge_fn::now;

fn invalid(err: Error) -> wit::QuotaError {
    wit::QuotaError::Invalid(err.to_string())
}

fn to_wit(err: Error) -> wit::QuotaError {
    if err.is_client_error() {
        invalid(err)
    } else {
        eprintln!("wikiedge-quota: {err:?}");
        wit::QuotaError::Unavailable("quota storage is unavailable".into())
    }
}

/// The validated inputs of a call.
struct Call {
    account: String,
    product: Product,
    limits: Limits,
}

fn prepare(
    bucket: &Bucket,
    account: &str,
    plan: &str,
    product: &str,
    now: i64,
) -> Result<Call, wit::QuotaError> {
    let product: Product = product.parse().map_err(invalid)?;
    let account = username::validate(account).map_err(invalid)?;
    let plans = wikiedge_fn::config::plans().map_err(to_wit)?;
    let stored = limits::account_limits(bucket, &account, now).map_err(to_wit)?;
    let (plan_name, grants) = match &stored {
        Some(a) => (a.plan.as_str(), a.grants.as_slice()),
        None => (plan, &[][..]),
    };
    let plan = plans.require(plan_name).map_err(invalid)?;
    Ok(Call {
        account,
        product,
        limits: effective_limits(plan, grants, now),
    })
}

/// The decision for a product the limits do not include: denied, limit 0,
/// nothing counted; "retry" at the next month, when limits may differ.
fn not_included(product: Product, now: i64) -> wit::Decision {
    let reset = seconds_until_next_month(now);
    let d = Decision {
        window: Window::Monthly(product),
        admitted: false,
        limit: 0,
        remaining: 0,
        reset,
        retry_after: Some(reset),
        compensate: None,
    };
    to_decision(&d, &[&d], now)
}

fn to_decision(main: &Decision, all: &[&Decision], now: i64) -> wit::Decision {
    let (policy, state) = headers(all, now);
    wit::Decision {
        admitted: main.admitted,
        limit: main.limit,
        remaining: main.remaining,
        reset_seconds: main.reset,
        retry_after: main.retry_after.unwrap_or(0),
        ratelimit: state,
        ratelimit_policy: policy,
    }
}

/// Gives units back; a failure only leaves a denied unit counted (we err
/// towards denying), so it is logged, not reported.
fn give_back(bucket: &Bucket, key: &str, delta: Option<i64>) {
    if let Some(delta) = delta
        && let Err(e) = kv::increment(bucket, key, delta)
    {
        eprintln!("wikiedge-quota: could not give back {delta} on {key}: {e:?}");
    }
}

/// `consume`: see the module docs.
pub fn consume(
    account: &str,
    plan: &str,
    product: &str,
    units: u32,
) -> Result<wit::Decision, wit::QuotaError> {
    let units = wikiedge_core::quota::validate_units(i64::from(units)).map_err(invalid)?;
    let now = now();
    let bucket = kv::open().map_err(to_wit)?;
    let call = prepare(&bucket, account, plan, product, now)?;
    let Some(monthly_limit) = call.limits.monthly_limit(call.product) else {
        return Ok(not_included(call.product, now));
    };
    let bkey = burst_key(&call.account, now);
    let bvalue = kv::increment(&bucket, &bkey, 1).map_err(to_wit)?;
    if bvalue == 1 {
        burst::first_of_second(&bucket, &call.account, now);
    }
    let b = decide_burst(call.limits.burst_per_second, bvalue, 1);
    if !b.admitted {
        give_back(&bucket, &bkey, b.compensate);
        return Ok(to_decision(&b, &[&b], now));
    }
    let mkey = monthly_key(&call.account, call.product, now);
    let delta = i64::try_from(units).unwrap_or(i64::MAX);
    let mvalue = match kv::increment(&bucket, &mkey, delta) {
        Ok(v) => v,
        Err(e) => {
            give_back(&bucket, &bkey, Some(-1));
            return Err(to_wit(e));
        }
    };
    let m = decide_monthly(call.product, monthly_limit, mvalue, units, now);
    if !m.admitted {
        give_back(&bucket, &mkey, m.compensate);
        give_back(&bucket, &bkey, Some(-1));
        return Ok(to_decision(&m, &[&m, &b], now));
    }
    let tightest = if m.remaining <= b.remaining { &m } else { &b };
    Ok(to_decision(tightest, &[&m, &b], now))
}

/// `peek`: the state without consuming. `admitted` says whether a 1-unit
/// call would be admitted now; `remaining` counts units left.
pub fn peek(account: &str, plan: &str, product: &str) -> Result<wit::Decision, wit::QuotaError> {
    let now = now();
    let bucket = kv::open().map_err(to_wit)?;
    let call = prepare(&bucket, account, plan, product, now)?;
    let Some(monthly_limit) = call.limits.monthly_limit(call.product) else {
        return Ok(not_included(call.product, now));
    };
    let mkey = monthly_key(&call.account, call.product, now);
    let bkey = burst_key(&call.account, now);
    let found = kv::get_many(&bucket, &[mkey.clone(), bkey.clone()]).map_err(to_wit)?;
    let value = |k: &String| counter_or_zero(found.get(k).map(Vec::as_slice)).map_err(to_wit);
    let state = |window, limit: u64, used: i64, reset: u64| {
        let remaining = limit.saturating_sub(u64::try_from(used).unwrap_or(0));
        Decision {
            window,
            admitted: remaining > 0,
            limit,
            remaining,
            reset,
            retry_after: (remaining == 0).then_some(reset),
            compensate: None,
        }
    };
    let m = state(
        Window::Monthly(call.product),
        monthly_limit,
        value(&mkey)?,
        seconds_until_next_month(now),
    );
    let b = state(
        Window::Burst,
        call.limits.burst_per_second,
        value(&bkey)?,
        1,
    );
    let main = if !m.admitted {
        &m
    } else if !b.admitted || b.remaining < m.remaining {
        &b
    } else {
        &m
    };
    let mut decision = to_decision(main, &[&m, &b], now);
    decision.admitted = m.admitted && b.admitted;
    Ok(decision)
}
