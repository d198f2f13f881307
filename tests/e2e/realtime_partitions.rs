//! The Realtime API's WME contract beyond the basics in `realtime.rs`:
//! WME's 50 partitions and its `parts` mapping, its 422 rules and event
//! types, a connection lifetime with exact resumption across reconnects,
//! and hourly batches built once into stored parts under a byte budget.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::{Map, Value, json};
use wikiedge_core::realtime::log::partition_of;
use wikiedge_tests::{Host, get};

use crate::realtime::{
    Wiki, account, app, ingest, ingest_synthetic, open, synthetic_event, untar_gz, url_encode,
};

/// Streams NDJSON from `query` until the connection's lifetime ends.
fn ndjson(host: &Host, auth: &str, query: &str) -> Result<Vec<Value>> {
    let stream = open(
        host,
        &format!("/v2/articles?{query}"),
        auth,
        &[("accept", "application/x-ndjson")],
        None,
    )?;
    ensure!(stream.status == 200, "{query}: status {}", stream.status);
    stream.ndjson()
}

/// `{partition: value}` for partitions `range`, as a JSON query value.
fn per_partition(range: std::ops::Range<u64>, value: impl Fn(u64) -> Value) -> String {
    let map: Map<String, Value> = range.map(|p| (p.to_string(), value(p))).collect();
    url_encode(&Value::Object(map).to_string())
}

fn position(e: &Value) -> (u64, u64) {
    (
        e["event"]["partition"].as_u64().unwrap_or(u64::MAX),
        e["event"]["offset"].as_u64().unwrap_or(u64::MAX),
    )
}

#[test]
fn events_spread_over_fifty_partitions_and_each_part_reads_five() -> Result<()> {
    let wiki = Wiki::start()?;
    let host = app(&wiki, "1", &[])?;
    let auth = account(&host, "fifty", "paid")?;
    // 300 changes of 150 pages; creations, moves and edits alike.
    let kinds = ["edit", "create", "move", "undelete"];
    let body: String = (0..300)
        .map(|n| {
            let mut e = synthetic_event(n, n % 150);
            e["page_change_kind"] = json!(kinds[n % kinds.len()]);
            format!("{e}\n")
        })
        .collect();
    let report = ingest(&host, body.as_bytes())?.json()?;
    assert_eq!(report["published"], 300, "{report}");

    // Everything, partition by partition from offset 0.
    let all = ndjson(
        &host,
        &auth,
        &format!("offsets={}", per_partition(0..50, |_| json!(0))),
    )?;
    assert_eq!(all.len(), 300);
    let mut partitions = BTreeSet::new();
    for e in &all {
        let (p, _) = position(e);
        // The event's page id (the synthetic `Page_{n}` has id 1000 + n):
        // FNV-1a of `{wiki}:{page id}` modulo WME's 50.
        let name = e["name"].as_str().context("name")?;
        let n: u64 = name
            .trim_start_matches("Page")
            .trim_start_matches(['_', ' '])
            .parse()
            .with_context(|| name.to_string())?;
        let page = 1000 + n;
        assert_eq!(u64::from(partition_of(&format!("enwiki:{page}"))), p, "{e}");
        // WME has three event types; all of these are updates.
        assert_eq!(e["event"]["type"], "update", "{e}");
        partitions.insert(p);
    }
    assert!(partitions.iter().all(|p| *p < 50));
    assert!(partitions.len() > 30, "{partitions:?}");
    assert!(partitions.iter().any(|p| *p >= 10), "{partitions:?}");

    // Part n reads partitions 5n..5n+4, and the ten parts cover every event
    // exactly once.
    let mut covered: BTreeMap<String, u64> = BTreeMap::new();
    for part in 0..10u64 {
        let got = ndjson(
            &host,
            &auth,
            &format!(
                "parts={part}&offsets={}",
                per_partition(part * 5..part * 5 + 5, |_| json!(0))
            ),
        )?;
        for e in &got {
            let (p, _) = position(e);
            assert_eq!(p / 5, part, "partition {p} on part {part}");
            let id = e["event"]["identifier"].as_str().unwrap_or("").to_string();
            *covered.entry(id).or_default() += 1;
        }
    }
    assert_eq!(covered.len(), 300);
    assert!(covered.values().all(|n| *n == 1));

    // offsets and since_per_partition keyed above 9 resume exactly.
    let mut by_partition: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for e in &all {
        by_partition.entry(position(e).0).or_default().push(e);
    }
    let (&q, events) = by_partition
        .iter()
        .filter(|(p, _)| **p >= 10)
        .max_by_key(|(_, e)| e.len())
        .context("a partition above 9")?;
    assert!(events.len() >= 4, "{q}: {}", events.len());
    let k = events.len() as u64 / 2;
    let resumed = ndjson(
        &host,
        &auth,
        &format!(
            "parts={}&offsets={}",
            q / 5,
            url_encode(&json!({q.to_string(): k}).to_string())
        ),
    )?;
    let want: Vec<(u64, u64)> = events
        .iter()
        .map(|e| position(e))
        .filter(|(_, o)| *o >= k)
        .collect();
    assert_eq!(resumed.iter().map(position).collect::<Vec<_>>(), want);
    let at = events[k as usize]["event"]["date_published"]
        .as_str()
        .context("date_published")?;
    let since = ndjson(
        &host,
        &auth,
        &format!(
            "parts={}&since_per_partition={}",
            q / 5,
            url_encode(&json!({q.to_string(): at}).to_string())
        ),
    )?;
    let got: Vec<(u64, u64)> = since.iter().map(position).collect();
    // Publication times are milliseconds: events published in the same
    // millisecond before the k-th one come too, never a later one missing.
    assert!(got.iter().all(|(p, _)| *p == q));
    assert!(
        got.ends_with(&want) && got.len() <= events.len(),
        "{got:?} vs {want:?}"
    );
    // Last-Event-ID names partitions above 9 too.
    let mut stream = open(
        &host,
        &format!("/v2/articles?parts={}", q / 5),
        &auth,
        &[("last-event-id", &format!("{q}:{k}"))],
        None,
    )?;
    let (sse, last) = stream.sse(usize::MAX)?;
    let got: Vec<(u64, u64)> = sse.iter().map(|e| position(&e.data)).collect();
    assert_eq!(got, want);
    let last = last.context("final id")?;
    assert!(
        last.split(',').count() == 5 && last.contains(&format!("{q}:{}", events.len())),
        "{last}"
    );
    Ok(())
}

#[test]
fn wmes_422_rules_are_answered_for_each_invalid_combination() -> Result<()> {
    let wiki = Wiki::start()?;
    let host = app(&wiki, "1", &[])?;
    let auth = account(&host, "rules", "paid")?;
    let fifty_one = |value: Value| per_partition(0..51, move |_| value.clone());
    let long_field = "a".repeat(256);
    let refused = [
        // parts with since: WME wants offsets or since_per_partition.
        "parts=0&since=2024-01-01T00:00:00Z".to_string(),
        // more than ten parts; a part outside 0-9.
        "parts=[0,1,2,3,4,5,6,7,8,9,9]".to_string(),
        "parts=10".to_string(),
        // more than 50 offsets / since_per_partition entries.
        format!("offsets={}", fifty_one(json!(0))),
        format!(
            "since_per_partition={}",
            fifty_one(json!("2024-01-01T00:00:00Z"))
        ),
        // one partition in both offsets and since_per_partition.
        format!(
            "offsets={}&since_per_partition={}",
            url_encode(r#"{"12":0}"#),
            url_encode(r#"{"12":"2024-01-01T00:00:00Z"}"#)
        ),
        // start times in the future.
        "since=2999-01-01T00:00:00Z".to_string(),
        format!(
            "since_per_partition={}",
            url_encode(r#"{"3":"2999-01-01T00:00:00Z"}"#)
        ),
        // a field longer than 255 characters; an object without wildcard.
        format!("fields={long_field}"),
        "fields=event".to_string(),
        // a filter on an object.
        format!(
            "filters={}",
            url_encode(r#"[{"field":"is_part_of","value":"enwiki"}]"#)
        ),
    ];
    for query in &refused {
        let (status, body) = open(&host, &format!("/v2/articles?{query}"), &auth, &[], None)?
            .error()
            .with_context(|| query.clone())?;
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(body["status"], 422, "{query}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // The same rules on a JSON body (the SDKs' form).
    for body in [
        json!({"parts": [1], "since": "2024-01-01T00:00:00Z"}),
        json!({"offsets": {"7": 1}, "since_per_partition": {"7": "2024-01-01T00:00:00Z"}}),
    ] {
        let (status, _) =
            open(&host, "/v2/articles", &auth, &[], Some(&body.to_string()))?.error()?;
        assert_eq!(status, 422, "{body}");
    }
    // What WME accepts: the conflicting partition outside `parts` is
    // ignored; 50 offsets; ten parts; since with offsets (no parts).
    let accepted = [
        format!(
            "parts=0&offsets={}&since_per_partition={}",
            url_encode(r#"{"12":0}"#),
            url_encode(r#"{"12":"2024-01-01T00:00:00Z"}"#)
        ),
        format!("offsets={}", per_partition(0..50, |_| json!(0))),
        "parts=[0,1,2,3,4,5,6,7,8,9]".to_string(),
        format!(
            "since=2024-01-01T00:00:00Z&offsets={}",
            url_encode(r#"{"3":0}"#)
        ),
    ];
    for query in &accepted {
        ndjson(&host, &auth, query).with_context(|| query.clone())?;
    }
    Ok(())
}

/// One consumer that reconnects whenever the server ends its connection,
/// resuming with `Last-Event-ID` (SSE) or with `offsets` for all 50
/// partitions (NDJSON). Returns the events and each connection's length.
fn consume(
    host: &Host,
    auth: &str,
    sse: bool,
    want: usize,
    bound: Duration,
) -> Result<(Vec<Value>, Vec<Duration>)> {
    let started = Instant::now();
    let mut events: Vec<Value> = Vec::new();
    let mut connections = Vec::new();
    let mut last_id: Option<String> = None;
    let mut next: BTreeMap<u64, u64> = (0..50).map(|p| (p, 0)).collect();
    while events.len() < want && started.elapsed() < bound {
        let opened = Instant::now();
        if sse {
            let headers: Vec<(&str, &str)> = match &last_id {
                Some(id) => vec![("last-event-id", id.as_str())],
                None => vec![],
            };
            let path = if last_id.is_some() {
                "/v2/articles".to_string()
            } else {
                format!(
                    "/v2/articles?offsets={}",
                    per_partition(0..50, |_| json!(0))
                )
            };
            let mut stream = open(host, &path, auth, &headers, None)?;
            ensure!(stream.status == 200, "status {}", stream.status);
            let (got, id) = stream.sse(usize::MAX)?;
            events.extend(got.into_iter().map(|e| e.data));
            last_id = id.or(last_id);
        } else {
            let offsets = url_encode(&json!(next).to_string());
            let got = ndjson(host, auth, &format!("offsets={offsets}"))?;
            for e in &got {
                let (p, o) = position(e);
                next.insert(p, o + 1);
            }
            events.extend(got);
        }
        connections.push(opened.elapsed());
    }
    Ok((events, connections))
}

#[test]
fn a_connection_ends_at_its_lifetime_and_reconnects_resume_with_no_gap_or_duplicate() -> Result<()>
{
    const TOTAL: usize = 300;
    let wiki = Wiki::start()?;
    let host = Arc::new(app(&wiki, "2", &[])?);
    let auth = account(&host, "lifetime", "paid")?;
    let consumers: Vec<_> = [true, false]
        .into_iter()
        .map(|sse| {
            let host = host.clone();
            let auth = auth.clone();
            std::thread::spawn(move || consume(&host, &auth, sse, TOTAL, Duration::from_secs(180)))
        })
        .collect();
    // Events keep arriving across several connection lifetimes.
    for start in (0..TOTAL).step_by(20) {
        ingest_synthetic(&host, start..start + 20)?;
        std::thread::sleep(Duration::from_millis(350));
    }
    for (consumer, kind) in consumers.into_iter().zip(["SSE", "NDJSON"]) {
        let (events, connections) = consumer
            .join()
            .map_err(|_| anyhow::anyhow!("{kind} consumer panicked"))??;
        // Several connections, each ended by the server at its lifetime.
        assert!(connections.len() >= 2, "{kind}: {connections:?}");
        for took in &connections[..connections.len() - 1] {
            assert!(
                *took >= Duration::from_millis(1900) && *took < Duration::from_secs(30),
                "{kind}: {connections:?}"
            );
        }
        // Every event exactly once...
        let ids: Vec<&str> = events
            .iter()
            .filter_map(|e| e["event"]["identifier"].as_str())
            .collect();
        let unique: BTreeSet<&str> = ids.iter().copied().collect();
        assert_eq!(ids.len(), TOTAL, "{kind}");
        assert_eq!(unique.len(), TOTAL, "{kind}: duplicates");
        // ...and each partition's offsets consecutive from 0 (no gap).
        let mut per: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for e in &events {
            let (p, o) = position(e);
            per.entry(p).or_default().push(o);
        }
        for (p, offsets) in &per {
            assert_eq!(
                offsets,
                &(0..offsets.len() as u64).collect::<Vec<_>>(),
                "{kind}: partition {p}"
            );
        }
    }
    Ok(())
}

#[test]
fn an_hours_batch_is_built_once_into_parts_under_the_byte_budget() -> Result<()> {
    let wiki = Wiki::start()?;
    let host = app(
        &wiki,
        "1",
        &[("SPIN_VARIABLE_REALTIME_BATCH_BUDGET_BYTES", "1024")],
    )?;
    let auth = account(&host, "stored-batches", "paid")?;
    ingest_synthetic(&host, 0..120)?;
    let all = ndjson(
        &host,
        &auth,
        &format!("offsets={}", per_partition(0..50, |_| json!(0))),
    )?;
    assert_eq!(all.len(), 120);
    let published = all[0]["event"]["date_published"]
        .as_str()
        .context("date_published")?
        .to_string();
    let (date, hour) = (published[0..10].to_string(), published[11..13].to_string());
    let in_hour: BTreeSet<String> = all
        .iter()
        .filter(|e| {
            e["event"]["date_published"]
                .as_str()
                .is_some_and(|d| d.starts_with(&published[..13]))
        })
        .filter_map(|e| e["event"]["identifier"].as_str().map(str::to_string))
        .collect();

    let a = [("authorization", auth.as_str())];
    let base = format!("/v2/batches/{date}/{hour}");
    let batch = format!("{base}/enwiki_namespace_0");
    let build = |r: &wikiedge_tests::Resp| r.header("x-wikiedge-batch-build").map(str::to_string);
    let list = get(&host.url(&base), &a)?;
    assert_eq!(list.status, 200, "{}", list.text());
    let first_build = build(&list).context("build header")?;
    let meta = get(&host.url(&batch), &a)?;
    assert_eq!(meta.status, 200, "{}", meta.text());
    let meta_json = meta.json()?;
    let one = get(&host.url(&format!("{batch}/download")), &a)?;
    let two = get(&host.url(&format!("{batch}/download")), &a)?;
    // One build serves the list, the metadata and both downloads.
    for r in [&meta, &one, &two] {
        assert_eq!(build(r).as_deref(), Some(first_build.as_str()));
    }
    assert_eq!((one.status, two.status), (200, 200));
    assert_eq!(one.header("etag"), two.header("etag"));
    assert_eq!(one.body, two.body);
    assert_eq!(
        one.header("etag"),
        Some(format!("\"{}\"", meta_json["version"].as_str().unwrap_or("")).as_str())
    );

    // Above the 1 KiB budget: built and served in (at least three) parts.
    let len = one.body.len();
    assert!(len > 2 * 1024, "{len} bytes");
    assert_eq!(one.header("content-length"), Some(len.to_string().as_str()));
    let (name, content) = untar_gz(&one.body)?;
    assert_eq!(name, "enwiki_namespace_0.ndjson");
    let lines: Vec<Value> = String::from_utf8(content)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let got: BTreeSet<String> = lines
        .iter()
        .filter_map(|e| e["event"]["identifier"].as_str().map(str::to_string))
        .collect();
    assert_eq!(lines.len(), got.len());
    assert_eq!(got, in_hour);
    // Ranges across part boundaries join to the whole archive.
    let cuts = [0, 1000, 1025, len - 100, len];
    let mut joined = Vec::new();
    for w in cuts.windows(2) {
        let range = format!("bytes={}-{}", w[0], w[1] - 1);
        let r = get(
            &host.url(&format!("{batch}/download")),
            &[("authorization", auth.as_str()), ("range", &range)],
        )?;
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(r.body.len(), w[1] - w[0], "{range}");
        joined.extend_from_slice(&r.body);
    }
    assert_eq!(joined, one.body);

    // No change in the log, no rebuild; a change in the (open) hour is a
    // new build with a new version.
    let again = get(&host.url(&base), &a)?;
    assert_eq!(build(&again).as_deref(), Some(first_build.as_str()));
    ingest_synthetic(&host, 120..125)?;
    let after = get(&host.url(&batch), &a)?;
    assert_eq!(after.status, 200);
    let second_build = build(&after).context("build header")?;
    assert!(
        second_build.parse::<u64>()? > first_build.parse::<u64>()?,
        "{first_build} -> {second_build}"
    );
    let still = get(&host.url(&format!("{batch}/download")), &a)?;
    assert_eq!(build(&still).as_deref(), Some(second_build.as_str()));
    let now_hour = after.json()?["date_modified"]
        .as_str()
        .map(|d| d.starts_with(&published[..13]));
    if now_hour == Some(true) {
        assert_ne!(still.header("etag"), one.header("etag"));
        let (_, content) = untar_gz(&still.body)?;
        assert_eq!(
            String::from_utf8(content)?.lines().count(),
            in_hour.len() + 5
        );
    }
    Ok(())
}
