//! Decoding counter values as the key-value store keeps them.
//!
//! Spin's key-value stores keep `wasi:keyvalue/atomics` counters as the
//! 8-byte little-endian encoding of an `i64`. A `get` of a counter key
//! returns those bytes; anything else under a counter key is corruption.

use crate::{Error, Result};

/// Decodes a stored counter: exactly 8 bytes, little-endian `i64`.
pub fn decode_counter(bytes: &[u8]) -> Result<i64> {
    let array = <[u8; 8]>::try_from(bytes).map_err(|_| {
        Error::Internal(format!(
            "counter value must be 8 bytes, got {}",
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
        check(b"12345", None);
        check(&[0; 9], None);
        assert_eq!(counter_or_zero(None), Ok(0));
        assert_eq!(decode_counter(b"x").map_err(|e| e.status()), Err(500));
    }
}
