//! The sign-up proof of work: a challenge the server signs and a solution
//! the client finds by brute force, verified with one hash.
//!
//! `GET /v1/signup-challenge` issues a challenge (WME's captcha
//! `identifier`); `POST /v1/create-user` carries it as `captcha_id` and the
//! solution as `captcha_solution`. A solution is a decimal nonce such that
//! `sha256(challenge || nonce)` (both as their UTF-8 text) starts with at
//! least `difficulty` zero bits. The challenge is
//! `v1.{issued}.{difficulty}.{id}.{mac}` where `mac` is
//! HMAC-SHA256(secret, `v1.{issued}.{difficulty}.{id}`) in hex: the server
//! keeps no state until the solution comes back, and the difficulty a
//! client solved cannot be lowered. Single use is the caller's job: it
//! claims [`Challenge::id`] with an atomic increment.
//!
//! Nothing here reads a clock or draws randomness: the caller passes `now`
//! and 16 random bytes.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{Error, Result};

/// How long a challenge may be solved, in seconds.
pub const MAX_AGE: i64 = 600;
/// The largest difficulty a deployment may set (2^32 hashes on average).
pub const MAX_DIFFICULTY: u8 = 32;
/// The longest solution accepted, in characters.
pub const MAX_SOLUTION_LEN: usize = 32;

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The number of leading zero bits of a digest.
pub fn leading_zero_bits(digest: &[u8]) -> u32 {
    let mut bits = 0;
    for byte in digest {
        if *byte == 0 {
            bits += 8;
        } else {
            return bits + byte.leading_zeros();
        }
    }
    bits
}

/// Parses the `signup_pow_difficulty` variable (0 to [`MAX_DIFFICULTY`]).
pub fn parse_difficulty(value: &str) -> Result<u8> {
    value
        .trim()
        .parse::<u8>()
        .ok()
        .filter(|d| *d <= MAX_DIFFICULTY)
        .ok_or_else(|| {
            Error::Internal(format!(
                "signup_pow_difficulty must be 0 to {MAX_DIFFICULTY}, not {value:?}"
            ))
        })
}

/// The `GET /v1/signup-challenge` response.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChallengeResponse {
    /// The challenge (WME's captcha `identifier`; send it as `captcha_id`).
    pub identifier: String,
    /// The zero bits `sha256(identifier || nonce)` must start with.
    pub difficulty: u8,
    /// Seconds the challenge stays solvable.
    pub expires_in: i64,
    /// How to solve it, for humans.
    pub algorithm: String,
}

/// Issues a challenge at `now` with the given difficulty.
pub fn issue(secret: &[u8], random: &[u8; 16], now: i64, difficulty: u8) -> ChallengeResponse {
    let body = format!("v1.{now}.{difficulty}.{}", hex(random));
    let mac = hex(&hmac_sha256(secret, body.as_bytes()));
    ChallengeResponse {
        identifier: format!("{body}.{mac}"),
        difficulty,
        expires_in: MAX_AGE,
        algorithm: "find a decimal nonce such that sha256(identifier || nonce) starts with \
                    `difficulty` zero bits; send captcha_id=identifier, captcha_solution=nonce"
            .into(),
    }
}

/// A verified challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Its random part (hex), to claim for single use.
    pub id: String,
    /// When it was issued.
    pub issued: i64,
}

fn invalid() -> Error {
    Error::Unprocessable("captcha_solution is not a valid proof of work".into())
}

/// Checks a challenge and its solution at `now`: the signature, the age
/// and the hash. Every failure is the same 422.
pub fn verify(secret: &[u8], challenge: &str, solution: &str, now: i64) -> Result<Challenge> {
    let (body, mac) = challenge.rsplit_once('.').ok_or_else(invalid)?;
    let expected = hex(&hmac_sha256(secret, body.as_bytes()));
    if !bool::from(expected.as_bytes().ct_eq(mac.as_bytes())) {
        return Err(invalid());
    }
    let mut parts = body.split('.');
    let (Some("v1"), Some(issued), Some(difficulty), Some(id), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(invalid());
    };
    let issued: i64 = issued.parse().map_err(|_| invalid())?;
    let difficulty: u32 = difficulty.parse().map_err(|_| invalid())?;
    if now < issued - 5 || now - issued > MAX_AGE {
        return Err(Error::Unprocessable(
            "captcha_id has expired; get a new challenge".into(),
        ));
    }
    if solution.is_empty()
        || solution.len() > MAX_SOLUTION_LEN
        || !solution.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(invalid());
    }
    if work(challenge, solution) < difficulty {
        return Err(invalid());
    }
    Ok(Challenge {
        id: id.to_string(),
        issued,
    })
}

/// The work a nonce shows for a challenge: the leading zero bits of
/// SHA-256(challenge ‖ nonce).
pub fn work(challenge: &str, nonce: &str) -> u32 {
    let digest = Sha256::new()
        .chain_update(challenge.as_bytes())
        .chain_update(nonce.as_bytes())
        .finalize();
    leading_zero_bits(&digest)
}

/// Finds a solution by brute force (for tests and native clients).
pub fn solve(challenge: &str, difficulty: u8) -> String {
    (0u64..)
        .map(|n| n.to_string())
        .find(|nonce| work(challenge, nonce) >= u32::from(difficulty))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"server secret";
    const RANDOM: [u8; 16] = [7; 16];

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block is hashed first.
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            hex(&mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn leading_zero_bits_counts_across_bytes() {
        assert_eq!(leading_zero_bits(&[0x80]), 0);
        assert_eq!(leading_zero_bits(&[0x01]), 7);
        assert_eq!(leading_zero_bits(&[0, 0x10]), 11);
        assert_eq!(leading_zero_bits(&[0, 0]), 16);
    }

    #[test]
    fn a_solved_challenge_verifies_and_names_its_id() {
        let issued = issue(SECRET, &RANDOM, 1000, 8);
        let nonce = solve(&issued.identifier, 8);
        let ok = verify(SECRET, &issued.identifier, &nonce, 1010).expect("valid");
        assert_eq!(ok.id, hex(&RANDOM));
        assert_eq!(ok.issued, 1000);
    }

    #[test]
    fn wrong_solutions_signatures_difficulties_and_ages_are_refused() {
        let issued = issue(SECRET, &RANDOM, 1000, 12);
        let id = &issued.identifier;
        let nonce = solve(id, 12);
        let status = |r: Result<Challenge>| r.map_err(|e| e.status()).map(|_| ());
        // A nonce that does not reach the difficulty.
        let bad = (0u64..)
            .map(|n| n.to_string())
            .find(|n| work(id, n) < 12)
            .expect("some nonce fails");
        assert_eq!(status(verify(SECRET, id, &bad, 1000)), Err(422));
        // Another secret, a tampered difficulty, a non-digit solution.
        assert_eq!(status(verify(b"other", id, &nonce, 1000)), Err(422));
        let lowered = id.replacen(".12.", ".0.", 1);
        assert_eq!(status(verify(SECRET, &lowered, "0", 1000)), Err(422));
        assert_eq!(status(verify(SECRET, id, "", 1000)), Err(422));
        assert_eq!(status(verify(SECRET, id, "12a", 1000)), Err(422));
        assert_eq!(status(verify(SECRET, "garbage", "1", 1000)), Err(422));
        // Too old, or from the future.
        assert_eq!(
            status(verify(SECRET, id, &nonce, 1000 + MAX_AGE + 1)),
            Err(422)
        );
        assert_eq!(status(verify(SECRET, id, &nonce, 900)), Err(422));
        assert_eq!(status(verify(SECRET, id, &nonce, 1000 + MAX_AGE)), Ok(()));
    }

    #[test]
    fn difficulty_variable_is_bounded() {
        assert_eq!(parse_difficulty(" 16 "), Ok(16));
        assert_eq!(parse_difficulty("0"), Ok(0));
        assert!(parse_difficulty("33").is_err());
        assert!(parse_difficulty("x").is_err());
    }
}
