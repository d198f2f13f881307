//! Decoding counter values as the key-value store keeps them.
//!
//! Spin's key-value stores keep `wasi:keyvalue/atomics` counters in one of
//! two encodings, depending on the backend: the SQLite store (Spin's default,
//! and wikiedge's) as the 8-byte little-endian encoding of an `i64`; the
//! Redis store as Redis's own `INCRBY` integer, i.e. decimal ASCII text. A
//! `get` of a counter key returns whichever the backend wrote, so both are
//! accepted. They cannot be confused: a decimal string is all ASCII digits
//! (after an optional `-`), while a little-endian counter below 2^56 has a
//! zero top byte — and no counter here gets anywhere near 2^56.

use crate::{Error, Result};

/// Decodes a stored counter: 8 bytes of little-endian `i64` (SQLite), or
/// decimal ASCII (Redis).
pub fn decode_counter(bytes: &[u8]) -> Result<i64> {
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    if !digits.is_empty() && digits.len() <= 19 && digits.iter().all(u8::is_ascii_digit) {
        // Valid UTF-8 and in range by construction (at most 19 digits).
        let text = std::str::from_utf8(bytes).map_err(|e| Error::Internal(e.to_string()))?;
        return text
            .parse()
            .map_err(|e| Error::Internal(format!("bad decimal counter: {e}")));
    }
    let array = <[u8; 8]>::try_from(bytes).map_err(|_| {
        Error::Internal(format!(
            "counter value must be 8 little-endian bytes or decimal text, got {} bytes",
            bytes.len()
        ))
    })?;
    Ok(i64::from_le_bytes(array))
}

/// Encodes a counter value the way the store does (for tests and imports).
pub fn encode_counter(value: i64) -> [u8; 8] {
    value.to_le_bytes()
}

/// A stored counter, or 0 when the key is missing.
pub fn counter_or_zero(bytes: Option<&[u8]>) -> Result<i64> {
    bytes.map_or(Ok(0), decode_counter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(bytes: &[u8], expect: Option<i64>) {
        assert_eq!(decode_counter(bytes).ok(), expect, "{bytes:?}");
    }

    #[test]
    fn counters_are_8_byte_little_endian_i64() {
        check(&[1, 0, 0, 0, 0, 0, 0, 0], Some(1));
        check(&[0, 1, 0, 0, 0, 0, 0, 0], Some(256));
        check(&[0xff; 8], Some(-1));
        check(&encode_counter(i64::MAX), Some(i64::MAX));
        check(&[], None);
        check(&[1, 0, 0, 0], None);
        check(b"x2345", None);
        check(&[0; 9], None);
        assert_eq!(counter_or_zero(None), Ok(0));
        assert_eq!(decode_counter(b"x").map_err(|e| e.status()), Err(500));
    }

    #[test]
    fn redis_counters_are_decimal_text() {
        check(b"0", Some(0));
        check(b"12345", Some(12345));
        check(b"12345678", Some(12_345_678));
        check(b"-3", Some(-3));
        check(b"9223372036854775807", Some(i64::MAX));
        check(b"-", None);
        check(b"1 2", None);
    }
}
