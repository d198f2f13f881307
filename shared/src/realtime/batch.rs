//! Hourly batches: the log's events of one UTC hour, per project and
//! namespace, as a tar.gz of NDJSON (`/v2/batches/{YYYY-MM-DD}/{HH}`).
//!
//! An event belongs to the hour of its `date_published` (the time it
//! entered the log), so an hour's batch never changes once the hour is
//! over. The archive holds one file, `{identifier}.ndjson`, one event per
//! line in partition and offset order.

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

pub use crate::snapshot::{Ref, Size};

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
    fn versions_are_32_hex_characters_of_the_content() {
        let v = version(b"{}\n");
        assert_eq!(v.len(), 32);
        assert!(v.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(v, version(b"{}\n{}\n"));
        assert_eq!(version(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }
}
