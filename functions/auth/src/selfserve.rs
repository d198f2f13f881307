//! Self-service accounts: `GET /v1/signup-challenge`, `POST /v1/create-user`,
//! `/v1/confirm-user`, `/v1/resend-confirm`, `/v1/forgot-password`,
//! `/v1/forgot-password-confirm`, and the admin's `GET /v1/admin/outbox`.
//!
//! The decisions are in [`wikiedge_core::auth::signup`] and
//! [`wikiedge_core::auth::pow`]; this module reads variables, claims rate
//! windows with atomic increments, keeps the pending codes with
//! compare-and-swap and hands messages to [`crate::mail`].
//!
//! KV keys (store `default`), besides the account records of
//! [`crate::records`]:
//!
//! | key | value | written by |
//! |---|---|---|
//! | `signup-code:{confirm,reset}:{username}` | [`PendingCode`] JSON (the code's HMAC, expiry, wrong tries) | create-user, resend-confirm, forgot-password (CAS, replacing), the confirms (CAS) |
//! | `pow-used:{challenge id}` | counter | create-user (atomic increment: 1 = first use) |
//! | `rate:{window}:{index}:{subject}` | counter | every route here (atomic increment) |
//! | `dev-outbox` | [`Outbox`] JSON | delivery when no webhook is configured (CAS) |

use spin_sdk::experimental::wasi::keyvalue::{atomics, store as wkv};
use spin_sdk::http::{Method, Request};
use wikiedge_core::auth::pow;
use wikiedge_core::auth::signup::{
    self, CodeCheck, ConfirmUserRequest, CreateUserRequest, ForgotPasswordConfirmRequest, Mail,
    Outbox, PendingCode, Purpose, UsernameRequest, Window, invalid_code,
};
use wikiedge_core::auth::{Account, Role, password};
use wikiedge_core::{Error, Result};

use crate::kv::{Kv, Update, unavailable};
use crate::respond::{self, Reply};
use crate::{config, mail, records};

/// The paths this module answers.
pub const PATHS: [&str; 7] = [
    "/v1/signup-challenge",
    "/v1/create-user",
    "/v1/confirm-user",
    "/v1/resend-confirm",
    "/v1/forgot-password",
    "/v1/forgot-password-confirm",
    "/v1/admin/outbox",
];

/// Code checks per account per 15 minutes (on top of the per-code limit).
const CHECKS_PER_ACCOUNT: Window = Window {
    name: "code-check-account",
    seconds: 900,
    limit: 10,
};
/// Code checks per client per 15 minutes.
const CHECKS_PER_CLIENT: Window = Window {
    name: "code-check-client",
    seconds: 900,
    limit: 50,
};
/// Codes mailed per account per hour.
const SENDS_PER_ACCOUNT: Window = Window {
    name: "code-send-account",
    seconds: 3600,
    limit: 5,
};
/// Code requests per client per hour.
const SENDS_PER_CLIENT: Window = Window {
    name: "code-send-client",
    seconds: 3600,
    limit: 30,
};

/// The self-service variables.
pub struct Settings {
    /// `open_signup`: whether create-user is open.
    pub open_signup: bool,
    /// `signup_pow_difficulty`: zero bits a proof of work needs.
    pub difficulty: u8,
    /// `signup_code_ttl_seconds`: how long a mailed code works.
    pub code_ttl: i64,
    /// `signup_per_client_per_hour`.
    pub per_client: i64,
    /// `signup_global_per_hour`.
    pub global: i64,
    /// `mail_webhook_url`: empty means the dev outbox.
    pub webhook_url: String,
    /// `mail_webhook_secret`: signs webhook bodies when set.
    pub webhook_secret: String,
}

async fn var(name: &str) -> Result<String> {
    spin_sdk::variables::get(name)
        .await
        .map_err(|e| Error::Internal(format!("variable {name}: {e:?}")))
}

impl Settings {
    /// Reads the variables (a bad value is our misconfiguration: 500).
    pub async fn load() -> Result<Settings> {
        Ok(Settings {
            open_signup: signup::parse_flag("open_signup", &var("open_signup").await?)?,
            difficulty: pow::parse_difficulty(&var("signup_pow_difficulty").await?)?,
            code_ttl: signup::parse_count(
                "signup_code_ttl_seconds",
                &var("signup_code_ttl_seconds").await?,
            )?,
            per_client: signup::parse_count(
                "signup_per_client_per_hour",
                &var("signup_per_client_per_hour").await?,
            )?,
            global: signup::parse_count(
                "signup_global_per_hour",
                &var("signup_global_per_hour").await?,
            )?,
            webhook_url: var("mail_webhook_url").await?.trim().to_string(),
            webhook_secret: var("mail_webhook_secret").await?,
        })
    }
}

/// The secret for challenges and code hashes, derived from the signing key.
fn secret() -> Result<[u8; 32]> {
    Ok(signup::derive_secret(&config::signer()?.to_bytes()))
}

/// Counts one event in `window` for `subject`; a 429 beyond the limit.
fn claim(
    bucket: &wkv::Bucket,
    window: Window,
    subject: &str,
    now: i64,
    message: &str,
) -> Result<()> {
    let count = atomics::increment(bucket, &window.key(subject, now), 1)
        .map_err(|e| unavailable("increment", e))?;
    window.admit(count, now, message)
}

/// Handles one of [`PATHS`].
pub async fn route(path: &str, req: Request) -> Result<Reply> {
    let method = req.method().clone();
    let client = signup::client_id(respond::header(&req, "spin-client-addr"));
    match path {
        "/v1/signup-challenge" if method == Method::GET => challenge().await,
        "/v1/signup-challenge" | "/v1/admin/outbox" => Ok(respond::method_not_allowed("GET")),
        _ if method != Method::POST => Ok(respond::method_not_allowed("POST")),
        "/v1/create-user" => create_user(respond::json_body(req).await?, &client).await,
        "/v1/confirm-user" => confirm_user(respond::json_body(req).await?, &client).await,
        "/v1/resend-confirm" => {
            send_code(respond::json_body(req).await?, &client, Purpose::Confirm).await
        }
        "/v1/forgot-password" => {
            send_code(respond::json_body(req).await?, &client, Purpose::Reset).await
        }
        "/v1/forgot-password-confirm" => {
            forgot_password_confirm(respond::json_body(req).await?, &client).await
        }
        _ => Err(Error::NotFound("Not found".into())),
    }
}

/// `GET /v1/admin/outbox` (the caller has been authorised as admin).
pub async fn outbox() -> Result<Reply> {
    let kv = Kv::open().await?;
    let outbox = kv
        .get(Outbox::KEY)
        .await?
        .map(|b| Outbox::from_json(&b))
        .unwrap_or_default();
    Ok(respond::json(200, &outbox))
}

fn closed() -> Error {
    Error::Forbidden("Sign-up is closed on this deployment".into())
}

/// `GET /v1/signup-challenge`: a fresh proof-of-work challenge.
async fn challenge() -> Result<Reply> {
    let settings = Settings::load().await?;
    if !settings.open_signup {
        return Err(closed());
    }
    let issued = pow::issue(
        &secret()?,
        &records::random::<16>()?,
        wikiedge_fn::now(),
        settings.difficulty,
    );
    Ok(respond::json(200, &issued))
}

/// `POST /v1/create-user`: 204, the account exists unconfirmed and its
/// code is on its way.
async fn create_user(body: Vec<u8>, client: &str) -> Result<Reply> {
    let settings = Settings::load().await?;
    if !settings.open_signup {
        return Err(closed());
    }
    let request = CreateUserRequest::parse(&body)?;
    let now = wikiedge_fn::now();
    let secret = secret()?;
    let bucket = wikiedge_fn::kv::open()?;
    let per_client = Window {
        name: "signup-client",
        seconds: 3600,
        limit: settings.per_client,
    };
    claim(
        &bucket,
        per_client,
        client,
        now,
        "Too many sign-ups from this address",
    )?;
    let challenge = pow::verify(&secret, &request.captcha_id, &request.captcha_solution, now)?;
    let uses = atomics::increment(&bucket, &format!("pow-used:{}", challenge.id), 1)
        .map_err(|e| unavailable("increment", e))?;
    if uses != 1 {
        return Err(Error::Unprocessable(
            "captcha_id has already been used; get a new challenge".into(),
        ));
    }
    let global = Window {
        name: "signup-global",
        seconds: 3600,
        limit: settings.global,
    };
    claim(
        &bucket,
        global,
        "all",
        now,
        "Too many sign-ups; try again later",
    )?;
    let plans = config::plans()?;
    plans.require("free")?;
    let hash = password::hash(&request.password, &records::random::<16>()?)?;
    let mut account = Account::new(&request.username, hash, Role::User, "free", now);
    account.email = Some(request.email.clone());
    account.unconfirmed = true;
    let mut kv = Kv::open().await?;
    records::create_account(&mut kv, &account)?;
    issue_code(&mut kv, &settings, &secret, &account, Purpose::Confirm, now).await?;
    Ok(respond::no_content())
}

/// Stores a new code for the account (replacing any pending one) and
/// delivers it.
async fn issue_code(
    kv: &mut Kv,
    settings: &Settings,
    secret: &[u8],
    account: &Account,
    purpose: Purpose,
    now: i64,
) -> Result<()> {
    let Some(to) = account.email.as_deref() else {
        return Ok(());
    };
    let code = signup::new_code(&records::random::<8>()?);
    let pending = PendingCode::new(
        secret,
        purpose,
        &account.username,
        &code,
        now,
        settings.code_ttl,
    );
    kv.update(&signup::code_key(purpose, &account.username), |_| {
        Ok(Update::Write(pending.to_json(), ()))
    })?;
    let message = Mail::new(to, &account.username, purpose, &code, pending.expires, now);
    mail::deliver(kv, settings, &message).await;
    Ok(())
}

/// `POST /v1/resend-confirm` and `POST /v1/forgot-password`: always 204
/// (or the same 429 for everyone over the windows), whether or not a code
/// was sent, so neither route tells whether an account exists.
async fn send_code(body: Vec<u8>, client: &str, purpose: Purpose) -> Result<Reply> {
    let settings = Settings::load().await?;
    let name = UsernameRequest::parse(&body)?;
    let now = wikiedge_fn::now();
    let bucket = wikiedge_fn::kv::open()?;
    claim(
        &bucket,
        SENDS_PER_CLIENT,
        client,
        now,
        "Too many code requests",
    )?;
    let Some(name) = name else {
        return Ok(respond::no_content());
    };
    claim(
        &bucket,
        SENDS_PER_ACCOUNT,
        &name,
        now,
        "Too many code requests",
    )?;
    let secret = secret()?;
    let mut kv = Kv::open().await?;
    if let Some(account) = records::account(&kv, &name).await? {
        let eligible = !account.disabled
            && match purpose {
                Purpose::Confirm => account.unconfirmed,
                Purpose::Reset => !account.unconfirmed,
            };
        if eligible {
            issue_code(&mut kv, &settings, &secret, &account, purpose, now).await?;
        }
    }
    Ok(respond::no_content())
}

/// Counts a code check against the windows, then uses the pending code
/// with compare-and-swap: a right code is spent (replaced by a dead
/// record) in the same swap that accepts it, so two concurrent uses cannot
/// both win. `Ok`, with the store to act on, only for the right, live code.
async fn spend_code(
    client: &str,
    purpose: Purpose,
    username: &str,
    code: &str,
    now: i64,
) -> Result<Kv> {
    let key = secret()?;
    let mut kv = Kv::open().await?;
    let bucket = wikiedge_fn::kv::open()?;
    claim(
        &bucket,
        CHECKS_PER_CLIENT,
        client,
        now,
        "Too many code attempts",
    )?;
    claim(
        &bucket,
        CHECKS_PER_ACCOUNT,
        username,
        now,
        "Too many code attempts",
    )?;
    let spent = PendingCode {
        hash: String::new(),
        expires: 0,
        tries: signup::MAX_CODE_TRIES,
    };
    let accepted = kv.update(&signup::code_key(purpose, username), |current| {
        let Some(pending) = current.as_deref().and_then(PendingCode::from_json) else {
            return Ok(Update::Keep(false));
        };
        Ok(match pending.check(&key, purpose, username, code, now) {
            CodeCheck::Accepted => Update::Write(spent.to_json(), true),
            CodeCheck::Wrong(next) => Update::Write(next.to_json(), false),
            CodeCheck::Dead if pending == spent => Update::Keep(false),
            CodeCheck::Dead => Update::Write(spent.to_json(), false),
        })
    })?;
    if accepted {
        Ok(kv)
    } else {
        Err(invalid_code())
    }
}

/// `POST /v1/confirm-user`: 204 and the account can log in.
async fn confirm_user(body: Vec<u8>, client: &str) -> Result<Reply> {
    let request = ConfirmUserRequest::parse(&body)?;
    let now = wikiedge_fn::now();
    let mut kv = spend_code(
        client,
        Purpose::Confirm,
        &request.username,
        &request.confirmation_code,
        now,
    )
    .await?;
    records::update_account(&mut kv, &request.username, |account| {
        account.unconfirmed = false;
        Ok(())
    })
    .map_err(|e| if e.status() == 404 { invalid_code() } else { e })?;
    Ok(respond::no_content())
}

/// `POST /v1/forgot-password-confirm`: 204, the new password is set and
/// every session of the account is revoked.
async fn forgot_password_confirm(body: Vec<u8>, client: &str) -> Result<Reply> {
    let request = ForgotPasswordConfirmRequest::parse(&body)?;
    let now = wikiedge_fn::now();
    let mut kv = spend_code(
        client,
        Purpose::Reset,
        &request.username,
        &request.confirmation_code,
        now,
    )
    .await?;
    let hash = password::hash(&request.password, &records::random::<16>()?)?;
    records::update_account(&mut kv, &request.username, |account| {
        account.password_hash = hash.clone();
        Ok(())
    })
    .map_err(|e| if e.status() == 404 { invalid_code() } else { e })?;
    records::revoke_other_sessions(&mut kv, &request.username, "", now).await?;
    Ok(respond::no_content())
}
