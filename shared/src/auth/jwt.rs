//! JSON Web Tokens (RFC 7519) signed with EdDSA over Ed25519, and nothing else.
//!
//! Only the compact serialisation with header `{"alg":"EdDSA","typ":"JWT"}`
//! is produced, and verification is deliberately narrow:
//!
//! - the token is at most [`MAX_TOKEN_LEN`] bytes, exactly three segments
//!   of unpadded base64url with canonical trailing bits, and nothing else
//!   (no whitespace, no padding);
//! - the header may hold only `alg`, `typ` and `kid`, each once; `alg` must
//!   be exactly `EdDSA` (so `none`, `HS256` made with the public key as HMAC
//!   secret and every other algorithm are refused before any key is used),
//!   and any other header, `crit` included, makes the token malformed;
//! - the signature is checked with `verify_strict` (canonical `S`, no
//!   small-order keys), so signatures are not malleable;
//! - `iss` and `aud` must equal the expected values (constant-time
//!   comparison is not needed: they are public), `exp` must be after `now`
//!   with no leeway, `nbf` (if present) at or before `now`, and `iat` at
//!   most [`MAX_CLOCK_SKEW`] seconds in the future;
//! - `aud` is a single string (we never issue the array form, so an array
//!   is malformed).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::account::Role;
use crate::Error;

/// The largest token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// How far in the future `iat` may lie, to absorb clock skew between
/// components; `exp` gets no leeway at all.
pub const MAX_CLOCK_SKEW: i64 = 60;

/// The base64url of the only header we produce: `{"alg":"EdDSA","typ":"JWT"}`.
const HEADER_B64: &str = "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9";

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// Authorises API calls.
    Access,
    /// Identifies the user to the client.
    Id,
    /// Obtains new access tokens (unused when refresh tokens are opaque).
    Refresh,
}

/// The claims wikiedge puts in its tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Subject: the normalised username.
    pub sub: String,
    /// Expiry, unix seconds (the token is invalid from this second on).
    pub exp: i64,
    /// Issued at, unix seconds.
    pub iat: i64,
    /// Not before, unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Token id, unique per token.
    pub jti: String,
    /// The session (refresh token) this token was minted from; revoking the
    /// session revokes the token.
    pub sid: String,
    /// Token type.
    pub typ: TokenType,
    /// The account's role when the token was issued.
    pub role: Role,
    /// The account's plan when the token was issued.
    pub plan: String,
}

/// Why a token was refused. Every variant maps to 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a well-formed compact JWT of ours.
    #[error("token is malformed")]
    Malformed,
    /// The header names an algorithm other than EdDSA.
    #[error("token algorithm is not allowed")]
    BadAlgorithm,
    /// The signature does not verify with our key.
    #[error("token signature is invalid")]
    BadSignature,
    /// `exp` has passed.
    #[error("token has expired")]
    Expired,
    /// `nbf` or `iat` lies in the future.
    #[error("token is not valid yet")]
    NotYetValid,
    /// `iss` is not ours.
    #[error("token issuer is not accepted")]
    WrongIssuer,
    /// `aud` is not this service.
    #[error("token audience is not accepted")]
    WrongAudience,
    /// The token is of another type than required (e.g. an id token used
    /// as an access token).
    #[error("token type is not accepted")]
    WrongType,
}

impl From<TokenError> for Error {
    fn from(err: TokenError) -> Error {
        Error::Unauthorized(err.to_string())
    }
}

/// The header fields we tolerate; anything else (e.g. `crit`, `jku`,
/// `jwk`) makes the token malformed, and so does a repeated field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    kid: Option<String>,
}

/// Signs claims into a compact JWT.
pub fn sign(claims: &Claims, key: &SigningKey) -> String {
    // Serialising a struct of strings and integers cannot fail.
    let payload = serde_json::to_vec(claims).unwrap_or_default();
    let mut token = format!("{HEADER_B64}.{}", URL_SAFE_NO_PAD.encode(payload));
    let signature = key.sign(token.as_bytes());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature.to_bytes()));
    token
}

fn is_b64url(segment: &str) -> bool {
    segment
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn decode(segment: &str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| TokenError::Malformed)
}

/// Verifies a token's form, algorithm, signature, issuer, audience and
/// validity period at `now`, returning its claims.
pub fn verify(
    token: &str,
    key: &VerifyingKey,
    expected_iss: &str,
    expected_aud: &str,
    now: i64,
) -> Result<Claims, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    if header_b64.is_empty()
        || payload_b64.is_empty()
        || ![header_b64, payload_b64, sig_b64]
            .iter()
            .all(|s| is_b64url(s))
    {
        return Err(TokenError::Malformed);
    }
    let header: Header =
        serde_json::from_slice(&decode(header_b64)?).map_err(|_| TokenError::Malformed)?;
    if header.alg != "EdDSA" {
        return Err(TokenError::BadAlgorithm);
    }
    if header.typ.as_deref().is_some_and(|t| t != "JWT") {
        return Err(TokenError::Malformed);
    }
    let sig_bytes =
        <[u8; 64]>::try_from(decode(sig_b64)?.as_slice()).map_err(|_| TokenError::BadSignature)?;
    let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
    key.verify_strict(signing_input.as_bytes(), &Signature::from_bytes(&sig_bytes))
        .map_err(|_| TokenError::BadSignature)?;
    let claims: Claims =
        serde_json::from_slice(&decode(payload_b64)?).map_err(|_| TokenError::Malformed)?;
    if claims.iss != expected_iss {
        return Err(TokenError::WrongIssuer);
    }
    if claims.aud != expected_aud {
        return Err(TokenError::WrongAudience);
    }
    if now >= claims.exp {
        return Err(TokenError::Expired);
    }
    if claims.nbf.is_some_and(|nbf| nbf > now) || claims.iat > now.saturating_add(MAX_CLOCK_SKEW) {
        return Err(TokenError::NotYetValid);
    }
    Ok(claims)
}

/// [`verify`], and additionally require the token type `typ`.
pub fn verify_typed(
    token: &str,
    key: &VerifyingKey,
    expected_iss: &str,
    expected_aud: &str,
    typ: TokenType,
    now: i64,
) -> Result<Claims, TokenError> {
    let claims = verify(token, key, expected_iss, expected_aud, now)?;
    if claims.typ != typ {
        return Err(TokenError::WrongType);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::signing;

    const ISS: &str = "https://wikiedge.example";
    const AUD: &str = "wikiedge";
    const NOW: i64 = 1_700_000_000;

    fn key() -> SigningKey {
        signing::signing_key_from_pem(signing::tests::PRIVATE_PEM).expect("test key")
    }

    fn claims() -> Claims {
        Claims {
            iss: ISS.into(),
            aud: AUD.into(),
            sub: "alice".into(),
            exp: NOW + 86_400,
            iat: NOW,
            nbf: None,
            jti: "s1.0.access".into(),
            sid: "s1".into(),
            typ: TokenType::Access,
            role: Role::User,
            plan: "free".into(),
        }
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Signs arbitrary header and payload JSON with the real key, so that
    /// only the property under test is wrong.
    fn signed(header: &str, payload: &str) -> String {
        let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
        let sig = key().sign(input.as_bytes());
        format!("{input}.{}", b64(&sig.to_bytes()))
    }

    fn payload() -> String {
        serde_json::to_string(&claims()).expect("json")
    }

    fn check(token: &str, expect: Result<(), TokenError>) {
        let got = verify(token, &key().verifying_key(), ISS, AUD, NOW).map(|_| ());
        assert_eq!(got, expect, "token {token}");
    }

    #[test]
    fn a_signed_token_verifies_and_round_trips_its_claims() {
        let token = sign(&claims(), &key());
        assert!(token.starts_with(HEADER_B64));
        assert_eq!(
            verify(&token, &key().verifying_key(), ISS, AUD, NOW),
            Ok(claims())
        );
        let header = URL_SAFE_NO_PAD.decode(HEADER_B64).expect("b64");
        assert_eq!(header, br#"{"alg":"EdDSA","typ":"JWT"}"#);
    }

    #[test]
    fn alg_none_is_refused_with_or_without_a_signature() {
        let unsigned = format!(
            "{}.{}.",
            b64(br#"{"alg":"none","typ":"JWT"}"#),
            b64(payload().as_bytes())
        );
        check(&unsigned, Err(TokenError::BadAlgorithm));
        check(
            &signed(r#"{"alg":"none"}"#, &payload()),
            Err(TokenError::BadAlgorithm),
        );
        check(
            &signed(r#"{"alg":"None"}"#, &payload()),
            Err(TokenError::BadAlgorithm),
        );
    }

    #[test]
    fn every_other_algorithm_is_refused() {
        for alg in ["HS256", "RS256", "ES256", "EDDSA", "Ed25519", "eddsa", ""] {
            let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
            check(&signed(&header, &payload()), Err(TokenError::BadAlgorithm));
        }
    }

    #[test]
    fn hs256_signed_with_the_public_key_is_refused() {
        let public = key().verifying_key();
        let secrets: [Vec<u8>; 2] = [
            public.as_bytes().to_vec(),
            signing::public_key_b64(&public).into_bytes(),
        ];
        for secret in secrets {
            let input = format!(
                "{}.{}",
                b64(br#"{"alg":"HS256","typ":"JWT"}"#),
                b64(payload().as_bytes())
            );
            let forged = format!(
                "{input}.{}",
                b64(&crate::auth::pow::hmac_sha256(&secret, input.as_bytes()))
            );
            check(&forged, Err(TokenError::BadAlgorithm));
        }
    }

    #[test]
    fn a_crit_header_or_any_unknown_header_is_refused() {
        check(
            &signed(r#"{"alg":"EdDSA","crit":["exp"],"exp":1}"#, &payload()),
            Err(TokenError::Malformed),
        );
        check(
            &signed(r#"{"alg":"EdDSA","crit":null}"#, &payload()),
            Err(TokenError::Malformed),
        );
        check(
            &signed(r#"{"alg":"EdDSA","jku":"https://evil"}"#, &payload()),
            Err(TokenError::Malformed),
        );
        check(
            &signed(r#"{"alg":"EdDSA","typ":"JWE"}"#, &payload()),
            Err(TokenError::Malformed),
        );
        check(&signed(r#"{"alg":"EdDSA","kid":"k1"}"#, &payload()), Ok(()));
    }

    #[test]
    fn a_repeated_header_field_is_refused() {
        check(
            &signed(r#"{"alg":"none","alg":"EdDSA"}"#, &payload()),
            Err(TokenError::Malformed),
        );
    }

    #[test]
    fn a_tampered_payload_or_header_fails_the_signature() {
        let token = sign(&claims(), &key());
        let parts: Vec<&str> = token.split('.').collect();
        let mut admin = claims();
        admin.role = Role::Admin;
        let payload = b64(&serde_json::to_vec(&admin).expect("json"));
        check(
            &format!("{}.{payload}.{}", parts[0], parts[2]),
            Err(TokenError::BadSignature),
        );
        let header = b64(br#"{"alg":"EdDSA","typ":"JWT","kid":"x"}"#);
        check(
            &format!("{header}.{}.{}", parts[1], parts[2]),
            Err(TokenError::BadSignature),
        );
        let other = SigningKey::from_bytes(&[9; 32]);
        check(&sign(&claims(), &other), Err(TokenError::BadSignature));
        check(
            &format!("{}.{}.", parts[0], parts[1]),
            Err(TokenError::BadSignature),
        );
    }

    #[test]
    fn a_malleated_signature_with_s_plus_l_is_refused() {
        // The order of the Ed25519 group, little-endian.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let token = sign(&claims(), &key());
        let (input, sig) = token.rsplit_once('.').expect("three parts");
        let mut sig = URL_SAFE_NO_PAD.decode(sig).expect("b64");
        let mut carry = 0u16;
        for (i, l) in L.iter().enumerate() {
            let sum = u16::from(sig[32 + i]) + u16::from(*l) + carry;
            sig[32 + i] = sum as u8;
            carry = sum >> 8;
        }
        check(
            &format!("{input}.{}", b64(&sig)),
            Err(TokenError::BadSignature),
        );
    }

    #[test]
    fn oversized_tokens_are_refused_even_when_validly_signed() {
        let mut big = claims();
        big.plan = "x".repeat(MAX_TOKEN_LEN);
        check(&sign(&big, &key()), Err(TokenError::Malformed));
        big.plan = "x".repeat(4000);
        check(&sign(&big, &key()), Ok(()));
    }

    #[test]
    fn padding_whitespace_and_foreign_characters_are_refused() {
        let token = sign(&claims(), &key());
        let (h, rest) = token.split_once('.').expect("dot");
        check(&format!(" {token}"), Err(TokenError::Malformed));
        check(&format!("{token}\n"), Err(TokenError::Malformed));
        check(&format!("{h}=.{rest}"), Err(TokenError::Malformed));
        check(&format!("{token}="), Err(TokenError::Malformed));
        check(
            &format!("{h}.{}", rest.replacen('.', ".\t", 1)),
            Err(TokenError::Malformed),
        );
        check(
            &token
                .replace('_', "/")
                .replace('-', "+")
                .replacen('e', "+", 1),
            Err(TokenError::Malformed),
        );
        check(&format!("{token}.x"), Err(TokenError::Malformed));
        check(&format!("{h}.{rest}.x.y"), Err(TokenError::Malformed));
        check("", Err(TokenError::Malformed));
        check("..", Err(TokenError::Malformed));
    }

    #[test]
    fn a_non_canonical_final_base64_character_is_refused() {
        let token = sign(&claims(), &key());
        // 64 bytes encode to 86 characters; the last carries 2 unused bits.
        let last = token.chars().last().expect("non-empty");
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let index = alphabet.find(last).expect("b64url");
        let twin = alphabet.as_bytes()[index ^ 1] as char;
        let forged = format!("{}{twin}", &token[..token.len() - 1]);
        assert_ne!(forged, token);
        let got = verify(&forged, &key().verifying_key(), ISS, AUD, NOW);
        assert!(got.is_err(), "non-canonical encoding accepted");
    }

    #[test]
    fn expiry_has_no_leeway() {
        let mut c = claims();
        c.exp = NOW;
        check(&sign(&c, &key()), Err(TokenError::Expired));
        c.exp = NOW + 1;
        check(&sign(&c, &key()), Ok(()));
    }

    #[test]
    fn tokens_from_the_future_are_not_valid_yet() {
        let mut c = claims();
        c.nbf = Some(NOW + 1);
        check(&sign(&c, &key()), Err(TokenError::NotYetValid));
        c.nbf = Some(NOW);
        check(&sign(&c, &key()), Ok(()));
        c.iat = NOW + MAX_CLOCK_SKEW + 1;
        check(&sign(&c, &key()), Err(TokenError::NotYetValid));
    }

    #[test]
    fn issuer_audience_and_type_must_match() {
        let token = sign(&claims(), &key());
        let public = key().verifying_key();
        assert_eq!(
            verify(&token, &public, "https://evil", AUD, NOW),
            Err(TokenError::WrongIssuer)
        );
        assert_eq!(
            verify(&token, &public, ISS, "other", NOW),
            Err(TokenError::WrongAudience)
        );
        assert_eq!(
            verify_typed(&token, &public, ISS, AUD, TokenType::Id, NOW),
            Err(TokenError::WrongType)
        );
        assert!(verify_typed(&token, &public, ISS, AUD, TokenType::Access, NOW).is_ok());
    }

    #[test]
    fn an_audience_array_is_malformed() {
        let p = payload().replacen("\"aud\":\"wikiedge\"", "\"aud\":[\"wikiedge\"]", 1);
        assert_ne!(p, payload());
        check(
            &signed(r#"{"alg":"EdDSA"}"#, &p),
            Err(TokenError::Malformed),
        );
    }

    #[test]
    fn token_errors_become_401s() {
        let err: Error = TokenError::Expired.into();
        assert_eq!(err, Error::Unauthorized("token has expired".into()));
    }

    #[test]
    fn claims_with_a_repeated_field_are_refused() {
        let p = payload().replacen("\"sub\":\"alice\"", "\"sub\":\"alice\",\"sub\":\"root\"", 1);
        check(
            &signed(r#"{"alg":"EdDSA"}"#, &p),
            Err(TokenError::Malformed),
        );
    }
}
