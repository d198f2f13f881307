//! `POST /v1/get-user` and `POST /v1/change-password`: the caller's own
//! account.

use serde_json::Value;
use wikiedge_core::auth::account::GetUserResponse;
use wikiedge_core::auth::{Account, ChangePasswordRequest, password};
use wikiedge_core::quota::{Plans, effective_limits};
use wikiedge_core::{Error, Result};

use crate::kv::Kv;
use crate::respond::{self, Reply};
use crate::{config, login, records, verify};

/// An account as shown to its owner and to admins: no password hash, with
/// the limits in effect now (`null` if its plan is no longer defined).
pub fn view(account: &Account, plans: &Plans, now: i64) -> GetUserResponse {
    let limits = plans
        .get(&account.plan)
        .map(|plan| effective_limits(plan, &account.grants, now).to_json())
        .unwrap_or(Value::Null);
    GetUserResponse::new(account, limits)
}

/// Handles `POST /v1/get-user` (`Authorization: Bearer`).
pub async fn get_user(authorization: Option<&str>) -> Result<Reply> {
    let principal = verify::principal(authorization)?;
    let kv = Kv::open().await?;
    let account = records::account(&kv, &principal.account)
        .await?
        .ok_or_else(|| Error::Unauthorized("Unauthorized".into()))?;
    let plans = config::plans()?;
    Ok(respond::json(
        200,
        &view(&account, plans, wikiedge_fn::now()),
    ))
}

/// Handles `POST /v1/change-password` (WME: the access token is in the
/// body). A wrong previous password counts against the login throttle.
/// Every other session of the account is revoked: whoever knew the old
/// password is logged out; the caller's own session stays.
pub async fn change_password(body: Vec<u8>, client: Option<&str>) -> Result<Reply> {
    let request = ChangePasswordRequest::parse(&body)?;
    let principal = verify::verify_token(&request.access_token).map_err(verify::to_error)?;
    let name = principal.account;
    let now = wikiedge_fn::now();
    let mut kv = Kv::open().await?;
    let reservation = login::reserve(&mut kv, login::dimensions(&name, client), now).await?;
    let account = records::account(&kv, &name)
        .await?
        .ok_or_else(|| Error::Unauthorized("Unauthorized".into()))?;
    if !password::verify(&request.previous_password, &account.password_hash)? {
        return Err(Error::Unauthorized("Incorrect previous password".into()));
    }
    reservation.succeeded(&mut kv).await?;
    let new_hash = password::hash(&request.proposed_password, &records::random::<16>()?)?;
    records::update_account(&mut kv, &name, |stored| {
        // Refuse if the password changed since we checked the old one.
        if stored.password_hash != account.password_hash {
            return Err(Error::Conflict(
                "The password was changed concurrently".into(),
            ));
        }
        stored.password_hash.clone_from(&new_hash);
        Ok(())
    })?;
    records::revoke_other_sessions(&mut kv, &name, &principal.session, now).await?;
    Ok(respond::no_content())
}
