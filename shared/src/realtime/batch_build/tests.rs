//! The batch build, driven as the component drives it over a log in
//! memory (no gzip: the parts are the tar's own bytes).

use super::*;
use crate::realtime::batch::{Spiller, tar_one, version};

/// An event of `project`/`namespace` published at `date`, its JSON
/// padded to about `len` bytes.
fn event(project: &str, namespace: i64, date: &str, len: usize) -> Vec<u8> {
    let doc = serde_json::json!({
        "is_part_of": {"identifier": project},
        "in_language": {"identifier": "en"},
        "namespace": {"identifier": namespace},
        "event": {"date_published": date},
        "pad": "",
    });
    let mut bytes = serde_json::to_vec(&doc).unwrap_or_default();
    let pad = len.saturating_sub(bytes.len());
    let text = String::from_utf8_lossy(&bytes)
        .replace(r#""pad":"""#, &format!(r#""pad":"{}""#, "x".repeat(pad)));
    bytes = text.into_bytes();
    bytes
}

/// A log in memory: `log[p]` is partition `p`'s events.
type Log = Vec<Vec<Vec<u8>>>;

/// A batch's stored parts: `(key, bytes)` in the order they were spilled.
type Parts = Vec<(String, Vec<u8>)>;

/// Drives a whole build as the component does (selection, measure,
/// archive through a spiller; no gzip, so the parts are the tar's
/// bytes): the stored batches and each batch's parts by key.
fn build(log: &Log, part_size: usize) -> Result<Vec<(StoredBatch, Parts)>> {
    let mut selection = Selection::default();
    for (p, events) in log.iter().enumerate() {
        for (o, bytes) in events.iter().enumerate() {
            assert!(selection.admit());
            selection.add(p as u32, o as u64, bytes);
        }
    }
    let mut out = Vec::new();
    for (id, group) in selection.into_groups() {
        let mut measure = Measure::new(group.refs.len());
        for &(p, o) in &group.refs {
            measure.add(p, o, &log[p as usize][o as usize]);
        }
        let measured = measure.finish();
        let mut parts = Vec::new();
        let spiller = Spiller::new(part_size, |n, bytes| {
            parts.push((measured.part_key(7, &id, n), bytes.to_vec()));
            Ok(())
        });
        let mut archive = Archive::begin(&id, &measured, spiller)?;
        for &(p, o) in &measured.present {
            archive.event(&log[p as usize][o as usize])?;
        }
        let blob = archive.end()?.finish().map_err(|e| build_error(&id, e))?;
        out.push((measured.stored(&id, &group, blob), parts));
    }
    Ok(out)
}

fn ndjson(events: &[&Vec<u8>]) -> Vec<u8> {
    events
        .iter()
        .flat_map(|e| e.iter().chain(b"\n"))
        .copied()
        .collect()
}

#[test]
fn events_are_grouped_by_project_and_namespace_in_log_order() {
    let mut s = Selection::default();
    s.add(0, 5, &event("enwiki", 0, "2024-10-04T15:00:01Z", 0));
    s.add(0, 6, &event("dewiki", 0, "2024-10-04T15:00:02Z", 0));
    s.add(3, 1, &event("enwiki", 0, "2024-10-04T15:00:00Z", 0));
    s.add(3, 2, &event("enwiki", 1, "2024-10-04T15:00:00Z", 0));
    s.add(4, 0, b"not json");
    s.add(4, 1, &event("", 0, "2024-10-04T15:00:00Z", 0));
    let groups = s.into_groups();
    let ids: Vec<&str> = groups.keys().map(String::as_str).collect();
    assert_eq!(
        ids,
        [
            "dewiki_namespace_0",
            "enwiki_namespace_0",
            "enwiki_namespace_1"
        ]
    );
    let en = &groups["enwiki_namespace_0"];
    assert_eq!(en.refs, vec![(0, 5), (3, 1)]);
    assert_eq!(en.project, "enwiki");
    assert_eq!(en.language.as_deref(), Some("en"));
    assert_eq!(groups["enwiki_namespace_1"].namespace, 1);
}

#[test]
fn a_selection_stops_at_its_limit() {
    let mut s = Selection::with_limit(2);
    assert!(s.admit());
    assert!(s.admit());
    assert!(!s.admit(), "the third offset is past the limit");
    assert!(Selection::default().admit());
}

#[test]
fn an_empty_hour_stores_nothing_unless_it_replaces_a_build() {
    let built = build(&vec![Vec::new(); 50], 1024).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(built.is_empty());
    assert!(!worth_storing(&[], None));
    // An hour that had a build and lost its events (compaction) is
    // stored empty, and its old parts go.
    let old = build(
        &vec![vec![event("enwiki", 0, "2024-10-04T15:00:00Z", 3000)]],
        1024,
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    let previous = BatchIndex {
        closed: false,
        total: 1,
        build: 1,
        batches: old.iter().map(|(b, _)| b.clone()).collect(),
    };
    assert!(worth_storing(&[], Some(&previous)));
    let empty = BatchIndex {
        batches: vec![],
        ..previous.clone()
    };
    let doomed = replaced_parts(7, Some(&previous), &empty);
    let old_keys: Vec<String> = old[0].1.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(doomed, old_keys);
    // A rebuild with the same version keeps its parts.
    assert!(replaced_parts(7, Some(&previous), &previous).is_empty());
    assert!(replaced_parts(7, None, &previous).is_empty());
}

#[test]
fn an_archive_exactly_the_budget_is_one_part_and_one_byte_more_is_two() {
    // 512 bytes of NDJSON: the tar is header 512 + 512 + trailer 1024.
    let line = event("enwiki", 0, "2024-10-04T15:00:00Z", 511);
    assert_eq!(line.len(), 511);
    let log = vec![vec![line.clone()]];
    let expected = tar_one(
        "enwiki_namespace_0.ndjson",
        &ndjson(&[&line]),
        1_728_054_000,
    );
    assert_eq!(expected.len(), 2048);
    for (budget, parts) in [(2048, 1), (2047, 2), (1024, 2), (1023, 3)] {
        let built = build(&log, budget).unwrap_or_else(|e| panic!("{e:?}"));
        let (batch, stored) = &built[0];
        assert_eq!(batch.blob.parts, parts, "budget {budget}");
        assert_eq!(batch.blob.bytes, 2048);
        assert_eq!(stored.len() as u64, parts);
        assert!(stored.iter().all(|(_, p)| p.len() <= budget));
        let whole: Vec<u8> = stored.iter().flat_map(|(_, p)| p.clone()).collect();
        assert_eq!(whole, expected, "budget {budget}");
    }
}

#[test]
fn one_event_bigger_than_the_budget_spans_parts_named_in_order() {
    let big = event("enwiki", 0, "2024-10-04T15:00:00Z", 5000);
    let small = event("enwiki", 0, "2024-10-04T15:30:00Z", 100);
    let log = vec![vec![big.clone()], vec![small.clone()]];
    let built = build(&log, 1000).unwrap_or_else(|e| panic!("{e:?}"));
    let (batch, stored) = &built[0];
    let content = ndjson(&[&big, &small]);
    let expected = tar_one("enwiki_namespace_0.ndjson", &content, 1_728_055_800);
    assert_eq!(batch.blob.bytes, expected.len() as u64);
    assert_eq!(batch.blob.parts, expected.len().div_ceil(1000) as u64);
    assert!(stored.iter().all(|(_, p)| p.len() <= 1000 && !p.is_empty()));
    let keys: Vec<String> = (0..batch.blob.parts)
        .map(|n| part_key(7, "enwiki_namespace_0", &batch.meta.version, n))
        .collect();
    assert_eq!(
        stored.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        keys
    );
    let whole: Vec<u8> = stored.iter().flat_map(|(_, p)| p.clone()).collect();
    assert_eq!(whole, expected);
    // The metadata: version of the NDJSON, the last publication.
    assert_eq!(batch.meta.version, version(&content));
    assert_eq!(batch.meta.date_modified, "2024-10-04T15:30:00Z");
    assert_eq!(batch.meta.identifier, "enwiki_namespace_0");
    assert_eq!(batch.meta.size, Size::from_bytes_to_kb(batch.blob.bytes));
}

#[test]
fn a_batch_that_changed_between_the_passes_fails_its_build() {
    let line = event("enwiki", 0, "2024-10-04T15:00:00Z", 100);
    let mut measure = Measure::new(1);
    measure.add(0, 0, &line);
    let measured = measure.finish();
    let mut archive =
        Archive::begin("x", &measured, Vec::new()).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(archive.event(&line).is_ok());
    assert!(archive.end().is_ok());
    let mut archive =
        Archive::begin("x", &measured, Vec::new()).unwrap_or_else(|e| panic!("{e:?}"));
    let _ = archive.event(&line[1..]);
    assert!(matches!(archive.end(), Err(Error::Internal(m)) if m.contains("changed")));
    // A measure of nothing is an empty file.
    let nothing = Measure::new(0).finish();
    assert_eq!((nothing.size, nothing.mtime_seconds()), (0, 0));
    assert_eq!(nothing.version, version(b""));
}

#[test]
fn one_builder_holds_a_range_until_its_claim_is_stale() {
    let now = 1_000_000;
    assert_eq!(claim_build(None, now), Some(b"1000000".to_vec()));
    assert_eq!(claim_build(Some(b"999999"), now), None);
    let stale = (now - STALE_BUILD_MS).to_string();
    assert_eq!(
        claim_build(Some(stale.as_bytes()), now),
        Some(b"1000000".to_vec())
    );
    let fresh = (now - STALE_BUILD_MS + 1).to_string();
    assert_eq!(claim_build(Some(fresh.as_bytes()), now), None);
    assert!(claim_build(Some(b"garbage"), now).is_some());
    let index = |closed, total| BatchIndex {
        closed,
        total,
        build: 1,
        batches: vec![],
    };
    assert!(answers_waiter(&index(true, 1), true, 9));
    assert!(answers_waiter(&index(false, 5), false, 5));
    assert!(answers_waiter(&index(false, 6), false, 5));
    assert!(!answers_waiter(&index(false, 4), false, 5));
    assert!(
        !answers_waiter(&index(false, 9), true, 5),
        "closed since: rebuild"
    );
}

#[test]
fn a_download_marker_counts_once() {
    let now = 50_000;
    assert_eq!(look_at_marker(None, now), Marker::Mine);
    assert_eq!(
        look_at_marker(Some(&settled_marker(true)), now),
        Marker::Counted
    );
    assert_eq!(
        look_at_marker(Some(&settled_marker(false)), now),
        Marker::Mine
    );
    let pending = pending_marker(now - STALE_PENDING_MS + 1);
    assert_eq!(look_at_marker(Some(&pending), now), Marker::Wait);
    let stale = pending_marker(now - STALE_PENDING_MS);
    assert_eq!(look_at_marker(Some(&stale), now), Marker::Mine);
}
