//! The realtime log's decisions, over what the component reads: when an
//! unwritten offset is a dead writer's ([`gap_is_stale`]), what one
//! compaction drops and where it moves the head ([`plan_compaction`]), and
//! where a `since` time starts in a partition ([`first_since`]).
//!
//! The component reads meta records through [`Metas`] (one partition's
//! `rt-meta:{p}:{offset}` keys) and does the writes a decision names; the
//! decisions themselves read nothing else, so they are tested here over a
//! map.

use super::log::{Meta, claim_key, decode_head, event_key, meta_key, seen_key};
use crate::Result;

/// How long an allocated offset may stay unwritten before readers skip it
/// (a writer that died between the increment and the write).
pub const GAP_GRACE_MS: i64 = 5_000;

/// How many entries one append may compact (more than one per append, so
/// compaction outpaces appends).
pub const COMPACT_BUDGET: u64 = 4;

/// How far a `since` search looks past an offset without a meta record.
pub const META_PROBE: u64 = 8;

/// One partition's meta records, as the component reads them.
pub trait Metas {
    /// The meta record at `offset`; `None` when there is none (never
    /// written, compacted, or unreadable).
    fn meta(&mut self, offset: u64) -> Result<Option<Meta>>;
}

/// Whether an unwritten offset is a dead writer's, given the meta record of
/// the entry after it: that entry exists and was published more than
/// [`GAP_GRACE_MS`] before `now_ms`.
pub fn gap_is_stale(next: Option<&Meta>, now_ms: i64) -> bool {
    next.is_some_and(|m| now_ms.saturating_sub(m.published_ms) > GAP_GRACE_MS)
}

/// What one compaction drops: the offsets `start..next`, and the event ids
/// of those that had a meta record (a dead writer's gap has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compaction {
    /// The head the plan was made from.
    pub start: u64,
    /// The new head.
    pub next: u64,
    /// Per dropped offset from `start`, its event id when it had one.
    pub dropped: Vec<Option<String>>,
}

impl Compaction {
    /// The compare-and-swap of the head: the new head when the stored one
    /// is still the one the plan started from, `None` (leave it) when a
    /// concurrent compactor moved it.
    pub fn advance(&self, current: Option<&[u8]>) -> Option<Vec<u8>> {
        (decode_head(current) == self.start).then(|| self.next.to_string().into_bytes())
    }

    /// The keys to delete once the head has moved: each dropped entry's
    /// event and meta record, and the idempotency keys of its event id.
    pub fn doomed_keys(&self, partition: u32) -> Vec<String> {
        let mut keys = Vec::with_capacity(self.dropped.len() * 4);
        for (offset, id) in (self.start..).zip(&self.dropped) {
            keys.push(event_key(partition, offset));
            keys.push(meta_key(partition, offset));
            if let Some(id) = id {
                keys.push(seen_key(id));
                keys.push(claim_key(id));
            }
        }
        keys
    }
}

/// Plans one bounded compaction of a partition whose head is `head` and
/// whose next offset is `tail`: from the head, at most [`COMPACT_BUDGET`]
/// entries whose retention has passed; an offset without a meta record is
/// dropped only when the entry after it has expired too. `None` when
/// nothing is to be dropped.
pub fn plan_compaction(
    head: u64,
    tail: u64,
    now_ms: i64,
    retention_seconds: u64,
    metas: &mut impl Metas,
) -> Result<Option<Compaction>> {
    let mut dropped = Vec::new();
    let mut next = head;
    while next < tail && next - head < COMPACT_BUDGET {
        match metas.meta(next)? {
            Some(m) if m.expired(now_ms, retention_seconds) => dropped.push(Some(m.event_id)),
            Some(_) => break,
            None => {
                let after = metas.meta(next + 1)?;
                if after.is_some_and(|m| m.expired(now_ms, retention_seconds)) {
                    dropped.push(None);
                } else {
                    break;
                }
            }
        }
        next += 1;
    }
    Ok((!dropped.is_empty()).then_some(Compaction {
        start: head,
        next,
        dropped,
    }))
}

/// The publication time at or just after `offset` (below `end`): the first
/// meta record within [`META_PROBE`] offsets, with its offset.
pub fn published_near(offset: u64, end: u64, metas: &mut impl Metas) -> Result<Option<(u64, i64)>> {
    for o in offset..end.min(offset.saturating_add(META_PROBE)) {
        if let Some(m) = metas.meta(o)? {
            return Ok(Some((o, m.published_ms)));
        }
    }
    Ok(None)
}

/// The first offset in `head..tail` published at or after `since_ms`: a
/// binary search over the meta records (publication times are nearly
/// monotonic per partition); `tail` when none is.
pub fn first_since(head: u64, tail: u64, since_ms: i64, metas: &mut impl Metas) -> Result<u64> {
    let (mut lo, mut hi) = (head, tail);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match published_near(mid, hi, metas)? {
            Some((o, ms)) if ms < since_ms => lo = o + 1,
            _ => hi = mid,
        }
    }
    Ok(lo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A partition in memory, counting its reads.
    #[derive(Default)]
    struct Partition {
        metas: BTreeMap<u64, Meta>,
        reads: usize,
    }

    impl Partition {
        /// Offsets `0..times.len()`, published at `times` (`None`: a gap).
        fn of(times: &[Option<i64>]) -> Partition {
            let metas = times
                .iter()
                .enumerate()
                .filter_map(|(o, t)| {
                    t.map(|published_ms| {
                        (
                            o as u64,
                            Meta {
                                published_ms,
                                event_id: format!("e{o}"),
                            },
                        )
                    })
                })
                .collect();
            Partition { metas, reads: 0 }
        }
    }

    impl Metas for Partition {
        fn meta(&mut self, offset: u64) -> Result<Option<Meta>> {
            self.reads += 1;
            Ok(self.metas.get(&offset).cloned())
        }
    }

    fn at(ms: i64) -> Meta {
        Meta {
            published_ms: ms,
            event_id: "x".into(),
        }
    }

    #[test]
    fn a_gap_is_stale_only_past_the_grace_after_the_next_entry() {
        let next = at(1_000_000);
        assert!(
            !gap_is_stale(None, i64::MAX),
            "no next entry: the writer may be alive"
        );
        assert!(!gap_is_stale(Some(&next), 1_000_000));
        assert!(!gap_is_stale(Some(&next), 1_000_000 + GAP_GRACE_MS));
        assert!(gap_is_stale(Some(&next), 1_000_000 + GAP_GRACE_MS + 1));
        // A next entry from the future (clock skew) is never stale.
        assert!(!gap_is_stale(Some(&next), 0));
    }

    const RETENTION_S: u64 = 10;
    const NOW: i64 = 1_000_000;
    const OLD: i64 = NOW - 10_001;
    const FRESH: i64 = NOW - 10_000;

    fn plan(head: u64, tail: u64, p: &mut Partition) -> Option<Compaction> {
        plan_compaction(head, tail, NOW, RETENTION_S, p).unwrap_or(None)
    }

    #[test]
    fn an_empty_partition_compacts_nothing_and_reads_nothing() {
        let mut p = Partition::default();
        assert_eq!(plan(0, 0, &mut p), None);
        assert_eq!(plan(7, 7, &mut p), None);
        assert_eq!(p.reads, 0);
    }

    #[test]
    fn nothing_old_drops_nothing() {
        let mut p = Partition::of(&[Some(FRESH), Some(NOW), Some(NOW)]);
        assert_eq!(plan(0, 3, &mut p), None);
        assert_eq!(p.reads, 1, "the first fresh entry ends the plan");
    }

    #[test]
    fn all_old_drops_one_budget_from_the_head() {
        let mut p = Partition::of(&[Some(OLD); 10]);
        let c = plan(0, 10, &mut p).expect("a plan");
        assert_eq!(c.start, 0);
        assert_eq!(c.next, COMPACT_BUDGET);
        let ids: Vec<Option<String>> = (0..COMPACT_BUDGET).map(|o| Some(format!("e{o}"))).collect();
        assert_eq!(c.dropped, ids);
        // The next append goes on from the new head.
        let c = plan(c.next, 10, &mut p).expect("a second plan");
        assert_eq!((c.start, c.next), (4, 8));
        // Short of the budget at the tail.
        let c = plan(8, 10, &mut p).expect("a last plan");
        assert_eq!((c.start, c.next), (8, 10));
        assert_eq!(plan(10, 10, &mut p), None);
    }

    #[test]
    fn compaction_stops_at_the_first_entry_still_retained() {
        let mut p = Partition::of(&[Some(OLD), Some(OLD), Some(FRESH), Some(OLD)]);
        let c = plan(0, 4, &mut p).expect("a plan");
        assert_eq!((c.start, c.next), (0, 2));
    }

    #[test]
    fn a_gap_is_dropped_only_before_an_expired_entry() {
        // 1 is a dead writer's gap before an expired entry: dropped, no id.
        let mut p = Partition::of(&[Some(OLD), None, Some(OLD), Some(FRESH)]);
        let c = plan(0, 4, &mut p).expect("a plan");
        assert_eq!(c.dropped, vec![Some("e0".into()), None, Some("e2".into())]);
        assert_eq!(c.next, 3);
        // A gap before a retained entry (or the tail) may be a live writer's.
        let mut p = Partition::of(&[Some(OLD), None, Some(FRESH)]);
        assert_eq!(plan(0, 3, &mut p).map(|c| c.next), Some(1));
        let mut p = Partition::of(&[None]);
        assert_eq!(plan(0, 1, &mut p), None);
    }

    #[test]
    fn the_head_moves_only_from_where_the_plan_started() {
        let c = Compaction {
            start: 4,
            next: 6,
            dropped: vec![Some("a".into()), None],
        };
        assert_eq!(c.advance(Some(b"4")), Some(b"6".to_vec()));
        assert_eq!(c.advance(Some(b"5")), None, "a concurrent compactor won");
        let fresh = Compaction {
            start: 0,
            ..c.clone()
        };
        assert_eq!(fresh.advance(None), Some(b"6".to_vec()), "absent head is 0");
        assert_eq!(
            c.doomed_keys(3),
            vec![
                event_key(3, 4),
                meta_key(3, 4),
                seen_key("a"),
                claim_key("a"),
                event_key(3, 5),
                meta_key(3, 5),
            ]
        );
    }

    fn since(p: &mut Partition, head: u64, tail: u64, ms: i64) -> u64 {
        first_since(head, tail, ms, p).unwrap_or(u64::MAX)
    }

    #[test]
    fn since_finds_the_first_entry_at_or_after_the_time() {
        let times: Vec<Option<i64>> = (0..100).map(|o| Some(1000 + 10 * o)).collect();
        let mut p = Partition::of(&times);
        assert_eq!(since(&mut p, 0, 100, 0), 0, "before everything: the head");
        assert_eq!(since(&mut p, 0, 100, 1000), 0, "exactly the first");
        assert_eq!(since(&mut p, 0, 100, 1001), 1);
        assert_eq!(since(&mut p, 0, 100, 1500), 50, "an exact time is included");
        assert_eq!(since(&mut p, 0, 100, 1505), 51);
        assert_eq!(since(&mut p, 0, 100, 1990), 99, "exactly the last");
        assert_eq!(
            since(&mut p, 0, 100, 1991),
            100,
            "after everything: the tail"
        );
        // The head bounds the search from below.
        assert_eq!(since(&mut p, 40, 100, 0), 40);
        assert_eq!(since(&mut p, 0, 0, 1500), 0, "an empty partition");
    }

    #[test]
    fn since_steps_over_gaps_and_stops_before_the_tail() {
        let mut times: Vec<Option<i64>> = (0..30).map(|o| Some(1000 + 10 * o)).collect();
        times[10..15].fill(None);
        let mut p = Partition::of(&times);
        // A gap reads as the entry after it (15, at 1150): the search lands
        // on the gap's first offset, and a reader steps over the rest.
        assert_eq!(since(&mut p, 0, 30, 1091), 10);
        assert_eq!(since(&mut p, 0, 30, 1150), 10);
        assert_eq!(since(&mut p, 0, 30, 1151), 16);
        // Trailing unwritten offsets (allocated, not written) are the tail.
        let mut p = Partition::of(&[Some(1000), Some(1010), None, None]);
        assert_eq!(since(&mut p, 0, 4, 1011), 2);
        assert_eq!(published_near(2, 4, &mut p).ok(), Some(None));
    }

    #[test]
    fn the_probe_looks_no_further_than_its_window_or_the_end() {
        let mut times = vec![None; 20];
        times[META_PROBE as usize] = Some(5);
        let mut p = Partition::of(&times);
        assert_eq!(published_near(0, 20, &mut p).ok(), Some(None));
        assert_eq!(
            published_near(1, 20, &mut p).ok(),
            Some(Some((META_PROBE, 5)))
        );
        assert_eq!(published_near(1, META_PROBE, &mut p).ok(), Some(None));
    }
}
