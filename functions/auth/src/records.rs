//! Reading and writing the auth records.
//!
//! Key layout (store `default`):
//!
//! | key | value | written by |
//! |---|---|---|
//! | `account:{username}` | [`Account`] JSON | admin create (CAS, expected absent), admin patch and change-password (CAS) |
//! | `accounts:count`, `accounts:#{seq}`, `accounts:@{username}` | the directory: an append-only [`wikiedge_core::listing`] of every username | account create (increment, set, set) |
//! | `session:{id}` | [`SessionRecord`] JSON: the refresh-token record plus copies of the account's `disabled`, `role` and `plan` | login (set), refresh, revoke, admin patch (CAS) |
//! | `sessions:{username}` | [`SessionIndex`] JSON: the account's sessions | login (CAS) |
//! | `login-attempts:{user:NAME\|client:IP}:{window}` | counter (`wasi:keyvalue` atomics) | every login and change-password attempt (increment before hashing; decrement when refused; user's deleted on success or admin unlock) |
//! | `login-last-attempt:{user:NAME\|client:IP}` | unix seconds, decimal | each attempt let through (set) |
//!
//! Verifying an access token reads only `session:{sid}`: the copies in the
//! session record tell revocation, expiry, disabling, role and plan. To keep
//! the copies true, an admin patch rewrites every session in the account's
//! index, and login re-reads the account after indexing its new session
//! (so a patch racing a login is seen by one of the two).

use wikiedge_core::auth::directory;
use wikiedge_core::auth::session_index::{self, SessionIndex};
use wikiedge_core::auth::session_record::SessionRecord;
use wikiedge_core::auth::token::SESSION_RANDOM_LEN;
use wikiedge_core::auth::{Account, Session, keys};
use wikiedge_core::listing::Page;
use wikiedge_core::{Error, Result};

use crate::kv::{Kv, Update};

/// Fills `N` bytes from the WASI random source.
pub fn random<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| Error::Internal(format!("random: {e}")))?;
    Ok(buf)
}

/// Reads an account.
pub async fn account(kv: &Kv, username: &str) -> Result<Option<Account>> {
    kv.get(&keys::account(username))
        .await?
        .map(|b| Account::from_json(&b))
        .transpose()
}

/// Creates an account unless one with its name exists (409), and lists it
/// in the directory.
pub fn create_account(kv: &mut Kv, account: &Account) -> Result<()> {
    kv.update(&keys::account(&account.username), |current| match current {
        Some(_) => Err(Error::Conflict(format!(
            "account '{}' already exists",
            account.username
        ))),
        None => Ok(Update::Write(account.to_json(), ())),
    })?;
    kv.add_to_listing(&directory::listing(), &account.username)
}

/// A page of the directory's usernames, in the order the accounts were
/// created, and the entries appended so far. A legacy directory (one JSON
/// array) is first moved into the listing and deleted.
pub async fn usernames(kv: &mut Kv, page: Page) -> Result<(Vec<String>, u64)> {
    if let Some(bytes) = kv.get(directory::LEGACY_KEY).await? {
        for name in directory::legacy_usernames(&bytes)? {
            kv.add_to_listing(&directory::listing(), &name)?;
        }
        kv.delete(directory::LEGACY_KEY).await?;
    }
    kv.listing_page(&directory::listing(), page)
}

/// Changes an existing account atomically (404 if there is none) and
/// returns it as stored.
pub fn update_account(
    kv: &mut Kv,
    username: &str,
    mut f: impl FnMut(&mut Account) -> Result<()>,
) -> Result<Account> {
    kv.update(&keys::account(username), |current| {
        let bytes = current.ok_or_else(|| Error::NotFound("Account not found".into()))?;
        let mut account = Account::from_json(&bytes)?;
        f(&mut account)?;
        Ok(Update::Write(account.to_json(), account))
    })
}

/// Reads a session record.
pub fn session(bucket: &wikiedge_fn::kv::Bucket, id: &str) -> Result<Option<SessionRecord>> {
    wikiedge_fn::kv::get(bucket, &keys::session(id))?
        .map(|b| SessionRecord::from_json(&b))
        .transpose()
}

/// Changes a session record atomically; `f` returns whether it changed
/// anything (an unchanged record is not written). `None` if there is no
/// such session.
pub fn update_session(
    kv: &mut Kv,
    id: &str,
    mut f: impl FnMut(&mut SessionRecord) -> Result<bool>,
) -> Result<Option<SessionRecord>> {
    kv.update(&keys::session(id), |current| {
        let Some(bytes) = current else {
            return Ok(Update::Keep(None));
        };
        let mut record = SessionRecord::from_json(&bytes)?;
        Ok(if f(&mut record)? {
            Update::Write(record.to_json(), Some(record))
        } else {
            Update::Keep(Some(record))
        })
    })
}

/// Starts a session for `account`: stores it, indexes it (revoking any
/// session evicted by the per-account cap), and re-reads the account so a
/// concurrent patch is not missed. Returns the record and the refresh token.
pub async fn start_session(
    kv: &mut Kv,
    account: &Account,
    now: i64,
) -> Result<(SessionRecord, String)> {
    let (session, refresh_token) =
        Session::create(&account.username, &random::<SESSION_RANDOM_LEN>()?, now);
    let mut record = SessionRecord::new(session, account);
    let id = record.session.id.clone();
    kv.set(&keys::session(&id), &record.to_json()).await?;
    let evicted = kv.update(&session_index::key(&account.username), |current| {
        let mut index = current
            .map(|b| SessionIndex::from_json(&b))
            .transpose()?
            .unwrap_or_default();
        let evicted = index.add(&id, record.session.expires, now);
        Ok(Update::Write(index.to_json(), evicted))
    })?;
    for old in evicted {
        update_session(kv, &old, |r| {
            r.session.revoke();
            Ok(true)
        })?;
    }
    if let Some(latest) = self::account(kv, &account.username).await?
        && record.clone().sync(&latest)
        && let Some(synced) = update_session(kv, &id, |r| Ok(r.sync(&latest)))?
    {
        record = synced;
    }
    Ok((record, refresh_token))
}

/// Revokes every live session of the account except `keep`: a password
/// change ends every other login (their access tokens stop verifying at
/// once, since verification reads the session record).
pub async fn revoke_other_sessions(
    kv: &mut Kv,
    username: &str,
    keep: &str,
    now: i64,
) -> Result<()> {
    let index = kv
        .get(&session_index::key(username))
        .await?
        .map(|b| SessionIndex::from_json(&b))
        .transpose()?
        .unwrap_or_default();
    for id in index.live_ids(now) {
        if id != keep {
            update_session(kv, &id, |r| {
                let changed = !r.session.revoked;
                r.session.revoke();
                Ok(changed)
            })?;
        }
    }
    Ok(())
}

/// Copies the account's state into every live session of its index.
pub async fn propagate(kv: &mut Kv, account: &Account, now: i64) -> Result<()> {
    let index = kv
        .get(&session_index::key(&account.username))
        .await?
        .map(|b| SessionIndex::from_json(&b))
        .transpose()?
        .unwrap_or_default();
    for id in index.live_ids(now) {
        update_session(kv, &id, |r| Ok(r.sync(account)))?;
    }
    Ok(())
}
