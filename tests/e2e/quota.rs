//! Quotas (`functions/quota`): atomic consumption through `articles`, the
//! quota report, plan and grant changes, and exceptional-access requests.

use anyhow::{Context, Result};
use wikiedge_cli::import::{ImportArgs, run as import};
use wikiedge_tests::{Host, Resp, TempDir, get, post, repo_root, request, sample_dump};

use crate::{ADMIN_KEY, BIN};

const JSON: (&str, &str) = ("content-type", "application/json");
const ADMIN: (&str, &str) = ("x-admin-key", ADMIN_KEY);

/// Creates an account (optionally an admin) and returns a bearer header.
pub fn bearer(host: &Host, username: &str, role: &str) -> Result<String> {
    crate::common::account(host, username, serde_json::json!({"role": role}))
}

/// Starts the app with these plans on the project's own sample dump
/// (`wikiedge sample-dump`: quota and metering need an article, not real
/// data, so they run on a clone alone).
pub fn app_with_plans(plans: &str) -> Result<(TempDir, Host)> {
    app_with_plans_on(plans, false)
}

/// [`app_with_plans`]; with `misreport`, every key-value compare-and-swap
/// is reported failed after it ran, as Spin 4.1's Redis store reports it.
pub fn app_with_plans_on(plans: &str, misreport: bool) -> Result<(TempDir, Host)> {
    let state = TempDir::new("quota")?;
    let dump = sample_dump(BIN, state.path(), 0)?;
    let mut args = ImportArgs::new(dump, Some("enwiki".into())).with_state_dir(state.path());
    args.progress = false;
    import(args)?;
    let host = host_on(state.path(), plans, misreport)?;
    Ok((state, host))
}

/// A host with these plans on the state directory `state` (see
/// [`app_with_plans_on`] for `misreport`).
fn host_on(state: &std::path::Path, plans: &str, misreport: bool) -> Result<Host> {
    Host::builder(BIN, &repo_root().join("spin.toml"))
        .env("SPIN_VARIABLE_ADMIN_API_KEY", ADMIN_KEY)
        .env("SPIN_VARIABLE_PLANS", plans)
        .env(
            "WIKIEDGE_EMULATE_SPIN_REDIS_CAS",
            if misreport { "true" } else { "false" },
        )
        .state_dir(state)
        .start()
}

fn article(host: &Host, auth: &str) -> Result<Resp> {
    get(
        &host.url("/v2/articles/Anarchism"),
        &[("authorization", auth)],
    )
}

fn quota_of(host: &Host, auth: &str, product: &str) -> Result<serde_json::Value> {
    let report = get(&host.url("/v1/quota"), &[("authorization", auth)])?.json()?;
    report["products"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["product"] == product))
        .cloned()
        .context("product in report")
}

#[test]
fn concurrent_requests_never_exceed_the_monthly_quota_and_denials_cost_nothing() -> Result<()> {
    let plans = r#"[{"name":"free","monthly":{"ondemand":10},"burst_per_second":1000}]"#;
    let (_state, host) = app_with_plans(plans)?;
    let auth = bearer(&host, "racer", "user")?;
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..30)
            .map(|_| s.spawn(|| article(&host, &auth).map(|r| r.status).unwrap_or(0)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        20,
        "{statuses:?}"
    );
    let q = quota_of(&host, &auth, "ondemand")?;
    assert_eq!(
        (q["limit"].as_u64(), q["used"].as_u64()),
        (Some(10), Some(10))
    );
    assert_eq!(q["remaining"].as_u64(), Some(0));

    let denied = article(&host, &auth)?;
    assert_eq!(denied.status, 429);
    assert!(denied.header("retry-after").is_some());
    assert!(
        denied
            .header("ratelimit")
            .is_some_and(|v| v.contains("r=0"))
    );
    assert_eq!(
        quota_of(&host, &auth, "ondemand")?["used"].as_u64(),
        Some(10)
    );
    Ok(())
}

/// Two hosts on one state directory, so one SQLite file: each writes its
/// counters without reading them back when it wrote them last
/// (`kv::sqlite::counters`), which holds only while it notices the other
/// host's commits. Requests alternating between the hosts count every
/// one, and a race over both admits exactly the cap.
#[test]
fn two_hosts_on_one_sqlite_file_count_every_request() -> Result<()> {
    let plans = r#"[{"name":"free","monthly":{"ondemand":50},"burst_per_second":1000}]"#;
    let (state, a) = app_with_plans(plans)?;
    let b = host_on(state.path(), plans, false)?;
    let auth = bearer(&a, "shared", "user")?;
    for i in 0..10 {
        let host = if i % 2 == 0 { &a } else { &b };
        assert_eq!(article(host, &auth)?.status, 200, "request {i}");
    }
    for host in [&a, &b] {
        assert_eq!(
            quota_of(host, &auth, "ondemand")?["used"].as_u64(),
            Some(10)
        );
    }
    let urls = [
        a.url("/v2/articles/Anarchism"),
        b.url("/v2/articles/Anarchism"),
    ];
    let statuses = crate::common::race(&urls, 64, &auth);
    assert_eq!(crate::common::count(&statuses, 200), 40, "{statuses:?}");
    assert_eq!(crate::common::count(&statuses, 429), 24, "{statuses:?}");
    for host in [&a, &b] {
        assert_eq!(
            quota_of(host, &auth, "ondemand")?["used"].as_u64(),
            Some(50)
        );
        assert_eq!(
            crate::common::usage_today(host, &auth, "ondemand")?,
            (50, 24)
        );
    }
    Ok(())
}

#[test]
fn the_burst_limit_counts_requests_per_second() -> Result<()> {
    let plans = r#"[{"name":"free","monthly":{"ondemand":1000},"burst_per_second":3}]"#;
    let (_state, host) = app_with_plans(plans)?;
    let auth = bearer(&host, "burster", "user")?;
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12)
            .map(|_| s.spawn(|| article(&host, &auth).map(|r| r.status).unwrap_or(0)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
    });
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    // The 12 requests may straddle a second boundary, never three.
    assert!((3..=6).contains(&admitted), "{statuses:?}");
    let q = quota_of(&host, &auth, "ondemand")?;
    assert_eq!(
        q["used"].as_u64(),
        Some(admitted as u64),
        "burst denials are given back"
    );
    let ok = (0..20).find_map(|_| {
        std::thread::sleep(std::time::Duration::from_millis(400));
        article(&host, &auth).ok().filter(|r| r.status == 200)
    });
    let ok = ok.context("admitted again after the second passed")?;
    let policy = ok.header("ratelimit-policy").unwrap_or_default();
    assert!(policy.contains(r#""burst";q=3;w=1"#), "{policy}");
    Ok(())
}

#[test]
fn an_admin_grant_raises_the_limit_and_shows_in_the_report() -> Result<()> {
    let plans = r#"[{"name":"free","monthly":{"ondemand":1},"burst_per_second":100}]"#;
    let (_state, host) = app_with_plans(plans)?;
    let auth = bearer(&host, "grantee", "user")?;
    assert_eq!(article(&host, &auth)?.status, 200);
    assert_eq!(article(&host, &auth)?.status, 429);

    let url = host.url("/v1/admin/accounts/grantee/plan");
    let put =
        |headers: &[(&str, &str)], body: &str| request("PUT", &url, headers, Some(body.as_bytes()));
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        + 86_400;
    let grant = format!(
        r#"{{"plan":"free","grants":[{{"monthly":{{"ondemand":5}},"expires":{expires},"reason":"pilot"}}]}}"#
    );
    assert_eq!(put(&[JSON], &grant)?.status, 401);
    assert_eq!(put(&[JSON, ("authorization", &auth)], &grant)?.status, 403);
    assert_eq!(put(&[ADMIN], &grant)?.status, 415);
    assert_eq!(put(&[ADMIN, JSON], r#"{"plan":"gold"}"#)?.status, 422);
    let expired =
        r#"{"plan":"free","grants":[{"monthly":{"ondemand":5},"expires":1,"reason":"x"}]}"#;
    assert_eq!(put(&[ADMIN, JSON], expired)?.status, 422);
    let missing = request(
        "PUT",
        &host.url("/v1/admin/accounts/nobody/plan"),
        &[ADMIN, JSON],
        Some(grant.as_bytes()),
    )?;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()?["status"], 404);

    let updated = put(&[ADMIN, JSON], &grant)?;
    assert_eq!(updated.status, 200, "{}", updated.text());
    assert_eq!(updated.json()?["limits"]["monthly"]["ondemand"], 5);
    let report = get(&host.url("/v1/quota"), &[("authorization", &auth)])?.json()?;
    assert_eq!(report["grants"][0]["reason"], "pilot");
    assert_eq!(quota_of(&host, &auth, "ondemand")?["limit"], 5);
    // Instances cache an account's limits for a few seconds.
    let admitted = (0..20).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(500));
        article(&host, &auth).is_ok_and(|r| r.status == 200)
    });
    assert!(admitted, "the grant applies to consumption");
    Ok(())
}

#[test]
fn exceptional_access_is_requested_once_and_decided_by_an_admin() -> Result<()> {
    let (_state, host) = app_with_plans("")?;
    let user = bearer(&host, "researcher", "user")?;
    let other = bearer(&host, "someone", "user")?;
    let admin = bearer(&host, "operator", "admin")?;
    let url = host.url("/v1/access-requests");
    let answers = serde_json::json!({
        "who": "A university lab", "purpose": "Citation research",
        "need": "The free tier is too small", "obligation": "Six months",
        "mission_alignment": "Open knowledge", "values_alignment": "Openness"
    })
    .to_string();
    let r = post(&url, &[JSON, ("authorization", &user)], br#"{"who":"x"}"#)?;
    assert_eq!(r.status, 422);
    let r = post(&url, &[("authorization", &user)], answers.as_bytes())?;
    assert_eq!(r.status, 415);
    let created = post(&url, &[JSON, ("authorization", &user)], answers.as_bytes())?;
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()?["id"].as_str().context("id")?.to_string();
    let again = post(&url, &[JSON, ("authorization", &user)], answers.as_bytes())?;
    assert_eq!(again.status, 409);

    let mine = get(&url, &[("authorization", &user)])?.json()?;
    assert_eq!(mine.as_array().map(Vec::len), Some(1));
    let theirs = get(&url, &[("authorization", &other)])?.json()?;
    assert_eq!(theirs.as_array().map(Vec::len), Some(0));
    let peek = get(
        &host.url(&format!("/v1/access-requests/{id}")),
        &[("authorization", &other)],
    )?;
    assert_eq!(peek.status, 404);

    let admin_list = host.url("/v1/admin/access-requests?status=pending");
    assert_eq!(get(&admin_list, &[("authorization", &user)])?.status, 403);
    let pending = get(&admin_list, &[("authorization", &admin)])?.json()?;
    assert_eq!(pending[0]["id"], id.as_str());

    let decide = host.url(&format!("/v1/admin/access-requests/{id}/decision"));
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        + 30 * 86_400;
    let approve = format!(
        r#"{{"action":"approve","monthly":{{"realtime":1000}},"burst_per_second":40,"expires":{expires}}}"#
    );
    assert_eq!(
        post(
            &decide,
            &[JSON, ("authorization", &user)],
            approve.as_bytes()
        )?
        .status,
        403
    );
    let bad = br#"{"action":"approve","monthly":{"realtime":1000},"expires":1}"#;
    assert_eq!(post(&decide, &[JSON, ADMIN], bad)?.status, 422);
    let decided = post(
        &decide,
        &[JSON, ("authorization", &admin)],
        approve.as_bytes(),
    )?;
    assert_eq!(decided.status, 200, "{}", decided.text());
    assert_eq!(decided.json()?["status"], "approved");
    assert_eq!(decided.json()?["decision"]["decided_by"], "operator");
    let twice = post(
        &decide,
        &[JSON, ADMIN],
        br#"{"action":"decline","reason":"no"}"#,
    )?;
    assert_eq!(twice.status, 409);

    let report = get(&host.url("/v1/quota"), &[("authorization", &user)])?.json()?;
    assert_eq!(report["burst_per_second"], 40);
    assert_eq!(
        report["grants"][0]["reason"],
        format!("access request {id}")
    );
    assert_eq!(quota_of(&host, &user, "realtime")?["limit"], 1000);

    let second = post(&url, &[JSON, ("authorization", &other)], answers.as_bytes())?;
    let id2 = second.json()?["id"].as_str().context("id")?.to_string();
    let decline = host.url(&format!("/v1/admin/access-requests/{id2}/decision"));
    let declined = post(
        &decline,
        &[JSON, ADMIN],
        br#"{"action":"decline","reason":"Not aligned"}"#,
    )?;
    assert_eq!(declined.json()?["status"], "declined");
    let report = get(&host.url("/v1/quota"), &[("authorization", &other)])?.json()?;
    assert_eq!(report["grants"].as_array().map(Vec::len), Some(0));
    Ok(())
}

#[test]
fn quota_routes_refuse_bad_credentials_with_wme_error_bodies() -> Result<()> {
    let (_state, host) = app_with_plans("")?;
    let r = get(&host.url("/v1/quota"), &[])?;
    assert_eq!((r.status, r.json()?["status"].as_u64()), (401, Some(401)));
    let r = get(
        &host.url("/v1/quota"),
        &[("authorization", "Bearer not-a-jwt")],
    )?;
    assert_eq!(r.status, 401);
    let r = get(&host.url("/v1/quota"), &[("x-admin-key", "wrong")])?;
    assert_eq!(r.status, 401);
    let auth = bearer(&host, "checker", "user")?;
    let r = request(
        "POST",
        &host.url("/v1/quota"),
        &[("authorization", &auth)],
        None,
    )?;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("content-type"), Some("application/json"));
    Ok(())
}
