//! Passwords: Argon2id PHC strings with OWASP parameters, and the policy.
//!
//! Parameters follow the OWASP Password Storage Cheat Sheet's Argon2id
//! baseline: m = 19456 KiB (19 MiB), t = 2, p = 1. The salt is passed in by
//! the caller (16 random bytes from WASI), which keeps this module
//! deterministic and testable. Verification parses the PHC string and
//! compares the derived hash in constant time (the `password-hash` crate
//! compares outputs with `subtle`).
//!
//! To keep login timing independent of whether the username exists, a
//! handler that finds no account calls [`verify_dummy`], which runs the same
//! Argon2id computation against [`DUMMY_HASH`] and always returns `false`.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::{Error, Result};

/// Memory cost in KiB (OWASP: 19 MiB).
pub const M_COST: u32 = 19_456;
/// Iterations (OWASP: 2).
pub const T_COST: u32 = 2;
/// Parallelism (OWASP: 1).
pub const P_COST: u32 = 1;
/// The shortest allowed password, in characters.
pub const MIN_LEN: usize = 8;
/// The longest allowed password, in characters.
pub const MAX_LEN: usize = 256;

/// A valid Argon2id PHC string with the OWASP parameters, of a random
/// password nobody knows; used by [`verify_dummy`].
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$ciNmqrBflfZvoYIB/3cqIw$pJFhmUYuyLaVPopaBtMYEZ7CYZPJMf3TYkHGSp5qWok";

fn argon2() -> Result<Argon2<'static>> {
    let params = Params::new(M_COST, T_COST, P_COST, None)
        .map_err(|e| Error::Internal(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Checks the password policy: 8 to 256 characters.
pub fn validate_policy(password: &str) -> Result<()> {
    let len = password.chars().count();
    if !(MIN_LEN..=MAX_LEN).contains(&len) {
        return Err(Error::Unprocessable(format!(
            "password must be {MIN_LEN} to {MAX_LEN} characters long"
        )));
    }
    Ok(())
}

/// Hashes a password into an Argon2id PHC string with the given salt.
pub fn hash(password: &str, salt: &[u8; 16]) -> Result<String> {
    let salt =
        SaltString::encode_b64(salt).map_err(|e| Error::Internal(format!("argon2 salt: {e}")))?;
    let hash = argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| Error::Internal(format!("argon2 hash: {e}")))?;
    Ok(hash.to_string())
}

/// Verifies a password against a stored PHC string in constant time.
///
/// A wrong password is `Ok(false)`; a stored hash that does not parse or is
/// not Argon2id is an internal error (the store holds garbage).
pub fn verify(password: &str, phc: &str) -> Result<bool> {
    let parsed =
        PasswordHash::new(phc).map_err(|e| Error::Internal(format!("stored hash: {e}")))?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(Error::Internal(format!(
            "stored hash uses {}, expected argon2id",
            parsed.algorithm
        )));
    }
    match argon2()?.verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(Error::Internal(format!("argon2 verify: {e}"))),
    }
}

/// Spends the same time as [`verify`] of a real account and returns `false`,
/// so an unknown username cannot be told from a wrong password by timing.
pub fn verify_dummy(password: &str) -> bool {
    // The result is deliberately ignored: no password matches the dummy.
    let _ = verify(password, DUMMY_HASH);
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: [u8; 16] = *b"0123456789abcdef";

    #[test]
    fn a_hash_is_an_argon2id_phc_string_with_owasp_parameters() {
        let phc = hash("correct horse", &SALT).expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(
            hash("correct horse", &SALT).ok(),
            Some(phc.clone()),
            "deterministic for a salt"
        );
        assert_ne!(hash("correct horse", b"fedcba9876543210").ok(), Some(phc));
    }

    #[test]
    fn the_right_password_verifies_and_a_wrong_one_does_not() {
        let phc = hash("correct horse", &SALT).expect("hash");
        assert_eq!(verify("correct horse", &phc), Ok(true));
        assert_eq!(verify("correct horsE", &phc), Ok(false));
        assert_eq!(verify("", &phc), Ok(false));
    }

    #[test]
    fn a_corrupt_or_foreign_stored_hash_is_an_internal_error() {
        assert_eq!(verify("x", "not a hash").map_err(|e| e.status()), Err(500));
        let argon2i = "$argon2i$v=19$m=16,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$dGVzdHRlc3R0ZXN0dGVzdA";
        assert_eq!(verify("x", argon2i).map_err(|e| e.status()), Err(500));
    }

    #[test]
    fn the_dummy_hash_is_a_real_hash_with_the_same_cost() {
        let parsed = PasswordHash::new(DUMMY_HASH).expect("dummy parses");
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        assert_eq!(parsed.params.get_decimal("m"), Some(M_COST));
        assert_eq!(parsed.params.get_decimal("t"), Some(T_COST));
        assert_eq!(parsed.params.get_decimal("p"), Some(P_COST));
        assert_eq!(verify("password", DUMMY_HASH), Ok(false));
        assert!(!verify_dummy("password"));
    }

    fn check(password: &str, ok: bool) {
        assert_eq!(validate_policy(password).is_ok(), ok, "{password:?}");
    }

    #[test]
    fn passwords_must_be_8_to_256_characters() {
        check("1234567", false);
        check("12345678", true);
        check("ééééééé", false);
        check("éééééééé", true);
        check(&"x".repeat(256), true);
        check(&"x".repeat(257), false);
    }
}
