//! The account directory as a paged listing: `GET /v1/admin/accounts`
//! with `limit`/`after` and `Link: rel="next"`, racing creations listed
//! once, and a store left by an older version (one JSON array) moved in.

use anyhow::Result;
use wikiedge_cli::bulk::{Bulk, Target};
use wikiedge_core::auth::directory;
use wikiedge_tests::{Host, request};

use crate::auth::{ADMIN, auth_builder, create};
use crate::common::check;

/// Every username of `GET /v1/admin/accounts?limit=N`, following
/// `Link: <...>; rel="next"`; also the number of pages.
fn listed_accounts(host: &Host, limit: u32) -> Result<(Vec<String>, usize)> {
    let mut names = Vec::new();
    let mut next = Some(format!("/v1/admin/accounts?limit={limit}"));
    let mut pages = 0;
    while let Some(path) = next.take() {
        pages += 1;
        anyhow::ensure!(pages <= 50, "the listing does not end: {path}");
        let page = request("GET", &host.url(&path), &[ADMIN], None)?;
        check(&page, 200)?;
        for account in page.json()?.as_array().into_iter().flatten() {
            names.push(account["username"].as_str().unwrap_or("?").to_string());
        }
        next = crate::common::next_page(&page);
    }
    Ok((names, pages))
}

/// Accounts created all at once (on a store that misreports every
/// compare-and-swap) are each listed once, in pages; a store written by
/// the version that kept the directory as one JSON array has it moved into
/// the listing, once.
#[test]
fn accounts_are_listed_once_in_pages_and_an_old_directory_moves_in() -> Result<()> {
    let state = wikiedge_tests::TempDir::new("directory")?;
    let host = auth_builder(true, &[])?.state_dir(state.path()).start()?;
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12)
            .map(|i| {
                let host = &host;
                s.spawn(move || {
                    create(host, &format!("user{i:02}"), "password-1", "user")
                        .map(|r| r.status)
                        .unwrap_or(0)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
    });
    assert_eq!(statuses, [201; 12]);
    let (mut names, pages) = listed_accounts(&host, 5)?;
    assert_eq!(pages, 3);
    names.sort();
    let expected: Vec<String> = (0..12).map(|i| format!("user{i:02}")).collect();
    assert_eq!(names, expected);
    for bad in ["limit=0", "limit=201", "after=x"] {
        let resp = request(
            "GET",
            &host.url(&format!("/v1/admin/accounts?{bad}")),
            &[ADMIN],
            None,
        )?;
        check(&resp, 422)?;
    }
    drop(host);

    // Rewrite the store as the old version left it: no listing, one array.
    let listing = directory::listing();
    let mut store = Bulk::open(&Target::new(state.path(), "default"))?;
    let mut old: Vec<String> = (1..=12).map(|seq| listing.entry_key(seq)).collect();
    old.extend(expected.iter().map(|n| listing.marker_key(n)));
    old.push(listing.count_key());
    store.delete_many(old)?;
    let array = serde_json::json!({ "usernames": expected }).to_string();
    store.set(directory::LEGACY_KEY.into(), array.into_bytes())?;
    store.flush()?;
    drop(store);

    let host = auth_builder(false, &[])?.state_dir(state.path()).start()?;
    check(&create(&host, "newcomer", "password-1", "user")?, 201)?;
    let (names, _) = listed_accounts(&host, 200)?;
    assert_eq!(names.len(), 13, "{names:?}");
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 13, "each once: {names:?}");
    // Moved once: a second listing reads the same.
    assert_eq!(listed_accounts(&host, 200)?.0, names);
    Ok(())
}
