//! `wikiedge account create`: a thin client of the auth function's admin API
//! (`POST /v1/admin/accounts` with `X-Admin-Key`), so a fresh deployment can
//! create its first (admin) account from the command line.
//!
//! It talks HTTP or HTTPS through the same client as `wikiedge follow`
//! (reqwest with rustls and the webpki roots; `--ca-cert` adds a private
//! CA). The admin key comes from `--admin-key`, `SPIN_VARIABLE_ADMIN_API_KEY`,
//! or the development key `wikiedge up` generated into the state dir.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What to create.
#[derive(Debug, Clone)]
pub struct CreateAccount {
    /// The service, e.g. `http://127.0.0.1:3000`.
    pub url: String,
    /// The admin API key.
    pub admin_key: String,
    /// Username (case-insensitive).
    pub username: String,
    /// Password.
    pub password: String,
    /// Plan name.
    pub plan: String,
    /// `user` or `admin`.
    pub role: String,
    /// A PEM file of extra trusted CA certificates (a private CA).
    pub ca_cert: Option<PathBuf>,
}

/// The admin key: explicit, else from the environment, else the development
/// key in `<state-dir>/dev-keys.json`.
pub fn admin_key(explicit: Option<String>, state_dir: &Path) -> Result<String> {
    if let Some(k) = explicit.filter(|k| !k.is_empty()) {
        return Ok(k);
    }
    let path = state_dir.join("dev-keys.json");
    let bytes = std::fs::read(&path).with_context(|| {
        format!("no admin key: pass --admin-key, set SPIN_VARIABLE_ADMIN_API_KEY, or run `wikiedge up` once to create {}", path.display())
    })?;
    let keys: serde_json::Value = serde_json::from_slice(&bytes)?;
    keys["admin_api_key"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("{} has no admin_api_key", path.display()))
}

/// Create the account; returns the service's JSON answer.
pub fn create(req: &CreateAccount) -> Result<serde_json::Value> {
    let body = serde_json::json!({
        "username": req.username,
        "password": req.password,
        "plan": req.plan,
        "role": req.role,
    })
    .to_string();
    let base = url::Url::parse(&req.url).with_context(|| format!("invalid URL {}", req.url))?;
    if !matches!(base.scheme(), "http" | "https") {
        bail!(
            "{}: give the service's http:// or https:// base URL",
            req.url
        );
    }
    if base.path() != "/" {
        bail!("{}: give the service's base URL without a path", req.url);
    }
    let url = base.join("/v1/admin/accounts")?;
    let client = crate::follow::client(req.ca_cert.as_deref(), Duration::from_secs(30))?;
    let response = client
        .post(url.clone())
        .header("content-type", "application/json")
        .header("x-admin-key", &req.admin_key)
        .body(body)
        .send()
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status().as_u16();
    let text = response.text().context("reading the answer")?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("unexpected answer ({status}): {text}"))?;
    if status != 201 {
        let message = json["message"].as_str().unwrap_or(&text);
        bail!("creating the account failed ({status}): {message}");
    }
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str) -> CreateAccount {
        CreateAccount {
            url: url.into(),
            admin_key: "k".into(),
            username: "someone".into(),
            password: "a long passphrase".into(),
            plan: "free".into(),
            role: "user".into(),
            ca_cert: None,
        }
    }

    #[test]
    fn only_http_base_urls_without_a_path_are_accepted() {
        let err = |url: &str| {
            create(&request(url))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(err("ftp://example.org").contains("http:// or https://"));
        assert!(err("http://127.0.0.1:1/path").contains("without a path"));
        assert!(err("http://127.0.0.1:1").contains("cannot reach"));
    }
}
