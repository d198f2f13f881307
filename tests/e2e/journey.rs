//! The user journey, end to end through the real host and all four
//! components: an admin creates a free account, the user logs in, reads
//! articles, watches the quota, hits the cap, reads their usage, and loses
//! access when the refresh token is revoked.

use crate::common::{count, race, usage_today};
use crate::quota::{app_with_plans, app_with_plans_on};
use crate::{ADMIN_KEY, BIN};
use anyhow::{Context, Result};
use wikiedge_tests::{get, post};

const JSON: (&str, &str) = ("content-type", "application/json");

on_both_stores! {
    a_free_user_reads_articles_until_the_cap_then_is_refused_and_revoked,
    the_journey_holds_where_every_compare_and_swap_is_misreported => journey
}

fn journey(misreport: bool) -> Result<()> {
    let _ = BIN;
    let plans = r#"[{"name":"free","monthly":{"ondemand":3,"snapshot":30,"chunk":1500},"burst_per_second":100}]"#;
    let (_state, host) = app_with_plans_on(plans, misreport)?;

    // The admin creates a free account.
    let create =
        serde_json::json!({"username": "Reader", "password": "a long passphrase", "plan": "free"});
    let r = post(
        &host.url("/v1/admin/accounts"),
        &[("x-admin-key", ADMIN_KEY), JSON],
        create.to_string().as_bytes(),
    )?;
    assert_eq!(r.status, 201, "{}", r.text());

    // The user logs in (usernames are case-insensitive).
    let login = serde_json::json!({"username": "reader", "password": "a long passphrase"});
    let r = post(
        &host.url("/v1/login"),
        &[JSON],
        login.to_string().as_bytes(),
    )?;
    assert_eq!(r.status, 200, "{}", r.text());
    let tokens = r.json()?;
    let access = tokens["access_token"]
        .as_str()
        .context("access_token")?
        .to_string();
    let refresh = tokens["refresh_token"]
        .as_str()
        .context("refresh_token")?
        .to_string();
    assert_eq!(tokens["expires_in"], 86_400);
    let auth = format!("Bearer {access}");
    let auth_h = ("authorization", auth.as_str());

    // Fetch articles: each carries the rate-limit headers.
    for _ in 0..2 {
        let r = get(&host.url("/v2/articles/Anarchism"), &[auth_h])?;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()?[0]["name"], "Anarchism");
        assert!(r.header("ratelimit").is_some() && r.header("ratelimit-policy").is_some());
    }

    // The quota shows the use.
    let q = get(&host.url("/v1/quota"), &[auth_h])?.json()?;
    let ondemand = q["products"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["product"] == "ondemand"))
        .cloned();
    let ondemand = ondemand.context("ondemand in the quota report")?;
    assert_eq!(
        (ondemand["used"].as_u64(), ondemand["remaining"].as_u64()),
        (Some(2), Some(1)),
        "{q}"
    );

    // The last unit, then the cap: 429 with Retry-After and RateLimit.
    assert_eq!(
        get(&host.url("/v2/articles/Anarchism"), &[auth_h])?.status,
        200
    );
    let denied = get(&host.url("/v2/articles/Anarchism"), &[auth_h])?;
    assert_eq!(denied.status, 429);
    assert_eq!(denied.json()?["status"], 429);
    let retry: u64 = denied
        .header("retry-after")
        .context("Retry-After")?
        .parse()?;
    assert!(retry > 0 && retry <= 31 * 86_400, "{retry}");
    assert!(
        denied
            .header("ratelimit")
            .is_some_and(|v| v.contains("r=0")),
        "{:?}",
        denied.headers
    );

    // Usage shows 3 admitted and 1 denied today.
    assert_eq!(usage_today(&host, &auth, "ondemand")?, (3, 1));

    // Revoking the refresh token kills the access token minted from it.
    let revoke = serde_json::json!({"refresh_token": refresh});
    let r = post(
        &host.url("/v1/token-revoke"),
        &[JSON],
        revoke.to_string().as_bytes(),
    )?;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = get(&host.url("/v2/articles/Anarchism"), &[auth_h])?;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(get(&host.url("/v1/quota"), &[auth_h])?.status, 401);
    Ok(())
}

on_both_stores! {
    sixty_four_racing_clients_against_a_cap_of_fifty_get_exactly_fifty,
    sixty_four_racers_stay_exact_where_every_compare_and_swap_is_misreported => sixty_four_racers
}

fn sixty_four_racers(misreport: bool) -> Result<()> {
    let plans = r#"[{"name":"free","monthly":{"ondemand":50},"burst_per_second":1000}]"#;
    let (_state, host) = app_with_plans_on(plans, misreport)?;
    let auth = crate::quota::bearer(&host, "racer64", "user")?;
    let statuses = race(&[host.url("/v2/articles/Anarchism")], 64, &auth);
    assert_eq!(count(&statuses, 200), 50, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 14, "{statuses:?}");
    assert_eq!(usage_today(&host, &auth, "ondemand")?, (50, 14));
    Ok(())
}

#[test]
fn wikiedge_account_create_makes_a_first_admin_from_the_command_line() -> Result<()> {
    let (_state, host) =
        app_with_plans(r#"[{"name":"free","monthly":{"ondemand":5},"burst_per_second":10}]"#)?;
    let run = |args: &[&str]| {
        std::process::Command::new(BIN)
            .args([
                "account",
                "create",
                "--url",
                &host.base,
                "--admin-key",
                ADMIN_KEY,
            ])
            .args(args)
            .env_remove("SPIN_VARIABLE_ADMIN_API_KEY")
            .output()
    };
    let out = run(&[
        "--username",
        "Root",
        "--password",
        "a long passphrase",
        "--role",
        "admin",
    ])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(
        (created["username"].as_str(), created["role"].as_str()),
        (Some("root"), Some("admin"))
    );

    // The new admin logs in and can use the admin API with its token.
    let login = serde_json::json!({"username": "root", "password": "a long passphrase"});
    let r = post(
        &host.url("/v1/login"),
        &[JSON],
        login.to_string().as_bytes(),
    )?;
    let token = format!(
        "Bearer {}",
        r.json()?["access_token"].as_str().context("token")?
    );
    let r = get(
        &host.url("/v1/admin/accounts"),
        &[("authorization", token.as_str())],
    )?;
    assert_eq!(r.status, 200, "{}", r.text());

    // Errors are reported, not swallowed: a duplicate, and a wrong key.
    let out = run(&["--username", "root", "--password", "a long passphrase"])?;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("409"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(BIN)
        .args([
            "account",
            "create",
            "--url",
            &host.base,
            "--admin-key",
            "wrong",
            "--username",
            "x1y",
            "--password",
            "a long passphrase",
        ])
        .output()?;
    assert!(!out.status.success());
    Ok(())
}
