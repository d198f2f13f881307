//! `GET /v1/quota`: the caller's plan, per-product limits and usage this
//! month, and active grants. Reads: the session (auth), the account, and
//! one `get-many` of the monthly counters.

use std::collections::BTreeMap;

use spin_sdk::http::Request;
use wikiedge_core::Error;
use wikiedge_core::metering::counter::counter_or_zero;
use wikiedge_core::quota::decision::monthly_key;
use wikiedge_core::quota::{QuotaReport, effective_limits};

use crate::limits;
use wikiedge_fn::web::{self, Resp};
use wikiedge_fn::{caller, kv, now};

pub async fn get(req: Request) -> Result<Resp, Error> {
    let bucket = kv::open()?;
    let caller = caller::authenticate(&req, &bucket).await?;
    let principal = caller.principal()?;
    let now = now();
    let account = limits::read_account(&bucket, &principal.account)?
        .ok_or_else(|| Error::NotFound("Account not found".into()))?;
    let plans = wikiedge_fn::config::plans()?;
    let plan = plans
        .require(&account.plan)
        .map_err(|e| Error::Internal(format!("account {}: {e}", account.username)))?;
    let limits = effective_limits(plan, &account.grants, now);
    let keys: Vec<(wikiedge_core::quota::Product, String)> = limits
        .monthly
        .keys()
        .map(|p| (*p, monthly_key(&account.username, *p, now)))
        .collect();
    let wanted: Vec<String> = keys.iter().map(|(_, k)| k.clone()).collect();
    let found = kv::get_many(&bucket, &wanted)?;
    let mut used = BTreeMap::new();
    for (product, key) in &keys {
        let value = counter_or_zero(found.get(key).map(Vec::as_slice))?;
        used.insert(*product, u64::try_from(value).unwrap_or(0));
    }
    let report = QuotaReport::build(&account.plan, &limits, &used, &account.grants, now);
    Ok(web::json(200, &report))
}
