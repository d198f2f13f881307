//! Self-service accounts: sign-up, confirmation codes, password reset, the
//! rate windows that throttle them and the mail that carries the codes.
//!
//! The routes (`/v1/create-user`, `/v1/confirm-user`, `/v1/resend-confirm`,
//! `/v1/forgot-password`, `/v1/forgot-password-confirm`) take WME's bodies.
//! A code is 8 random digits, mailed to the account's address and stored
//! only as HMAC-SHA256(secret, `{purpose}:{username}:{code}`) in a
//! [`PendingCode`] with its expiry and a count of wrong tries; using it
//! deletes it (single use). Guessing is bounded three ways: a code dies after
//! [`MAX_CODE_TRIES`] wrong tries, and every check counts against a
//! per-account and a per-client window ([`Window`]) claimed with atomic
//! increments.
//!
//! This module holds the rules (request bodies, addresses, rate windows,
//! client ids, variables); [`records`] what is stored or sent (codes and
//! their pending record, the mail, the dev outbox, the webhook signature).
//!
//! Nothing here reads a clock, draws randomness or touches storage.

use serde::{Deserialize, Serialize};

use super::pow::hmac_sha256;
use super::requests::parse_body;
use super::{password, username};
use crate::{Error, Result};

pub mod records;

pub use records::{
    CodeCheck, Mail, Outbox, PendingCode, code_hash, invalid_code, new_code, webhook_signature,
};

/// Digits in a confirmation code.
pub const CODE_DIGITS: u32 = 8;
/// Wrong tries after which a code is dead and a new one must be sent.
pub const MAX_CODE_TRIES: u32 = 5;
/// The longest email address accepted (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// What a code is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Confirming a new account's address.
    Confirm,
    /// Resetting a forgotten password.
    Reset,
}

impl Purpose {
    /// The name used in keys and mail.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Confirm => "confirm",
            Purpose::Reset => "reset",
        }
    }
}

/// The key of an account's pending code: `signup-code:{purpose}:{username}`.
pub fn code_key(purpose: Purpose, username: &str) -> String {
    format!("signup-code:{}:{username}", purpose.as_str())
}

fn required(name: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::Unprocessable(format!("{name} is required")));
    }
    Ok(())
}

/// Checks an email address: one `@`, a non-empty local part, a dotted
/// domain, no spaces or control characters, at most 254 bytes. Returns it
/// with the domain lowercased.
pub fn validate_email(email: &str) -> Result<String> {
    let bad = || Error::Unprocessable("email is not a valid address".into());
    let email = email.trim();
    if email.is_empty() {
        return Err(Error::Unprocessable("email is required".into()));
    }
    if email.len() > MAX_EMAIL_LEN || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = email.rsplit_once('@').ok_or_else(bad)?;
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
    if local.is_empty() || local.contains('@') || !domain_ok {
        return Err(bad());
    }
    Ok(format!("{local}@{}", domain.to_lowercase()))
}

/// `POST /v1/create-user` (WME's body; the captcha is the proof of work).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CreateUserRequest {
    /// The wanted username.
    pub username: String,
    /// Where the confirmation code goes.
    pub email: String,
    /// The password.
    pub password: String,
    /// The challenge from `GET /v1/signup-challenge`.
    #[serde(default)]
    pub captcha_id: String,
    /// The proof-of-work nonce.
    #[serde(default)]
    pub captcha_solution: String,
}

impl CreateUserRequest {
    /// Parses and validates; the username and email come back normalised.
    pub fn parse(body: &[u8]) -> Result<CreateUserRequest> {
        let mut req: CreateUserRequest = parse_body(body)?;
        required("username", &req.username)?;
        req.username = username::validate(&req.username)?;
        req.email = validate_email(&req.email)?;
        required("password", &req.password)?;
        password::validate_policy(&req.password)?;
        required("captcha_id", &req.captcha_id)?;
        required("captcha_solution", &req.captcha_solution)?;
        Ok(req)
    }
}

/// `POST /v1/confirm-user`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ConfirmUserRequest {
    /// The username (any case).
    pub username: String,
    /// The mailed code.
    pub confirmation_code: String,
}

impl ConfirmUserRequest {
    /// Parses and validates.
    pub fn parse(body: &[u8]) -> Result<ConfirmUserRequest> {
        let mut req: ConfirmUserRequest = parse_body(body)?;
        required("username", &req.username)?;
        required("confirmation_code", &req.confirmation_code)?;
        req.username = username::validate(&req.username).map_err(|_| invalid_code())?;
        Ok(req)
    }
}

/// `POST /v1/resend-confirm` and `POST /v1/forgot-password`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UsernameRequest {
    /// The username (any case).
    pub username: String,
}

impl UsernameRequest {
    /// Parses; `None` for a name no account can have (the caller answers
    /// as for an unknown account).
    pub fn parse(body: &[u8]) -> Result<Option<String>> {
        let req: UsernameRequest = parse_body(body)?;
        required("username", &req.username)?;
        Ok(username::validate(&req.username).ok())
    }
}

/// `POST /v1/forgot-password-confirm`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ForgotPasswordConfirmRequest {
    /// The username (any case).
    pub username: String,
    /// The new password.
    pub password: String,
    /// The mailed code.
    pub confirmation_code: String,
}

impl ForgotPasswordConfirmRequest {
    /// Parses and validates (the new password against the policy).
    pub fn parse(body: &[u8]) -> Result<ForgotPasswordConfirmRequest> {
        let mut req: ForgotPasswordConfirmRequest = parse_body(body)?;
        required("username", &req.username)?;
        required("password", &req.password)?;
        required("confirmation_code", &req.confirmation_code)?;
        password::validate_policy(&req.password)?;
        req.username = username::validate(&req.username).map_err(|_| invalid_code())?;
        Ok(req)
    }
}

/// A fixed rate window: at most `limit` events per `seconds`, counted
/// with one atomic increment of [`Window::key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The counter's name, e.g. `signup-client`.
    pub name: &'static str,
    /// Window length in seconds.
    pub seconds: i64,
    /// Events allowed per window (0 refuses all).
    pub limit: i64,
}

impl Window {
    /// The counter key for `subject` at `now`:
    /// `rate:{name}:{window index}:{subject}`.
    pub fn key(&self, subject: &str, now: i64) -> String {
        format!(
            "rate:{}:{}:{subject}",
            self.name,
            now.div_euclid(self.seconds.max(1))
        )
    }

    /// `Ok` if the incremented `count` is within the limit, else a 429
    /// whose `Retry-After` is the end of the window.
    pub fn admit(&self, count: i64, now: i64, message: &str) -> Result<()> {
        if count <= self.limit {
            return Ok(());
        }
        let seconds = self.seconds.max(1);
        let retry_after = seconds - now.rem_euclid(seconds);
        Err(Error::TooManyRequests {
            message: message.to_string(),
            retry_after: u64::try_from(retry_after).unwrap_or(1),
        })
    }
}

/// The client a request came from, for per-client windows: the address
/// of `spin-client-addr` without its port; an IPv6 address is cut to its
/// /64, which one subscriber usually holds whole.
pub fn client_id(addr: Option<&str>) -> String {
    let Some(addr) = addr.map(str::trim).filter(|a| !a.is_empty()) else {
        return "unknown".into();
    };
    if let Some(rest) = addr.strip_prefix('[') {
        let ip = rest.split(']').next().unwrap_or(rest);
        let groups: Vec<&str> = ip.split(':').collect();
        if groups.len() >= 4 && !ip.contains("::") {
            return format!("{}::/64", groups[..4].join(":"));
        }
        return ip.to_string();
    }
    match addr.rsplit_once(':') {
        Some((ip, port)) if !ip.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            ip.to_string()
        }
        _ => addr.to_string(),
    }
}

/// Derives the secret for challenges and code hashes from the signing
/// key seed, so a deployment needs no extra variable.
pub fn derive_secret(signing_seed: &[u8]) -> [u8; 32] {
    hmac_sha256(signing_seed, b"wikiedge self-service v1")
}

/// Parses a boolean variable (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`).
pub fn parse_flag(name: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        other => Err(Error::Internal(format!(
            "variable {name} must be true or false, not {other:?}"
        ))),
    }
}

/// Parses a non-negative integer variable.
pub fn parse_count(name: &str, value: &str) -> Result<i64> {
    value
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| {
            Error::Internal(format!(
                "variable {name} must be a non-negative integer, not {value:?}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status<T>(r: Result<T>) -> std::result::Result<(), u16> {
        r.map(|_| ()).map_err(|e| e.status())
    }

    #[test]
    fn create_user_validates_every_field() {
        let ok = br#"{"username":"Alice","email":"a@Example.ORG","password":"long enough","captcha_id":"c","captcha_solution":"1"}"#;
        let req = CreateUserRequest::parse(ok).expect("valid");
        assert_eq!(req.username, "alice");
        assert_eq!(req.email, "a@example.org");
        for bad in [
            r#"{"username":"a b","email":"a@example.org","password":"long enough","captcha_id":"c","captcha_solution":"1"}"#,
            r#"{"username":"alice","email":"nope","password":"long enough","captcha_id":"c","captcha_solution":"1"}"#,
            r#"{"username":"alice","email":"a@example.org","password":"short","captcha_id":"c","captcha_solution":"1"}"#,
            r#"{"username":"alice","email":"a@example.org","password":"long enough","captcha_solution":"1"}"#,
            r#"{"username":"alice","email":"a@example.org","password":"long enough","captcha_id":"c"}"#,
            "",
        ] {
            assert_eq!(
                status(CreateUserRequest::parse(bad.as_bytes())),
                Err(422),
                "{bad}"
            );
        }
    }

    #[test]
    fn emails_need_one_at_and_a_dotted_domain() {
        assert_eq!(
            validate_email(" x.y+z@Sub.Example.com "),
            Ok("x.y+z@sub.example.com".into())
        );
        for bad in [
            "",
            "a",
            "a@b",
            "@b.org",
            "a@.org",
            "a@b.org.",
            "a b@c.org",
            "a@b..org",
            "a@@b.org",
        ] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
        assert!(validate_email(&format!("{}@b.org", "a".repeat(250))).is_err());
    }

    #[test]
    fn windows_key_by_index_and_refuse_beyond_the_limit() {
        let w = Window {
            name: "signup-client",
            seconds: 3600,
            limit: 2,
        };
        assert_eq!(w.key("1.2.3.4", 7200), "rate:signup-client:2:1.2.3.4");
        assert_eq!(w.key("1.2.3.4", 10799), "rate:signup-client:2:1.2.3.4");
        assert_eq!(w.key("1.2.3.4", 10800), "rate:signup-client:3:1.2.3.4");
        assert_eq!(status(w.admit(2, 7200, "x")), Ok(()));
        let err = w.admit(3, 7300, "slow down").expect_err("over");
        assert_eq!(err.status(), 429);
        assert_eq!(err.retry_after(), Some(3500));
        let closed = Window { limit: 0, ..w };
        assert_eq!(status(closed.admit(1, 0, "x")), Err(429));
    }

    #[test]
    fn client_ids_drop_the_port_and_group_ipv6_by_64() {
        assert_eq!(client_id(Some("127.0.0.1:5000")), "127.0.0.1");
        assert_eq!(
            client_id(Some("[2001:db8:1:2:3:4:5:6]:443")),
            "2001:db8:1:2::/64"
        );
        assert_eq!(client_id(Some("[::1]:443")), "::1");
        assert_eq!(client_id(Some("10.0.0.1")), "10.0.0.1");
        assert_eq!(client_id(None), "unknown");
    }

    #[test]
    fn variables_parse_strictly() {
        assert_eq!(parse_flag("f", "TRUE"), Ok(true));
        assert_eq!(parse_flag("f", "off"), Ok(false));
        assert_eq!(status(parse_flag("f", "maybe")), Err(500));
        assert_eq!(parse_count("n", "5"), Ok(5));
        assert_eq!(status(parse_count("n", "-1")), Err(500));
        assert_ne!(derive_secret(b"a"), derive_secret(b"b"));
    }
}
