//! The realtime log in key-value storage (layout: core
//! `wikiedge_core::realtime::log`): appending, compaction, and the reads a
//! stream makes.
//!
//! Appending is: allocate an offset (atomic increment of `rt-offset:{p}`),
//! write the event, write its meta record, bump `rt-total`. A reader that
//! finds an allocated offset without its event waits for it (the writer is
//! between the increment and the write); only when the gap outlives
//! [`GAP_GRACE`] (a writer that died) is the offset skipped.
//!
//! Compaction runs on every append, for at most [`COMPACT_BUDGET`] entries
//! of the appended partition: it drops entries older than the retention
//! window from the head, then advances `rt-head:{p}` with compare-and-swap
//! (a concurrent compactor that lost the race drops nothing twice that
//! matters: deletes are idempotent). Readers below the head jump to it.

use std::time::Duration;

use wikiedge_core::Error;
use wikiedge_core::realtime::log::{
    LAYOUT, LAYOUT_KEY, LEGACY_PARTITIONS, Layout, Meta, TOTAL_KEY, claim_key, decode_head,
    event_key, head_key, meta_key, offset_key, seen_key,
};

use wikiedge_fn::kv::{self, Bucket};

/// How many entries one append may compact.
const COMPACT_BUDGET: u64 = 4;
/// How long an allocated offset may stay unwritten before readers skip it.
pub const GAP_GRACE: Duration = Duration::from_secs(5);
/// How far a `since` search looks past an offset without a meta record.
const META_PROBE: u64 = 8;

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

/// Whether an unwritten offset is a dead writer's: the next entry exists
/// and was published longer than [`GAP_GRACE`] ago.
pub fn gap_is_stale(
    bucket: &Bucket,
    partition: u32,
    offset: u64,
    now_ms: i64,
) -> Result<bool, Error> {
    let grace = GAP_GRACE.as_millis() as i64;
    Ok(meta(bucket, partition, offset + 1)?.is_some_and(|m| now_ms - m.published_ms > grace))
}

/// Drops expired entries from the head of a partition (bounded work).
pub fn compact(
    bucket: &Bucket,
    partition: u32,
    now_ms: i64,
    retention_seconds: u64,
) -> Result<(), Error> {
    let head_bytes = kv::get(bucket, &head_key(partition))?;
    let start = decode_head(head_bytes.as_deref());
    let tail = tail(bucket, partition)?;
    let mut dropped = Vec::new();
    let mut next = start;
    while next < tail && next - start < COMPACT_BUDGET {
        match meta(bucket, partition, next)? {
            Some(m) if m.expired(now_ms, retention_seconds) => dropped.push(Some(m)),
            Some(_) => break,
            None => {
                // A gap: skip it only when the entry after it is expired too.
                let after = meta(bucket, partition, next + 1)?;
                if after.is_some_and(|m| m.expired(now_ms, retention_seconds)) {
                    dropped.push(None);
                } else {
                    break;
                }
            }
        }
        next += 1;
    }
    if dropped.is_empty() {
        return Ok(());
    }
    let advanced = kv::update_bytes(bucket, &head_key(partition), |current| {
        (decode_head(current.as_deref()) == start).then(|| next.to_string().into_bytes())
    })?;
    if !advanced {
        return Ok(());
    }
    for (i, m) in dropped.iter().enumerate() {
        let offset = start + i as u64;
        kv::delete(bucket, &event_key(partition, offset))?;
        kv::delete(bucket, &meta_key(partition, offset))?;
        if let Some(m) = m {
            kv::delete(bucket, &seen_key(&m.event_id))?;
            kv::delete(bucket, &claim_key(&m.event_id))?;
        }
    }
    Ok(())
}

/// The publication time at or just after `offset`: the first meta record
/// within [`META_PROBE`] offsets, `None` when there is none.
fn published_near(
    bucket: &Bucket,
    partition: u32,
    offset: u64,
    end: u64,
) -> Result<Option<(u64, i64)>, Error> {
    for o in offset..end.min(offset + META_PROBE) {
        if let Some(m) = meta(bucket, partition, o)? {
            return Ok(Some((o, m.published_ms)));
        }
    }
    Ok(None)
}

/// The first offset of a partition published at or after `since_ms`
/// (binary search over the meta records; the tail when none is).
pub fn first_since(bucket: &Bucket, partition: u32, since_ms: i64) -> Result<u64, Error> {
    let mut lo = head(bucket, partition)?;
    let mut hi = tail(bucket, partition)?;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match published_near(bucket, partition, mid, hi)? {
            Some((o, ms)) if ms < since_ms => lo = o + 1,
            _ => hi = mid,
        }
    }
    Ok(lo)
}
