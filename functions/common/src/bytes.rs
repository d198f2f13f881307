//! Byte checks done eight bytes at a time.
//!
//! In a guest every turn of a loop over bytes also checks the epoch, so a
//! byte loop costs about 15 instructions a byte, and wasi-libc's `memcmp`
//! is such a loop. The bearer token, about 450 bytes, is checked and
//! compared on every request (BENCHMARKS.md, "The components' small blocks
//! kept on free lists": about 17,000 instructions per request before).

/// `bytes` as 8-byte words, and the bytes left over.
fn words(bytes: &[u8]) -> (impl Iterator<Item = (u64, &[u8; 8])>, &[u8]) {
    let (whole, tail) = bytes.as_chunks::<8>();
    (
        whole
            .iter()
            .map(|chunk| (u64::from_ne_bytes(*chunk), chunk)),
        tail,
    )
}

/// Whether `a` and `b` are the same bytes.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let ((words_a, tail_a), (words_b, tail_b)) = (words(a), words(b));
    words_a.zip(words_b).all(|((x, _), (y, _))| x == y) && tail_a == tail_b
}

/// Whether every byte is visible ASCII or a tab: `HeaderValue::to_str`'s
/// rule. A word with a byte below a space, a DEL or a byte above 127 is
/// checked again byte by byte (a tab is the one byte below a space that
/// passes).
pub fn visible_ascii(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = ONES * 0x80;
    const SPACE: u64 = ONES * 0x20;
    const DEL: u64 = ONES * 0x7f;
    let byte_ok = |b: &u8| *b == b'\t' || (0x20..0x7f).contains(b);
    let (mut words, tail) = words(bytes);
    words.all(|(w, chunk)| {
        // The classic "has a byte less than n" and "has a zero byte" tests:
        // exact for the lowest such byte, which is all a yes needs.
        let below_space = w.wrapping_sub(SPACE) & !w & HIGH;
        let d = w ^ DEL;
        let del = d.wrapping_sub(ONES) & !d & HIGH;
        (below_space | del | (w & HIGH)) == 0 || chunk.iter().all(byte_ok)
    }) && tail.iter().all(byte_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `HeaderValue::to_str`'s rule, byte by byte.
    fn reference(bytes: &[u8]) -> bool {
        bytes
            .iter()
            .all(|b| *b == b'\t' || (0x20..0x7f).contains(b))
    }

    #[test]
    fn every_byte_in_every_position_is_judged_as_to_str_judges_it() {
        let base: Vec<u8> = b"Bearer eyJhbGciOiJFZERTQSJ9.x\ty".to_vec();
        for len in [0, 1, 7, 8, 9, 16, 17, base.len()] {
            let value = &base[..len];
            assert!(visible_ascii(value), "{value:?}");
            for at in 0..len {
                for byte in 0..=255u8 {
                    let mut v = value.to_vec();
                    v[at] = byte;
                    assert_eq!(
                        visible_ascii(&v),
                        reference(&v),
                        "byte {byte:#x} at {at} of {len}"
                    );
                }
            }
        }
    }

    #[test]
    fn bytes_are_the_same_only_byte_for_byte() {
        let token = b"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ";
        assert!(same(token, token));
        // The same bytes elsewhere in memory.
        let copy = token.to_vec();
        assert!(same(token, &copy));
        assert!(same(b"", b""));
        // A difference in every position: in a whole word and in the tail.
        for i in 0..token.len() {
            let mut other = token.to_vec();
            other[i] ^= 1;
            assert!(!same(token, &other), "byte {i} differs");
        }
        assert!(!same(token, &token[..token.len() - 1]));
        assert!(!same(&token[..16], token));
    }
}
