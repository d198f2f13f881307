//! `wikiedge account create`: a thin client of the auth function's admin API
//! (`POST /v1/admin/accounts` with `X-Admin-Key`), so a fresh deployment can
//! create its first (admin) account from the command line.
//!
//! It speaks plain HTTP/1.1 to a `http://` base URL (the usual target is the
//! local `wikiedge up`); put a TLS-terminating proxy in front for anything
//! else. The admin key comes from `--admin-key`, `SPIN_VARIABLE_ADMIN_API_KEY`,
//! or the development key `wikiedge up` generated into the state dir.

use anyhow::{Context, Result, bail};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
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
    let (status, text) = post(&req.url, "/v1/admin/accounts", &req.admin_key, &body)?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("unexpected answer ({status}): {text}"))?;
    if status != 201 {
        let message = json["message"].as_str().unwrap_or(&text);
        bail!("creating the account failed ({status}): {message}");
    }
    Ok(json)
}

fn post(base: &str, path: &str, admin_key: &str, body: &str) -> Result<(u16, String)> {
    let rest = base
        .strip_prefix("http://")
        .with_context(|| format!("{base}: only http:// URLs are supported"))?;
    let authority = rest.trim_end_matches('/');
    if authority.contains('/') {
        bail!("{base}: give the service's base URL without a path");
    }
    let mut stream =
        TcpStream::connect(authority).with_context(|| format!("cannot connect to {authority}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nX-Admin-Key: {admin_key}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let (head, payload) = text
        .split_once("\r\n\r\n")
        .context("malformed HTTP response")?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("malformed status line")?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let payload = if chunked {
        dechunk(payload)
    } else {
        payload.to_string()
    };
    Ok((status, payload))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_reassembled() {
        assert_eq!(
            dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            "hello world"
        );
    }

    #[test]
    fn only_plain_http_base_urls_are_accepted() {
        assert!(post("https://example.org", "/x", "k", "{}").is_err());
        assert!(post("http://127.0.0.1:1/path", "/x", "k", "{}").is_err());
    }
}
