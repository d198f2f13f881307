//! Where a Commons file lives: MediaWiki's hashed upload path,
//! `https://upload.wikimedia.org/wikipedia/commons/{a}/{ab}/{File_name}`,
//! where `a` and `ab` are the first one and two hex digits of the MD5 of
//! the file name in key form (underscores, no `File:` prefix).

use super::super::article::title;

/// The upload URL of a Commons file, from its page title (`File:X.jpg`,
/// with spaces or underscores). `None` for a title outside the File
/// namespace.
pub fn commons_content_url(page_title: &str) -> Option<String> {
    let name = page_title
        .strip_prefix("File:")
        .or_else(|| page_title.strip_prefix("Image:"))?;
    let name = title::key_form(name.trim());
    if name.is_empty() {
        return None;
    }
    let hash = hex(&md5(name.as_bytes()));
    Some(format!(
        "https://upload.wikimedia.org/wikipedia/commons/{}/{}/{}",
        &hash[..1],
        &hash[..2],
        title::url_path_form(&name)
    ))
}

/// The MD5 of `input` as 32 lower-case hex characters (the shape of WME's
/// content versions). Not for security.
pub fn md5_hex(input: &[u8]) -> String {
    hex(&md5(input))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// MD5 (RFC 1321). Used only to place files, never for security.
fn md5(input: &[u8]) -> [u8; 16] {
    let mut hasher = Md5::new();
    hasher.update(input);
    hasher.finish()
}

/// Incremental MD5 (RFC 1321): a batch's version is the MD5 of its NDJSON,
/// hashed as the lines are read, never held whole.
#[derive(Debug, Clone)]
pub struct Md5 {
    state: [u32; 4],
    pending: Vec<u8>,
    length: u64,
}

impl Default for Md5 {
    fn default() -> Self {
        Self::new()
    }
}

const MD5_S: [u32; 64] = [
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9,
    14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15,
    21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
];

impl Md5 {
    /// A fresh hasher.
    pub fn new() -> Self {
        Md5 {
            state: [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476],
            pending: Vec::with_capacity(64),
            length: 0,
        }
    }

    /// Hashes more input.
    pub fn update(&mut self, mut input: &[u8]) {
        self.length = self.length.wrapping_add(input.len() as u64);
        if !self.pending.is_empty() {
            let take = (64 - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.pending.len() < 64 {
                return;
            }
            let block = std::mem::take(&mut self.pending);
            self.block(&block);
        }
        let mut blocks = input.chunks_exact(64);
        for block in &mut blocks {
            self.block(block);
        }
        self.pending.extend_from_slice(blocks.remainder());
    }

    /// The digest.
    pub fn finish(mut self) -> [u8; 16] {
        let bits = self.length.wrapping_mul(8);
        let mut tail = std::mem::take(&mut self.pending);
        tail.push(0x80);
        while tail.len() % 64 != 56 {
            tail.push(0);
        }
        tail.extend_from_slice(&bits.to_le_bytes());
        for block in tail.chunks_exact(64) {
            self.block(block);
        }
        let mut out = [0u8; 16];
        for (chunk, word) in out.chunks_exact_mut(4).zip(self.state) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        out
    }

    /// The digest as 32 lower-case hex characters.
    pub fn finish_hex(self) -> String {
        hex(&self.finish())
    }

    fn block(&mut self, block: &[u8]) {
        let m: Vec<u32> = block
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let [mut a, mut b, mut c, mut d] = self.state;
        for (i, shift) in MD5_S.iter().enumerate() {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let k = ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32;
            let rotated = a
                .wrapping_add(f)
                .wrapping_add(k)
                .wrapping_add(m[g])
                .rotate_left(*shift);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(rotated);
        }
        for (s, v) in self.state.iter_mut().zip([a, b, c, d]) {
            *s = s.wrapping_add(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_md5_matches_one_shot_in_any_split() {
        let text: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let whole = md5_hex(&text);
        for split in [1usize, 3, 63, 64, 65, 127, 500] {
            let mut h = Md5::new();
            for chunk in text.chunks(split) {
                h.update(chunk);
            }
            assert_eq!(h.finish_hex(), whole, "chunks of {split}");
        }
        let mut h = Md5::new();
        h.update(b"The quick brown fox ");
        h.update(b"jumps over the lazy dog");
        assert_eq!(h.finish_hex(), "9e107d9d372bb6826bd81d3542a419d6");
    }

    #[test]
    fn md5_matches_rfc_1321_vectors() {
        assert_eq!(hex(&md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            hex(&md5(b"The quick brown fox jumps over the lazy dog")),
            "9e107d9d372bb6826bd81d3542a419d6"
        );
    }

    #[test]
    fn commons_urls_use_the_hashed_upload_path() {
        // md5("Example.jpg") = a9c4..., the path Commons serves it under.
        assert_eq!(
            commons_content_url("File:Example.jpg").as_deref(),
            Some("https://upload.wikimedia.org/wikipedia/commons/a/a9/Example.jpg")
        );
        assert_eq!(commons_content_url("Q42"), None);
    }
}
