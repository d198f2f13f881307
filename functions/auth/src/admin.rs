//! The admin API: `POST|GET /v1/admin/accounts`,
//! `GET|PATCH /v1/admin/accounts/{username}`,
//! `POST /v1/admin/accounts/{username}/unlock`.
//!
//! Authorised by `X-Admin-Key` (compared in constant time; a wrong key is a
//! 401 and no Bearer fallback is tried) or by the Bearer token of an account
//! whose current role is admin (403 otherwise).

use spin_sdk::http::{HeaderValue, Request};
use wikiedge_core::auth::directory;
use wikiedge_core::auth::verify::admin_key_matches;
use wikiedge_core::auth::{Account, CreateAccountRequest, PatchAccountRequest, password, username};
use wikiedge_core::listing::Page;
use wikiedge_core::{Error, Result};
use wikiedge_fn::web;

use crate::kv::Kv;
use crate::respond::{self, Reply};
use crate::user::view;
use crate::{config, records, verify};

/// The credentials an admin request carries.
pub struct Credentials<'a> {
    /// The `X-Admin-Key` header.
    pub admin_key: Option<&'a str>,
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
}

/// `Ok` if the request may use the admin API.
pub fn authorize(credentials: &Credentials<'_>) -> Result<()> {
    if let Some(key) = credentials.admin_key {
        let configured = config::admin_key()?;
        return if admin_key_matches(Some(key), configured) {
            Ok(())
        } else {
            Err(Error::Unauthorized("Invalid admin key".into()))
        };
    }
    let principal = verify::principal(credentials.authorization)?;
    if principal.role != "admin" {
        return Err(Error::Forbidden(
            "This action requires the admin role".into(),
        ));
    }
    Ok(())
}

/// `POST /v1/admin/accounts`: 201 with the account, 409 if it exists.
pub async fn create(body: Vec<u8>) -> Result<Reply> {
    let plans = config::plans()?;
    let request = CreateAccountRequest::parse(&body, plans)?;
    let now = wikiedge_fn::now();
    let hash = password::hash(&request.password, &records::random::<16>()?)?;
    let account = Account::new(&request.username, hash, request.role, &request.plan, now);
    let mut kv = Kv::open().await?;
    records::create_account(&mut kv, &account)?;
    Ok(respond::json(201, &view(&account, plans, now)))
}

/// `GET /v1/admin/accounts?limit=N&after=SEQ`: a page of the accounts, in
/// the order they were created (100 from the start unless asked); a page
/// that is not the last links to the next (`Link: <...>; rel="next"`).
pub async fn list(req: &Request) -> Result<Reply> {
    let page = Page::parse(
        web::query(req, "after").as_deref(),
        web::query(req, "limit").as_deref(),
        directory::DEFAULT_PAGE,
        directory::MAX_PAGE,
    )?;
    let plans = config::plans()?;
    let now = wikiedge_fn::now();
    let mut kv = Kv::open().await?;
    let (names, count) = records::usernames(&mut kv, page).await?;
    let mut accounts = Vec::new();
    for name in names {
        if let Some(account) = records::account(&kv, &name).await? {
            accounts.push(view(&account, plans, now));
        }
    }
    let mut reply = respond::json(200, &accounts);
    if let Some(value) = page
        .next_link("/v1/admin/accounts?", count)
        .and_then(|link| HeaderValue::from_str(&link).ok())
    {
        reply.headers_mut().insert("link", value);
    }
    Ok(reply)
}

fn not_found() -> Error {
    Error::NotFound("Account not found".into())
}

/// `GET /v1/admin/accounts/{username}`.
pub async fn get(name: &str) -> Result<Reply> {
    let name = username::validate(name).map_err(|_| not_found())?;
    let plans = config::plans()?;
    let kv = Kv::open().await?;
    let account = records::account(&kv, &name).await?.ok_or_else(not_found)?;
    Ok(respond::json(
        200,
        &view(&account, plans, wikiedge_fn::now()),
    ))
}

/// `POST /v1/admin/accounts/{username}/unlock`: clears the username's login
/// throttle (204; 404 for an unknown account).
pub async fn unlock(name: &str) -> Result<Reply> {
    let name = username::validate(name).map_err(|_| not_found())?;
    let kv = Kv::open().await?;
    records::account(&kv, &name).await?.ok_or_else(not_found)?;
    crate::login::unlock(&kv, &name, wikiedge_fn::now()).await?;
    Ok(respond::no_content())
}

/// `PATCH /v1/admin/accounts/{username}`: changes the account, then copies
/// `disabled`, role and plan into every live session of it, so tokens
/// already issued see the change on their next verification. A new
/// password ends every session of the account: whoever knew the old one is
/// logged out.
pub async fn patch(name: &str, body: Vec<u8>) -> Result<Reply> {
    let name = username::validate(name).map_err(|_| not_found())?;
    let plans = config::plans()?;
    let request = PatchAccountRequest::parse(&body, plans)?;
    let hash = match &request.password {
        Some(pw) => Some(password::hash(pw, &records::random::<16>()?)?),
        None => None,
    };
    let now = wikiedge_fn::now();
    let mut kv = Kv::open().await?;
    let account = records::update_account(&mut kv, &name, |account| {
        request.apply(account, hash.clone());
        Ok(())
    })?;
    records::propagate(&mut kv, &account, now).await?;
    if request.password.is_some() {
        records::revoke_other_sessions(&mut kv, &name, "", now).await?;
    }
    Ok(respond::json(200, &view(&account, plans, now)))
}
