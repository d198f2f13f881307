//! The admin monthly usage report, fetched whole: `GET
//! /v1/admin/usage?month=YYYY-MM&limit=200`, then each page its `Link:
//! <...>; rel="next"` header names, until a page has none.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use http::{Method, StatusCode};
use wikiedge_bench::client::fetch;
use wikiedge_bench::proc::truncate;
use wikiedge_core::metering::AccountUsageRow;
use wikiedge_core::metering::index::MAX_PAGE;

use crate::accounts::{MONTH, account_name, expected_rows};

/// The whole report, as fetched.
pub(crate) struct Fetched {
    pub(crate) seconds: f64,
    /// Each page's rows.
    pub(crate) pages: Vec<Vec<AccountUsageRow>>,
    /// Each page's seconds.
    pub(crate) page_seconds: Vec<f64>,
}

/// The target of the `rel="next"` link in a `Link` header value (RFC 8288:
/// comma-separated `<target>; param=value` links; `rel` may hold several
/// space-separated types, quoted or not).
pub(crate) fn next_link(value: &str) -> Option<String> {
    let mut rest = value;
    loop {
        let open = rest.find('<')?;
        let close = rest[open..].find('>')? + open;
        let target = &rest[open + 1..close];
        let after = &rest[close + 1..];
        let params_end = after.find('<').unwrap_or(after.len());
        let params = &after[..params_end];
        let is_next = params.split(';').any(|p| {
            let Some((name, value)) = p.split_once('=') else {
                return false;
            };
            name.trim().eq_ignore_ascii_case("rel")
                && value
                    .trim()
                    .trim_end_matches(',')
                    .trim()
                    .trim_matches('"')
                    .split_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("next"))
        });
        if is_next {
            return Some(target.to_string());
        }
        rest = after;
    }
}

/// Fetches every page of [`MONTH`]'s report from `base_url` with the admin key.
pub(crate) async fn fetch_all(base_url: &str, admin_key: &str) -> Result<Fetched> {
    let mut path = format!("/v1/admin/usage?month={MONTH}&limit={MAX_PAGE}");
    let mut pages = Vec::new();
    let mut page_seconds = Vec::new();
    let t = Instant::now();
    loop {
        let started = Instant::now();
        let page = fetch(
            Method::GET,
            &format!("{base_url}{path}"),
            &[("x-admin-key", admin_key), ("accept", "application/json")],
            Vec::new(),
            Duration::from_secs(600),
        )
        .await
        .with_context(|| format!("GET {path}"))?;
        page_seconds.push(started.elapsed().as_secs_f64());
        if page.status != StatusCode::OK {
            bail!(
                "GET {path}: {} {}",
                page.status,
                truncate(&page.text(), 300)
            );
        }
        let rows: Vec<AccountUsageRow> = serde_json::from_slice(&page.body)
            .with_context(|| format!("GET {path}: {}", truncate(&page.text(), 300)))?;
        pages.push(rows);
        let link = page
            .headers
            .get(http::header::LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(next_link);
        match link {
            Some(next) if next != path => path = next,
            Some(next) => bail!("page {path} links to itself ({next})"),
            None => break,
        }
    }
    Ok(Fetched {
        seconds: t.elapsed().as_secs_f64(),
        pages,
        page_seconds,
    })
}

/// Checks that the pages hold every generated account (`0..accounts`)
/// exactly once, in a single page, with its expected rows, and nothing
/// else; returns the rows counted.
pub(crate) fn verify(pages: &[Vec<AccountUsageRow>], accounts: usize) -> Result<usize> {
    let mut seen: HashMap<&str, (usize, Vec<&AccountUsageRow>)> = HashMap::new();
    let mut total = 0;
    for (p, rows) in pages.iter().enumerate() {
        for row in rows {
            total += 1;
            let entry = seen.entry(row.account.as_str()).or_insert((p, Vec::new()));
            if entry.0 != p {
                bail!(
                    "account {} is in pages {} and {} of the report",
                    row.account,
                    entry.0 + 1,
                    p + 1
                );
            }
            entry.1.push(row);
        }
    }
    for i in 0..accounts {
        let name = account_name(i);
        let Some((_, rows)) = seen.remove(name.as_str()) else {
            bail!("account {name} is missing from the report");
        };
        let expected = expected_rows(MONTH, i);
        if rows.len() != expected.len() || rows.iter().zip(&expected).any(|(a, b)| *a != b) {
            bail!("account {name}'s rows are {rows:?}, expected {expected:?}");
        }
    }
    if let Some(name) = seen.keys().next() {
        bail!(
            "the report has {} accounts that were not generated, e.g. {name}",
            seen.len()
        );
    }
    Ok(total)
}

/// The `q` quantile (nearest rank) of `values`; `None` when empty.
pub(crate) fn quantile(values: &[f64], q: f64) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len().max(1));
    v.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_next_link() {
        let link = "</v1/admin/usage?month=2024-03&limit=200&after=200>; rel=\"next\"";
        assert_eq!(
            next_link(link).as_deref(),
            Some("/v1/admin/usage?month=2024-03&limit=200&after=200")
        );
        assert_eq!(
            next_link("</a>; rel=\"prev\", </b>; rel=next").as_deref(),
            Some("/b")
        );
        assert_eq!(
            next_link("</a>; title=\"x\"; REL=\"last next\"").as_deref(),
            Some("/a")
        );
        assert_eq!(next_link("</a>; rel=\"prev\""), None);
        assert_eq!(next_link("</a>; rel=\"nextpage\""), None);
        assert_eq!(next_link(""), None);
        assert_eq!(next_link("garbage"), None);
    }

    fn pages(accounts: usize, per_page: usize) -> Vec<Vec<AccountUsageRow>> {
        let rows: Vec<Vec<AccountUsageRow>> =
            (0..accounts).map(|i| expected_rows(MONTH, i)).collect();
        rows.chunks(per_page)
            .map(|c| c.iter().flatten().cloned().collect())
            .collect()
    }

    #[test]
    fn verify_accepts_every_account_once_and_nothing_else() {
        let ok = pages(5, 2);
        assert_eq!(verify(&ok, 5).expect("complete"), 10);
        // Missing account 4.
        assert!(verify(&ok, 6).is_err());
        // An account not generated.
        assert!(verify(&ok, 4).is_err());
        // Account 0 again in a later page.
        let mut twice = ok.clone();
        twice[2].push(ok[0][0].clone());
        assert!(verify(&twice, 5).is_err());
        // A wrong total.
        let mut wrong = ok.clone();
        wrong[1][0].admitted += 1;
        assert!(verify(&wrong, 5).is_err());
        // A row lost.
        let mut lost = ok;
        lost[0].pop();
        assert!(verify(&lost, 5).is_err());
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.99), Some(99.0));
        assert_eq!(quantile(&v, 0.5), Some(50.0));
        assert_eq!(quantile(&[3.0], 0.99), Some(3.0));
        assert_eq!(quantile(&[], 0.99), None);
    }
}
