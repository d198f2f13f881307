//! Realtime ingest: fixture events published once with full articles,
//! compaction of expired events, and concurrent ingests of the same events.

use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use wikiedge_tests::{fixtures_or_skip, get, post};

use super::*;

#[test]
fn replayed_fixture_events_are_published_once_with_full_articles() -> Result<()> {
    let Some(fixtures) = fixtures_or_skip() else {
        return Ok(());
    };
    let wiki = Wiki::start()?;
    let host = app(&wiki, "1", &[])?;
    let auth = account(&host, "stream-reader", "paid")?;
    let body = fixture_ndjson(&fixtures)?;

    // Ingest needs an admin or the ingest key.
    let r = post(&host.url("/v1/admin/ingest"), &[], body.as_bytes())?;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()?["status"], 401);
    let r = post(
        &host.url("/v1/admin/ingest"),
        &[("authorization", &auth)],
        body.as_bytes(),
    )?;
    assert_eq!(r.status, 403);
    let r = ingest(&host, b"{not json")?;
    assert_eq!(r.status, 422);
    assert_eq!(r.json()?["status"], 422);

    let r = ingest(&host, body.as_bytes())?;
    assert_eq!(r.status, 200, "{}", r.text());
    let report = r.json()?;
    // 10 page changes, one of them suppressed; the other fixture files
    // are other schemas or lack an event id.
    assert_eq!(report["published"], 9, "{report}");
    assert_eq!(report["duplicates"], 0);
    let skipped: Vec<&str> = report["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["status"] == "skipped")
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert!(skipped.contains(&"suppressed content"), "{skipped:?}");

    // Ingest is idempotent per event id.
    let again = ingest(&host, body.as_bytes())?.json()?;
    assert_eq!(
        (again["published"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(9))
    );

    let events = all_ndjson(&host, &auth, "")?;
    assert_eq!(events.len(), 9);
    let mut types = by_type(&events);
    types.sort();
    assert_eq!(
        types,
        [
            // WME has three event types: creations, undeletions and
            // moves are updates.
            ("delete", "Q235989"),
            ("update", "File:Iris foetidissima fruit (05).jpg"),
            ("update", "File:Jacobaea vulgaris - Jakobs-Kreuzkraut.jpg"),
            ("update", "Property:P115"),
            ("update", "Q235989"),
            ("update", "Q235989"),
            ("update", "Q235989"),
            ("update", "Varvara Prohorova"),
            ("visibility-change", "Q235989"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );

    // One page's events stay in order in its partition.
    let q: Vec<&str> = events
        .iter()
        .filter(|e| e["name"] == "Q235989")
        .filter_map(|e| e["event"]["type"].as_str())
        .collect();
    assert_eq!(
        q,
        // create, edit, delete, undelete, visibility change, in WME's types
        ["update", "update", "delete", "update", "visibility-change"]
    );

    let find = |name: &str, kind: &str| {
        events
            .iter()
            .find(|e| e["name"] == name && e["event"]["type"] == kind)
            .cloned()
            .unwrap_or_default()
    };
    let moved = find("Varvara Prohorova", "update");
    assert_eq!(moved["identifier"], 77_777_155);
    assert_eq!(moved["version"]["identifier"], 1_245_305_770);
    assert_eq!(moved["version"]["editor"]["name"], "Svidrigayloff");
    assert_eq!(
        moved["url"],
        "https://en.wikipedia.org/wiki/Varvara_Prohorova"
    );
    assert_eq!(moved["is_part_of"]["identifier"], "enwiki");
    assert_eq!(
        moved["article_body"]["html"],
        "<p>Varvara Prohorova is a page.</p>"
    );
    assert_eq!(
        moved["event"]["identifier"],
        "407f0254-d175-4fab-a299-a513498cbe31"
    );
    assert_eq!(moved["event"]["date_created"], "2024-09-12T06:58:34Z");
    assert!(moved["event"]["date_published"].is_string());
    assert!(moved["event"]["partition"].is_u64() && moved["event"]["offset"].is_u64());

    let file = find("File:Iris foetidissima fruit (05).jpg", "update");
    assert_eq!(file["is_part_of"]["identifier"], "commonswiki");
    let url = file["image"]["content_url"].as_str().unwrap_or("");
    assert!(
        url.starts_with("https://upload.wikimedia.org/wikipedia/commons/")
            && url.ends_with("/Iris_foetidissima_fruit_(05).jpg"),
        "{url}"
    );

    let deleted = find("Q235989", "delete");
    assert!(deleted.get("article_body").is_none(), "{deleted}");
    assert_eq!(deleted["identifier"], 330_275);
    let hidden = find("Q235989", "visibility-change");
    assert_eq!(hidden["visibility"]["comment"], false);
    assert!(hidden["version"].get("comment").is_none(), "{hidden}");

    // The article store was refreshed: On-demand serves it without upstream.
    let before = wiki.hits.load(Ordering::SeqCst);
    let r = get(
        &host.url("/v2/articles/Varvara_Prohorova"),
        &[("authorization", &auth)],
    )?;
    assert_eq!(r.status, 200, "{}", r.text());
    let stored = &r.json()?[0];
    assert_eq!(stored["version"]["identifier"], 1_245_305_770);
    assert_eq!(wiki.hits.load(Ordering::SeqCst), before);
    // The stored copy carries what the event knew and the fake wiki did
    // not say (its answers have no revisions): editor details and event.
    assert_eq!(stored["version"]["editor"], moved["version"]["editor"]);
    assert_eq!(stored["version"]["editor"]["name"], "Svidrigayloff");
    assert!(stored["version"]["editor"]["groups"].is_array(), "{stored}");
    assert_eq!(stored["event"]["identifier"], moved["event"]["identifier"]);
    assert_eq!(stored["event"]["type"], "update");
    assert!(stored["event"].get("partition").is_none());
    Ok(())
}

#[test]
fn expired_events_are_compacted_away_and_the_ingest_key_works() -> Result<()> {
    let wiki = Wiki::start()?;
    let host = app(
        &wiki,
        "1",
        &[
            ("SPIN_VARIABLE_REALTIME_RETENTION_SECONDS", "1"),
            ("SPIN_VARIABLE_INGEST_KEY", "e2e-ingest-key-0123456789"),
        ],
    )?;
    let auth = account(&host, "historian", "paid")?;
    let one_page = |range: std::ops::Range<usize>| -> String {
        range
            .map(|n| format!("{}\n", synthetic_event(n, 7)))
            .collect()
    };
    let send = |body: String, key: &str| {
        post(
            &host.url("/v1/admin/ingest"),
            &[("x-ingest-key", key)],
            body.as_bytes(),
        )
    };
    assert_eq!(send(one_page(0..1), "wrong-key")?.status, 401);
    let first = send(one_page(0..3), "e2e-ingest-key-0123456789")?.json()?;
    assert_eq!(first["published"], 3, "{first}");
    let partition = first["events"][0]["partition"]
        .as_u64()
        .context("partition")?;
    std::thread::sleep(Duration::from_millis(2200));
    let second = send(one_page(3..6), "e2e-ingest-key-0123456789")?.json()?;
    assert_eq!(second["published"], 3, "{second}");

    // The three old events are gone; the log keeps its offsets.
    // (one page: every event is in `partition`)
    let events = all_ndjson(&host, &auth, "")?;
    let offsets: Vec<u64> = events
        .iter()
        .filter_map(|e| e["event"]["offset"].as_u64())
        .collect();
    assert_eq!(offsets, [3, 4, 5]);
    // A client resuming below the retained head continues at the head.
    let mut stream = open(
        &host,
        &format!("/realtime/v2/articles?parts={}", partition / 5),
        &auth,
        &[("last-event-id", &format!("{partition}:1"))],
        None,
    )?;
    let (events, _) = stream.sse(usize::MAX)?;
    let offsets: Vec<u64> = events
        .iter()
        .filter_map(|e| e.data["event"]["offset"].as_u64())
        .collect();
    assert_eq!(offsets, [3, 4, 5]);
    // Their ids were forgotten with them: a replay is published again.
    let replay = send(one_page(0..1), "e2e-ingest-key-0123456789")?.json()?;
    assert_eq!(replay["published"], 1, "{replay}");
    Ok(())
}

#[test]
fn concurrent_ingests_of_the_same_events_publish_each_once() -> Result<()> {
    concurrent_ingests(&[])
}

/// The same where the store reports every compare-and-swap as failed
/// after it ran (Spin 4.1's Redis store): event ids are claimed with an
/// atomic increment, the title index through the exact CAS helper.
#[test]
fn concurrent_ingests_publish_each_once_where_cas_is_misreported() -> Result<()> {
    concurrent_ingests(&[("WIKIEDGE_EMULATE_SPIN_REDIS_CAS", "true")])
}

fn concurrent_ingests(extra: &[(&str, &str)]) -> Result<()> {
    let wiki = Wiki::start()?;
    let host = Arc::new(app(&wiki, "1", extra)?);
    let auth = account(&host, "racer", "paid")?;
    let body: String = (0..40)
        .map(|n| format!("{}\n", synthetic_event(n, n % 5)))
        .collect();
    let senders: Vec<_> = (0..4)
        .map(|_| {
            let (host, body) = (host.clone(), body.clone());
            std::thread::spawn(move || -> Result<(u64, u64)> {
                let report = ingest(&host, body.as_bytes())?.json()?;
                Ok((
                    report["published"].as_u64().unwrap_or(0),
                    report["duplicates"].as_u64().unwrap_or(0),
                ))
            })
        })
        .collect();
    let (mut published, mut duplicates) = (0, 0);
    for sender in senders {
        let (p, d) = sender
            .join()
            .map_err(|_| anyhow::anyhow!("sender panicked"))??;
        published += p;
        duplicates += d;
    }
    assert_eq!((published, duplicates), (40, 120));
    let events = all_ndjson(&host, &auth, "")?;
    let ids: BTreeSet<&str> = events
        .iter()
        .filter_map(|e| e["event"]["identifier"].as_str())
        .collect();
    assert_eq!((events.len(), ids.len()), (40, 40));
    Ok(())
}
