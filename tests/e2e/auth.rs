//! The auth function (`functions/auth`) through the real host: login,
//! refresh, revoke, change-password, get-user, the admin API, the exported
//! `verify` semantics as seen over HTTP, and the attacks that must fail.
//!
//! The app runs from a manifest holding only the auth part of `spin.toml`
//! (so these tests do not depend on the other functions building), with a
//! signing key the tests know, so they can sign tokens that are wrong in
//! exactly one claim.

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::path::PathBuf;
use std::sync::OnceLock;
use wikiedge_core::auth::jwt::{self, Claims};
use wikiedge_core::auth::signing;

use wikiedge_tests::{Host, Resp, post, repo_root, request, target_dir};

use crate::common::check;
use crate::{ADMIN_KEY, BIN};

const SEED: [u8; 32] = [42; 32];
const JSON: (&str, &str) = ("content-type", "application/json");
pub(crate) const ADMIN: (&str, &str) = ("x-admin-key", ADMIN_KEY);

/// `spin.toml` up to the quota section, with absolute component paths.
/// Written once per run (`get_or_init` makes concurrent tests wait for the
/// first writer, so none reads a half-written file).
pub(crate) fn auth_manifest() -> Result<PathBuf> {
    static PATH: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    PATH.get_or_init(|| write_auth_manifest().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow::anyhow!(e))
}

fn write_auth_manifest() -> Result<PathBuf> {
    let manifest = std::fs::read_to_string(repo_root().join("spin.toml"))?;
    let auth_part = manifest
        .split("# ---- quota")
        .next()
        .context("spin.toml has no quota section")?
        .replace(
            "source = \"target/",
            &format!("source = \"{}/", target_dir().display()),
        );
    let dir = target_dir().join("e2e-tmp");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("auth-only.toml");
    let partial = dir.join(format!("auth-only.toml.{}", std::process::id()));
    std::fs::write(&partial, auth_part)?;
    std::fs::rename(&partial, &path)?;
    Ok(path)
}

/// Starts the auth app with a fresh state dir and the tests' signing key.
fn auth_app() -> Result<Host> {
    auth_app_on(false)
}

/// [`auth_app`]; with `misreport`, every compare-and-swap is reported
/// failed after it ran, as Spin 4.1's Redis store reports it.
fn auth_app_on(misreport: bool) -> Result<Host> {
    auth_app_with(misreport, &[])
}

/// [`auth_app_on`] with extra variables (`SPIN_VARIABLE_*` names).
pub(crate) fn auth_app_with(misreport: bool, vars: &[(&str, &str)]) -> Result<Host> {
    auth_builder(misreport, vars)?.start()
}

pub(crate) fn auth_builder(
    misreport: bool,
    vars: &[(&str, &str)],
) -> Result<wikiedge_tests::Builder> {
    let key = signing::generate(SEED);
    let mut builder = Host::builder(BIN, &auth_manifest()?)
        .env(
            "WIKIEDGE_EMULATE_SPIN_REDIS_CAS",
            if misreport { "true" } else { "false" },
        )
        .env("SPIN_VARIABLE_ADMIN_API_KEY", ADMIN_KEY)
        .env(
            "SPIN_VARIABLE_JWT_PRIVATE_KEY",
            &URL_SAFE_NO_PAD.encode(SEED),
        )
        .env(
            "SPIN_VARIABLE_JWT_PUBLIC_KEY",
            &signing::public_key_b64(&key.verifying_key()),
        );
    for (k, v) in vars {
        builder = builder.env(k, v);
    }
    Ok(builder)
}

fn post_json(host: &Host, path: &str, headers: &[(&str, &str)], body: &str) -> Result<Resp> {
    let mut all = vec![JSON];
    all.extend_from_slice(headers);
    post(&host.url(path), &all, body.as_bytes())
}

pub(crate) fn create(host: &Host, username: &str, password: &str, role: &str) -> Result<Resp> {
    let body = serde_json::json!({"username": username, "password": password, "role": role});
    post_json(host, "/v1/admin/accounts", &[ADMIN], &body.to_string())
}

/// Logs in and returns the response body.
fn login(host: &Host, username: &str, password: &str) -> Result<serde_json::Value> {
    let body = serde_json::json!({"username": username, "password": password}).to_string();
    let resp = post_json(host, "/v1/login", &[], &body)?;
    anyhow::ensure!(resp.status == 200, "login: {} {}", resp.status, resp.text());
    resp.json()
}

fn field(v: &serde_json::Value, name: &str) -> Result<String> {
    Ok(v[name].as_str().context(name.to_string())?.to_string())
}

fn get_user(host: &Host, token: &str) -> Result<Resp> {
    let auth = format!("Bearer {token}");
    post(&host.url("/v1/get-user"), &[("authorization", &auth)], b"")
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn claims_of(token: &str) -> Result<Claims> {
    let payload = token.split('.').nth(1).context("payload")?;
    Ok(serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload)?)?)
}

on_both_stores! {
    login_refresh_and_revoke_follow_wme_and_revocation_kills_every_access_token,
    login_refresh_and_revoke_hold_where_every_compare_and_swap_is_misreported => login_refresh_revoke
}

fn login_refresh_revoke(misreport: bool) -> Result<()> {
    let host = auth_app_on(misreport)?;
    check(&create(&host, "Alice", "alice-password", "user")?, 201)?;
    let tokens = login(&host, "ALICE", "alice-password")?;
    assert_eq!(tokens["expires_in"], 86_400);
    let access = field(&tokens, "access_token")?;
    let refresh = field(&tokens, "refresh_token")?;
    let user = get_user(&host, &access)?;
    check(&user, 200)?;
    assert_eq!(user.json()?["username"], "alice");
    assert_eq!(user.json()?["limits"]["monthly"]["ondemand"], 50_000);
    assert!(!user.text().contains("argon2"));

    let body = serde_json::json!({"username": "Alice", "refresh_token": refresh}).to_string();
    let refreshed = post_json(&host, "/v1/token-refresh", &[], &body)?;
    check(&refreshed, 200)?;
    let access2 = field(&refreshed.json()?, "access_token")?;
    assert!(refreshed.json()?.get("refresh_token").is_none());
    check(&get_user(&host, &access2)?, 200)?;

    let revoke = serde_json::json!({"refresh_token": refresh}).to_string();
    check(&post_json(&host, "/v1/token-revoke", &[], &revoke)?, 204)?;
    check(&get_user(&host, &access)?, 401)?;
    check(&get_user(&host, &access2)?, 401)?;
    check(&post_json(&host, "/v1/token-refresh", &[], &body)?, 401)?;
    // Another session of the same account is untouched.
    let other = login(&host, "alice", "alice-password")?;
    check(&get_user(&host, &field(&other, "access_token")?)?, 200)?;
    Ok(())
}

on_both_stores! {
    /// Each refresh is a compare-and-swap of the session: counted twice, the
    /// 429 would come early; lost, it would come late.
    a_refresh_token_allows_90_refreshes_and_the_91st_is_429,
    ninety_refreshes_count_exactly_where_every_compare_and_swap_is_misreported => ninety_refreshes
}

/// Twelve racing creations of one username: one wins, eleven get 409, on
/// a store that misreports every compare-and-swap.
#[test]
fn racing_account_creations_make_one_account_where_cas_is_misreported() -> Result<()> {
    let host = auth_app_on(true)?;
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12)
            .map(|i| {
                let host = &host;
                s.spawn(move || {
                    create(host, "Racer", &format!("password-{i:02}"), "user")
                        .map(|r| r.status)
                        .unwrap_or(0)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        11,
        "{statuses:?}"
    );
    // The account holds the winner's password, and no loser's.
    let winner = statuses.iter().position(|s| *s == 201).unwrap_or(0);
    login(&host, "racer", &format!("password-{winner:02}"))?;
    let loser = (winner + 1) % 12;
    let wrong =
        serde_json::json!({"username": "racer", "password": format!("password-{loser:02}")});
    check(
        &post_json(&host, "/v1/login", &[], &wrong.to_string())?,
        401,
    )?;
    Ok(())
}

fn ninety_refreshes(misreport: bool) -> Result<()> {
    let host = auth_app_on(misreport)?;
    check(&create(&host, "bob", "bob-password", "user")?, 201)?;
    let refresh = field(&login(&host, "bob", "bob-password")?, "refresh_token")?;
    let body = serde_json::json!({"username": "bob", "refresh_token": refresh}).to_string();
    for i in 1..=90 {
        let resp = post_json(&host, "/v1/token-refresh", &[], &body)?;
        anyhow::ensure!(resp.status == 200, "refresh {i}: {}", resp.text());
    }
    let resp = post_json(&host, "/v1/token-refresh", &[], &body)?;
    check(&resp, 429)?;
    assert_eq!(
        resp.json()?["message"],
        "Refresh tokens limit has been exceeded"
    );
    Ok(())
}

#[test]
fn forged_expired_and_foreign_tokens_are_refused() -> Result<()> {
    let host = auth_app()?;
    check(&create(&host, "carol", "carol-password", "user")?, 201)?;
    let tokens = login(&host, "carol", "carol-password")?;
    let access = field(&tokens, "access_token")?;
    let parts: Vec<&str> = access.split('.').collect();
    let claims = claims_of(&access)?;
    let key = signing::generate(SEED);
    let public = signing::public_key_b64(&key.verifying_key());

    let none = format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), parts[1]);
    let hs_input = format!("{}.{}", b64(br#"{"alg":"HS256","typ":"JWT"}"#), parts[1]);
    let hs256 = format!(
        "{hs_input}.{}",
        b64(&wikiedge_core::auth::pow::hmac_sha256(
            public.as_bytes(),
            hs_input.as_bytes()
        ))
    );
    let mut admin = claims.clone();
    admin.role = wikiedge_core::auth::Role::Admin;
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(&serde_json::to_vec(&admin)?),
        parts[2]
    );
    let mut expired = claims.clone();
    expired.iat -= 100;
    expired.exp = expired.iat + 1;
    let mut aud = claims.clone();
    aud.aud = "someone-else".into();
    let mut iss = claims.clone();
    iss.iss = "evil".into();
    let other_key = signing::generate([1; 32]);
    let cases = [
        ("alg none", none),
        ("HS256 with the public key", hs256),
        ("tampered payload", tampered),
        ("expired", jwt::sign(&expired, &key)),
        ("wrong audience", jwt::sign(&aud, &key)),
        ("wrong issuer", jwt::sign(&iss, &key)),
        ("another key", jwt::sign(&claims, &other_key)),
        ("id token", field(&tokens, "id_token")?),
    ];
    for (what, token) in cases {
        let resp = get_user(&host, &token)?;
        check(&resp, 401).with_context(|| what.to_string())?;
    }
    check(&get_user(&host, &access)?, 200)?;
    let missing = post(&host.url("/v1/get-user"), &[], b"")?;
    check(&missing, 401)?;
    Ok(())
}

#[test]
fn admin_routes_need_the_admin_key_or_a_current_admin_token() -> Result<()> {
    let host = auth_app()?;
    check(&create(&host, "root", "root-password", "admin")?, 201)?;
    check(&create(&host, "dave", "dave-password", "user")?, 201)?;
    check(&create(&host, "DAVE", "dave-password", "user")?, 409)?;
    let wrong_key = post_json(
        &host,
        "/v1/admin/accounts",
        &[("x-admin-key", "guess")],
        r#"{"username":"eve","password":"eve-password"}"#,
    )?;
    check(&wrong_key, 401)?;

    let dave = field(&login(&host, "dave", "dave-password")?, "access_token")?;
    let dave_auth = format!("Bearer {dave}");
    let patch = |auth: &str, body: &str| {
        request(
            "PATCH",
            &host.url("/v1/admin/accounts/root"),
            &[JSON, ("authorization", auth)],
            Some(body.as_bytes()),
        )
    };
    check(&patch(&dave_auth, r#"{"role":"user"}"#)?, 403)?;
    let list = request(
        "GET",
        &host.url("/v1/admin/accounts"),
        &[("authorization", &dave_auth)],
        None,
    )?;
    check(&list, 403)?;

    let root = field(&login(&host, "root", "root-password")?, "access_token")?;
    let root_auth = format!("Bearer {root}");
    let list = request(
        "GET",
        &host.url("/v1/admin/accounts"),
        &[("authorization", &root_auth)],
        None,
    )?;
    check(&list, 200)?;
    let names: Vec<String> = list
        .json()?
        .as_array()
        .context("array")?
        .iter()
        .filter_map(|a| a["username"].as_str().map(String::from))
        .collect();
    // The directory lists accounts in the order they were created.
    assert_eq!(names, ["root", "dave"]);

    // Disabling an account stops its live tokens at once; enabling restores them.
    let disable = request(
        "PATCH",
        &host.url("/v1/admin/accounts/Dave"),
        &[JSON, ("authorization", &root_auth)],
        Some(br#"{"disabled":true}"#),
    )?;
    check(&disable, 200)?;
    check(&get_user(&host, &dave)?, 403)?;
    let body = r#"{"username":"dave","password":"dave-password"}"#;
    check(&post_json(&host, "/v1/login", &[], body)?, 403)?;
    let enable = request(
        "PATCH",
        &host.url("/v1/admin/accounts/dave"),
        &[JSON, ADMIN],
        Some(br#"{"disabled":false}"#),
    )?;
    check(&enable, 200)?;
    check(&get_user(&host, &dave)?, 200)?;

    // A demoted admin loses admin rights with the token it already holds.
    check(&patch(&root_auth, r#"{"role":"user"}"#)?, 200)?;
    check(&patch(&root_auth, r#"{"role":"admin"}"#)?, 403)?;
    let missing = request(
        "GET",
        &host.url("/v1/admin/accounts/nobody"),
        &[ADMIN],
        None,
    )?;
    check(&missing, 404)?;
    Ok(())
}

#[test]
fn bad_requests_get_wme_error_bodies_and_change_nothing() -> Result<()> {
    let host = auth_app()?;
    check(&post_json(&host, "/v1/login", &[], "{")?, 422)?;
    check(
        &post_json(&host, "/v1/login", &[], r#"{"username":"x"}"#)?,
        422,
    )?;
    let form = post(
        &host.url("/v1/login"),
        &[("content-type", "application/x-www-form-urlencoded")],
        b"username=x&password=y",
    )?;
    check(&form, 415)?;
    let charset = post(
        &host.url("/v1/login"),
        &[("content-type", "application/json; charset=utf-8")],
        br#"{"username":"nobody","password":"nobody-password"}"#,
    )?;
    check(&charset, 401)?;
    let big = vec![b' '; 70 * 1024];
    check(&post(&host.url("/v1/login"), &[JSON], &big)?, 413)?;
    check(&request("GET", &host.url("/v1/login"), &[], None)?, 405)?;
    let bad_name = create(&host, "a:b", "password-1", "user")?;
    check(&bad_name, 422)?;
    let bad_role = create(&host, "frank", "password-1", "root")?;
    check(&bad_role, 422)?;
    let list = request("GET", &host.url("/v1/admin/accounts"), &[ADMIN], None)?;
    check(&list, 200)?;
    assert_eq!(list.json()?, serde_json::json!([]));
    Ok(())
}

#[test]
fn repeated_failed_logins_are_throttled_with_retry_after() -> Result<()> {
    let host = auth_app()?;
    check(&create(&host, "gina", "gina-password", "user")?, 201)?;
    let wrong = r#"{"username":"gina","password":"not-her-password"}"#;
    for _ in 0..5 {
        check(&post_json(&host, "/v1/login", &[], wrong)?, 401)?;
    }
    let right = r#"{"username":"Gina","password":"gina-password"}"#;
    let resp = post_json(&host, "/v1/login", &[], right)?;
    check(&resp, 429)?;
    let retry: u64 = resp.header("retry-after").context("retry-after")?.parse()?;
    assert!((1..=30).contains(&retry), "{retry}");
    // Unknown usernames answer like wrong passwords.
    let ghost = r#"{"username":"ghost","password":"whatever-1"}"#;
    check(&post_json(&host, "/v1/login", &[], ghost)?, 401)?;
    Ok(())
}

#[test]
fn change_password_needs_the_previous_one_and_replaces_it() -> Result<()> {
    let host = auth_app()?;
    check(&create(&host, "hank", "hank-password", "user")?, 201)?;
    // Another login (say, someone who knew the old password).
    let other = login(&host, "hank", "hank-password")?;
    let access = field(&login(&host, "hank", "hank-password")?, "access_token")?;
    let body = |prev: &str, new: &str| {
        serde_json::json!({"access_token": access, "previous_password": prev, "proposed_password": new})
            .to_string()
    };
    let wrong = body("not-the-password", "new-hank-password");
    check(&post_json(&host, "/v1/change-password", &[], &wrong)?, 401)?;
    let short = body("hank-password", "short");
    check(&post_json(&host, "/v1/change-password", &[], &short)?, 422)?;
    let ok = body("hank-password", "new-hank-password");
    check(&post_json(&host, "/v1/change-password", &[], &ok)?, 204)?;
    let old = r#"{"username":"hank","password":"hank-password"}"#;
    check(&post_json(&host, "/v1/login", &[], old)?, 401)?;
    login(&host, "hank", "new-hank-password")?;
    // The other session is over: its access token and refresh token fail;
    // the session that changed the password keeps working.
    check(&get_user(&host, &field(&other, "access_token")?)?, 401)?;
    let refresh =
        serde_json::json!({"username": "hank", "refresh_token": field(&other, "refresh_token")?})
            .to_string();
    check(&post_json(&host, "/v1/token-refresh", &[], &refresh)?, 401)?;
    check(&get_user(&host, &access)?, 200)?;
    Ok(())
}

#[test]
fn thirty_two_parallel_wrong_passwords_are_throttled_and_an_admin_unlocks() -> Result<()> {
    let host = auth_app()?;
    check(&create(&host, "ivan", "ivan-password", "user")?, 201)?;
    let wrong = r#"{"username":"ivan","password":"not-his-password"}"#;
    // Every attempt reserves itself before the password is hashed, so
    // parallel guesses cannot slip through as one.
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..32)
            .map(|_| s.spawn(|| post_json(&host, "/v1/login", &[], wrong).map(|r| r.status)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().ok().and_then(Result::ok).unwrap_or(0))
            .collect()
    });
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert!(throttled >= 27, "{statuses:?}");
    assert_eq!(throttled + checked, 32, "{statuses:?}");
    // The right password is refused too while locked...
    let right = r#"{"username":"ivan","password":"ivan-password"}"#;
    check(&post_json(&host, "/v1/login", &[], right)?, 429)?;
    // ... until an admin unlocks the username.
    let unlock = |name: &str, headers: &[(&str, &str)]| {
        request(
            "POST",
            &host.url(&format!("/v1/admin/accounts/{name}/unlock")),
            headers,
            None,
        )
    };
    check(&unlock("ivan", &[])?, 401)?;
    check(&unlock("nobody", &[ADMIN])?, 404)?;
    assert_eq!(unlock("Ivan", &[ADMIN])?.status, 204);
    login(&host, "ivan", "ivan-password")?;
    Ok(())
}

#[test]
fn an_admin_password_reset_ends_every_session_of_the_account() -> Result<()> {
    let host = auth_app()?;
    check(&create(&host, "jane", "jane-password", "user")?, 201)?;
    let first = field(&login(&host, "jane", "jane-password")?, "access_token")?;
    let second = login(&host, "jane", "jane-password")?;
    check(&get_user(&host, &first)?, 200)?;
    let reset = request(
        "PATCH",
        &host.url("/v1/admin/accounts/jane"),
        &[JSON, ADMIN],
        Some(br#"{"password":"new-jane-password"}"#),
    )?;
    check(&reset, 200)?;
    // Whoever knew the old password is logged out everywhere.
    check(&get_user(&host, &first)?, 401)?;
    check(&get_user(&host, &field(&second, "access_token")?)?, 401)?;
    let refresh =
        serde_json::json!({"username": "jane", "refresh_token": field(&second, "refresh_token")?})
            .to_string();
    check(&post_json(&host, "/v1/token-refresh", &[], &refresh)?, 401)?;
    let fresh = field(&login(&host, "jane", "new-jane-password")?, "access_token")?;
    check(&get_user(&host, &fresh)?, 200)?;
    // A change that is not a password change leaves sessions alone.
    let plan = request(
        "PATCH",
        &host.url("/v1/admin/accounts/jane"),
        &[JSON, ADMIN],
        Some(br#"{"plan":"free"}"#),
    )?;
    check(&plan, 200)?;
    check(&get_user(&host, &fresh)?, 200)?;
    Ok(())
}
