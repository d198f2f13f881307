//! Building and storing a range's batches (see [`crate::batches`] for the
//! routes): the I/O of the core's `realtime::batch_build` — the range's
//! events read from the log into its selection and two passes, the archive
//! gzipped into parts written to the store, the index beside them, one
//! builder per range (a claim key).

use std::collections::BTreeMap;

use flate2::Compression;
use flate2::write::GzEncoder;
use wikiedge_core::Error;
use wikiedge_core::realtime::batch::{
    BUILDS_KEY, BatchIndex, Spiller, StoredBatch, building_key, index_key, is_closed, reusable,
};
use wikiedge_core::realtime::batch_build::{
    Archive, BUILD_WAIT_MS, Group, MAX_EVENTS, Measure, Selection, answers_waiter, build_error,
    claim_build, replaced_parts, worth_storing,
};
use wikiedge_core::realtime::log::PARTITIONS;

use crate::{config, log};
use wikiedge_fn::kv::{self, Bucket};
use wikiedge_fn::now_ms;

/// Reads the range's events into a selection (positions only).
fn scan(bucket: &Bucket, start: i64, end: i64) -> Result<BTreeMap<String, Group>, Error> {
    let mut selection = Selection::default();
    for p in 0..PARTITIONS {
        let from = log::first_since(bucket, p, start)?;
        let to = log::first_since(bucket, p, end)?;
        for offset in from..to {
            if !selection.admit() {
                eprintln!("realtime: batch of {start} truncated at {MAX_EVENTS} events");
                return Ok(selection.into_groups());
            }
            if let Some(bytes) = log::read(bucket, p, offset)? {
                selection.add(p, offset, &bytes);
            }
        }
    }
    Ok(selection.into_groups())
}

fn io_error(err: Error) -> std::io::Error {
    std::io::Error::other(format!("{err:?}"))
}

/// Builds one batch into the store: the first pass measures the events
/// still in the log, the second streams the archive through gzip into
/// parts of `part_size` bytes.
fn build_one(
    bucket: &Bucket,
    start: i64,
    id: &str,
    group: &Group,
    part_size: usize,
) -> Result<StoredBatch, Error> {
    let mut measure = Measure::new(group.refs.len());
    let log_bucket = kv::open()?;
    for &(p, o) in &group.refs {
        if let Some(bytes) = log::read(&log_bucket, p, o)? {
            measure.add(p, o, &bytes);
        }
    }
    let measured = measure.finish();
    let spiller = Spiller::new(part_size, |n, bytes| {
        kv::set(bucket, &measured.part_key(start, id, n), bytes).map_err(io_error)
    });
    let mut archive = Archive::begin(
        id,
        &measured,
        GzEncoder::new(spiller, Compression::default()),
    )?;
    for &(p, o) in &measured.present {
        // Compaction may drop an event between the passes (an hour at the
        // retention edge): the build fails and the next request rebuilds.
        let bytes = log::read(&log_bucket, p, o)?
            .ok_or_else(|| Error::Internal(format!("event {p}:{o} vanished during a build")))?;
        archive.event(&bytes)?;
    }
    let blob = archive
        .end()?
        .finish()
        .and_then(|spiller| spiller.finish())
        .map_err(|e| build_error(id, e))?;
    Ok(measured.stored(id, group, blob))
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
    let groups = scan(&*kv::open()?, start, end)?;
    let mut batches = Vec::with_capacity(groups.len());
    for (id, group) in &groups {
        batches.push(build_one(bucket, start, id, group, part_size)?);
    }
    if !worth_storing(&batches, previous.as_ref()) {
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
    for key in replaced_parts(start, previous.as_ref(), &index) {
        kv::delete(bucket, &key)?;
    }
    Ok(index)
}

/// Takes the build claim of a range: `true` when this request builds.
fn take_claim(bucket: &Bucket, start: i64, end: i64, now: i64) -> Result<bool, Error> {
    kv::update_bytes(bucket, &building_key(start, end), |current| {
        claim_build(current.as_deref(), now)
    })
}

/// The stored batches of a range, built (once) when there is no usable
/// stored build.
pub(crate) async fn stored(bucket: &Bucket, start: i64, end: i64) -> Result<BatchIndex, Error> {
    let now = now_ms();
    let closed = is_closed(end, now);
    let total = log::total(&*kv::open()?)?;
    if let Some(index) = read_index(bucket, start, end)?
        && reusable(&index, closed, total)
    {
        return Ok(index);
    }
    let claimed = take_claim(bucket, start, end, now)?;
    if !claimed {
        // Another request is building this range: wait for its index.
        while now_ms() < now + BUILD_WAIT_MS {
            spin_sdk::time::sleep(std::time::Duration::from_millis(50)).await;
            // A build that started after this request arrived answers it.
            if let Some(index) = read_index(bucket, start, end)?
                && answers_waiter(&index, closed, total)
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
