//! The realtime stream: filters, fields, parts and offsets, the 422s,
//! resumption across disconnects, throughput, and the per-account cap.

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wikiedge_tests::{fixtures_or_skip, get};

use super::*;

#[test]
fn filters_fields_parts_and_offsets_select_exactly_what_they_say() -> Result<()> {
    let Some(fixtures) = fixtures_or_skip() else {
        return Ok(());
    };
    let wiki = Wiki::start()?;
    let host = app(&wiki, "1", &[])?;
    let auth = account(&host, "selector", "paid")?;
    let report = ingest(&host, fixture_ndjson(&fixtures)?.as_bytes())?.json()?;
    let published: Vec<&Value> = report["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["status"] == "published")
        .collect();
    assert_eq!(published.len(), 9);

    // filters: on the event type and on the project.
    let filters = |f: Value| format!("filters={}", url_encode(&f.to_string()));
    let deletes = all_ndjson(
        &host,
        &auth,
        &filters(json!([{"field": "event.type", "value": "delete"}])),
    )?;
    assert_eq!(
        by_type(&deletes),
        [("delete".to_string(), "Q235989".to_string())]
    );
    let enwiki = all_ndjson(
        &host,
        &auth,
        &filters(json!([{"field": "is_part_of.identifier", "value": "enwiki"}])),
    )?;
    assert_eq!(
        by_type(&enwiki),
        [("update".to_string(), "Varvara Prohorova".to_string())]
    );

    // fields: exactly the listed paths; objects need a wildcard.
    let named = all_ndjson(
        &host,
        &auth,
        &format!(
            "fields=name,event.type&{}",
            filters(json!([{"field": "is_part_of.identifier", "value": "enwiki"}]))
        ),
    )?;
    assert_eq!(
        named,
        [json!({"name": "Varvara Prohorova", "event": {"type": "update"}})]
    );
    let versions = all_ndjson(&host, &auth, "fields=version.*")?;
    assert_eq!(versions.len(), 9);
    assert!(versions.iter().all(|v| {
        v.as_object()
            .is_some_and(|o| o.len() == 1 && o.contains_key("version"))
    }));

    // parts: only the partitions asked for; offsets: from that offset on.
    let mut partitions: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for e in &published {
        partitions
            .entry(e["partition"].as_u64().unwrap_or(99))
            .or_default()
            .push(e["offset"].as_u64().unwrap_or(0));
    }
    let (&busy, offsets) = partitions
        .iter()
        .max_by_key(|(_, o)| o.len())
        .context("a partition")?;
    assert!(offsets.len() >= 5, "{partitions:?}");
    // part `busy / 5` covers partitions 5n..5n+4; WME refuses `since`
    // with `parts`, so each partition starts from offset 0.
    let part = busy / 5;
    let from_zero: serde_json::Map<String, Value> = (part * 5..part * 5 + 5)
        .map(|p| (p.to_string(), json!(0)))
        .collect();
    let ndjson_of = |query: String| -> Result<Vec<Value>> {
        open(
            &host,
            &format!("/realtime/v2/articles?{query}"),
            &auth,
            &[("accept", "application/x-ndjson")],
            None,
        )?
        .ndjson()
    };
    let only = ndjson_of(format!(
        "parts=[{part}]&offsets={}",
        url_encode(&Value::Object(from_zero).to_string())
    ))?;
    let in_part = published
        .iter()
        .filter(|e| e["partition"].as_u64().is_some_and(|p| p / 5 == part))
        .count();
    assert_eq!(only.len(), in_part);
    assert!(only.iter().all(|e| {
        e["event"]["partition"]
            .as_u64()
            .is_some_and(|p| p / 5 == part)
    }));
    let since_with_parts = open(
        &host,
        &format!("/realtime/v2/articles?parts={part}&since=2000-01-01T00:00:00Z"),
        &auth,
        &[],
        None,
    )?
    .error()?;
    assert_eq!(since_with_parts.0, 422, "{since_with_parts:?}");
    let from_two = ndjson_of(format!(
        "parts={part}&offsets={}",
        url_encode(&json!({busy.to_string(): 2, "9999": 0}).to_string())
    ))?;
    let got: Vec<u64> = from_two
        .iter()
        .filter_map(|e| e["event"]["offset"].as_u64())
        .collect();
    assert_eq!(got, (2..offsets.len() as u64).collect::<Vec<_>>());

    // offsets without since: listed partitions from their offset, the
    // others in live mode (nothing new arrives, so nothing from them).
    let path = format!(
        "/realtime/v2/articles?offsets={}",
        url_encode(&json!({busy.to_string(): 1}).to_string())
    );
    let live = open(
        &host,
        &path,
        &auth,
        &[("accept", "application/x-ndjson")],
        None,
    )?
    .ndjson()?;
    assert_eq!(live.len(), offsets.len() - 1);
    assert!(live.iter().all(|e| e["event"]["partition"] == busy));

    // since_per_partition in a POST body, with parts.
    let body =
        json!({"parts": [part], "since_per_partition": {busy.to_string(): "2000-01-01T00:00:00Z"}});
    let posted = open(
        &host,
        "/realtime/v2/articles",
        &auth,
        &[("accept", "application/x-ndjson")],
        Some(&body.to_string()),
    )?
    .ndjson()?;
    assert_eq!(posted.len(), offsets.len());
    // A `since` in the future: 422, as in WME.
    let future = open(
        &host,
        "/realtime/v2/articles?since=2999-01-01T00:00:00Z",
        &auth,
        &[],
        None,
    )?
    .error()?;
    assert_eq!(future.0, 422, "{future:?}");
    Ok(())
}

#[test]
fn invalid_parameters_and_plans_without_realtime_are_refused() -> Result<()> {
    let wiki = Wiki::start()?;
    let host = app(&wiki, "1", &[])?;
    let auth = account(&host, "validator", "paid")?;
    let free = account(&host, "freeloader", "free")?;

    let r = open(&host, "/realtime/v2/articles", "Bearer nope", &[], None)?.error()?;
    assert_eq!(r.0, 401);
    assert_eq!(r.1["status"], 401);

    let (status, body) = open(&host, "/realtime/v2/articles", &free, &[], None)?.error()?;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"status": 403, "message": "Your plan does not include realtime"})
    );

    for query in [
        "since=yesterday",
        "parts=10",
        "parts=-1",
        "parts=abc",
        "fields=version",
        "fields=a..b",
        "offsets=%7B%22x%22%3A1%7D",
        "offsets=%7B%220%22%3A-1%7D",
        "offsets=not-json",
        "since_per_partition=%7B%220%22%3A%22soon%22%7D",
        "filters=%5B%7B%22field%22%3A%22a%22%2C%22value%22%3A%5B1%5D%7D%5D",
    ] {
        let path = format!("/realtime/v2/articles?{query}");
        let (status, body) = open(&host, &path, &auth, &[], None)?.error()?;
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(body["status"], 422, "{query}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (status, _) = open(
        &host,
        "/realtime/v2/articles",
        &auth,
        &[],
        Some(r#"{"parts": [0, 12]}"#),
    )?
    .error()?;
    assert_eq!(status, 422);
    let (status, body) = open(
        &host,
        "/realtime/v2/articles",
        &auth,
        &[("last-event-id", "garbage")],
        None,
    )?
    .error()?;
    assert_eq!((status, body["status"].as_u64()), (422, Some(422)));

    // A valid SSE connection ends cleanly after the configured duration,
    // with its position as a final id, and is metered.
    let started = Instant::now();
    let mut stream = open(&host, "/realtime/v2/articles", &auth, &[], None)?;
    assert_eq!(stream.status, 200);
    assert_eq!(
        stream.headers.get("content-type").map(String::as_str),
        Some("text/event-stream")
    );
    let (events, last_id) = stream.sse(usize::MAX)?;
    assert!(events.is_empty());
    assert!(last_id.is_some_and(|id| id.starts_with("0:0,1:0")));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(10),
        "{took:?}"
    );
    let usage = get(&host.url("/v1/usage"), &[("authorization", &auth)])?.json()?;
    let realtime: u64 = usage["usage"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|row| row["product"] == "realtime")
        .map(|row| row["admitted"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(realtime, 1, "{usage}");
    Ok(())
}

#[test]
fn a_consumer_disconnected_fifty_times_receives_every_event_once_in_order() -> Result<()> {
    const TOTAL: usize = 240;
    let wiki = Wiki::start()?;
    let host = Arc::new(app(&wiki, "1", &[])?);
    let auth = account(&host, "resumer", "paid")?;

    // A producer ingests in small batches while the consumer keeps
    // dropping its connection.
    let producer = {
        let host = host.clone();
        std::thread::spawn(move || -> Result<()> {
            for start in (0..TOTAL).step_by(10) {
                ingest_synthetic(&host, start..start + 10)?;
                std::thread::sleep(Duration::from_millis(40));
            }
            Ok(())
        })
    };

    let mut seed: u64 = 0x5eed_1234_abcd_0001;
    let mut random = move |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let mut received: Vec<SseEvent> = Vec::new();
    let mut last_id: Option<String> = None;
    let started = Instant::now();
    let mut connections = 0;
    let mut disconnects = 0;
    while disconnects < 50 || received.len() < TOTAL {
        ensure!(
            started.elapsed() < Duration::from_secs(240),
            "gave up after {connections} connections with {} events",
            received.len()
        );
        let mut headers = vec![];
        if let Some(id) = &last_id {
            headers.push(("last-event-id", id.as_str()));
        }
        let path = if last_id.is_none() {
            "/realtime/v2/articles?since=1970-01-01T00:00:00Z"
        } else {
            "/realtime/v2/articles"
        };
        let mut stream = open(&host, path, &auth, &headers, None)?;
        ensure!(stream.status == 200, "status {}", stream.status);
        connections += 1;
        // Mostly an early client-side disconnect after 0..8 events; every
        // fifth connection runs into the server's max-connection cut.
        let limit = if connections % 5 == 0 {
            usize::MAX
        } else {
            random(9) as usize
        };
        let (events, id) = stream.sse(limit)?;
        drop(stream);
        disconnects += 1;
        if let Some(e) = events.last() {
            last_id = Some(e.id.clone());
        }
        if limit == usize::MAX
            && let Some(id) = id
        {
            last_id = Some(id);
        }
        received.extend(events);
    }
    producer
        .join()
        .map_err(|_| anyhow::anyhow!("producer panicked"))??;

    // Every event exactly once...
    let ids: Vec<String> = received
        .iter()
        .filter_map(|e| e.data["event"]["identifier"].as_str().map(str::to_string))
        .collect();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), TOTAL, "{connections} connections");
    assert_eq!(unique.len(), TOTAL);
    // ...and each partition in offset order, without holes.
    let mut per_partition: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for e in &received {
        per_partition
            .entry(e.data["event"]["partition"].as_u64().unwrap_or(99))
            .or_default()
            .push(e.data["event"]["offset"].as_u64().unwrap_or(u64::MAX));
    }
    for (p, offsets) in &per_partition {
        assert_eq!(
            offsets,
            &(0..offsets.len() as u64).collect::<Vec<_>>(),
            "partition {p}"
        );
    }
    assert!(disconnects >= 50);
    Ok(())
}

/// Events/second from ingest to a connected consumer and ingest ->
/// delivered latency, with the default poll interval (50 ms). Phase 1
/// ingests 2000 events in NDJSON batches of 50 (throughput; latency counts
/// from the batch's request, so it includes the batch's own processing);
/// phase 2 ingests 100 single events one after another (latency of one
/// event). Run:
/// `cargo test --release -p wikiedge --test e2e realtime_throughput -- --ignored --nocapture`
#[test]
#[ignore]
fn realtime_throughput() -> Result<()> {
    const TOTAL: usize = 2000;
    const BATCH: usize = 50;
    const SINGLES: usize = 100;
    let wiki = Wiki::start()?;
    let host = Arc::new(app(
        &wiki,
        "300",
        &[("SPIN_VARIABLE_REALTIME_POLL_MS", "50")],
    )?);
    let auth = account(&host, "bench", "paid")?;

    let mut stream = open(
        &host,
        "/realtime/v2/articles",
        &auth,
        &[("accept", "application/x-ndjson")],
        None,
    )?;
    ensure!(stream.status == 200);
    let consumer = std::thread::spawn(move || -> Result<BTreeMap<String, Instant>> {
        let mut got = BTreeMap::new();
        let mut line = String::new();
        while got.len() < TOTAL + SINGLES {
            line.clear();
            if stream.reader.read_line(&mut line)? == 0 {
                bail!("stream ended after {} events", got.len());
            }
            let v: Value = serde_json::from_str(&line)?;
            let id = v["event"]["identifier"].as_str().unwrap_or("").to_string();
            got.insert(id, Instant::now());
        }
        Ok(got)
    });
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let mut sent = BTreeMap::new();
    for start in (0..TOTAL).step_by(BATCH) {
        let times = ingest_synthetic(&host, start..start + BATCH)?;
        for (n, t) in (start..start + BATCH).zip(times) {
            sent.insert(format!("synthetic-{n:05}"), t);
        }
    }
    let ingested = started.elapsed();
    let mut single_sent = BTreeMap::new();
    for n in TOTAL..TOTAL + SINGLES {
        let times = ingest_synthetic(&host, n..n + 1)?;
        single_sent.insert(format!("synthetic-{n:05}"), times[0]);
        std::thread::sleep(Duration::from_millis(20));
    }
    let got = consumer
        .join()
        .map_err(|_| anyhow::anyhow!("consumer panicked"))??;
    let last = sent
        .keys()
        .filter_map(|id| got.get(id))
        .max()
        .copied()
        .context("events")?;
    let elapsed = last.duration_since(started);
    let percentiles = |sent: &BTreeMap<String, Instant>| {
        let mut ms: Vec<f64> = sent
            .iter()
            .filter_map(|(id, t)| Some(got.get(id)?.duration_since(*t).as_secs_f64() * 1000.0))
            .collect();
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| ms[((ms.len() - 1) as f64 * q) as usize];
        format!(
            "p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
            at(0.5),
            at(0.95),
            at(1.0)
        )
    };
    println!(
        "realtime: {TOTAL} events in batches of {BATCH}: ingest {:.0} events/s, \
         ingest -> consumer {:.0} events/s, latency (batch request sent -> delivered) {}",
        TOTAL as f64 / ingested.as_secs_f64(),
        TOTAL as f64 / elapsed.as_secs_f64(),
        percentiles(&sent)
    );
    println!(
        "realtime: {SINGLES} single-event ingests: latency (request sent -> delivered) {}",
        percentiles(&single_sent)
    );
    Ok(())
}

#[test]
fn the_ninth_concurrent_stream_of_an_account_is_refused() -> Result<()> {
    let wiki = Wiki::start()?;
    let host = app(&wiki, "30", &[])?;
    let auth = account(&host, "greedy", "paid")?;
    let mut open = Vec::new();
    for _ in 0..8 {
        let (s, status) = open_raw_stream(&host, &auth)?;
        ensure!(status.starts_with("HTTP/1.1 200"), "{status}");
        open.push(s);
    }
    let (_ninth, status) = open_raw_stream(&host, &auth)?;
    ensure!(status.starts_with("HTTP/1.1 429"), "{status}");
    let r = get(
        &host.url("/realtime/v2/articles"),
        &[("authorization", auth.as_str())],
    )?;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()?["status"], 429);
    assert!(r.header("retry-after").is_some());
    // The cap is per account: another account still gets its stream.
    let other = account(&host, "modest", "paid")?;
    let (_s, status) = open_raw_stream(&host, &other)?;
    ensure!(status.starts_with("HTTP/1.1 200"), "{status}");
    drop(open);
    Ok(())
}

/// A client that leaves a stream with nothing to send gives its slot back
/// at once, NDJSON or SSE: the stream's task finds the connection gone by
/// writing nothing. Before, an idle NDJSON stream (it has no keep-alive)
/// held its slot until its connection's time was up (an SSE one until its
/// next keep-alive, 15 s), so eight connections dropped in a row locked the
/// account out of realtime.
#[test]
fn streams_left_with_nothing_to_send_give_their_slots_back_at_once() -> Result<()> {
    let wiki = Wiki::start()?;
    let host = app(&wiki, "30", &[])?;
    let auth = account(&host, "leaver", "paid")?;
    for accept in ["application/x-ndjson", "text/event-stream"] {
        for i in 1..=12 {
            let (stream, status) = wikiedge_tests::get_head_only_with(
                &host,
                "/realtime/v2/articles",
                &[("Authorization", auth.as_str()), ("Accept", accept)],
            )?;
            ensure!(
                status.starts_with("HTTP/1.1 200"),
                "{accept}, connection {i} after {} left: {status}",
                i - 1
            );
            drop(stream);
            // A stream looks for new events every 50 ms.
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(())
}
