//! Usernames: case-insensitive, normalised to lowercase, a small alphabet.
//!
//! The alphabet `[a-z0-9._-]` keeps usernames safe inside key-value keys
//! (no `:` separator can appear) and in headers and logs.

use crate::{Error, Result};

/// The shortest allowed username, in characters.
pub const MIN_LEN: usize = 3;
/// The longest allowed username, in characters.
pub const MAX_LEN: usize = 64;

/// Normalises a username: surrounding whitespace removed, lowercased.
pub fn normalize(username: &str) -> String {
    username.trim().to_lowercase()
}

/// Normalises and validates a username, returning the canonical form.
pub fn validate(username: &str) -> Result<String> {
    let name = normalize(username);
    let len = name.chars().count();
    if !(MIN_LEN..=MAX_LEN).contains(&len) {
        return Err(Error::Unprocessable(format!(
            "username must be {MIN_LEN} to {MAX_LEN} characters long"
        )));
    }
    let allowed =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-');
    if !name.chars().all(allowed) {
        return Err(Error::Unprocessable(
            "username may only contain letters a-z, digits, '.', '_' and '-'".into(),
        ));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expect: Option<&str>) {
        match (validate(input), expect) {
            (Ok(got), Some(want)) => assert_eq!(got, want),
            (Err(e), None) => assert_eq!(e.status(), 422, "{input:?}"),
            (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn usernames_are_trimmed_and_lowercased() {
        check("  Alice ", Some("alice"));
        check("BOB.smith_2-x", Some("bob.smith_2-x"));
        check("abc", Some("abc"));
        check(&"a".repeat(64), Some(&"a".repeat(64)));
    }

    #[test]
    fn usernames_outside_the_alphabet_or_length_are_rejected() {
        check("ab", None);
        check("   ab   ", None);
        check(&"a".repeat(65), None);
        check("al ice", None);
        check("alice:admin", None);
        check("alicé", None);
        check("al/ice", None);
        check("", None);
        // Unicode case folding must not smuggle in non-ASCII letters.
        check("ALİCE", None);
    }
}
