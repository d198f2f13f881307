//! Snapshots: whole-project datasets as tar.gz NDJSON, their metadata in
//! the WME shape, the key-value layout they are stored in, and the pure
//! pieces of serving them (byte ranges, part spans, HTTP dates).
//!
//! Key layout (store `bulk`, [`crate::stores`]; the download markers in
//! `default`), written by `wikiedge snapshot build`
//! (cli/src/snapshot.rs) and read by `functions/snapshots`:
//! - `snapshot-blob:{identifier}:{version}:{n}`: part `n` (from 0) of the
//!   tar.gz of a snapshot or of one of its chunks, [`Blob::part_size`]
//!   bytes each except the last. The version in the key means a new build
//!   never overwrites a part a reader of the old version may still read.
//! - `snapshot:{identifier}`: the [`Record`] (metadata of the snapshot, of
//!   its chunks, and where their bytes are). Written after every part, so
//!   switching to a new version is one write: a reader never sees a
//!   half-written snapshot.
//! - `snapshot-index`: a JSON array of the identifiers that have a record,
//!   for the list route (components cannot scan keys cheaply).
//! - `snapshot-download:{account}:{identifier}:{version}:{YYYY-MM}`: the
//!   download marker: `admitted` once a download of that version was
//!   counted against the account's quota this month (or `pending:{ms}`
//!   while the first request is being decided).
//!
//! Structured-contents snapshots (`/v2/snapshots/structured-contents`)
//! share the identifier of the article snapshot they are built next to
//! (`enwiki_namespace_0`, as WME names them) and have no chunks. Their
//! record is `structured-snapshot:{identifier}`, their list
//! `structured-snapshot-index`, and their bytes and download markers use
//! the blob id [`structured_blob_id`] (`structured-contents_{identifier}`)
//! where an article snapshot uses its identifier, so the two never share
//! a key.

use serde::{Deserialize, Serialize};

use crate::quota::period::Month;

/// The key of the snapshot list.
pub const INDEX_KEY: &str = "snapshot-index";
/// The default size of one stored part of a tar.gz (1 MiB).
pub const DEFAULT_PART_SIZE: u64 = 1 << 20;
/// The marker value of a counted download.
pub const MARKER_ADMITTED: &str = "admitted";
/// The prefix of a pending marker; the rest is Unix milliseconds.
pub const MARKER_PENDING: &str = "pending:";

/// `{identifier}` in WME references (`is_part_of`, `in_language`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ref<T> {
    /// The referenced identifier.
    pub identifier: T,
}

/// A size as WME reports it: `{"value": 18.638, "unit_text": "MB"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Size {
    /// The size in `unit_text` units.
    pub value: f64,
    /// The unit, `MB` (10^6 bytes).
    pub unit_text: String,
}

impl Size {
    /// A byte count in megabytes (10^6), rounded to the byte.
    pub fn from_bytes(bytes: u64) -> Size {
        Size {
            value: bytes as f64 / 1e6,
            unit_text: "MB".into(),
        }
    }

    /// A byte count in megabytes with three decimals, as WME shows batch
    /// sizes.
    pub fn from_bytes_to_kb(bytes: u64) -> Size {
        Size {
            value: (bytes as f64 / 1000.0).round() / 1000.0,
            unit_text: "MB".into(),
        }
    }
}

/// The metadata of a snapshot or of one chunk, as the API serves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// `{project}_namespace_{ns}`, or `{project}_namespace_{ns}_chunk_{n}`.
    pub identifier: String,
    /// A content hash: equal content, equal version.
    pub version: String,
    /// When this version was built (RFC 3339, UTC).
    pub date_modified: String,
    /// The project.
    pub is_part_of: Ref<String>,
    /// The project's language.
    pub in_language: Ref<String>,
    /// The namespace.
    pub namespace: Ref<i64>,
    /// The size of the tar.gz.
    pub size: Size,
    /// The chunk identifiers (snapshots only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunks: Vec<String>,
}

/// Where the bytes of one tar.gz are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blob {
    /// The exact length of the tar.gz.
    pub bytes: u64,
    /// The size of every part but the last.
    pub part_size: u64,
    /// How many parts there are.
    pub parts: u64,
}

/// One chunk: its metadata and its bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// The chunk's metadata.
    pub meta: Snapshot,
    /// Its tar.gz.
    pub blob: Blob,
}

/// Everything stored under `snapshot:{identifier}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The snapshot's metadata.
    pub meta: Snapshot,
    /// The whole tar.gz.
    pub blob: Blob,
    /// The chunks, in order.
    pub chunks: Vec<Chunk>,
}

impl Record {
    /// A chunk by its identifier.
    pub fn chunk(&self, identifier: &str) -> Option<&Chunk> {
        self.chunks.iter().find(|c| c.meta.identifier == identifier)
    }
}

/// The identifier of a project's namespace snapshot.
pub fn identifier(project: &str, namespace: i64) -> String {
    format!("{project}_namespace_{namespace}")
}

/// The identifier of chunk `n` of a snapshot.
pub fn chunk_identifier(snapshot: &str, n: usize) -> String {
    format!("{snapshot}_chunk_{n}")
}

/// The key of a snapshot's record.
pub fn record_key(identifier: &str) -> String {
    format!("snapshot:{identifier}")
}

/// The key of the structured-contents snapshot list.
pub const STRUCTURED_INDEX_KEY: &str = "structured-snapshot-index";

/// The key of a structured-contents snapshot's record.
pub fn structured_record_key(identifier: &str) -> String {
    format!("structured-snapshot:{identifier}")
}

/// The id under which a structured-contents snapshot's parts and download
/// markers are stored (in place of the identifier an article snapshot uses).
pub fn structured_blob_id(identifier: &str) -> String {
    format!("structured-contents_{identifier}")
}

/// The key of part `n` of a tar.gz.
pub fn part_key(identifier: &str, version: &str, n: u64) -> String {
    format!("snapshot-blob:{identifier}:{version}:{n}")
}

/// The download marker of an account for one version in one month.
pub fn marker_key(account: &str, identifier: &str, version: &str, month: Month) -> String {
    format!("snapshot-download:{account}:{identifier}:{version}:{month}")
}

/// The file name inside a tar.gz: `{identifier}.ndjson`.
pub fn ndjson_name(identifier: &str) -> String {
    format!("{identifier}.ndjson")
}

/// The attachment name of a download: `{identifier}.tar.gz`.
pub fn download_name(identifier: &str) -> String {
    format!("{identifier}.tar.gz")
}

/// What a `Range` header asks of a body of known length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable range: send everything (200). Malformed and multi-range
    /// headers land here too, as RFC 9110 lets a server ignore them.
    Full,
    /// The inclusive byte range `start..=end` (206).
    Partial {
        /// First byte.
        start: u64,
        /// Last byte, inclusive.
        end: u64,
    },
    /// Syntactically fine but outside the body (416).
    Unsatisfiable,
}

/// Parses a `Range` header (`bytes=a-b`, `bytes=a-`, `bytes=-n`) against a
/// body of `len` bytes.
pub fn parse_range(header: Option<&str>, len: u64) -> RangeRequest {
    let Some(header) = header else {
        return RangeRequest::Full;
    };
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    match (first.trim().is_empty(), number(first), number(last)) {
        // `-n`: the last n bytes.
        (true, _, Some(n)) => {
            if n == 0 || len == 0 {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Partial {
                    start: len.saturating_sub(n),
                    end: len - 1,
                }
            }
        }
        (false, Some(start), last) if last.is_some() || last_is_empty(last, spec) => {
            if start >= len {
                return RangeRequest::Unsatisfiable;
            }
            match last {
                Some(end) if end < start => RangeRequest::Full,
                Some(end) => RangeRequest::Partial {
                    start,
                    end: end.min(len - 1),
                },
                None => RangeRequest::Partial {
                    start,
                    end: len - 1,
                },
            }
        }
        _ => RangeRequest::Full,
    }
}

/// Whether the part after `-` is empty (`a-`), as opposed to malformed.
fn last_is_empty(last: Option<u64>, spec: &str) -> bool {
    last.is_none() && spec.trim().ends_with('-')
}

/// One stored part's share of a byte range: read part `part`, send bytes
/// `from..to` of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartSlice {
    /// The part index.
    pub part: u64,
    /// The first byte of the part to send.
    pub from: usize,
    /// One past the last byte of the part to send.
    pub to: usize,
}

/// The parts covering the inclusive range `start..=end` of a blob, in order.
pub fn part_slices(blob: &Blob, start: u64, end: u64) -> Vec<PartSlice> {
    if blob.part_size == 0 || start > end || end >= blob.bytes {
        return Vec::new();
    }
    let first = start / blob.part_size;
    let last = end / blob.part_size;
    (first..=last)
        .map(|part| {
            let base = part * blob.part_size;
            let from = start.max(base) - base;
            let to = end.min(base + blob.part_size - 1) - base + 1;
            PartSlice {
                part,
                from: from as usize,
                to: to as usize,
            }
        })
        .collect()
}

pub use crate::time::{http_date, parse_rfc3339, rfc3339};

/// The size of a tar block.
pub const TAR_BLOCK: u64 = 512;

/// The ustar header of one regular file, mode 0644, owner 0. Sizes of
/// 8 GiB and more use the GNU base-256 encoding (as GNU tar and every
/// mainstream reader accept). `name` must be ASCII and at most 100 bytes.
pub fn tar_header(name: &str, size: u64, mtime: u64) -> [u8; 512] {
    let mut h = [0u8; 512];
    let name = name.as_bytes();
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    if size < 0o77777777777 {
        octal(&mut h[124..136], size);
    } else {
        h[124] = 0x80;
        h[128..136].copy_from_slice(&size.to_be_bytes());
    }
    octal(&mut h[136..148], mtime.min(0o77777777777));
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
    octal(&mut h[148..155], sum);
    h[155] = b' ';
    h
}

/// Writes `value` as zero-padded octal digits followed by a NUL.
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    let text = &text.as_bytes()[text.len().saturating_sub(digits)..];
    field[..digits].copy_from_slice(text);
    field[digits] = 0;
}

/// Zero bytes after a file of `size` bytes up to the next block.
pub fn tar_padding(size: u64) -> u64 {
    (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK
}

/// The end-of-archive marker: two zero blocks.
pub const TAR_TRAILER: [u8; 1024] = [0; 1024];

/// Reads the regular files of a tar archive in memory: `(name, content)`.
/// For tests and verification; `None` on a malformed archive.
pub fn read_tar(bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    let mut at = 0usize;
    while at + 512 <= bytes.len() {
        let h = &bytes[at..at + 512];
        if h.iter().all(|b| *b == 0) {
            return Some(files);
        }
        let name_end = h[..100].iter().position(|b| *b == 0).unwrap_or(100);
        let name = String::from_utf8(h[..name_end].to_vec()).ok()?;
        let size = if h[124] & 0x80 != 0 {
            u64::from_be_bytes(h[128..136].try_into().ok()?)
        } else {
            let text = std::str::from_utf8(&h[124..136]).ok()?;
            u64::from_str_radix(text.trim_matches(|c: char| c == '\0' || c == ' '), 8).ok()?
        };
        let start = at + 512;
        let end = start.checked_add(usize::try_from(size).ok()?)?;
        files.push((name, bytes.get(start..end)?.to_vec()));
        at = end + tar_padding(size) as usize;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(header: Option<&str>, len: u64, expect: RangeRequest) {
        assert_eq!(parse_range(header, len), expect, "{header:?} of {len}");
    }

    fn partial(start: u64, end: u64) -> RangeRequest {
        RangeRequest::Partial { start, end }
    }

    #[test]
    fn ranges_parse_as_rfc_9110_says() {
        use RangeRequest::{Full, Unsatisfiable};
        check(None, 100, Full);
        check(Some("bytes=0-9"), 100, partial(0, 9));
        check(Some("bytes=10-"), 100, partial(10, 99));
        check(Some("bytes=-10"), 100, partial(90, 99));
        check(Some("bytes=-1000"), 100, partial(0, 99));
        check(Some("bytes=90-1000"), 100, partial(90, 99));
        check(Some(" bytes=5-5 "), 100, partial(5, 5));
        check(Some("bytes=100-"), 100, Unsatisfiable);
        check(Some("bytes=100-200"), 100, Unsatisfiable);
        check(Some("bytes=-0"), 100, Unsatisfiable);
        check(Some("bytes=0-"), 0, Unsatisfiable);
        // Ignored: malformed, other units, multi-range, reversed.
        check(Some("bytes=a-b"), 100, Full);
        check(Some("bytes="), 100, Full);
        check(Some("bytes=-"), 100, Full);
        check(Some("items=0-9"), 100, Full);
        check(Some("bytes=0-9,20-29"), 100, Full);
        check(Some("bytes=9-0"), 100, Full);
        check(Some("bytes=+1-5"), 100, Full);
        check(Some("bytes=99999999999999999999999-"), 100, Full);
    }

    #[test]
    fn part_slices_cover_a_range_exactly() {
        let blob = Blob {
            bytes: 25,
            part_size: 10,
            parts: 3,
        };
        let s = |part, from, to| PartSlice { part, from, to };
        assert_eq!(
            part_slices(&blob, 0, 24),
            vec![s(0, 0, 10), s(1, 0, 10), s(2, 0, 5)]
        );
        assert_eq!(part_slices(&blob, 9, 10), vec![s(0, 9, 10), s(1, 0, 1)]);
        assert_eq!(part_slices(&blob, 12, 17), vec![s(1, 2, 8)]);
        assert_eq!(part_slices(&blob, 20, 24), vec![s(2, 0, 5)]);
        assert_eq!(part_slices(&blob, 20, 25), vec![]);
        for start in 0..25 {
            for end in start..25 {
                let total: usize = part_slices(&blob, start, end)
                    .iter()
                    .map(|p| p.to - p.from)
                    .sum();
                assert_eq!(total as u64, end - start + 1);
            }
        }
    }

    #[test]
    fn keys_and_identifiers_follow_the_wme_names() {
        let id = identifier("enwiki", 0);
        assert_eq!(id, "enwiki_namespace_0");
        assert_eq!(chunk_identifier(&id, 2), "enwiki_namespace_0_chunk_2");
        assert_eq!(
            part_key(&id, "abc", 3),
            "snapshot-blob:enwiki_namespace_0:abc:3"
        );
        assert_eq!(record_key(&id), "snapshot:enwiki_namespace_0");
        let month = Month::from_unix(1_724_889_806);
        assert_eq!(
            marker_key("ann", &id, "abc", month),
            "snapshot-download:ann:enwiki_namespace_0:abc:2024-08"
        );
        assert_eq!(Size::from_bytes(1_500_000).value, 1.5);
    }

    #[test]
    fn tar_headers_round_trip_through_the_reader() {
        let content = b"{\"a\":1}\n{\"a\":2}\n";
        let mut archive = tar_header("x.ndjson", content.len() as u64, 1_700_000_000).to_vec();
        archive.extend_from_slice(content);
        archive.extend(std::iter::repeat_n(
            0,
            tar_padding(content.len() as u64) as usize,
        ));
        archive.extend_from_slice(&TAR_TRAILER);
        assert_eq!(archive.len() % 512, 0);
        let files = read_tar(&archive).expect("readable");
        assert_eq!(files, vec![("x.ndjson".to_string(), content.to_vec())]);
        let header = tar_header("x", 1, 0);
        let stored: u64 =
            u64::from_str_radix(std::str::from_utf8(&header[148..154]).expect("ascii"), 8)
                .expect("octal");
        let mut blank = header;
        blank[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, blank.iter().map(|b| u64::from(*b)).sum::<u64>());
        let big = tar_header("big", 10 << 30, 0);
        assert_eq!(
            (big[124], &big[128..136]),
            (0x80, &(10u64 << 30).to_be_bytes()[..])
        );
        assert_eq!(tar_padding(512), 0);
        assert_eq!(tar_padding(1), 511);
    }
}
