//! Who is calling: a bearer token verified locally, or the admin key.
//!
//! Used by the quota and metering components, which do not import the
//! `auth` interface (a dependency's own imports would be unsatisfied when
//! `articles` composes it): this verifies the JWT with the public key and
//! reads the session record and revocation marker itself, through the pure
//! checks of [`wikiedge_core::auth::verify`]. One `get-many` per request.

use std::cell::RefCell;

use spin_sdk::http::Request;
use wikiedge_core::Error;
use wikiedge_core::auth::signing::verifying_key_from_config;
use wikiedge_core::auth::verify::{self, Principal};

use crate::kv::{self, Bucket};
use crate::now;
use crate::web::header;

/// The variables authentication needs; they do not change while the app
/// runs, so each instance reads them once.
#[derive(Clone)]
struct AuthConfig {
    public_key: String,
    issuer: String,
    audience: String,
    admin_key: String,
}

thread_local! {
    static CONFIG: RefCell<Option<AuthConfig>> = const { RefCell::new(None) };
}

async fn variable(name: &str) -> Result<String, Error> {
    spin_sdk::variables::get(name)
        .await
        .map_err(|e| Error::Internal(format!("variable {name}: {e:?}")))
}

async fn config() -> Result<AuthConfig, Error> {
    if let Some(cfg) = CONFIG.with(|c| c.borrow().clone()) {
        return Ok(cfg);
    }
    let cfg = AuthConfig {
        public_key: variable("jwt_public_key").await?,
        issuer: variable("token_issuer").await?,
        audience: variable("token_audience").await?,
        admin_key: variable("admin_api_key").await?,
    };
    CONFIG.with(|c| *c.borrow_mut() = Some(cfg.clone()));
    Ok(cfg)
}

/// An authenticated caller.
pub enum Caller {
    /// A user or admin account with a valid access token.
    Account(Principal),
    /// Whoever holds the admin API key.
    AdminKey,
}

impl Caller {
    /// The account, or a 401 for the bare admin key (routes about "my"
    /// quota need an account).
    pub fn principal(&self) -> Result<&Principal, Error> {
        match self {
            Caller::Account(p) => Ok(p),
            Caller::AdminKey => Err(Error::Unauthorized(
                "This route needs a bearer token".into(),
            )),
        }
    }

    /// Who is acting as admin (for audit fields), or a 403.
    pub fn require_admin(&self) -> Result<String, Error> {
        match self {
            Caller::AdminKey => Ok("admin-api-key".into()),
            Caller::Account(p) if p.is_admin() => Ok(p.account.clone()),
            Caller::Account(_) => Err(Error::Forbidden(
                "This action requires the admin role".into(),
            )),
        }
    }
}

/// Authenticates a request: a present `X-Admin-Key` must match (401
/// otherwise); else the bearer token must verify and its session be live.
pub async fn authenticate(req: &Request, bucket: &Bucket) -> Result<Caller, Error> {
    let cfg = config().await?;
    if let Some(key) = header(req, "x-admin-key") {
        return if verify::admin_key_matches(Some(key), &cfg.admin_key) {
            Ok(Caller::AdminKey)
        } else {
            Err(Error::Unauthorized("Invalid admin key".into()))
        };
    }
    let token = verify::bearer_token(header(req, "authorization"))?;
    let public = verifying_key_from_config(&cfg.public_key)
        .map_err(|e| Error::Internal(format!("jwt_public_key: {e:?}")))?;
    let now = now();
    let claims = verify::verify_access_token(token, &public, &cfg.issuer, &cfg.audience, now)?;
    let keys = verify::record_keys(&claims);
    let found = kv::get_many(bucket, &keys)?;
    let [session_key, revocation_key] = &keys;
    let principal = verify::check_records(
        &claims,
        found.get(session_key).map(Vec::as_slice),
        found.get(revocation_key).map(Vec::as_slice),
        now,
    )?;
    Ok(Caller::Account(principal))
}
