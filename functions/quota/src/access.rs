//! Exceptional-access requests: submission by an account, review by an
//! admin ([`wikiedge_core::quota::access`] holds the rules).
//!
//! Keys:
//! - `access-request:{id}`: the [`AccessRequest`] as JSON (id: 16 random
//!   bytes in hex);
//! - `access-requests:{account}`: the ids of one account's requests;
//! - `access-request-index`: the ids of every request (the admin list).
//!
//! Both indexes are JSON arrays updated with compare-and-swap. An account
//! may have one pending request at a time (409 otherwise). Approving a
//! request marks it decided (compare-and-swap, so two admins cannot both
//! decide it) and then appends the grant to the account record
//! (compare-and-swap; idempotent by the grant's reason, `access request
//! {id}`). Should the account update fail, the request is put back to
//! pending so the decision can be made again.

use serde::Deserialize;
use spin_sdk::http::Request;
use wikiedge_core::Error;
use wikiedge_core::auth::{Account, keys};
use wikiedge_core::quota::grant::active_grants;
use wikiedge_core::quota::{AccessDecision, AccessRequest, AccessStatus, AccessSubmission};

use crate::limits;
use wikiedge_fn::kv::{self, Bucket, Update};
use wikiedge_fn::web::{self, Resp};
use wikiedge_fn::{caller, now};

/// The index of every request.
const INDEX_KEY: &str = "access-request-index";

/// The index of one account's requests.
fn account_index_key(account: &str) -> String {
    format!("access-requests:{account}")
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("Access request '{id}' not found"))
}

/// A request id is 32 lowercase hex characters; anything else cannot exist.
fn valid_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn new_id() -> String {
    spin_sdk::wasip3::random::random::get_random_bytes(16)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn parse_ids(bytes: Option<&[u8]>) -> Result<Vec<String>, Error> {
    match bytes {
        None => Ok(Vec::new()),
        Some(b) => {
            serde_json::from_slice(b).map_err(|e| Error::Internal(format!("access index: {e}")))
        }
    }
}

fn parse_request(bytes: &[u8]) -> Result<AccessRequest, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::Internal(format!("access request: {e}")))
}

fn to_json(request: &AccessRequest) -> Vec<u8> {
    serde_json::to_vec(request).unwrap_or_default()
}

/// Appends an id to an index (no duplicates).
fn index_add(bucket: &Bucket, key: &str, id: &str) -> Result<(), Error> {
    kv::update(bucket, key, |current| {
        let mut ids = parse_ids(current.as_deref())?;
        if ids.iter().any(|i| i == id) {
            return Ok(Update::Keep(()));
        }
        ids.push(id.to_string());
        Ok(Update::Write(
            serde_json::to_vec(&ids).unwrap_or_default(),
            (),
        ))
    })
}

/// The requests an index lists, newest first.
fn load_indexed(bucket: &Bucket, index_key: &str) -> Result<Vec<AccessRequest>, Error> {
    let ids = parse_ids(kv::get(bucket, index_key)?.as_deref())?;
    let keys: Vec<String> = ids.iter().map(|id| keys::access_request(id)).collect();
    let found = kv::get_many(bucket, &keys)?;
    let mut requests = keys
        .iter()
        .filter_map(|k| found.get(k))
        .map(|b| parse_request(b))
        .collect::<Result<Vec<_>, _>>()?;
    requests.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
    Ok(requests)
}

fn load(bucket: &Bucket, id: &str) -> Result<AccessRequest, Error> {
    if !valid_id(id) {
        return Err(not_found(id));
    }
    let bytes = kv::get(bucket, &keys::access_request(id))?.ok_or_else(|| not_found(id))?;
    parse_request(&bytes)
}

/// `POST /v1/access-requests`: 201 with the stored request.
pub async fn submit(req: Request) -> Result<Resp, Error> {
    let bucket = kv::open()?;
    let caller = caller::authenticate(&req, &bucket).await?;
    let account = caller.principal()?.account.clone();
    let body = web::json_body(req).await?;
    let answers = AccessSubmission::parse(&body)?;
    let own = load_indexed(&bucket, &account_index_key(&account))?;
    if own.iter().any(|r| r.status == AccessStatus::Pending) {
        return Err(Error::Conflict(
            "You already have a pending access request".into(),
        ));
    }
    let request = AccessRequest::new(&new_id(), &account, answers, now());
    kv::set(
        &bucket,
        &keys::access_request(&request.id),
        &to_json(&request),
    )?;
    index_add(&bucket, &account_index_key(&account), &request.id)?;
    index_add(&bucket, INDEX_KEY, &request.id)?;
    Ok(web::json(201, &request))
}

/// `GET /v1/access-requests`: the caller's requests, newest first.
pub async fn list_own(req: Request) -> Result<Resp, Error> {
    let bucket = kv::open()?;
    let caller = caller::authenticate(&req, &bucket).await?;
    let account = &caller.principal()?.account;
    let requests = load_indexed(&bucket, &account_index_key(account))?;
    Ok(web::json(200, &requests))
}

/// `GET /v1/access-requests/{id}`: one of the caller's requests; another
/// account's request is a 404, as if it did not exist.
pub async fn get_own(req: Request, id: &str) -> Result<Resp, Error> {
    let bucket = kv::open()?;
    let caller = caller::authenticate(&req, &bucket).await?;
    let account = &caller.principal()?.account;
    let request = load(&bucket, id)?;
    if &request.account != account {
        return Err(not_found(id));
    }
    Ok(web::json(200, &request))
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum StatusFilter {
    Pending,
    Approved,
    Declined,
}

/// `GET /v1/admin/access-requests[?status=pending|approved|declined]`.
pub async fn list_all(req: Request) -> Result<Resp, Error> {
    let bucket = kv::open()?;
    caller::authenticate(&req, &bucket).await?.require_admin()?;
    let filter = match web::query(&req, "status") {
        None => None,
        Some(s) => Some(
            serde_json::from_value::<StatusFilter>(serde_json::Value::String(s.clone())).map_err(
                |_| {
                    Error::Unprocessable(format!(
                        "unknown status '{s}': expected pending, approved or declined"
                    ))
                },
            )?,
        ),
    };
    let mut requests = load_indexed(&bucket, INDEX_KEY)?;
    if let Some(filter) = filter {
        let want = match filter {
            StatusFilter::Pending => AccessStatus::Pending,
            StatusFilter::Approved => AccessStatus::Approved,
            StatusFilter::Declined => AccessStatus::Declined,
        };
        requests.retain(|r| r.status == want);
    }
    Ok(web::json(200, &requests))
}

/// `GET /v1/admin/access-requests/{id}`.
pub async fn get_any(req: Request, id: &str) -> Result<Resp, Error> {
    let bucket = kv::open()?;
    caller::authenticate(&req, &bucket).await?.require_admin()?;
    Ok(web::json(200, &load(&bucket, id)?))
}

/// `POST /v1/admin/access-requests/{id}/decision` with
/// `{"action":"approve","monthly":{...},"burst_per_second":n,"expires":t}`
/// or `{"action":"decline","reason":"..."}`.
pub async fn decide(req: Request, id: &str) -> Result<Resp, Error> {
    let bucket = kv::open()?;
    let admin = caller::authenticate(&req, &bucket).await?.require_admin()?;
    let body = web::json_body(req).await?;
    let decision: AccessDecision = serde_json::from_slice(&body)?;
    let existing = load(&bucket, id)?;
    let account_key = keys::account(&existing.account);
    if kv::get(&bucket, &account_key)?.is_none() {
        return Err(Error::NotFound(format!(
            "Account '{}' no longer exists",
            existing.account
        )));
    }
    let now = now();
    let request_key = keys::access_request(id);
    let (decided, grant) = kv::update(&bucket, &request_key, |current| {
        let bytes = current.ok_or_else(|| not_found(id))?;
        let mut request = parse_request(&bytes)?;
        let grant = request.decide(decision.clone(), &admin, now)?;
        Ok(Update::Write(to_json(&request), (request, grant)))
    })?;
    if let Some(grant) = grant {
        let granted = kv::update(&bucket, &account_key, |current| {
            let bytes = current.ok_or_else(|| {
                Error::NotFound(format!("Account '{}' no longer exists", decided.account))
            })?;
            let mut account = Account::from_json(&bytes)?;
            if account.grants.iter().any(|g| g.reason == grant.reason) {
                return Ok(Update::Keep(()));
            }
            account.grants = active_grants(&account.grants, now);
            account.grants.push(grant.clone());
            Ok(Update::Write(account.to_json(), ()))
        });
        if let Err(err) = granted {
            let reverted = kv::update(&bucket, &request_key, |current| {
                let bytes = current.ok_or_else(|| not_found(id))?;
                let mut request = parse_request(&bytes)?;
                request.status = AccessStatus::Pending;
                request.decision = None;
                Ok(Update::Write(to_json(&request), ()))
            });
            if let Err(e) = reverted {
                eprintln!("wikiedge-quota: could not revert access request {id}: {e:?}");
            }
            return Err(err);
        }
        limits::forget(&decided.account);
    }
    Ok(web::json(200, &decided))
}
