//! Self-service accounts through the real host: sign-up with a proof of
//! work, the emailed code read from the dev outbox, confirmation, password
//! reset, and the attacks that must fail (code reuse, expired codes,
//! guessing, sign-up without work, account probing through
//! forgot-password, sign-up when closed, sign-up floods).
//!
//! Like `auth.rs`, the app is the auth part of `spin.toml` only.

use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};
use wikiedge_core::auth::pow;

use wikiedge_tests::{Host, Resp, get, post};

use crate::ADMIN_KEY;
use crate::common::check;

const JSON: (&str, &str) = ("content-type", "application/json");
const ADMIN: (&str, &str) = ("x-admin-key", ADMIN_KEY);
const PASSWORD: &str = "a long enough password";

/// Starts the auth app with extra variables (`SPIN_VARIABLE_*` names).
fn app(vars: &[(&str, &str)]) -> Result<Host> {
    crate::auth::auth_app_with(false, vars)
}

fn post_json(host: &Host, path: &str, body: &Value) -> Result<Resp> {
    post(&host.url(path), &[JSON], body.to_string().as_bytes())
}

/// A fresh challenge and its solution.
fn solved_challenge(host: &Host) -> Result<(String, String)> {
    let resp = get(&host.url("/v1/signup-challenge"), &[])?;
    check(&resp, 200)?;
    let body = resp.json()?;
    let id = body["identifier"]
        .as_str()
        .context("identifier")?
        .to_string();
    let difficulty = u8::try_from(body["difficulty"].as_u64().context("difficulty")?)?;
    let nonce = pow::solve(&id, difficulty);
    Ok((id, nonce))
}

fn create_user(host: &Host, name: &str, email: &str, captcha: &(String, String)) -> Result<Resp> {
    post_json(
        host,
        "/v1/create-user",
        &json!({"username": name, "email": email, "password": PASSWORD,
                "captcha_id": captcha.0, "captcha_solution": captcha.1}),
    )
}

fn sign_up(host: &Host, name: &str) -> Result<()> {
    let captcha = solved_challenge(host)?;
    check(
        &create_user(host, name, &format!("{name}@example.org"), &captcha)?,
        204,
    )
}

/// The messages in the dev outbox for `name` and `purpose`, oldest first.
fn outbox(host: &Host, name: &str, purpose: &str) -> Result<Vec<Value>> {
    let resp = get(&host.url("/v1/admin/outbox"), &[ADMIN])?;
    check(&resp, 200)?;
    Ok(resp.json()?["messages"]
        .as_array()
        .context("messages")?
        .iter()
        .filter(|m| m["username"] == name && m["purpose"] == purpose)
        .cloned()
        .collect())
}

fn latest_code(host: &Host, name: &str, purpose: &str) -> Result<String> {
    let messages = outbox(host, name, purpose)?;
    let last = messages.last().context("no message in the outbox")?;
    Ok(last["code"].as_str().context("code")?.to_string())
}

fn confirm(host: &Host, name: &str, code: &str) -> Result<Resp> {
    post_json(
        host,
        "/v1/confirm-user",
        &json!({"username": name, "confirmation_code": code}),
    )
}

fn login(host: &Host, name: &str, password: &str) -> Result<Resp> {
    post_json(
        host,
        "/v1/login",
        &json!({"username": name, "password": password}),
    )
}

/// A code that is not `code` (same length).
fn other_code(code: &str, n: u32) -> String {
    let value: u32 = code.parse().unwrap_or(0);
    format!("{:08}", (value + 1 + n) % 100_000_000)
}

#[test]
fn sign_up_confirm_log_in_and_reset_the_password() -> Result<()> {
    let host = app(&[])?;
    sign_up(&host, "Walter")?;
    // Unconfirmed: the right password is still refused, as WME refuses it.
    let refused = login(&host, "walter", PASSWORD)?;
    check(&refused, 401)?;
    anyhow::ensure!(
        refused.text().contains("not confirmed"),
        "{}",
        refused.text()
    );

    let messages = outbox(&host, "walter", "confirm")?;
    anyhow::ensure!(messages.len() == 1, "one message: {messages:?}");
    // The domain is lowercased, the local part kept as given.
    anyhow::ensure!(messages[0]["to"] == "Walter@example.org", "{messages:?}");
    let code = latest_code(&host, "walter", "confirm")?;
    anyhow::ensure!(
        code.len() == 8 && code.bytes().all(|b| b.is_ascii_digit()),
        "{code}"
    );
    anyhow::ensure!(
        messages[0]["text"].as_str().unwrap_or("").contains(&code),
        "the text names the code"
    );

    let admin_view = |name: &str| -> Result<Value> {
        get(&host.url(&format!("/v1/admin/accounts/{name}")), &[ADMIN])?.json()
    };
    let before = admin_view("walter")?;
    anyhow::ensure!(
        before["unconfirmed"] == true && before["plan"] == "free",
        "{before}"
    );
    check(&confirm(&host, "walter", &code)?, 204)?;
    let after = admin_view("walter")?;
    anyhow::ensure!(after.get("unconfirmed").is_none(), "{after}");
    let tokens = login(&host, "walter", PASSWORD)?;
    check(&tokens, 200)?;
    let access = tokens.json()?["access_token"]
        .as_str()
        .context("access_token")?
        .to_string();
    let user = post(
        &host.url("/v1/get-user"),
        &[("authorization", &format!("Bearer {access}"))],
        b"",
    )?;
    check(&user, 200)?;
    let user = user.json()?;
    anyhow::ensure!(user["plan"] == "free" && user["role"] == "user", "{user}");

    // The same name cannot be taken twice.
    let captcha = solved_challenge(&host)?;
    check(
        &create_user(&host, "walter", "other@example.org", &captcha)?,
        409,
    )?;

    // Code reuse: a spent confirmation code is refused.
    check(&confirm(&host, "walter", &code)?, 422)?;

    // Forgot password: a reset code, a new password, every session ended.
    check(
        &post_json(&host, "/v1/forgot-password", &json!({"username": "walter"}))?,
        204,
    )?;
    let reset = latest_code(&host, "walter", "reset")?;
    let new_password = "another long password";
    let body = json!({"username": "walter", "password": new_password, "confirmation_code": reset});
    check(
        &post_json(&host, "/v1/forgot-password-confirm", &body)?,
        204,
    )?;
    let after = post(
        &host.url("/v1/get-user"),
        &[("authorization", &format!("Bearer {access}"))],
        b"",
    )?;
    check(&after, 401)?;
    check(&login(&host, "walter", PASSWORD)?, 401)?;
    check(&login(&host, "walter", new_password)?, 200)?;
    // Reset-code reuse.
    let again = json!({"username": "walter", "password": "a third long password", "confirmation_code": reset});
    check(
        &post_json(&host, "/v1/forgot-password-confirm", &again)?,
        422,
    )?;
    check(&login(&host, "walter", new_password)?, 200)?;
    Ok(())
}

#[test]
fn an_expired_code_is_refused() -> Result<()> {
    let host = app(&[("SPIN_VARIABLE_SIGNUP_CODE_TTL_SECONDS", "1")])?;
    sign_up(&host, "slow")?;
    let code = latest_code(&host, "slow", "confirm")?;
    std::thread::sleep(Duration::from_millis(2500));
    check(&confirm(&host, "slow", &code)?, 422)?;
    check(&login(&host, "slow", PASSWORD)?, 401)?;
    // A new code works (so the refusal above was the expiry).
    check(
        &post_json(&host, "/v1/resend-confirm", &json!({"username": "slow"}))?,
        204,
    )?;
    let fresh = latest_code(&host, "slow", "confirm")?;
    anyhow::ensure!(outbox(&host, "slow", "confirm")?.len() == 2);
    check(&confirm(&host, "slow", &fresh)?, 204)?;
    check(&login(&host, "slow", PASSWORD)?, 200)?;
    Ok(())
}

#[test]
fn guessed_codes_kill_the_code_and_then_hit_the_throttle() -> Result<()> {
    let host = app(&[])?;
    sign_up(&host, "target")?;
    let code = latest_code(&host, "target", "confirm")?;
    // Five wrong guesses kill the code: the right one no longer works.
    for n in 0..5 {
        check(&confirm(&host, "target", &other_code(&code, n))?, 422)?;
    }
    check(&confirm(&host, "target", &code)?, 422)?;
    check(&login(&host, "target", PASSWORD)?, 401)?;
    // A new code; four more wrong guesses reach the account's window of
    // ten checks, after which even the right code is a 429.
    check(
        &post_json(&host, "/v1/resend-confirm", &json!({"username": "target"}))?,
        204,
    )?;
    let fresh = latest_code(&host, "target", "confirm")?;
    anyhow::ensure!(outbox(&host, "target", "confirm")?.len() == 2);
    for n in 0..4 {
        check(&confirm(&host, "target", &other_code(&fresh, n))?, 422)?;
    }
    let throttled = confirm(&host, "target", &fresh)?;
    check(&throttled, 429)?;
    let retry: u64 = throttled
        .header("retry-after")
        .context("Retry-After")?
        .parse()?;
    anyhow::ensure!((1..=900).contains(&retry), "retry after {retry}");
    check(&login(&host, "target", PASSWORD)?, 401)?;
    Ok(())
}

#[test]
fn sign_up_needs_a_valid_unused_proof_of_work() -> Result<()> {
    let host = app(&[])?;
    let exists = |name: &str| -> Result<u16> {
        Ok(get(&host.url(&format!("/v1/admin/accounts/{name}")), &[ADMIN])?.status)
    };
    // No captcha at all.
    let body = json!({"username": "bot1", "email": "b@example.org", "password": PASSWORD});
    check(&post_json(&host, "/v1/create-user", &body)?, 422)?;
    // A real challenge with a wrong solution (one that misses the difficulty).
    let (id, _) = solved_challenge(&host)?;
    let difficulty = get(&host.url("/v1/signup-challenge"), &[])?.json()?["difficulty"]
        .as_u64()
        .context("difficulty")?;
    anyhow::ensure!(difficulty == 16, "the default difficulty is 16");
    let wrong = (0u64..)
        .map(|n| n.to_string())
        .find(|n| pow::work(&id, n) < 16)
        .context("a failing nonce")?;
    check(
        &create_user(&host, "bot2", "b@example.org", &(id.clone(), wrong))?,
        422,
    )?;
    // A forged challenge claiming difficulty 0.
    let forged = id.replacen(".16.", ".0.", 1);
    check(
        &create_user(&host, "bot3", "b@example.org", &(forged, "0".into()))?,
        422,
    )?;
    for name in ["bot1", "bot2", "bot3"] {
        anyhow::ensure!(exists(name)? == 404, "{name} was created");
    }
    // A valid solution works once; replaying it for another name fails.
    let captcha = solved_challenge(&host)?;
    check(
        &create_user(&host, "human", "h@example.org", &captcha)?,
        204,
    )?;
    check(&create_user(&host, "bot4", "b@example.org", &captcha)?, 422)?;
    anyhow::ensure!(exists("human")? == 200 && exists("bot4")? == 404);
    Ok(())
}

#[test]
fn forgot_password_does_not_tell_known_from_unknown_accounts() -> Result<()> {
    let host = app(&[])?;
    sign_up(&host, "known")?;
    let code = latest_code(&host, "known", "confirm")?;
    check(&confirm(&host, "known", &code)?, 204)?;
    let ask = |name: &str, path: &str| post_json(&host, path, &json!({ "username": name }));
    for path in ["/v1/forgot-password", "/v1/resend-confirm"] {
        let known = ask("known", path)?;
        let unknown = ask("nobody-here", path)?;
        let invalid = ask("not a valid name!", path)?;
        for other in [&unknown, &invalid] {
            anyhow::ensure!(
                known.status == other.status && known.body == other.body,
                "{path}: {} {:?} vs {} {:?}",
                known.status,
                known.text(),
                other.status,
                other.text()
            );
            anyhow::ensure!(
                known.header("content-type") == other.header("content-type"),
                "{path}: content type differs"
            );
        }
        check(&known, 204)?;
    }
    // Only the real account got mail: one reset code, no confirm resend
    // (it is confirmed), and nothing for the unknown name.
    anyhow::ensure!(outbox(&host, "known", "reset")?.len() == 1);
    anyhow::ensure!(outbox(&host, "known", "confirm")?.len() == 1);
    anyhow::ensure!(outbox(&host, "nobody-here", "reset")?.is_empty());
    Ok(())
}

#[test]
fn closed_sign_up_is_403_and_floods_are_429() -> Result<()> {
    let closed = app(&[("SPIN_VARIABLE_OPEN_SIGNUP", "false")])?;
    check(&get(&closed.url("/v1/signup-challenge"), &[])?, 403)?;
    let body = json!({"username": "x1", "email": "x@example.org", "password": PASSWORD,
                      "captcha_id": "a", "captcha_solution": "1"});
    check(&post_json(&closed, "/v1/create-user", &body)?, 403)?;
    drop(closed);

    let open = app(&[("SPIN_VARIABLE_SIGNUP_PER_CLIENT_PER_HOUR", "2")])?;
    sign_up(&open, "first")?;
    sign_up(&open, "second")?;
    let captcha = solved_challenge(&open)?;
    let third = create_user(&open, "third", "t@example.org", &captcha)?;
    check(&third, 429)?;
    anyhow::ensure!(third.header("retry-after").is_some(), "Retry-After");
    Ok(())
}

#[test]
fn codes_go_to_the_mail_webhook_signed() -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let receiver = std::thread::spawn(move || -> Result<(String, Vec<u8>)> {
        // Bounded: give up after 30 s instead of hanging the suite.
        listener.set_nonblocking(true)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let stream = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    anyhow::ensure!(Instant::now() < deadline, "no webhook call within 30 s");
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(e.into()),
            }
        };
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut signature = String::new();
        let mut length = 0usize;
        let mut chunked = false;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                match k.to_ascii_lowercase().as_str() {
                    "x-wikiedge-signature" => signature = v.trim().to_string(),
                    "content-length" => length = v.trim().parse()?,
                    "transfer-encoding" => chunked = v.trim().eq_ignore_ascii_case("chunked"),
                    _ => {}
                }
            }
        }
        // The body goes out with its length, in one piece, not in chunks.
        anyhow::ensure!(!chunked, "the webhook's body came chunked");
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let mut stream = stream;
        stream.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")?;
        Ok((signature, body))
    });
    let host = app(&[
        ("SPIN_VARIABLE_MAIL_WEBHOOK_URL", &url),
        ("SPIN_VARIABLE_MAIL_WEBHOOK_SECRET", "hook-secret"),
    ])?;
    let started = Instant::now();
    sign_up(&host, "hooked")?;
    let (signature, body) = receiver
        .join()
        .map_err(|_| anyhow::anyhow!("receiver panicked"))??;
    anyhow::ensure!(started.elapsed() < Duration::from_secs(30));
    anyhow::ensure!(
        signature == wikiedge_core::auth::signup::webhook_signature("hook-secret", &body),
        "signature {signature}"
    );
    let mail: Value = serde_json::from_slice(&body)?;
    anyhow::ensure!(
        mail["to"] == "hooked@example.org" && mail["purpose"] == "confirm",
        "{mail}"
    );
    let code = mail["code"].as_str().context("code")?;
    // Nothing went to the outbox; the webhook's code confirms.
    anyhow::ensure!(outbox(&host, "hooked", "confirm")?.is_empty());
    check(&confirm(&host, "hooked", code)?, 204)?;
    check(&login(&host, "hooked", PASSWORD)?, 200)?;
    Ok(())
}

/// Eight clients race to spend one code; on a store that misreports every
/// swap (as Spin 4.1's Redis store does) as well as on an honest one,
/// exactly one wins.
fn racing_confirmations(misreport: bool) -> Result<()> {
    let host = app(&[(
        "WIKIEDGE_EMULATE_SPIN_REDIS_CAS",
        if misreport { "true" } else { "false" },
    )])?;
    sign_up(&host, "racer")?;
    let code = latest_code(&host, "racer", "confirm")?;
    let url = host.url("/v1/confirm-user");
    let body = json!({"username": "racer", "confirmation_code": code}).to_string();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| post(&url, &[JSON], body.as_bytes()).map(|r| r.status)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow::anyhow!("panicked"))?)
            .collect::<Result<Vec<u16>>>()
    })?;
    let won = statuses.iter().filter(|s| **s == 204).count();
    let refused = statuses.iter().filter(|s| **s == 422).count();
    anyhow::ensure!(won == 1 && refused == 7, "statuses {statuses:?}");
    check(&login(&host, "racer", PASSWORD)?, 200)?;
    Ok(())
}

on_both_stores! {
    racing_confirmations_spend_a_code_once,
    racing_confirmations_spend_a_code_once_where_swaps_are_misreported => racing_confirmations
}
