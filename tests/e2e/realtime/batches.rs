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

/// Waits, when less than `margin` is left of the current UTC hour, until
/// the next one starts: a test that needs its events and their rebuild in
/// one open hour would otherwise straddle two.
fn clear_of_the_hours_end(margin: std::time::Duration) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let left = 3600 - secs % 3600;
    if left < margin.as_secs() {
        std::thread::sleep(std::time::Duration::from_secs(left + 1));
    }
}

/// Pages of 256 KiB noise whose events make an hour's batch of about
/// 12.8 MiB as tar.gz: more than loopback's socket buffers hold, so a client
/// that stops reading keeps its download open.
const NOISY_PAGES: usize = 64;

/// The ingest line of a change to the mock wiki's page `Noise_{n}`.
fn noisy_event(n: usize) -> String {
    let mut e = synthetic_event(n, n);
    e["page"]["page_title"] = json!(format!("Noise_{n}"));
    format!("{e}\n")
}

/// The app (batches stored in 64 KiB parts, and `extra`) with the events
/// of [`NOISY_PAGES`] noise pages ingested: the host, a paid account's
/// `Authorization`, the path of their hour's `enwiki_namespace_0` batch,
/// and the batch's size and ETag (HEAD).
struct NoisyBatch {
    host: Host,
    auth: String,
    batch: String,
    length: usize,
    etag: Option<String>,
}

fn noisy_batch(wiki: &Wiki, username: &str, extra: &[(&str, &str)]) -> Result<NoisyBatch> {
    let mut vars = vec![("SPIN_VARIABLE_REALTIME_BATCH_BUDGET_BYTES", "65536")];
    vars.extend_from_slice(extra);
    let host = app(wiki, "1", &vars)?;
    let auth = account(&host, username, "paid")?;
    let body: String = (0..NOISY_PAGES).map(noisy_event).collect();
    let r = ingest(&host, body.as_bytes())?;
    assert_eq!(r.json()?["published"], NOISY_PAGES, "{}", r.text());
    let events = all_ndjson(&host, &auth, "fields=event.date_published")?;
    let published = events
        .first()
        .and_then(|e| e["event"]["date_published"].as_str())
        .context("date_published")?
        .to_string();
    let batch = format!(
        "/v2/batches/{}/{}/enwiki_namespace_0",
        &published[0..10],
        &published[11..13]
    );
    let head = wikiedge_tests::request(
        "HEAD",
        &host.url(&format!("{batch}/download")),
        &[("authorization", auth.as_str())],
        None,
    )?;
    assert_eq!(head.status, 200);
    let length: usize = head.header("content-length").context("length")?.parse()?;
    assert!(length > 12 << 20, "the batch is only {length} bytes");
    let etag = head.header("etag").map(str::to_string);
    Ok(NoisyBatch {
        host,
        auth,
        batch,
        length,
        etag,
    })
}

/// A download reads at most a few parts ahead of a client that stops
/// reading (`PARTS_AHEAD` in `functions/common/src/respond.rs`). Seen
/// from outside: a version replaced while the client stalls deletes its
/// parts, and a download that had read them all ahead would still send the
/// whole archive; one that reads two parts ahead ends short.
#[test]
fn a_download_reads_only_a_few_parts_ahead_of_a_stalled_client() -> Result<()> {
    clear_of_the_hours_end(std::time::Duration::from_secs(90));
    let wiki = Wiki::start()?;
    let b = noisy_batch(&wiki, "slow-downloader", &[])?;
    let (host, batch, length, etag) = (b.host, b.batch, b.length, b.etag);
    let a = [("authorization", b.auth.as_str())];
    let download = format!("{batch}/download");

    // The client reads the head and stops; the server fills the socket
    // buffers and the download task its queue.
    let (mut stalled, status) = wikiedge_tests::get_head_only_with(&host, &download, &a)?;
    assert!(status.contains(" 200 "), "{status}");
    std::thread::sleep(std::time::Duration::from_millis(1500));

    // A new event in the (open) hour: the next look at the batch rebuilds
    // it, and the new version's build deletes the old version's parts.
    ingest(&host, noisy_event(NOISY_PAGES).as_bytes())?;
    let meta = get(&host.url(&batch), &a)?;
    assert_eq!(meta.status, 200, "{}", meta.text());
    assert_ne!(
        meta.header("etag").map(str::to_string),
        etag,
        "the batch was not replaced"
    );
    let head = wikiedge_tests::request("HEAD", &host.url(&download), &a, None)?;
    assert_ne!(head.header("etag").map(str::to_string), etag);

    // The client reads on: it gets what was in flight and the parts read
    // ahead, then the transfer ends short.
    let received = wikiedge_tests::bytes_until_closed(&mut stalled);
    eprintln!("received {received} of {length} bytes after the stall");
    assert!(
        received < length,
        "the whole {length}-byte archive arrived: the download had read its parts ahead"
    );
    Ok(())
}

/// Batch download bodies are capped per account as snapshot downloads are
/// (`max_concurrent_downloads`, counted apart from them; 2 here): with two
/// held open by clients that do not read, the third, whole or a range, gets
/// 429 with `Retry-After` before any quota is consumed; another account is
/// unaffected; once one of the two clients leaves, a new download succeeds.
#[test]
fn a_batch_download_over_the_accounts_cap_is_refused_until_one_ends() -> Result<()> {
    let wiki = Wiki::start()?;
    let b = noisy_batch(
        &wiki,
        "batch-hoarder",
        &[("SPIN_VARIABLE_MAX_CONCURRENT_DOWNLOADS", "2")],
    )?;
    let (host, batch, length) = (b.host, b.batch, b.length);
    let a = [("authorization", b.auth.as_str())];
    let download = format!("{batch}/download");
    let mut held = Vec::new();
    for i in 0..2 {
        let (s, status) = wikiedge_tests::get_head_only_with(&host, &download, &a)?;
        assert!(status.contains(" 200 "), "download {i}: {status}");
        held.push(s);
    }
    for range in [None, Some("bytes=0-99")] {
        let mut headers = a.to_vec();
        headers.extend(range.map(|r| ("range", r)));
        crate::common::refused_for_now(&get(&host.url(&download), &headers)?)
            .with_context(|| format!("{range:?}"))?;
    }
    let other = account(&host, "batch-bystander", "paid")?;
    let r = get(&host.url(&download), &[("authorization", other.as_str())])?;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body.len(), length);

    // One client leaves; its download notices and gives the slot back.
    drop(held.remove(0));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        let (s, status) = wikiedge_tests::get_head_only_with(&host, &download, &a)?;
        if !status.contains(" 429 ") || std::time::Instant::now() > deadline {
            held.push(s);
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(status.contains(" 200 "), "{status}");
    // Two are held again: the cap is in force again.
    assert_eq!(get(&host.url(&download), &a)?.status, 429);
    Ok(())
}
