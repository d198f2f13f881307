//! Building a range's batches ([`super::batch`]), as state machines the
//! component drives with what it reads from the log and writes to the
//! store:
//!
//! 1. [`Selection`]: the range's events, partition by partition and offset
//!    by offset, grouped into batches by project and namespace (positions
//!    only, at most [`MAX_EVENTS`] per build).
//! 2. [`Measure`]: a first pass over a batch's events hashes and measures
//!    its NDJSON (the version, and the size the tar header needs).
//! 3. [`Archive`]: a second pass streams the tar around the same events
//!    into a writer: the component's gzip over a [`super::batch::Spiller`],
//!    which cuts the archive into parts of at most the byte budget
//!    (`realtime_batch_budget_bytes`) and names them
//!    [`super::batch::part_key`] `0, 1, ...` in order.
//! 4. [`Measured::stored`]: the batch's metadata; [`worth_storing`] and
//!    [`replaced_parts`]: what the build stores and which older parts go.
//!
//! One builder per range: [`claim_build`] is the claim's compare-and-swap,
//! [`answers_waiter`] tells a waiting request when another's build answers
//! it. A download counts once per version: [`look_at_marker`].

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::Value;

use super::batch::{Batch, BatchIndex, Blob, Ref, Size, StoredBatch, part_key, tar_around};
use super::media::Md5;
use crate::time::parse_millis;
use crate::{Error, Result};

/// The most events one build reads (their references take 12 bytes each).
pub const MAX_EVENTS: usize = 2_000_000;
/// A build claim older than this is a dead builder's and is taken over.
pub const STALE_BUILD_MS: i64 = 120_000;
/// How long a request waits for another request's build of its range.
pub const BUILD_WAIT_MS: i64 = 30_000;

/// One batch found by the selection: its events' positions in log order
/// and what its metadata needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// `(partition, offset)` of each event, in partition and offset order.
    pub refs: Vec<(u32, u64)>,
    /// The project (`is_part_of.identifier`).
    pub project: String,
    /// The project's language, from the batch's first event.
    pub language: Option<String>,
    /// The namespace.
    pub namespace: i64,
}

/// The events of a range, grouped by batch identifier. The component asks
/// [`Selection::admit`] before reading each offset of the range (partition
/// by partition, from the range's first offset to its end) and files what
/// it read with [`Selection::add`].
#[derive(Debug)]
pub struct Selection {
    groups: BTreeMap<String, Group>,
    read: usize,
    limit: usize,
}

impl Default for Selection {
    fn default() -> Self {
        Self::with_limit(MAX_EVENTS)
    }
}

impl Selection {
    /// A selection of at most `limit` offsets.
    pub fn with_limit(limit: usize) -> Self {
        Selection {
            groups: BTreeMap::new(),
            read: 0,
            limit,
        }
    }

    /// Counts the next offset: `false` when the build has read its limit
    /// (the selection ends there, truncated).
    pub fn admit(&mut self) -> bool {
        self.read += 1;
        self.read <= self.limit
    }

    /// Files the event at `(partition, offset)` under its batch; an event
    /// that is not JSON or names no project belongs to none.
    pub fn add(&mut self, partition: u32, offset: u64, event: &[u8]) {
        let Ok(doc) = serde_json::from_slice::<Value>(event) else {
            return;
        };
        let project = doc["is_part_of"]["identifier"].as_str().unwrap_or("");
        let namespace = doc["namespace"]["identifier"].as_i64().unwrap_or(0);
        if project.is_empty() {
            return;
        }
        self.groups
            .entry(super::batch::identifier(project, namespace))
            .or_insert_with(|| Group {
                refs: Vec::new(),
                project: project.to_string(),
                language: doc["in_language"]["identifier"]
                    .as_str()
                    .map(str::to_string),
                namespace,
            })
            .refs
            .push((partition, offset));
    }

    /// The batches, by identifier (the order they are built and listed in).
    pub fn into_groups(self) -> BTreeMap<String, Group> {
        self.groups
    }
}

/// The first pass over one batch's events (those still in the log).
#[derive(Debug)]
pub struct Measure {
    md5: Md5,
    size: u64,
    modified: String,
    present: Vec<(u32, u64)>,
}

impl Measure {
    /// A measure of a batch of up to `events` events.
    pub fn new(events: usize) -> Self {
        Measure {
            md5: Md5::new(),
            size: 0,
            modified: String::new(),
            present: Vec::with_capacity(events),
        }
    }

    /// One event's line.
    pub fn add(&mut self, partition: u32, offset: u64, event: &[u8]) {
        self.md5.update(event);
        self.md5.update(b"\n");
        self.size += event.len() as u64 + 1;
        if let Ok(doc) = serde_json::from_slice::<Value>(event)
            && let Some(d) = doc["event"]["date_published"].as_str()
            && d > self.modified.as_str()
        {
            self.modified = d.to_string();
        }
        self.present.push((partition, offset));
    }

    /// What the pass found.
    pub fn finish(self) -> Measured {
        Measured {
            version: self.md5.finish_hex(),
            size: self.size,
            modified: self.modified,
            present: self.present,
        }
    }
}

/// A measured batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measured {
    /// The MD5 of the NDJSON (32 hex): the version and the ETag.
    pub version: String,
    /// The NDJSON's length.
    pub size: u64,
    /// The latest `event.date_published` (empty when none).
    pub modified: String,
    /// The events measured, in order: the second pass reads exactly these.
    pub present: Vec<(u32, u64)>,
}

impl Measured {
    /// The archive's modification time (Unix seconds; 0 when unknown).
    pub fn mtime_seconds(&self) -> u64 {
        (parse_millis(&self.modified).unwrap_or(0) / 1000).max(0) as u64
    }

    /// The key of part `n` of this batch of the range starting at `start`.
    pub fn part_key(&self, start_ms: i64, id: &str, n: u64) -> String {
        part_key(start_ms, id, &self.version, n)
    }

    /// The stored batch: its metadata and the blob its parts make.
    pub fn stored(&self, id: &str, group: &Group, blob: Blob) -> StoredBatch {
        let meta = Batch {
            identifier: id.to_string(),
            version: self.version.clone(),
            date_modified: self.modified.clone(),
            is_part_of: Ref {
                identifier: group.project.clone(),
            },
            in_language: group.language.clone().map(|identifier| Ref { identifier }),
            namespace: Ref {
                identifier: group.namespace,
            },
            size: Size::from_bytes_to_kb(blob.bytes),
        };
        StoredBatch { meta, blob }
    }
}

/// The second pass: the tar of `{id}.ndjson` around the measured events,
/// written into `out` (gzip over a spiller, in the component).
#[derive(Debug)]
pub struct Archive<W: Write> {
    out: W,
    id: String,
    size: u64,
    written: u64,
    tail: Vec<u8>,
}

impl<W: Write> Archive<W> {
    /// Writes the tar header of the measured batch `id`.
    pub fn begin(id: &str, measured: &Measured, mut out: W) -> Result<Self> {
        let (header, tail) = tar_around(
            &format!("{id}.ndjson"),
            measured.size,
            measured.mtime_seconds(),
        );
        out.write_all(&header).map_err(|e| build_error(id, e))?;
        Ok(Archive {
            out,
            id: id.to_string(),
            size: measured.size,
            written: 0,
            tail,
        })
    }

    /// One event's line, in the measured order.
    pub fn event(&mut self, event: &[u8]) -> Result<()> {
        let id = &self.id;
        self.out
            .write_all(event)
            .and_then(|()| self.out.write_all(b"\n"))
            .map_err(|e| build_error(id, e))?;
        self.written += event.len() as u64 + 1;
        Ok(())
    }

    /// The padding and trailer; the writer back. Fails when the lines
    /// written are not the size measured (the batch changed between the
    /// passes: the next request rebuilds it).
    pub fn end(mut self) -> Result<W> {
        if self.written != self.size {
            return Err(Error::Internal(format!(
                "batch {} changed during its build",
                self.id
            )));
        }
        self.out
            .write_all(&self.tail)
            .map_err(|e| build_error(&self.id, e))?;
        Ok(self.out)
    }
}

/// An error of writing batch `id`'s archive.
pub fn build_error(id: &str, err: std::io::Error) -> Error {
    Error::Internal(format!("building batch {id}: {err}"))
}

/// Whether a build is stored: not when the range is empty and nothing was
/// stored for it before (there is nothing to read again); a range that
/// emptied (compaction) is stored so its old parts go.
pub fn worth_storing(batches: &[StoredBatch], previous: Option<&BatchIndex>) -> bool {
    !(batches.is_empty() && previous.is_none())
}

/// The part keys of the previous build's versions that `index` no longer
/// holds, in the previous build's order.
pub fn replaced_parts(
    start_ms: i64,
    previous: Option<&BatchIndex>,
    index: &BatchIndex,
) -> Vec<String> {
    let mut keys = Vec::new();
    for old in previous.into_iter().flat_map(|p| &p.batches) {
        let kept = index.batches.iter().any(|b| {
            b.meta.identifier == old.meta.identifier && b.meta.version == old.meta.version
        });
        if !kept {
            for n in 0..old.blob.parts {
                keys.push(part_key(
                    start_ms,
                    &old.meta.identifier,
                    &old.meta.version,
                    n,
                ));
            }
        }
    }
    keys
}

/// The build claim's compare-and-swap: the claim (`now`) when the range is
/// unclaimed or its claim is older than [`STALE_BUILD_MS`]; `None` while
/// another builder holds it.
pub fn claim_build(current: Option<&[u8]>, now_ms: i64) -> Option<Vec<u8>> {
    let held_since = current
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse::<i64>().ok());
    match held_since {
        Some(since) if now_ms - since < STALE_BUILD_MS => None,
        _ => Some(now_ms.to_string().into_bytes()),
    }
}

/// Whether another request's stored build answers a request that waited
/// for it: a final one always; an open one when this request's range is
/// still open and the build saw at least the log this request saw.
pub fn answers_waiter(index: &BatchIndex, closed_now: bool, total: i64) -> bool {
    index.closed || (!closed_now && index.total >= total)
}

/// What one look at a download marker decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// Counted already: no unit to consume.
    Counted,
    /// Claimed by this request ([`pending_marker`] is to be written): it
    /// consumes the unit, then [`settled_marker`].
    Mine,
    /// Another request is deciding: look again.
    Wait,
}

/// A pending marker older than this is claimed over (its holder died).
pub const STALE_PENDING_MS: i64 = 10_000;
/// How long a download waits for another range's quota decision.
pub const MARKER_WAIT_MS: i64 = 3_000;
const PENDING: &str = "pending:";
const COUNTED: &[u8] = b"counted";

/// Reads a download marker at `now_ms`.
pub fn look_at_marker(current: Option<&[u8]>, now_ms: i64) -> Marker {
    let pending_since = current
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.strip_prefix(PENDING))
        .and_then(|ms| ms.parse::<i64>().ok());
    match (current, pending_since) {
        (Some(v), _) if v == COUNTED => Marker::Counted,
        (Some(_), Some(since)) if now_ms - since < STALE_PENDING_MS => Marker::Wait,
        _ => Marker::Mine,
    }
}

/// The marker a request that claimed the count writes.
pub fn pending_marker(now_ms: i64) -> Vec<u8> {
    format!("{PENDING}{now_ms}").into_bytes()
}

/// The marker once the quota decided: counted (admitted) or released.
pub fn settled_marker(admitted: bool) -> Vec<u8> {
    if admitted {
        COUNTED.to_vec()
    } else {
        b"denied".to_vec()
    }
}

#[cfg(test)]
mod tests;
