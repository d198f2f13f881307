//! The realtime log in key-value storage (layout: core
//! `wikiedge_core::realtime::log`): appending, compaction, and the reads a
//! stream makes.
//!
//! Appending is: allocate an offset (atomic increment of `rt-offset:{p}`),
//! write the event, write its meta record, bump `rt-total`. A reader that
//! finds an allocated offset without its event waits for it (the writer is
//! between the increment and the write); only when the gap outlives the
//! core's `GAP_GRACE_MS` (a writer that died) is the offset skipped.
//!
//! Compaction runs on every append, for at most the core's
//! `COMPACT_BUDGET` entries of the appended partition: it drops entries
//! older than the retention window from the head, then advances
//! `rt-head:{p}` with compare-and-swap (a concurrent compactor that lost
//! the race drops nothing twice that matters: deletes are idempotent).
//! Readers below the head jump to it.
//!
//! Every decision here (gap staleness, the compaction plan, the `since`
//! search) is the core's `realtime::log_policy`; this module reads and
//! writes the keys it names.

use wikiedge_core::Error;
use wikiedge_core::realtime::log::{
    LAYOUT, LAYOUT_KEY, LEGACY_PARTITIONS, Layout, Meta, TOTAL_KEY, decode_head, event_key,
    head_key, meta_key, offset_key,
};
use wikiedge_core::realtime::log_policy::{self as policy, Metas, plan_compaction};

use wikiedge_fn::kv::{self, Bucket};

/// Whether this instance has seen `rt-layout` written.
static LAYOUT_RECORDED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records the layout before the first append of this version (core
/// `realtime::log`: an older 10-partition log stays readable in place; the
/// record keeps its partitions' tails at the switch). Idempotent: written
/// only when absent; a layout other than this one is reported, not
/// overwritten.
pub fn ensure_layout(bucket: &Bucket) -> Result<(), Error> {
    use std::sync::atomic::Ordering;
    if LAYOUT_RECORDED.load(Ordering::Relaxed) {
        return Ok(());
    }
    if let Some(current) = kv::get(bucket, LAYOUT_KEY)? {
        let text = String::from_utf8_lossy(&current);
        match Layout::decode(&text) {
            Some(layout) if layout.partitions == LAYOUT => {}
            _ => eprintln!("realtime: rt-layout is '{text}', this version writes {LAYOUT}"),
        }
        LAYOUT_RECORDED.store(true, Ordering::Relaxed);
        return Ok(());
    }
    let mut switched_at = Vec::new();
    for p in 0..LEGACY_PARTITIONS {
        let tail = tail(bucket, p)?;
        if tail > 0 {
            switched_at.push((p, tail));
        }
    }
    let layout = Layout {
        partitions: LAYOUT,
        switched_at,
    };
    if kv::update_bytes(bucket, LAYOUT_KEY, |current| {
        current.is_none().then(|| layout.encode().into_bytes())
    })? && !layout.switched_at.is_empty()
    {
        eprintln!(
            "realtime: a {LEGACY_PARTITIONS}-partition log switched to {LAYOUT} partitions \
             (old tails {})",
            layout.encode()
        );
    }
    LAYOUT_RECORDED.store(true, Ordering::Relaxed);
    Ok(())
}

/// The next offset of a partition (the number allocated so far).
pub fn tail(bucket: &Bucket, partition: u32) -> Result<u64, Error> {
    Ok(kv::increment(bucket, &offset_key(partition), 0)?.max(0) as u64)
}

/// The lowest offset not compacted away.
pub fn head(bucket: &Bucket, partition: u32) -> Result<u64, Error> {
    Ok(decode_head(
        kv::get(bucket, &head_key(partition))?.as_deref(),
    ))
}

/// The change counter: it moves whenever any partition grew.
pub fn total(bucket: &Bucket) -> Result<i64, Error> {
    kv::increment(bucket, TOTAL_KEY, 0)
}

/// Allocates the next offset of a partition.
pub fn allocate(bucket: &Bucket, partition: u32) -> Result<u64, Error> {
    ensure_layout(bucket)?;
    let next = kv::increment(bucket, &offset_key(partition), 1)?;
    u64::try_from(next - 1).map_err(|_| Error::Internal(format!("offset counter {next}")))
}

/// Writes an allocated entry and tells readers.
pub fn write(
    bucket: &Bucket,
    partition: u32,
    offset: u64,
    json: &[u8],
    meta: &Meta,
) -> Result<(), Error> {
    kv::set(bucket, &event_key(partition, offset), json)?;
    kv::set(bucket, &meta_key(partition, offset), &meta.encode())?;
    kv::increment(bucket, TOTAL_KEY, 1)?;
    Ok(())
}

/// Reads one entry.
pub fn read(bucket: &Bucket, partition: u32, offset: u64) -> Result<Option<Vec<u8>>, Error> {
    kv::get(bucket, &event_key(partition, offset))
}

/// Reads one meta record.
pub fn meta(bucket: &Bucket, partition: u32, offset: u64) -> Result<Option<Meta>, Error> {
    Ok(kv::get(bucket, &meta_key(partition, offset))?.and_then(|b| Meta::decode(&b)))
}

/// One partition's meta records, for the core's decisions.
struct Partition<'a> {
    bucket: &'a Bucket,
    partition: u32,
}

impl Metas for Partition<'_> {
    fn meta(&mut self, offset: u64) -> Result<Option<Meta>, Error> {
        meta(self.bucket, self.partition, offset)
    }
}

/// Whether an unwritten offset is a dead writer's (core
/// `log_policy::gap_is_stale`, over the meta record of the entry after it).
pub fn gap_is_stale(
    bucket: &Bucket,
    partition: u32,
    offset: u64,
    now_ms: i64,
) -> Result<bool, Error> {
    Ok(policy::gap_is_stale(
        meta(bucket, partition, offset + 1)?.as_ref(),
        now_ms,
    ))
}

/// Drops expired entries from the head of a partition (bounded work: core
/// `log_policy::plan_compaction`).
pub fn compact(
    bucket: &Bucket,
    partition: u32,
    now_ms: i64,
    retention_seconds: u64,
) -> Result<(), Error> {
    let start = head(bucket, partition)?;
    let tail = tail(bucket, partition)?;
    let mut metas = Partition { bucket, partition };
    let Some(plan) = plan_compaction(start, tail, now_ms, retention_seconds, &mut metas)? else {
        return Ok(());
    };
    let advanced = kv::update_bytes(bucket, &head_key(partition), |current| {
        plan.advance(current.as_deref())
    })?;
    if !advanced {
        return Ok(());
    }
    for key in plan.doomed_keys(partition) {
        kv::delete(bucket, &key)?;
    }
    Ok(())
}

/// The first offset of a partition published at or after `since_ms` (core
/// `log_policy::first_since` between the head and the tail).
pub fn first_since(bucket: &Bucket, partition: u32, since_ms: i64) -> Result<u64, Error> {
    let head = head(bucket, partition)?;
    let tail = tail(bucket, partition)?;
    policy::first_since(head, tail, since_ms, &mut Partition { bucket, partition })
}
