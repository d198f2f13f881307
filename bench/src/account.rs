//! The benchmark account: plans with caps far above any run, an account on
//! the `paid` one created through the admin API, and its bearer token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, anyhow, bail};
use http::Method;
use serde_json::{Value, json};

use crate::client::{Fetched, fetch};
use crate::proc::truncate;

/// The plans for the article path (`SPIN_VARIABLE_PLANS`): `paid` with caps
/// far above any run.
pub const BENCH_PLANS: &str = r#"[
  {"name": "free", "monthly": {"ondemand": 50000, "snapshot": 30, "chunk": 1500}, "burst_per_second": 10},
  {"name": "paid", "monthly": {"ondemand": 1099511627776, "snapshot": 1099511627776, "chunk": 1099511627776, "realtime": 1099511627776}, "burst_per_second": 1099511627776}
]"#;

const BENCH_USER: &str = "bench-user";
const BENCH_PASSWORD: &str = "bench-password-0123456789";

/// A fresh admin key for one host (`SPIN_VARIABLE_ADMIN_API_KEY`).
pub fn admin_key() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("bench-admin-{}-{nanos:x}", std::process::id())
}

/// POSTs `body` as JSON; an answer other than 2xx is an error naming `what`.
async fn post_json(
    what: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> Result<Fetched> {
    let mut h = vec![("content-type", "application/json")];
    h.extend_from_slice(headers);
    let answer = fetch(
        Method::POST,
        url,
        &h,
        serde_json::to_vec(body)?,
        Duration::from_secs(60),
    )
    .await?;
    if !answer.status.is_success() {
        bail!(
            "{what}: {} {}",
            answer.status,
            truncate(&answer.text(), 300)
        );
    }
    Ok(answer)
}

/// Creates the bench account (plan `paid`) through the admin API, logs in,
/// and returns the `Authorization` value.
pub async fn account_bearer(base_url: &str, admin_key: &str) -> Result<String> {
    post_json(
        "creating the account",
        &format!("{base_url}/v1/admin/accounts"),
        &[("x-admin-key", admin_key)],
        &json!({"username": BENCH_USER, "password": BENCH_PASSWORD, "plan": "paid"}),
    )
    .await?;
    let login = post_json(
        "logging in",
        &format!("{base_url}/v1/login"),
        &[],
        &json!({"username": BENCH_USER, "password": BENCH_PASSWORD}),
    )
    .await?;
    let tokens: Value = serde_json::from_slice(&login.body)
        .map_err(|e| anyhow!("login response is not JSON: {e}"))?;
    let token = tokens["access_token"].as_str().ok_or_else(|| {
        anyhow!(
            "login response has no access_token: {}",
            truncate(&login.text(), 300)
        )
    })?;
    Ok(format!("Bearer {token}"))
}
