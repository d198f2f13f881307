//! Ed25519 signing keys: loading from PEM or a base64 seed, and generating.
//!
//! The auth component holds the private key (a Spin variable marked
//! `secret = true`); every other component only needs the public key to
//! verify tokens. Two encodings are accepted, the ones a Spin variable
//! would hold: a PKCS#8 PEM (`openssl genpkey -algorithm ed25519`), or the
//! raw 32-byte seed (or public key) in standard or URL-safe base64.
//! A key that fails to load is our misconfiguration, hence `Error::Internal`.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::{Error, Result};

/// Extracts and decodes the base64 body of a PEM block with this label.
fn pem_body(pem: &str, label: &str) -> Result<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let text = pem.trim();
    let inner = text
        .strip_prefix(begin.as_str())
        .and_then(|rest| rest.strip_suffix(end.as_str()))
        .ok_or_else(|| Error::Internal(format!("key is not a '{label}' PEM block")))?;
    let b64: String = inner.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD
        .decode(b64)
        .map_err(|e| Error::Internal(format!("PEM body is not base64: {e}")))
}

/// Decodes 32 bytes from standard or URL-safe base64 (padding optional).
fn decode_32(b64: &str) -> Result<[u8; 32]> {
    let text = b64.trim();
    let bytes = STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
        .map_err(|e| Error::Internal(format!("key is not base64: {e}")))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| Error::Internal(format!("key must be 32 bytes, got {}", bytes.len())))
}

/// Loads a signing key from a PKCS#8 `PRIVATE KEY` PEM.
pub fn signing_key_from_pem(pem: &str) -> Result<SigningKey> {
    let der = pem_body(pem, "PRIVATE KEY")?;
    SigningKey::from_pkcs8_der(&der).map_err(|e| Error::Internal(format!("PKCS#8 key: {e}")))
}

/// Loads a signing key from its 32-byte seed in base64.
pub fn signing_key_from_seed_b64(b64: &str) -> Result<SigningKey> {
    Ok(SigningKey::from_bytes(&decode_32(b64)?))
}

/// Loads a signing key from either a PEM or a base64 seed, whichever the
/// variable holds.
pub fn signing_key_from_config(value: &str) -> Result<SigningKey> {
    if value.trim_start().starts_with("-----BEGIN") {
        signing_key_from_pem(value)
    } else {
        signing_key_from_seed_b64(value)
    }
}

/// Builds a signing key from 32 random bytes provided by the caller.
pub fn generate(random: [u8; 32]) -> SigningKey {
    SigningKey::from_bytes(&random)
}

/// Loads a verifying key from an SPKI `PUBLIC KEY` PEM.
pub fn verifying_key_from_pem(pem: &str) -> Result<VerifyingKey> {
    let der = pem_body(pem, "PUBLIC KEY")?;
    VerifyingKey::from_public_key_der(&der).map_err(|e| Error::Internal(format!("SPKI key: {e}")))
}

/// Loads a verifying key from the raw 32-byte public key in base64; weak
/// (small-order) keys are rejected.
pub fn verifying_key_from_b64(b64: &str) -> Result<VerifyingKey> {
    let key = VerifyingKey::from_bytes(&decode_32(b64)?)
        .map_err(|e| Error::Internal(format!("public key: {e}")))?;
    if key.is_weak() {
        return Err(Error::Internal(
            "public key is a weak (small-order) point".into(),
        ));
    }
    Ok(key)
}

/// Loads a verifying key from either a PEM or raw base64.
pub fn verifying_key_from_config(value: &str) -> Result<VerifyingKey> {
    if value.trim_start().starts_with("-----BEGIN") {
        verifying_key_from_pem(value)
    } else {
        verifying_key_from_b64(value)
    }
}

/// The raw public key in standard base64, the form to publish to the
/// verifying components.
pub fn public_key_b64(key: &VerifyingKey) -> String {
    STANDARD.encode(key.as_bytes())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Made with `openssl genpkey -algorithm ed25519`.
    pub(crate) const PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIIwHLta2HiA4OmXxanOWXju4pnMC4Xvv9Ta4nHNk9kMO
-----END PRIVATE KEY-----
";
    /// `openssl pkey -pubout` of [`PRIVATE_PEM`].
    const PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEA4l0zOyvun5sIAmxruPQ8iwIzPeVbHdGOqT+615+hwco=
-----END PUBLIC KEY-----";
    const SEED_B64: &str = "jAcu1rYeIDg6ZfFqc5ZeO7imcwLhe+/1Nricc2T2Qw4=";
    const PUBLIC_B64: &str = "4l0zOyvun5sIAmxruPQ8iwIzPeVbHdGOqT+615+hwco=";

    #[test]
    fn an_openssl_pem_and_its_seed_give_the_same_key() {
        let from_pem = signing_key_from_pem(PRIVATE_PEM).expect("pem");
        let from_seed = signing_key_from_seed_b64(SEED_B64).expect("seed");
        assert_eq!(from_pem.to_bytes(), from_seed.to_bytes());
        assert_eq!(public_key_b64(&from_pem.verifying_key()), PUBLIC_B64);
        assert_eq!(
            signing_key_from_config(PRIVATE_PEM).ok(),
            Some(from_pem.clone())
        );
        let url_safe = SEED_B64.replace('+', "-").replace('/', "_");
        assert_eq!(signing_key_from_config(&url_safe).ok(), Some(from_seed));
    }

    #[test]
    fn public_keys_load_from_pem_and_base64() {
        let a = verifying_key_from_pem(PUBLIC_PEM).expect("pem");
        let b = verifying_key_from_config(PUBLIC_B64).expect("b64");
        assert_eq!(a, b);
    }

    #[test]
    fn malformed_keys_are_configuration_errors() {
        for bad in [
            "",
            "abc",
            "AAAA",
            "-----BEGIN PRIVATE KEY-----\n!!\n-----END PRIVATE KEY-----",
        ] {
            assert_eq!(
                signing_key_from_config(bad).map_err(|e| e.status()).err(),
                Some(500),
                "{bad}"
            );
        }
        assert!(signing_key_from_pem(PUBLIC_PEM).is_err());
        // The identity point is a small-order key that verifies forgeries.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(verifying_key_from_b64(&STANDARD.encode(identity)).is_err());
    }

    #[test]
    fn generated_keys_come_from_the_callers_randomness() {
        assert_eq!(generate([7; 32]).to_bytes(), [7; 32]);
        assert_ne!(
            generate([7; 32]).verifying_key(),
            generate([8; 32]).verifying_key()
        );
    }
}
