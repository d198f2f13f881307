//! Metering (`functions/metering`): every request through `articles` is
//! counted once, and usage is visible to its account and to admins only.

use anyhow::Result;
use wikiedge_tests::get;

use crate::ADMIN_KEY;
use crate::quota::{app_with_plans, bearer};

#[test]
fn usage_counts_admitted_and_denied_requests_and_stays_private() -> Result<()> {
    let plans = r#"[{"name":"free","monthly":{"ondemand":2},"burst_per_second":100}]"#;
    let (_state, host) = app_with_plans(plans)?;
    let alice = bearer(&host, "alice", "user")?;
    let bob = bearer(&host, "bob", "user")?;
    let admin = bearer(&host, "auditor", "admin")?;
    let statuses: Vec<u16> = (0..3)
        .map(|_| {
            get(
                &host.url("/v2/articles/Anarchism"),
                &[("authorization", &alice)],
            )
            .map(|r| r.status)
            .unwrap_or(0)
        })
        .collect();
    assert_eq!(statuses, [200, 200, 429]);

    let usage = get(&host.url("/v1/usage"), &[("authorization", &alice)])?.json()?;
    assert_eq!(usage["account"], "alice");
    let row = &usage["usage"][0];
    assert_eq!(
        (row["product"].as_str(), row["admitted"].as_u64()),
        (Some("ondemand"), Some(2))
    );
    assert_eq!(row["denied"], 1);
    assert!(row["bytes"].as_u64().is_some_and(|b| b > 0));

    let bobs = get(&host.url("/v1/usage"), &[("authorization", &bob)])?.json()?;
    assert_eq!(bobs["usage"].as_array().map(Vec::len), Some(0));
    let snoop = get(
        &host.url("/v1/usage?account=alice"),
        &[("authorization", &bob)],
    )?;
    assert_eq!(
        (snoop.status, snoop.json()?["status"].as_u64()),
        (403, Some(403))
    );
    let audit = get(
        &host.url("/v1/usage?account=alice"),
        &[("authorization", &admin)],
    )?
    .json()?;
    assert_eq!(audit["usage"][0]["admitted"], 2);

    let bad = get(
        &host.url("/v1/usage?from=2024-02-30"),
        &[("authorization", &alice)],
    )?;
    assert_eq!(bad.status, 422);
    let csv = get(
        &host.url("/v1/usage"),
        &[("authorization", &alice), ("accept", "text/csv")],
    )?;
    assert!(
        csv.header("content-type")
            .is_some_and(|c| c.starts_with("text/csv"))
    );
    assert!(
        csv.text()
            .starts_with("date,product,admitted,denied,bytes\r\n")
    );

    let report = get(&host.url("/v1/admin/usage"), &[("x-admin-key", ADMIN_KEY)])?.json()?;
    let accounts: Vec<&str> = report
        .as_array()
        .map(|rows| rows.iter().filter_map(|r| r["account"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(accounts, ["alice"]);
    assert_eq!(
        get(&host.url("/v1/admin/usage"), &[("authorization", &alice)])?.status,
        403
    );
    let csv = get(
        &host.url("/v1/admin/usage"),
        &[("authorization", &admin), ("accept", "text/csv")],
    )?;
    assert!(
        csv.text()
            .starts_with("account,month,product,admitted,denied,bytes\r\n")
    );
    let bad = get(
        &host.url("/v1/admin/usage?month=2024-13"),
        &[("authorization", &admin)],
    )?;
    assert_eq!(bad.status, 422);
    Ok(())
}
