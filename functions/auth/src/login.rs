//! `POST /v1/login`: username and password in, the WME token set out.
//!
//! KV operations: every attempt first reserves itself in the login throttle
//! (per username and per client address: 1 atomic increment each, plus 1
//! write of the attempt time, or 1 read and 1 decrement when refused; see
//! [`wikiedge_core::auth::throttle`]). Then a success costs 1 read of the
//! account, 1 write of the session, 1 compare-and-swap of the session index,
//! 1 read of the account again and 1 delete of the username's counter (and
//! 1 decrement of the client's); a failure costs the account read.

use wikiedge_core::auth::throttle::{self, Dimension};
use wikiedge_core::auth::{LoginRequest, password, username};
use wikiedge_core::{Error, Result};

use crate::config;
use crate::kv::Kv;
use crate::records;
use crate::respond::{self, Reply};

fn unauthorized() -> Error {
    Error::Unauthorized("Unauthorized".into())
}

/// The throttle reservations one attempt holds.
pub struct Reservation {
    held: Vec<Dimension>,
    now: i64,
}

/// Reserves one attempt in every dimension, *before* any password is
/// hashed: an atomic increment each, so parallel attempts are all counted.
/// If any dimension is locked, every reservation is given back and the
/// attempt is refused (429 with `Retry-After`).
pub async fn reserve(kv: &mut Kv, dims: Vec<Dimension>, now: i64) -> Result<Reservation> {
    let mut held: Vec<Dimension> = Vec::new();
    let mut refused = None;
    for dim in dims {
        let count = kv.increment(&dim.counter_key(now), 1)?;
        held.push(dim.clone());
        let last = if count > dim.allowance() {
            kv.get(&dim.last_attempt_key())
                .await?
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.parse::<i64>().ok())
        } else {
            None
        };
        if let Err(e) = throttle::decide(count, dim.allowance(), last, now) {
            refused = Some(e);
            break;
        }
    }
    if let Some(err) = refused {
        for dim in &held {
            kv.increment(&dim.counter_key(now), -1)?;
        }
        return Err(err);
    }
    for dim in &held {
        kv.set(&dim.last_attempt_key(), now.to_string().as_bytes())
            .await?;
    }
    Ok(Reservation { held, now })
}

impl Reservation {
    /// The password was right: the username's run of failures is over and
    /// the client's reservation is given back.
    pub async fn succeeded(self, kv: &mut Kv) -> Result<()> {
        for dim in &self.held {
            match dim {
                Dimension::User(_) => {
                    kv.delete(&dim.counter_key(self.now)).await?;
                    kv.delete(&dim.last_attempt_key()).await?;
                }
                Dimension::Client(_) => {
                    kv.increment(&dim.counter_key(self.now), -1)?;
                }
            }
        }
        Ok(())
    }
}

/// The dimensions an attempt on `name` from `client` (`spin-client-addr`)
/// is counted in.
pub fn dimensions(name: &str, client: Option<&str>) -> Vec<Dimension> {
    std::iter::once(Dimension::User(name.to_string()))
        .chain(Dimension::client(client))
        .collect()
}

/// Clears a username's throttle (admin unlock).
pub async fn unlock(kv: &Kv, name: &str, now: i64) -> Result<()> {
    let dim = Dimension::User(name.to_string());
    kv.delete(&dim.counter_key(now)).await?;
    kv.delete(&dim.last_attempt_key()).await
}

/// Handles `POST /v1/login`.
pub async fn login(body: Vec<u8>, client: Option<&str>) -> Result<Reply> {
    let request = LoginRequest::parse(&body)?;
    // Load the keys first, so a misconfiguration fails before any write.
    let signer = config::signer()?;
    let verifier = config::verifier()?;
    let now = wikiedge_fn::now();
    let mut kv = Kv::open().await?;
    let Ok(name) = username::validate(&request.username) else {
        // No account can have this name; count it against the client and
        // spend the same time anyway.
        reserve(
            &mut kv,
            Dimension::client(client).into_iter().collect(),
            now,
        )
        .await?;
        password::verify_dummy(&request.password);
        return Err(unauthorized());
    };
    let reservation = reserve(&mut kv, dimensions(&name, client), now).await?;
    let account = records::account(&kv, &name).await?;
    let matches = match &account {
        Some(account) => password::verify(&request.password, &account.password_hash)?,
        None => password::verify_dummy(&request.password),
    };
    let Some(account) = account.filter(|_| matches) else {
        return Err(unauthorized());
    };
    reservation.succeeded(&mut kv).await?;
    if account.disabled {
        return Err(Error::Forbidden("The account is disabled".into()));
    }
    if account.unconfirmed {
        return Err(Error::Unauthorized("User is not confirmed.".into()));
    }
    let (record, refresh_token) = records::start_session(&mut kv, &account, now).await?;
    let tokens = verifier
        .issuer
        .login(signer, &account, &record.session, refresh_token, now);
    Ok(respond::json(200, &tokens))
}
