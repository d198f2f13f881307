//! What self-service sign-up stores or sends: a code and its
//! [`PendingCode`] record (HMAC-SHA256 of the code, expiry, wrong tries),
//! the [`Mail`] that carries it, the dev [`Outbox`] and the webhook's
//! signature. The rules that decide when they are made are in
//! [`super`].

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::{CODE_DIGITS, MAX_CODE_TRIES, Purpose};
use crate::Error;
use crate::auth::pow::{hex, hmac_sha256};

/// The one answer for a wrong, expired, used or unknown code: which of
/// them it was is not told.
pub fn invalid_code() -> Error {
    Error::Unprocessable("Invalid or expired confirmation code".into())
}

/// An 8-digit code from 8 random bytes (the modulo bias is below 2^-30).
pub fn new_code(random: &[u8; 8]) -> String {
    let n = u64::from_be_bytes(*random) % 10u64.pow(CODE_DIGITS);
    format!("{n:0width$}", width = CODE_DIGITS as usize)
}

/// The stored form of a code.
pub fn code_hash(secret: &[u8], purpose: Purpose, username: &str, code: &str) -> String {
    let message = format!("{}:{username}:{}", purpose.as_str(), code.trim());
    hex(&hmac_sha256(secret, message.as_bytes()))
}

/// A code waiting to be used, stored under [`code_key`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCode {
    /// [`code_hash`] of the code.
    pub hash: String,
    /// Unix seconds after which it is refused.
    pub expires: i64,
    /// Wrong tries so far.
    #[serde(default)]
    pub tries: u32,
}

/// What checking a code against a [`PendingCode`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeCheck {
    /// Right and in time: delete the record and act.
    Accepted,
    /// Wrong: store the record with the try counted.
    Wrong(PendingCode),
    /// Expired or out of tries: delete the record.
    Dead,
}

impl PendingCode {
    /// A code issued at `now`, valid for `ttl` seconds.
    pub fn new(
        secret: &[u8],
        purpose: Purpose,
        username: &str,
        code: &str,
        now: i64,
        ttl: i64,
    ) -> Self {
        PendingCode {
            hash: code_hash(secret, purpose, username, code),
            expires: now.saturating_add(ttl),
            tries: 0,
        }
    }

    /// Checks `code` at `now` (in constant time against the hash).
    pub fn check(
        &self,
        secret: &[u8],
        purpose: Purpose,
        username: &str,
        code: &str,
        now: i64,
    ) -> CodeCheck {
        if now > self.expires || self.tries >= MAX_CODE_TRIES {
            return CodeCheck::Dead;
        }
        let given = code_hash(secret, purpose, username, code);
        if bool::from(given.as_bytes().ct_eq(self.hash.as_bytes())) {
            return CodeCheck::Accepted;
        }
        let mut next = self.clone();
        next.tries += 1;
        if next.tries >= MAX_CODE_TRIES {
            CodeCheck::Dead
        } else {
            CodeCheck::Wrong(next)
        }
    }

    /// Parses a stored record; a corrupt one counts as no code.
    pub fn from_json(bytes: &[u8]) -> Option<PendingCode> {
        serde_json::from_slice(bytes).ok()
    }

    /// The record as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// A message carrying a code: what the mail webhook receives as its JSON
/// body and what the dev outbox stores (see docs/signup.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    /// The recipient address.
    pub to: String,
    /// The account.
    pub username: String,
    /// `confirm` or `reset`.
    pub purpose: Purpose,
    /// The code in clear.
    pub code: String,
    /// When the code expires, unix seconds.
    pub expires: i64,
    /// A subject line.
    pub subject: String,
    /// A plain-text body.
    pub text: String,
    /// When it was queued, unix seconds.
    pub created: i64,
}

impl Mail {
    /// The message for a code.
    pub fn new(
        to: &str,
        username: &str,
        purpose: Purpose,
        code: &str,
        expires: i64,
        now: i64,
    ) -> Mail {
        let minutes = (expires - now).max(0) / 60;
        let (subject, what) = match purpose {
            Purpose::Confirm => ("Confirm your wikiedge account", "confirm your new account"),
            Purpose::Reset => ("Reset your wikiedge password", "set a new password"),
        };
        Mail {
            to: to.to_string(),
            username: username.to_string(),
            purpose,
            code: code.to_string(),
            expires,
            subject: subject.to_string(),
            text: format!(
                "Hello {username},\n\nyour code to {what} is {code}. It expires in {minutes} \
                 minutes and works once.\n\nIf you did not ask for it, ignore this message.\n"
            ),
            created: now,
        }
    }
}

/// The dev outbox: the latest messages, newest last, at most
/// [`Outbox::CAP`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbox {
    /// The messages.
    pub messages: Vec<Mail>,
}

impl Outbox {
    /// Its key.
    pub const KEY: &'static str = "dev-outbox";
    /// Messages kept.
    pub const CAP: usize = 200;

    /// Appends a message, dropping the oldest beyond the cap.
    pub fn push(&mut self, mail: Mail) {
        self.messages.push(mail);
        let excess = self.messages.len().saturating_sub(Self::CAP);
        self.messages.drain(..excess);
    }

    /// Parses a stored outbox; a corrupt one starts over.
    pub fn from_json(bytes: &[u8]) -> Outbox {
        serde_json::from_slice(bytes).unwrap_or_default()
    }

    /// As JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The `X-Wikiedge-Signature` of a webhook body:
/// `sha256=` and the hex HMAC-SHA256 of the body under the secret.
pub fn webhook_signature(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex(&hmac_sha256(secret.as_bytes(), body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"k";

    #[test]
    fn codes_are_eight_digits_from_the_random_bytes() {
        assert_eq!(new_code(&[0; 8]), "00000000");
        assert_eq!(new_code(&[0, 0, 0, 0, 0, 0, 0, 42]), "00000042");
        let code = new_code(&[0xff; 8]);
        assert_eq!(code.len(), 8);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        assert_ne!(new_code(&[1; 8]), new_code(&[2; 8]));
    }

    #[test]
    fn a_code_is_stored_hashed_and_bound_to_purpose_and_account() {
        let pending = PendingCode::new(SECRET, Purpose::Confirm, "bob", "12345678", 100, 60);
        assert!(
            !String::from_utf8(pending.to_json())
                .expect("utf8")
                .contains("12345678")
        );
        assert_eq!(
            pending.check(SECRET, Purpose::Confirm, "bob", "12345678", 160),
            CodeCheck::Accepted
        );
        assert!(matches!(
            pending.check(SECRET, Purpose::Reset, "bob", "12345678", 100),
            CodeCheck::Wrong(_)
        ));
        assert!(matches!(
            pending.check(SECRET, Purpose::Confirm, "eve", "12345678", 100),
            CodeCheck::Wrong(_)
        ));
        assert!(matches!(
            pending.check(b"other", Purpose::Confirm, "bob", "12345678", 100),
            CodeCheck::Wrong(_)
        ));
    }

    #[test]
    fn a_code_expires_and_dies_after_too_many_wrong_tries() {
        let mut pending = PendingCode::new(SECRET, Purpose::Reset, "bob", "12345678", 100, 60);
        assert_eq!(
            pending.check(SECRET, Purpose::Reset, "bob", "12345678", 161),
            CodeCheck::Dead
        );
        for tried in 1..MAX_CODE_TRIES {
            match pending.check(SECRET, Purpose::Reset, "bob", "00000000", 100) {
                CodeCheck::Wrong(next) => {
                    assert_eq!(next.tries, tried);
                    pending = next;
                }
                other => panic!("try {tried}: {other:?}"),
            }
        }
        assert_eq!(
            pending.check(SECRET, Purpose::Reset, "bob", "00000000", 100),
            CodeCheck::Dead
        );
        pending.tries = MAX_CODE_TRIES;
        assert_eq!(
            pending.check(SECRET, Purpose::Reset, "bob", "12345678", 100),
            CodeCheck::Dead
        );
    }

    #[test]
    fn mail_names_the_code_and_the_outbox_is_capped() {
        let mail = Mail::new("a@b.org", "bob", Purpose::Confirm, "01234567", 1000, 100);
        assert!(mail.text.contains("01234567") && mail.text.contains("15 minutes"));
        let mut outbox = Outbox::default();
        for i in 0..Outbox::CAP + 3 {
            let mut m = mail.clone();
            m.created = i as i64;
            outbox.push(m);
        }
        assert_eq!(outbox.messages.len(), Outbox::CAP);
        assert_eq!(outbox.messages[0].created, 3);
        assert_eq!(Outbox::from_json(&outbox.to_json()), outbox);
        assert_eq!(Outbox::from_json(b"junk"), Outbox::default());
    }

    #[test]
    fn webhook_signatures_are_hmacs_of_the_body() {
        let sig = webhook_signature("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
