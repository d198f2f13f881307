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
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    let k: Vec<u32> = (0..64)
        .map(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32)
        .collect();
    let mut state: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    let mut message = input.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&((input.len() as u64).wrapping_mul(8)).to_le_bytes());
    for block in message.chunks_exact(64) {
        let m: Vec<u32> = block
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let [mut a, mut b, mut c, mut d] = state;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let rotated = a
                .wrapping_add(f)
                .wrapping_add(k[i])
                .wrapping_add(m[g])
                .rotate_left(S[i]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(rotated);
        }
        for (s, v) in state.iter_mut().zip([a, b, c, d]) {
            *s = s.wrapping_add(v);
        }
    }
    let mut out = [0u8; 16];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
