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

/// The (account, product, admitted) of every row of this month's admin
/// report, following `Link: <...>; rel="next"` from `first`; also the
/// number of pages.
type Row = (String, String, u64);
fn report_pages(host: &wikiedge_tests::Host, first: &str) -> Result<(Vec<Row>, usize)> {
    let mut rows = Vec::new();
    let mut next = Some(first.to_string());
    let mut pages = 0;
    while let Some(path) = next.take() {
        pages += 1;
        anyhow::ensure!(pages <= 50, "the report does not end: {path}");
        let page = get(&host.url(&path), &[("x-admin-key", ADMIN_KEY)])?;
        anyhow::ensure!(page.status == 200, "{path}: {}", page.text());
        for row in page.json()?.as_array().into_iter().flatten() {
            rows.push((
                row["account"].as_str().unwrap_or("?").to_string(),
                row["product"].as_str().unwrap_or("?").to_string(),
                row["admitted"].as_u64().unwrap_or(0),
            ));
        }
        next = crate::common::next_page(&page);
    }
    Ok((rows, pages))
}

/// The admin report is served in pages that cover each account with usage
/// exactly once, even when an account's first requests race each other
/// across instances (each may append it to the month's listing).
#[test]
fn the_admin_report_pages_list_each_account_once_when_first_requests_race() -> Result<()> {
    let plans = r#"[{"name":"free","monthly":{"ondemand":1000},"burst_per_second":1000}]"#;
    let (_state, host) = app_with_plans(plans)?;
    let names = ["ann", "ben", "cyd", "dee", "racer"];
    let tokens = names
        .iter()
        .map(|n| bearer(&host, n, "user"))
        .collect::<Result<Vec<_>>>()?;
    let fetch = |token: &str, path: &str| {
        get(&host.url(path), &[("authorization", token)])
            .map(|r| r.status)
            .unwrap_or(0)
    };
    let article = "/v2/articles/Anarchism";
    let structured = "/v2/structured-contents/Anarchism";
    for token in &tokens[..4] {
        assert_eq!(fetch(token, article), 200);
    }
    // The racer's first 16 requests all at once, on two products: the
    // first of each product that day lists the account, so two instances
    // may both append it.
    let racer = &tokens[4];
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|i| s.spawn(move || fetch(racer, if i % 2 == 0 { article } else { structured })))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
    });
    assert_eq!(statuses, [200; 16]);

    let (rows, pages) = report_pages(&host, "/v1/admin/usage?limit=2")?;
    let mut seen: Vec<(&str, &str)> = rows
        .iter()
        .map(|(a, p, _)| (a.as_str(), p.as_str()))
        .collect();
    seen.sort_unstable();
    let mut expected: Vec<(&str, &str)> = names[..4].iter().map(|n| (*n, "ondemand")).collect();
    expected.extend([("racer", "ondemand"), ("racer", "structured-contents")]);
    assert_eq!(seen, expected, "each account and product once");
    assert!(pages >= 3, "5 accounts in pages of 2: {pages} pages");
    let admitted = |name: &str, product: &str| {
        rows.iter()
            .find(|(a, p, _)| a == name && p == product)
            .map(|r| r.2)
    };
    assert_eq!(admitted("racer", "ondemand"), Some(8));
    assert_eq!(admitted("racer", "structured-contents"), Some(8));
    assert_eq!(admitted("ann", "ondemand"), Some(1));
    // One page of everything has no next link.
    let (all, pages) = report_pages(&host, "/v1/admin/usage")?;
    assert_eq!((all.len(), pages), (6, 1));

    for bad in ["limit=0", "limit=201", "after=-1", "after=x"] {
        let resp = get(
            &host.url(&format!("/v1/admin/usage?{bad}")),
            &[("x-admin-key", ADMIN_KEY)],
        )?;
        assert_eq!(resp.status, 422, "{bad}");
    }
    Ok(())
}
