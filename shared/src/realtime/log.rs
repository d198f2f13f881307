//! The realtime log: a fixed number of partitions, each an append-only
//! sequence of events addressed by offset.
//!
//! Key layout (store `default`):
//! - `rt-offset:{p}`: counter, the number of offsets ever allocated in
//!   partition `p` (the next offset). Allocated with an atomic increment.
//! - `rt-total`: counter, bumped after every append; readers poll this one
//!   key to learn that something changed.
//! - `rt-head:{p}`: the lowest offset not yet compacted away (absent = 0).
//! - `rt-event:{p}:{offset:020}`: the published WME event JSON.
//! - `rt-meta:{p}:{offset:020}`: `{published_ms} {event_id}`, the small
//!   record retention and `since` read instead of the event.
//! - `rt-seen:{event_id}`: `{p}:{offset}` once published; created with
//!   compare-and-swap so an event id is published at most once.
//!
//! - `rt-layout`: the partition count the log was written with
//!   ([`LAYOUT`]); see below.
//!
//! Partition of a page: FNV-1a (64 bit) of `{project}:{page_id}` modulo
//! [`PARTITIONS`], so one page's events keep their order.
//!
//! WME's log has 50 partitions and its `parts` 0-9 each cover five of them
//! (part `p` = partitions `5p..5p+4`); `offsets` and `since_per_partition`
//! are keyed 0-49. Logs written before had 10 partitions under the same
//! key names. Because 10 divides 50, a page's old partition is its new one
//! modulo 10, and partitions 0-9 keep their counters: an old log's events
//! stay where they are, readable at the same `{p}:{offset}` addresses
//! (old cursors and offsets keep working), and new events get offsets
//! after them. Nothing is moved or lost; the one thing the switch costs is
//! per-page order across it for a consumer that is behind: a page's events
//! before the switch are in partition `q % 10`, later ones in `q`.
//! [`LAYOUT`] is recorded in `rt-layout` when the switch happens, with the
//! tails of the old partitions at that moment ([`Layout`]).

/// The number of partitions (WME: 50).
pub const PARTITIONS: u32 = 50;

/// WME's `parts` range: 0 to 9, each a tenth of the partitions.
pub const PARTS: u32 = 10;

/// The partition count a log written before WME's 50 had.
pub const LEGACY_PARTITIONS: u32 = 10;

/// The key recording the layout the log is written with.
pub const LAYOUT_KEY: &str = "rt-layout";

/// The layout value of this version.
pub const LAYOUT: u32 = PARTITIONS;

/// What `rt-layout` holds: `{partitions}` and, when an older log was
/// switched, ` {p}:{tail},...` of its partitions at the switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The partition count.
    pub partitions: u32,
    /// The tails of the old partitions when the log switched (empty for a
    /// log that started with this layout).
    pub switched_at: Vec<(u32, u64)>,
}

impl Layout {
    /// The stored form.
    pub fn encode(&self) -> String {
        let mut out = self.partitions.to_string();
        if !self.switched_at.is_empty() {
            out.push(' ');
            let tails: Vec<String> = self
                .switched_at
                .iter()
                .map(|(p, t)| format!("{p}:{t}"))
                .collect();
            out.push_str(&tails.join(","));
        }
        out
    }

    /// Reads the stored form; `None` when it is not one.
    pub fn decode(text: &str) -> Option<Layout> {
        let mut words = text.trim().splitn(2, ' ');
        let partitions = words.next()?.parse().ok()?;
        let mut switched_at = Vec::new();
        if let Some(tails) = words.next() {
            for pair in tails.split(',') {
                let (p, t) = pair.split_once(':')?;
                switched_at.push((p.parse().ok()?, t.parse().ok()?));
            }
        }
        Some(Layout {
            partitions,
            switched_at,
        })
    }
}

/// FNV-1a, 64 bit.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The partition of a page key (`{project}:{page_id}`).
pub fn partition_of(page_key: &str) -> u32 {
    (fnv1a(page_key.as_bytes()) % u64::from(PARTITIONS)) as u32
}

/// The partitions one `parts` value covers.
pub fn partitions_of_part(part: u32) -> std::ops::Range<u32> {
    let start = part * PARTITIONS / PARTS;
    let end = (part + 1) * PARTITIONS / PARTS;
    start..end
}

/// The offset counter of a partition.
pub fn offset_key(partition: u32) -> String {
    format!("rt-offset:{partition}")
}

/// The change counter readers poll.
pub const TOTAL_KEY: &str = "rt-total";

/// The compaction head of a partition.
pub fn head_key(partition: u32) -> String {
    format!("rt-head:{partition}")
}

/// The key of an event.
pub fn event_key(partition: u32, offset: u64) -> String {
    format!("rt-event:{partition}:{offset:020}")
}

/// The key of an event's meta record.
pub fn meta_key(partition: u32, offset: u64) -> String {
    format!("rt-meta:{partition}:{offset:020}")
}

/// The idempotency key of an event id: where it was published.
pub fn seen_key(event_id: &str) -> String {
    format!("rt-seen:{event_id}")
}

/// The claim counter of an event id: the ingest whose atomic increment
/// makes it 1 publishes the event (an increment needs no compare-and-swap,
/// which Spin 4.1's Redis store misreports).
pub fn claim_key(event_id: &str) -> String {
    format!("rt-claim:{event_id}")
}

/// The meta record kept beside each event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// When the event was published (Unix milliseconds).
    pub published_ms: i64,
    /// The event id.
    pub event_id: String,
}

impl Meta {
    /// The stored form: `{published_ms} {event_id}`.
    pub fn encode(&self) -> Vec<u8> {
        format!("{} {}", self.published_ms, self.event_id).into_bytes()
    }

    /// Reads the stored form; `None` when it is not one.
    pub fn decode(bytes: &[u8]) -> Option<Meta> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (ms, id) = text.split_once(' ')?;
        Some(Meta {
            published_ms: ms.parse().ok()?,
            event_id: id.to_string(),
        })
    }

    /// Whether the retention window has passed for this event.
    pub fn expired(&self, now_ms: i64, retention_seconds: u64) -> bool {
        let retention_ms =
            i64::try_from(retention_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
        now_ms.saturating_sub(self.published_ms) > retention_ms
    }
}

/// Reads a stored head value (decimal); absent or unreadable is 0.
pub fn decode_head(bytes: Option<&[u8]>) -> u64 {
    bytes
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// A stream position: for each partition of a connection, the next offset
/// to deliver. It is the SSE `id` of every event: `p:next` pairs, comma
/// separated (`0:12,1:0,...`), so `Last-Event-ID` resumes every partition
/// of the connection, not only the one of the last event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor(pub std::collections::BTreeMap<u32, u64>);

impl Cursor {
    /// The SSE id form.
    pub fn encode(&self) -> String {
        self.0
            .iter()
            .map(|(p, o)| format!("{p}:{o}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Parses the SSE id form; `None` when malformed.
    pub fn decode(text: &str) -> Option<Cursor> {
        let mut map = std::collections::BTreeMap::new();
        for pair in text.trim().split(',').filter(|p| !p.is_empty()) {
            let (p, o) = pair.split_once(':')?;
            let p: u32 = p.trim().parse().ok()?;
            if p >= PARTITIONS {
                return None;
            }
            map.insert(p, o.trim().parse().ok()?);
        }
        (!map.is_empty()).then_some(Cursor(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_reference_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn partitions_are_stable_and_spread() {
        assert_eq!(partition_of("enwiki:1"), partition_of("enwiki:1"));
        let used: std::collections::BTreeSet<u32> = (0..1000)
            .map(|i| partition_of(&format!("enwiki:{i}")))
            .collect();
        assert_eq!(used.len(), PARTITIONS as usize);
    }

    #[test]
    fn parts_map_to_five_partitions_each_as_in_wme() {
        // WME's streaming README: part 0 -> 0..4, part 1 -> 5..9, ...,
        // part 9 -> 45..49.
        assert_eq!(PARTITIONS, 50);
        for part in 0..PARTS {
            assert_eq!(partitions_of_part(part), part * 5..part * 5 + 5);
        }
        let all: Vec<u32> = (0..PARTS).flat_map(partitions_of_part).collect();
        assert_eq!(all, (0..50).collect::<Vec<u32>>());
    }

    #[test]
    fn a_pages_old_partition_is_its_new_one_modulo_ten() {
        for i in 0..500 {
            let key = format!("enwiki:{i}");
            let old = (fnv1a(key.as_bytes()) % u64::from(LEGACY_PARTITIONS)) as u32;
            assert_eq!(partition_of(&key) % LEGACY_PARTITIONS, old, "{key}");
        }
    }

    #[test]
    fn layouts_round_trip() {
        let fresh = Layout {
            partitions: 50,
            switched_at: vec![],
        };
        assert_eq!(fresh.encode(), "50");
        assert_eq!(Layout::decode("50"), Some(fresh));
        let switched = Layout {
            partitions: 50,
            switched_at: vec![(0, 12), (9, 3)],
        };
        assert_eq!(switched.encode(), "50 0:12,9:3");
        assert_eq!(Layout::decode(&switched.encode()), Some(switched));
        assert_eq!(Layout::decode("x"), None);
        assert_eq!(Layout::decode("50 0-1"), None);
    }

    #[test]
    fn keys_sort_by_offset() {
        assert_eq!(event_key(3, 42), "rt-event:3:00000000000000000042");
        assert!(event_key(1, 9) < event_key(1, 10));
    }

    #[test]
    fn meta_and_cursor_round_trip() {
        let meta = Meta {
            published_ms: 1_700_000_000_123,
            event_id: "abc-1".into(),
        };
        assert_eq!(Meta::decode(&meta.encode()), Some(meta.clone()));
        assert!(meta.expired(1_700_000_000_123 + 2001, 2));
        assert!(!meta.expired(1_700_000_000_123 + 2000, 2));
        let cursor = Cursor::decode("0:12,3:0").unwrap_or_default();
        assert_eq!(cursor.encode(), "0:12,3:0");
        assert_eq!(Cursor::decode("50:1"), None);
        assert_eq!(
            Cursor::decode("49:1").map(|c| c.encode()),
            Some("49:1".into())
        );
        assert_eq!(Cursor::decode("x"), None);
        assert_eq!(Cursor::decode(""), None);
    }
}
