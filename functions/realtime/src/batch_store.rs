//! Building and storing a range's batches (see [`crate::batches`] for the
//! routes): the log's events of the range, read under a byte budget into
//! tar.gz parts with a [`BatchIndex`] beside them, one builder per range.

use std::collections::BTreeMap;
use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::Value;
use wikiedge_core::Error;
use wikiedge_core::realtime::batch::{
    BUILDS_KEY, Batch, BatchIndex, Ref, Size, Spiller, StoredBatch, building_key, identifier,
    index_key, is_closed, part_key, reusable, tar_around,
};
use wikiedge_core::realtime::log::PARTITIONS;
use wikiedge_core::realtime::media::Md5;
use wikiedge_core::time::parse_millis;

use crate::ingest::now_ms;
use crate::{config, log};
use wikiedge_fn::kv::{self, Bucket};

/// The most events one build reads (their references take 12 bytes each).
const MAX_EVENTS: usize = 2_000_000;
/// A build claim older than this is a dead builder's and is taken over.
const STALE_BUILD_MS: i64 = 120_000;
/// How long a request waits for another request's build of its range.
const BUILD_WAIT_MS: i64 = 30_000;

/// One batch found by the scan: its events' positions in log order and
/// what its metadata needs.
struct Group {
    refs: Vec<(u32, u64)>,
    project: String,
    language: Option<String>,
    namespace: i64,
}

/// Finds the range's events, grouped by batch identifier (positions only).
fn scan(bucket: &Bucket, start: i64, end: i64) -> Result<BTreeMap<String, Group>, Error> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    let mut read = 0;
    for p in 0..PARTITIONS {
        let from = log::first_since(bucket, p, start)?;
        let to = log::first_since(bucket, p, end)?;
        for offset in from..to {
            read += 1;
            if read > MAX_EVENTS {
                eprintln!("realtime: batch of {start} truncated at {MAX_EVENTS} events");
                return Ok(groups);
            }
            let Some(bytes) = log::read(bucket, p, offset)? else {
                continue;
            };
            let Ok(doc) = serde_json::from_slice::<Value>(&bytes) else {
                continue;
            };
            let project = doc["is_part_of"]["identifier"].as_str().unwrap_or("");
            let namespace = doc["namespace"]["identifier"].as_i64().unwrap_or(0);
            if project.is_empty() {
                continue;
            }
            groups
                .entry(identifier(project, namespace))
                .or_insert_with(|| Group {
                    refs: Vec::new(),
                    project: project.to_string(),
                    language: doc["in_language"]["identifier"]
                        .as_str()
                        .map(str::to_string),
                    namespace,
                })
                .refs
                .push((p, offset));
        }
    }
    Ok(groups)
}

fn io_error(err: Error) -> std::io::Error {
    std::io::Error::other(format!("{err:?}"))
}

/// Builds one batch into the store: a first pass over its events hashes
/// and measures the NDJSON (the tar header needs its size), a second
/// streams the archive through gzip into parts of `part_size` bytes.
fn build_one(
    bucket: &Bucket,
    start: i64,
    id: &str,
    group: &Group,
    part_size: usize,
) -> Result<StoredBatch, Error> {
    let mut md5 = Md5::new();
    let mut size = 0u64;
    let mut modified = String::new();
    let mut present = Vec::with_capacity(group.refs.len());
    let log_bucket = kv::open()?;
    for &(p, o) in &group.refs {
        let Some(bytes) = log::read(&log_bucket, p, o)? else {
            continue;
        };
        md5.update(&bytes);
        md5.update(b"\n");
        size += bytes.len() as u64 + 1;
        if let Ok(doc) = serde_json::from_slice::<Value>(&bytes)
            && let Some(d) = doc["event"]["date_published"].as_str()
            && d > modified.as_str()
        {
            modified = d.to_string();
        }
        present.push((p, o));
    }
    let version = md5.finish_hex();
    let mtime = parse_millis(&modified).unwrap_or(0) / 1000;
    let (header, tail) = tar_around(&format!("{id}.ndjson"), size, mtime.max(0) as u64);
    let spiller = Spiller::new(part_size, |n, bytes| {
        kv::set(bucket, &part_key(start, id, &version, n), bytes).map_err(io_error)
    });
    let mut gz = GzEncoder::new(spiller, Compression::default());
    let gzip = |e: std::io::Error| Error::Internal(format!("building batch {id}: {e}"));
    gz.write_all(&header).map_err(gzip)?;
    let mut written = 0u64;
    for (p, o) in present {
        // Compaction may drop an event between the passes (an hour at the
        // retention edge): the build fails and the next request rebuilds.
        let bytes = log::read(&log_bucket, p, o)?
            .ok_or_else(|| Error::Internal(format!("event {p}:{o} vanished during a build")))?;
        gz.write_all(&bytes).map_err(gzip)?;
        gz.write_all(b"\n").map_err(gzip)?;
        written += bytes.len() as u64 + 1;
    }
    if written != size {
        return Err(Error::Internal(format!(
            "batch {id} changed during its build"
        )));
    }
    gz.write_all(&tail).map_err(gzip)?;
    let blob = gz
        .finish()
        .and_then(|spiller| spiller.finish())
        .map_err(gzip)?;
    let meta = Batch {
        identifier: id.to_string(),
        version,
        date_modified: modified,
        is_part_of: Ref {
            identifier: group.project.clone(),
        },
        in_language: group.language.clone().map(|identifier| Ref { identifier }),
        namespace: Ref {
            identifier: group.namespace,
        },
        size: Size::from_bytes_to_kb(blob.bytes),
    };
    Ok(StoredBatch { meta, blob })
}

fn read_index(bucket: &Bucket, start: i64, end: i64) -> Result<Option<BatchIndex>, Error> {
    Ok(kv::get(bucket, &index_key(start, end))?.and_then(|b| serde_json::from_slice(&b).ok()))
}

/// Builds a range's batches and stores them with their index (an empty
/// range stores nothing: there is nothing to read again). The parts of
/// versions the new build replaced are deleted.
fn build_index(
    bucket: &Bucket,
    start: i64,
    end: i64,
    closed: bool,
    total: i64,
    part_size: usize,
) -> Result<BatchIndex, Error> {
    let previous = read_index(bucket, start, end)?;
    let groups = scan(&kv::open()?, start, end)?;
    let mut batches = Vec::with_capacity(groups.len());
    for (id, group) in &groups {
        batches.push(build_one(bucket, start, id, group, part_size)?);
    }
    if batches.is_empty() && previous.is_none() {
        return Ok(BatchIndex {
            closed,
            total,
            build: 0,
            batches,
        });
    }
    let build = kv::increment(bucket, BUILDS_KEY, 1)?;
    let index = BatchIndex {
        closed,
        total,
        build,
        batches,
    };
    let json = serde_json::to_vec(&index).map_err(|e| Error::Internal(e.to_string()))?;
    kv::set(bucket, &index_key(start, end), &json)?;
    for old in previous.into_iter().flat_map(|p| p.batches) {
        let kept = index.batches.iter().any(|b| {
            b.meta.identifier == old.meta.identifier && b.meta.version == old.meta.version
        });
        if !kept {
            for n in 0..old.blob.parts {
                kv::delete(
                    bucket,
                    &part_key(start, &old.meta.identifier, &old.meta.version, n),
                )?;
            }
        }
    }
    Ok(index)
}

/// Takes the build claim of a range: `true` when this request builds.
fn claim_build(bucket: &Bucket, start: i64, end: i64, now: i64) -> Result<bool, Error> {
    kv::update_bytes(bucket, &building_key(start, end), |current| {
        let held_since = current
            .as_deref()
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse::<i64>().ok());
        match held_since {
            Some(since) if now - since < STALE_BUILD_MS => None,
            _ => Some(now.to_string().into_bytes()),
        }
    })
}

/// The stored batches of a range, built (once) when there is no usable
/// stored build.
pub(crate) async fn stored(bucket: &Bucket, start: i64, end: i64) -> Result<BatchIndex, Error> {
    let now = now_ms();
    let closed = is_closed(end, now);
    let total = log::total(&kv::open()?)?;
    if let Some(index) = read_index(bucket, start, end)?
        && reusable(&index, closed, total)
    {
        return Ok(index);
    }
    let claimed = claim_build(bucket, start, end, now)?;
    if !claimed {
        // Another request is building this range: wait for its index.
        while now_ms() < now + BUILD_WAIT_MS {
            spin_sdk::time::sleep(std::time::Duration::from_millis(50)).await;
            // A build that started after this request arrived answers it.
            if let Some(index) = read_index(bucket, start, end)?
                && (index.closed || (!closed && index.total >= total))
            {
                return Ok(index);
            }
            if kv::get(bucket, &building_key(start, end))?.is_none() {
                // Released without an index (an empty range, or it failed).
                break;
            }
        }
        eprintln!("realtime: waited {BUILD_WAIT_MS} ms for a batch build of {start}; building");
    }
    let part_size = config::config().await.batch_budget_bytes;
    let built = build_index(bucket, start, end, closed, total, part_size);
    if claimed && let Err(err) = kv::delete(bucket, &building_key(start, end)) {
        eprintln!("realtime: releasing the batch build claim of {start}: {err:?}");
    }
    built
}
