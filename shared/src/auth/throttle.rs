//! Login throttling, per username and per client address.
//!
//! Every login attempt (and every change-password check of the previous
//! password) first *reserves* itself: an atomic increment of the attempt
//! counter of each dimension, `login-attempts:user:{username}:{window}` and
//! `login-attempts:client:{address}:{window}`, before any password hash is
//! computed. Because the increment is atomic, parallel guesses each get
//! their own number: 32 parallel wrong passwords are 32 attempts, not one.
//!
//! A reservation numbered up to the dimension's allowance
//! ([`MAX_USER_FAILURES`], [`MAX_CLIENT_FAILURES`]) proceeds. Past it, the
//! dimension is locked for a delay that doubles with every further attempt
//! let through — 30 s, 60 s, 120 s ... capped at 15 minutes — counted from
//! the last attempt that proceeded (`login-last-attempt:{dimension}`,
//! written right after the reservation, before hashing). A refused attempt
//! gives its reservation back (a decrement), so attempts during a lockout
//! cost nothing and do not extend it.
//!
//! Counters live in fixed [`WINDOW`]s (the window number is part of the
//! key): a lockout never outlasts its window, so a lost write can never
//! lock anyone out for good. A success clears the username's counter (and
//! gives the client's reservation back); an admin can clear a username's
//! counter at any time (`POST /v1/admin/accounts/{username}/unlock`).
//! Failures for unknown usernames are counted too, so that the throttle's
//! behaviour does not reveal which usernames exist.

use crate::{Error, Result};

/// Attempts per username let through in a window before the first lockout.
pub const MAX_USER_FAILURES: i64 = 5;
/// Attempts per client address let through in a window before its first
/// lockout (several users may share an address).
pub const MAX_CLIENT_FAILURES: i64 = 30;
/// The counting window, in seconds.
pub const WINDOW: i64 = 15 * 60;
/// The first lockout, in seconds.
pub const BASE_DELAY: i64 = 30;
/// The longest lockout, in seconds.
pub const MAX_DELAY: i64 = 15 * 60;

/// One dimension of the throttle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dimension {
    /// A (normalised) username.
    User(String),
    /// A client address (IP, without the port).
    Client(String),
}

impl Dimension {
    /// The client dimension of a `spin-client-addr` value (`ip:port` or
    /// `[v6]:port`); `None` when there is none.
    pub fn client(addr: Option<&str>) -> Option<Dimension> {
        let addr = addr?.trim();
        let ip = match addr.parse::<std::net::SocketAddr>() {
            Ok(sa) => sa.ip().to_string(),
            Err(_) => addr.parse::<std::net::IpAddr>().ok()?.to_string(),
        };
        Some(Dimension::Client(ip))
    }

    /// Attempts let through in a window before the first lockout.
    pub fn allowance(&self) -> i64 {
        match self {
            Dimension::User(_) => MAX_USER_FAILURES,
            Dimension::Client(_) => MAX_CLIENT_FAILURES,
        }
    }

    fn id(&self) -> String {
        match self {
            Dimension::User(name) => format!("user:{name}"),
            Dimension::Client(ip) => format!("client:{ip}"),
        }
    }

    /// The attempt counter of the window holding `now`.
    pub fn counter_key(&self, now: i64) -> String {
        format!("login-attempts:{}:{}", self.id(), now.div_euclid(WINDOW))
    }

    /// The time (unix seconds, decimal) of the last attempt let through.
    pub fn last_attempt_key(&self) -> String {
        format!("login-last-attempt:{}", self.id())
    }
}

/// The lockout after the `count`-th reservation of a window, for a
/// dimension allowing `allowance` attempts: none up to the allowance, then
/// 30 s doubling per attempt up to 15 minutes.
pub fn lockout(count: i64, allowance: i64) -> i64 {
    if count <= allowance {
        return 0;
    }
    let doublings = (count - allowance - 1).clamp(0, 16) as u32;
    (BASE_DELAY << doublings).min(MAX_DELAY)
}

/// Decides a reservation: `count` is the value the atomic increment
/// returned, `last_attempt` the time of the last attempt let through (if
/// recorded). `Ok` lets the attempt proceed; otherwise a 429 whose
/// `Retry-After` never points past the end of the window.
pub fn decide(count: i64, allowance: i64, last_attempt: Option<i64>, now: i64) -> Result<()> {
    let delay = lockout(count, allowance);
    if delay == 0 {
        return Ok(());
    }
    let window_end = (now.div_euclid(WINDOW) + 1) * WINDOW;
    // No time recorded yet: the attempts that were let through are still
    // being checked (a parallel burst); refuse for the base delay.
    let locked_until = last_attempt.map_or(now + BASE_DELAY, |t| t + delay);
    let locked_until = locked_until.min(window_end);
    if now < locked_until {
        return Err(Error::TooManyRequests {
            message: "Too many failed login attempts".into(),
            retry_after: (locked_until - now).max(1).unsigned_abs(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry_after(count: i64, last: Option<i64>, now: i64) -> Option<u64> {
        decide(count, MAX_USER_FAILURES, last, now)
            .err()
            .and_then(|e| e.retry_after())
    }

    #[test]
    fn five_attempts_proceed_and_the_sixth_is_locked() {
        for count in 1..=5 {
            assert_eq!(decide(count, MAX_USER_FAILURES, Some(100), 100), Ok(()));
        }
        assert_eq!(retry_after(6, Some(104), 104), Some(30));
        assert_eq!(retry_after(6, Some(104), 133), Some(1));
        assert_eq!(retry_after(6, Some(104), 134), None);
    }

    #[test]
    fn every_reservation_past_the_allowance_is_refused_during_a_burst() {
        // 32 parallel attempts: numbers 1..=32, no attempt time recorded
        // yet or just recorded by the first five.
        let now = 1_000;
        for last in [None, Some(now)] {
            let refused = (1..=32)
                .filter(|&c| decide(c, MAX_USER_FAILURES, last, now).is_err())
                .count();
            assert_eq!(refused, 27);
        }
    }

    #[test]
    fn lockouts_double_up_to_fifteen_minutes() {
        let delays: Vec<i64> = (1..=12).map(|c| lockout(c, MAX_USER_FAILURES)).collect();
        assert_eq!(delays, [0, 0, 0, 0, 0, 30, 60, 120, 240, 480, 900, 900]);
        assert_eq!(lockout(i64::MAX, MAX_USER_FAILURES), MAX_DELAY);
    }

    #[test]
    fn a_lockout_never_outlasts_its_window() {
        let now = WINDOW * 10 + WINDOW - 5;
        assert_eq!(retry_after(12, Some(now), now), Some(5));
        // The next window has a fresh counter.
        let a = Dimension::User("gina".into());
        assert_ne!(a.counter_key(now), a.counter_key(now + 5));
    }

    #[test]
    fn keys_and_client_addresses() {
        let user = Dimension::User("gina".into());
        assert_eq!(
            user.counter_key(WINDOW * 3 + 1),
            "login-attempts:user:gina:3"
        );
        assert_eq!(user.last_attempt_key(), "login-last-attempt:user:gina");
        assert_eq!(
            Dimension::client(Some("127.0.0.1:5555")),
            Some(Dimension::Client("127.0.0.1".into()))
        );
        assert_eq!(
            Dimension::client(Some("[::1]:80")),
            Some(Dimension::Client("::1".into()))
        );
        assert_eq!(Dimension::client(Some("not an address")), None);
        assert_eq!(Dimension::client(None), None);
        assert_eq!(
            Dimension::Client("x".into()).allowance(),
            MAX_CLIENT_FAILURES
        );
    }
}
