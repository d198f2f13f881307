//! Hourly batches: exactly the hour's events.

use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use wikiedge_tests::{fixtures_or_skip, get};

use super::*;

#[test]
fn an_hourly_batch_holds_exactly_that_hours_events() -> Result<()> {
    let Some(fixtures) = fixtures_or_skip() else {
        return Ok(());
    };
    let wiki = Wiki::start()?;
    let host = app(&wiki, "1", &[])?;
    let auth = account(&host, "batcher", "paid")?;
    let free = account(&host, "batch-free", "free")?;
    ingest(&host, fixture_ndjson(&fixtures)?.as_bytes())?;
    ingest_synthetic(&host, 0..5)?;
    let events = all_ndjson(&host, &auth, "")?;
    assert_eq!(events.len(), 14);

    // The hour of the first event; expected batches from the events in it.
    let published = events[0]["event"]["date_published"]
        .as_str()
        .context("date_published")?
        .to_string();
    let (date, hour) = (&published[0..10], &published[11..13]);
    let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in &events {
        let at = e["event"]["date_published"].as_str().unwrap_or("");
        if at.starts_with(&published[..13]) {
            let id = format!(
                "{}_namespace_{}",
                e["is_part_of"]["identifier"].as_str().unwrap_or(""),
                e["namespace"]["identifier"].as_i64().unwrap_or(0)
            );
            expected
                .entry(id)
                .or_default()
                .insert(e["event"]["identifier"].as_str().unwrap_or("").to_string());
        }
    }
    assert!(expected.contains_key("enwiki_namespace_0"), "{expected:?}");

    let a = [("authorization", auth.as_str())];
    let base = format!("/v2/batches/{date}/{hour}");
    let r = get(&host.url(&base), &a)?;
    assert_eq!(r.status, 200, "{}", r.text());
    let list = r.json()?;
    let ids: BTreeSet<String> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["identifier"].as_str().map(str::to_string))
        .collect();
    assert_eq!(ids, expected.keys().cloned().collect());

    let r = get(&host.url(&format!("{base}/enwiki_namespace_0")), &a)?;
    assert_eq!(r.status, 200, "{}", r.text());
    let meta = r.json()?;
    assert_eq!(meta["is_part_of"]["identifier"], "enwiki");
    assert_eq!(meta["namespace"]["identifier"], 0);
    assert_eq!(meta["size"]["unit_text"], "MB");

    let r = get(
        &host.url(&format!("{base}/enwiki_namespace_0/download")),
        &a,
    )?;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/gzip"));
    let etag = r.header("etag").unwrap_or("").to_string();
    assert_eq!(
        etag,
        format!("\"{}\"", meta["version"].as_str().unwrap_or(""))
    );
    let (name, ndjson) = untar_gz(&r.body)?;
    assert_eq!(name, "enwiki_namespace_0.ndjson");
    let in_batch: BTreeSet<String> = String::from_utf8(ndjson)?
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .map(|v| v["event"]["identifier"].as_str().unwrap_or("").to_string())
        })
        .collect::<Result<_, _>>()?;
    assert_eq!(Some(&in_batch), expected.get("enwiki_namespace_0"));
    let head = wikiedge_tests::request(
        "HEAD",
        &host.url(&format!("{base}/enwiki_namespace_0/download")),
        &a,
        None,
    )?;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("etag"), Some(etag.as_str()));

    // Other hours: an earlier one is empty, a future one does not exist yet.
    let r = get(&host.url("/v2/batches/2001-01-01/00"), &a)?;
    assert_eq!((r.status, r.json()?), (200, json!([])));
    assert_eq!(get(&host.url("/v2/batches/2999-01-01/00"), &a)?.status, 404);
    let r = get(&host.url(&format!("/v2/batches/{date}/24")), &a)?;
    assert_eq!((r.status, r.json()?["status"].as_u64()), (422, Some(422)));
    assert_eq!(
        get(&host.url(&format!("{base}/nowiki_namespace_0")), &a)?.status,
        404
    );
    assert_eq!(get(&host.url(&base), &[])?.status, 401);
    let r = get(&host.url(&base), &[("authorization", free.as_str())])?;
    assert_eq!(r.status, 403);
    Ok(())
}
