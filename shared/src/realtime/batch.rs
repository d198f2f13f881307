//! Hourly batches: the log's events of one UTC hour, per project and
//! namespace, as a tar.gz of NDJSON (`/v2/batches/{YYYY-MM-DD}/{HH}`).
//!
//! An event belongs to the hour of its `date_published` (the time it
//! entered the log), so an hour's batch never changes once the hour is
//! over. The archive holds one file, `{identifier}.ndjson`, one event per
//! line in partition and offset order.
//!
//! Stored batches (like snapshot parts): a range's batches are built into
//! the `bulk` store ([`crate::stores`]) as parts of at most the byte budget each
//! ([`part_key`]), described by a [`BatchIndex`] under [`index_key`]. A
//! range is *closed* [`CLOSE_GRACE_MS`] after its end (every append that
//! allocated an offset in it has written by then); the build made after
//! that is final and every later list, metadata or download request reads
//! it, as WME publishes each hour's batch once after the hour. An open
//! range (the current hour, today) is rebuilt only when the log has changed
//! since its stored build ([`reusable`]).

use serde::{Deserialize, Serialize};

use crate::quota::period::Date;
use crate::{Error, Result};

/// An hour's batch identifier: `{project}_namespace_{ns}`.
pub fn identifier(project: &str, namespace: i64) -> String {
    format!("{project}_namespace_{namespace}")
}

/// The hour `{YYYY-MM-DD}/{HH}` as `[start, end)` Unix milliseconds.
pub fn hour_range(date: &str, hour: &str) -> Result<(i64, i64)> {
    let date = Date::parse(date)?;
    let text = hour;
    let hour: i64 = match text.as_bytes() {
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
            i64::from((a - b'0') * 10 + (b - b'0'))
        }
        _ => -1,
    };
    if !(0..24).contains(&hour) {
        return Err(Error::Unprocessable(format!(
            "invalid hour '{text}': expected 00 to 23"
        )));
    }
    let start = (date.start() + hour * 3600) * 1000;
    Ok((start, start + 3_600_000))
}

/// The day `{YYYY-MM-DD}` as `[start, end)` Unix milliseconds: the daily
/// form `/v2/batches/{date}` of WME's 2024-01 spec, which the Go SDK calls.
pub fn day_range(date: &str) -> Result<(i64, i64)> {
    let start = Date::parse(date)?.start() * 1000;
    Ok((start, start + 86_400_000))
}

/// Whether a path segment is an hour (`00`..`23` shape: two digits), which
/// tells `/v2/batches/{date}/{HH}` from `/v2/batches/{date}/{identifier}`
/// (identifiers are `{project}_namespace_{n}`).
pub fn is_hour(segment: &str) -> bool {
    segment.len() == 2 && segment.bytes().all(|b| b.is_ascii_digit())
}

pub use crate::snapshot::{Blob, Ref, Size};

/// How long after its end a range is closed: appends allocate their offset
/// and publication time before writing (up to the log's gap grace of 5 s),
/// so a build this much later sees every event of the range.
pub const CLOSE_GRACE_MS: i64 = 10_000;

/// The stored description of a range's batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchIndex {
    /// Built after the range closed: final.
    pub closed: bool,
    /// The log's change counter (`rt-total`) when the build started.
    pub total: i64,
    /// The build's number (the `batch-builds` counter).
    pub build: i64,
    /// The batches.
    pub batches: Vec<StoredBatch>,
}

/// One stored batch: its metadata and where its tar.gz is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredBatch {
    /// The metadata served.
    pub meta: Batch,
    /// The parts of the tar.gz.
    pub blob: Blob,
}

/// The key of a range's [`BatchIndex`].
pub fn index_key(start_ms: i64, end_ms: i64) -> String {
    format!("batch-index:{start_ms}:{end_ms}")
}

/// The key of part `n` of a stored batch.
pub fn part_key(start_ms: i64, identifier: &str, version: &str, n: u64) -> String {
    format!("batch-part:{start_ms}:{identifier}:{version}:{n}")
}

/// The claim a builder of a range holds while it builds.
pub fn building_key(start_ms: i64, end_ms: i64) -> String {
    format!("batch-building:{start_ms}:{end_ms}")
}

/// The counter of batch builds (observable: each build's number is in its
/// index and answered as `x-wikiedge-batch-build`).
pub const BUILDS_KEY: &str = "batch-builds";

/// Whether the range `[_, end_ms)` is closed at `now_ms`.
pub fn is_closed(end_ms: i64, now_ms: i64) -> bool {
    end_ms.saturating_add(CLOSE_GRACE_MS) <= now_ms
}

/// Whether a stored build answers a request: a final (closed) build always;
/// an open one while the range is still open and the log has not changed.
pub fn reusable(index: &BatchIndex, closed_now: bool, total: i64) -> bool {
    index.closed || (!closed_now && index.total == total)
}

/// A [`std::io::Write`] that holds at most `part_size` bytes and hands
/// every full part (then the last one) to `spill`: the memory a batch
/// build holds for its archive is one part, whatever the batch's size.
pub struct Spiller<F: FnMut(u64, &[u8]) -> std::io::Result<()>> {
    part_size: usize,
    buffer: Vec<u8>,
    parts: u64,
    bytes: u64,
    spill: F,
}

impl<F: FnMut(u64, &[u8]) -> std::io::Result<()>> Spiller<F> {
    /// A spiller of parts of `part_size` (at least 1) bytes.
    pub fn new(part_size: usize, spill: F) -> Self {
        let part_size = part_size.max(1);
        Spiller {
            part_size,
            buffer: Vec::with_capacity(part_size),
            parts: 0,
            bytes: 0,
            spill,
        }
    }

    fn spill_full(&mut self) -> std::io::Result<()> {
        while self.buffer.len() >= self.part_size {
            let rest = self.buffer.split_off(self.part_size);
            (self.spill)(self.parts, &self.buffer)?;
            self.parts += 1;
            self.buffer = rest;
        }
        Ok(())
    }

    /// Spills the last part; the blob written.
    pub fn finish(mut self) -> std::io::Result<Blob> {
        self.spill_full()?;
        if !self.buffer.is_empty() {
            (self.spill)(self.parts, &self.buffer)?;
            self.parts += 1;
        }
        Ok(Blob {
            bytes: self.bytes,
            part_size: self.part_size as u64,
            parts: self.parts,
        })
    }
}

impl<F: FnMut(u64, &[u8]) -> std::io::Result<()>> std::io::Write for Spiller<F> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        // Never more than one part (plus this write's remainder) held.
        let room = self.part_size - self.buffer.len();
        let take = room.min(data.len());
        self.buffer.extend_from_slice(&data[..take]);
        self.bytes += take as u64;
        self.spill_full()?;
        Ok(take)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The ustar pieces around one file of `size` bytes, for writing an archive
/// whose content is streamed: the header, then after the content the
/// padding and the trailer.
pub fn tar_around(name: &str, size: u64, mtime_seconds: u64) -> ([u8; 512], Vec<u8>) {
    let mut tail = vec![0u8; crate::snapshot::tar_padding(size) as usize];
    tail.extend_from_slice(&crate::snapshot::TAR_TRAILER);
    (crate::snapshot::tar_header(name, size, mtime_seconds), tail)
}

/// A batch's version (also its download's ETag): the MD5 of its NDJSON, 32
/// hex characters like WME's.
pub fn version(ndjson: &[u8]) -> String {
    super::media::md5_hex(ndjson)
}

/// The key that marks a batch download counted for an account and month:
/// one quota unit per batch version, however many ranges fetch it.
pub fn download_marker_key(account: &str, version: &str, month: &str) -> String {
    format!("batch-download:{account}:{version}:{month}")
}

/// The metadata of one batch, as `/v2/batches/...` serves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// `{project}_namespace_{ns}`.
    pub identifier: String,
    /// A hash of the content (also the download's ETag).
    pub version: String,
    /// The last event's publication time.
    pub date_modified: String,
    /// The project.
    pub is_part_of: Ref<String>,
    /// The project's language, when the events carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_language: Option<Ref<String>>,
    /// The namespace.
    pub namespace: Ref<i64>,
    /// The size of the tar.gz.
    pub size: Size,
}

/// A ustar archive holding one regular file (the same header writer as
/// snapshots use).
pub fn tar_one(name: &str, content: &[u8], mtime_seconds: u64) -> Vec<u8> {
    let size = content.len() as u64;
    let mut out = Vec::with_capacity(content.len() + 2048);
    out.extend_from_slice(&crate::snapshot::tar_header(name, size, mtime_seconds));
    out.extend_from_slice(content);
    out.resize(out.len() + crate::snapshot::tar_padding(size) as usize, 0);
    out.extend_from_slice(&crate::snapshot::TAR_TRAILER);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_are_utc_ranges() {
        assert_eq!(
            hour_range("2024-10-04", "15").ok(),
            Some((1_728_054_000_000, 1_728_057_600_000))
        );
        for (date, hour) in [
            ("2024-10-04", "24"),
            ("2024-10-04", "5"),
            ("2024-13-01", "00"),
        ] {
            assert!(hour_range(date, hour).is_err(), "{date} {hour}");
        }
    }

    #[test]
    fn tar_headers_are_ustar_with_a_valid_checksum() {
        let tar = tar_one("a.ndjson", b"{}\n", 0);
        assert_eq!(tar.len(), 512 * 4);
        assert_eq!(&tar[257..262], b"ustar");
        let mut header = tar[..512].to_vec();
        header[148..156].copy_from_slice(b"        ");
        let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
        let stored = std::str::from_utf8(&tar[148..154]).unwrap_or("");
        assert_eq!(u32::from_str_radix(stored, 8).ok(), Some(sum));
        assert_eq!(&tar[512..515], b"{}\n");
        assert_eq!(identifier("enwiki", 0), "enwiki_namespace_0");
    }

    #[test]
    fn days_are_utc_ranges_and_hours_are_two_digits() {
        assert_eq!(
            day_range("2024-10-04").ok(),
            Some((1_728_000_000_000, 1_728_086_400_000))
        );
        assert!(day_range("2024-10-32").is_err());
        assert!(is_hour("07") && is_hour("23"));
        assert!(!is_hour("enwiki_namespace_0") && !is_hour("7") && !is_hour("download"));
    }

    #[test]
    fn a_spiller_holds_one_part_and_spills_the_rest_in_order() -> std::io::Result<()> {
        use std::io::Write;
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
        let mut parts: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut spiller = Spiller::new(1024, |n, bytes| {
            parts.push((n, bytes.to_vec()));
            Ok(())
        });
        for chunk in data.chunks(700) {
            spiller.write_all(chunk)?;
            assert!(spiller.buffer.len() < 1024);
        }
        let blob = spiller.finish()?;
        assert_eq!(
            blob,
            Blob {
                bytes: 10_000,
                part_size: 1024,
                parts: 10
            }
        );
        assert!(parts.iter().enumerate().all(|(i, (n, _))| *n == i as u64));
        assert!(parts[..9].iter().all(|(_, p)| p.len() == 1024));
        assert_eq!(parts.concat_bytes(), data);
        Ok(())
    }

    trait Concat {
        fn concat_bytes(&self) -> Vec<u8>;
    }
    impl Concat for Vec<(u64, Vec<u8>)> {
        fn concat_bytes(&self) -> Vec<u8> {
            self.iter().flat_map(|(_, p)| p.iter().copied()).collect()
        }
    }

    #[test]
    fn a_streamed_tar_is_the_one_shot_tar() {
        let content = b"{\"a\":1}\n{\"b\":2}\n";
        let (header, tail) = tar_around("x.ndjson", content.len() as u64, 7);
        let mut streamed = header.to_vec();
        streamed.extend_from_slice(content);
        streamed.extend_from_slice(&tail);
        assert_eq!(streamed, tar_one("x.ndjson", content, 7));
    }

    #[test]
    fn closed_builds_are_final_and_open_ones_follow_the_log() {
        let index = |closed, total| BatchIndex {
            closed,
            total,
            build: 1,
            batches: vec![],
        };
        // An open build: reused while the log is unchanged and the hour open.
        assert!(reusable(&index(false, 5), false, 5));
        assert!(!reusable(&index(false, 5), false, 6));
        // ...rebuilt once when the hour has closed.
        assert!(!reusable(&index(false, 5), true, 5));
        // A closed build: final, whatever arrives later.
        assert!(reusable(&index(true, 5), true, 9));
        let end = 1_728_057_600_000;
        assert!(!is_closed(end, end));
        assert!(!is_closed(end, end + CLOSE_GRACE_MS - 1));
        assert!(is_closed(end, end + CLOSE_GRACE_MS));
    }

    #[test]
    fn versions_are_32_hex_characters_of_the_content() {
        let v = version(b"{}\n");
        assert_eq!(v.len(), 32);
        assert!(v.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(v, version(b"{}\n{}\n"));
        assert_eq!(version(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }
}
