//! `PUT /v1/admin/accounts/{username}/plan` (admin): sets an account's plan
//! and, when `grants` is given, replaces its grants.
//!
//! Body: `{"plan": "paid", "grants": [{"monthly": {"ondemand": 2000000},
//! "burst_per_second": 200, "expires": 1767225600, "reason": "contract"}]}`.
//! The account record is updated with compare-and-swap, so a concurrent
//! change by the auth component (password, role) is never lost. Expired
//! grants are pruned from the record on every update. 404 for an unknown
//! account, 422 for an unknown plan or an invalid or expired grant.
//!
//! The auth component keeps a copy of the plan in each session record (its
//! token verification reads it from there): the live sessions listed in
//! `sessions:{username}` are rewritten too. Quota itself always reads the
//! account record, so the new plan applies to consumption within
//! [`crate::limits::ACCOUNT_TTL`] seconds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use spin_sdk::http::Request;
use wikiedge_core::Error;
use wikiedge_core::auth::session_index::{self, SessionIndex};
use wikiedge_core::auth::session_record::SessionRecord;
use wikiedge_core::auth::{Account, keys, username};
use wikiedge_core::quota::access::MAX_ANSWER_CHARS;
use wikiedge_core::quota::grant::active_grants;
use wikiedge_core::quota::plan::MAX_QUOTA;
use wikiedge_core::quota::{Grant, Limits, Product, effective_limits};

use crate::limits;
use wikiedge_fn::kv::{self, Update};
use wikiedge_fn::web::{self, Resp};
use wikiedge_fn::{caller, now};

/// The most grants one account may carry.
const MAX_GRANTS: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantInput {
    #[serde(default)]
    monthly: BTreeMap<Product, u64>,
    #[serde(default)]
    burst_per_second: Option<u64>,
    expires: i64,
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanUpdate {
    plan: String,
    #[serde(default)]
    grants: Option<Vec<GrantInput>>,
}

/// The response: the account's plan, active grants and effective limits.
#[derive(Serialize)]
pub struct PlanView {
    username: String,
    plan: String,
    grants: Vec<Grant>,
    limits: Limits,
}

fn validate_grant(g: GrantInput, now: i64) -> Result<Grant, Error> {
    if g.expires <= now {
        return Err(Error::Unprocessable(
            "a grant's expires must be in the future".into(),
        ));
    }
    let in_range = |q: u64| (1..=MAX_QUOTA).contains(&q);
    if g.monthly.values().any(|q| !in_range(*q)) || g.burst_per_second.is_some_and(|b| !in_range(b))
    {
        return Err(Error::Unprocessable(format!(
            "granted limits must be between 1 and {MAX_QUOTA}"
        )));
    }
    if g.monthly.is_empty() && g.burst_per_second.is_none() {
        return Err(Error::Unprocessable(
            "a grant must raise monthly limits or the burst rate".into(),
        ));
    }
    let reason = g.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_ANSWER_CHARS {
        return Err(Error::Unprocessable(format!(
            "a grant needs a reason of 1 to {MAX_ANSWER_CHARS} characters"
        )));
    }
    Ok(Grant {
        monthly: g.monthly,
        burst_per_second: g.burst_per_second,
        expires: g.expires,
        reason: reason.to_string(),
    })
}

/// Copies the new plan — and only the plan: `disabled` and role belong to
/// the admin API — into the account's live session records (the auth
/// component's verification reads the plan from there). Best effort: quota
/// itself reads the account record, so a failure is logged, not reported.
fn sync_sessions(bucket: &kv::Bucket, account: &Account, now: i64) {
    let result = (|| -> Result<(), Error> {
        let Some(bytes) = kv::get(bucket, &session_index::key(&account.username))? else {
            return Ok(());
        };
        for id in SessionIndex::from_json(&bytes)?.live_ids(now) {
            kv::update(bucket, &keys::session(&id), |current| {
                let Some(bytes) = current else {
                    return Ok(Update::Keep(()));
                };
                let mut record = SessionRecord::from_json(&bytes)?;
                Ok(if record.sync_plan(&account.plan) {
                    Update::Write(record.to_json(), ())
                } else {
                    Update::Keep(())
                })
            })?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        eprintln!(
            "wikiedge-quota: syncing sessions of {}: {e:?}",
            account.username
        );
    }
}

pub async fn put(req: Request, raw_username: &str) -> Result<Resp, Error> {
    let bucket = kv::open()?;
    caller::authenticate(&req, &bucket).await?.require_admin()?;
    let name = username::validate(raw_username)
        .map_err(|_| Error::NotFound(format!("Account '{raw_username}' not found")))?;
    let body = web::json_body(req).await?;
    let update: PlanUpdate = serde_json::from_slice(&body)?;
    let now = now();
    let plans = wikiedge_fn::config::plans()?;
    let plan = plans.require(&update.plan)?.clone();
    let grants = match update.grants {
        None => None,
        Some(list) if list.len() > MAX_GRANTS => {
            return Err(Error::Unprocessable(format!(
                "at most {MAX_GRANTS} grants are allowed"
            )));
        }
        Some(list) => Some(
            list.into_iter()
                .map(|g| validate_grant(g, now))
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let account = kv::update(&bucket, &keys::account(&name), |current| {
        let bytes =
            current.ok_or_else(|| Error::NotFound(format!("Account '{name}' not found")))?;
        let mut account = Account::from_json(&bytes)?;
        account.plan.clone_from(&plan.name);
        account.grants = match &grants {
            Some(new) => new.clone(),
            None => active_grants(&account.grants, now),
        };
        Ok(Update::Write(account.to_json(), account))
    })?;
    limits::forget(&name);
    sync_sessions(&bucket, &account, now);
    let view = PlanView {
        username: account.username.clone(),
        plan: account.plan.clone(),
        grants: active_grants(&account.grants, now),
        limits: effective_limits(&plan, &account.grants, now),
    };
    Ok(web::json(200, &view))
}
