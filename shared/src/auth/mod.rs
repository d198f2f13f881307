//! Authentication: accounts, passwords, tokens and login throttling.
//!
//! Nothing here reads a clock, draws randomness or touches storage: the
//! auth component passes `now` (unix seconds) and random bytes from WASI,
//! and reads and writes the records these types describe under the keys in
//! [`keys`].
//!
//! Layout:
//! - [`username`]: normalisation and validation.
//! - [`password`]: Argon2id hashing, verification, the dummy hash, policy.
//! - [`signing`]: Ed25519 key loading and generation.
//! - [`jwt`]: EdDSA-only JWT signing and strict verification.
//! - [`token`]: the WME token set, sessions and opaque refresh tokens.
//! - [`account`]: the account record and the get-user response.
//! - [`requests`]: the auth request bodies and their validation.
//! - [`throttle`]: login throttling per username and per client address.
//! - [`keys`]: key-value key names.
//! - [`signup`]: self-service sign-up, confirmation and reset codes, rate windows, mail.
//! - [`pow`]: the sign-up proof-of-work challenge.
//! - [`session_record`]: the stored session with the account state verification needs.
//! - [`session_index`]: an account's sessions, to propagate account changes.
//! - [`directory`]: the list of usernames, for the admin listing.

pub mod account;
pub mod directory;
pub mod jwt;
pub mod keys;
pub mod password;
pub mod pow;
pub mod requests;
pub mod session_index;
pub mod session_record;
pub mod signing;
pub mod signup;
pub mod throttle;
pub mod token;
pub mod username;
pub mod verify;

pub use account::{Account, Role};
pub use jwt::{Claims, TokenError, TokenType};
pub use requests::{
    ChangePasswordRequest, CreateAccountRequest, LoginRequest, PatchAccountRequest, RefreshRequest,
    RevokeRequest, parse_body,
};
pub use token::{Issuer, LoginResponse, RefreshResponse, Session};
