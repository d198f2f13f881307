//! Helpers several e2e modules share.

use anyhow::{Context, Result};
use serde_json::{Value, json};
use wikiedge_tests::{Host, Resp, get, post};

use crate::ADMIN_KEY;

/// The password of every account the tests create.
pub const PASSWORD: &str = "correct horse battery staple";

/// Creates `username` through the admin API, with `fields` (`role`,
/// `plan`, ...) beside its username and password, logs it in and returns
/// its `Authorization` value: the one way every e2e module gets an account.
pub fn account(host: &Host, username: &str, fields: Value) -> Result<String> {
    let mut create = json!({"username": username, "password": PASSWORD});
    if let (Some(to), Value::Object(from)) = (create.as_object_mut(), fields) {
        to.extend(from);
    }
    let json = ("content-type", "application/json");
    let created = post(
        &host.url("/v1/admin/accounts"),
        &[("x-admin-key", ADMIN_KEY), json],
        create.to_string().as_bytes(),
    )?;
    anyhow::ensure!(created.status == 201, "create account: {}", created.text());
    let login = json!({"username": username, "password": PASSWORD}).to_string();
    let login = post(&host.url("/v1/login"), &[json], login.as_bytes())?;
    let token = login.json()?["access_token"]
        .as_str()
        .context("access_token")?
        .to_string();
    Ok(format!("Bearer {token}"))
}

/// Asserts the status and, for an error, WME's JSON error body
/// (`{status, message}`, `application/json`).
pub fn check(resp: &Resp, status: u16) -> Result<()> {
    anyhow::ensure!(
        resp.status == status,
        "want {status}, got {} {}",
        resp.status,
        resp.text()
    );
    if status >= 400 {
        let body = resp.json()?;
        anyhow::ensure!(body["status"] == status, "error body {body}");
        anyhow::ensure!(body["message"].is_string(), "error body {body}");
        anyhow::ensure!(
            resp.header("content-type") == Some("application/json"),
            "content type {:?}",
            resp.header("content-type")
        );
    }
    Ok(())
}

/// Today's UTC date, `YYYY-MM-DD` (the metering day).
pub fn today() -> Result<String> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let d = wikiedge_core::quota::period::civil_from_days(secs.div_euclid(86_400));
    Ok(format!("{:04}-{:02}-{:02}", d.0, d.1, d.2))
}

/// `(admitted, denied)` for `product` today, from `GET /v1/usage` as `auth`.
pub fn usage_today(host: &Host, auth: &str, product: &str) -> Result<(u64, u64)> {
    let day = today()?;
    let r = get(
        &host.url(&format!("/v1/usage?from={day}&to={day}")),
        &[("authorization", auth)],
    )?;
    anyhow::ensure!(r.status == 200, "usage: {}", r.text());
    let v = r.json()?;
    Ok(v["usage"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter(|r| r["product"] == product)
                .fold((0, 0), |(a, d), r| {
                    (
                        a + r["admitted"].as_u64().unwrap_or(0),
                        d + r["denied"].as_u64().unwrap_or(0),
                    )
                })
        })
        .unwrap_or((0, 0)))
}

/// `clients` concurrent GETs, spread round-robin over `urls`; their statuses
/// (0 for a transport error).
pub fn race(urls: &[String], clients: usize, auth: &str) -> Vec<u16> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|i| {
                let url = &urls[i % urls.len()];
                s.spawn(move || {
                    get(url, &[("authorization", auth)])
                        .map(|r| r.status)
                        .unwrap_or(0)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
    })
}

/// How many of `statuses` are `code`.
pub fn count(statuses: &[u16], code: u16) -> usize {
    statuses.iter().filter(|s| **s == code).count()
}

/// The path of the next page in a paged admin listing's
/// `Link: <...>; rel="next"` header; `None` on the last page.
pub(crate) fn next_page(resp: &Resp) -> Option<String> {
    resp.header("link").map(|link| {
        assert!(link.ends_with(">; rel=\"next\""), "{link}");
        link.trim_start_matches('<')
            .trim_end_matches(">; rel=\"next\"")
            .to_string()
    })
}

/// `r` is a refusal for now: 429, a WME error body with status 429, and a
/// positive `Retry-After` (a per-account cap on concurrent work).
pub fn refused_for_now(r: &Resp) -> Result<()> {
    anyhow::ensure!(r.status == 429, "status {}: {}", r.status, r.text());
    anyhow::ensure!(r.json()?["status"] == 429, "{}", r.text());
    anyhow::ensure!(
        r.header("retry-after")
            .is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s > 0)),
        "Retry-After {:?}",
        r.header("retry-after")
    );
    Ok(())
}
