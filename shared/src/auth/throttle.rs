//! Login throttling per username.
//!
//! After [`MAX_FAILURES`] consecutive failures, each within [`WINDOW`]
//! seconds of the previous one, the username is locked for a delay that
//! doubles with every further failure: 30 s, 60 s, 120 s ... capped at
//! 15 minutes. A success clears the state. Attempts during a lockout are
//! refused before the password is checked, so they cost nothing and do not
//! extend it. The state is a small JSON record under `login-throttle:{user}`;
//! being per username, it also protects accounts from distributed guessing.
//! Failures for unknown usernames should be recorded too, so that the
//! throttle's behaviour does not reveal which usernames exist.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Failures tolerated before the first lockout.
pub const MAX_FAILURES: u32 = 5;
/// Seconds after the last failure at which the count starts over.
pub const WINDOW: i64 = 15 * 60;
/// The first lockout, in seconds.
pub const BASE_DELAY: i64 = 30;
/// The longest lockout, in seconds.
pub const MAX_DELAY: i64 = 15 * 60;

/// The throttle state of one username.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginThrottle {
    /// Consecutive failures in the current run.
    pub failures: u32,
    /// Time of the last failure, unix seconds.
    pub last_failure: i64,
    /// Logins are refused until this time, unix seconds.
    pub locked_until: i64,
}

impl LoginThrottle {
    /// `Ok` if a login attempt may proceed at `now`, else a 429 with the
    /// seconds left.
    pub fn check(&self, now: i64) -> Result<()> {
        if now < self.locked_until {
            return Err(Error::TooManyRequests {
                message: "Too many failed login attempts".into(),
                retry_after: (self.locked_until - now).unsigned_abs(),
            });
        }
        Ok(())
    }

    /// Records a failed attempt at `now`, possibly starting a lockout.
    pub fn record_failure(&mut self, now: i64) {
        if now - self.last_failure > WINDOW {
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        self.last_failure = now;
        if self.failures >= MAX_FAILURES {
            let doublings = (self.failures - MAX_FAILURES).min(16);
            let delay = (BASE_DELAY << doublings).min(MAX_DELAY);
            self.locked_until = now + delay;
        }
    }

    /// Records a successful login: the state is cleared (the caller may
    /// delete the record instead).
    pub fn record_success(&mut self) {
        *self = LoginThrottle::default();
    }

    /// Whether there is nothing worth storing.
    pub fn is_clear(&self) -> bool {
        self.failures == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry_after(t: &LoginThrottle, now: i64) -> Option<u64> {
        t.check(now).err().and_then(|e| e.retry_after())
    }

    #[test]
    fn four_failures_do_not_lock_and_the_fifth_does() {
        let mut t = LoginThrottle::default();
        for i in 0..4 {
            t.record_failure(100 + i);
            assert_eq!(t.check(100 + i), Ok(()));
        }
        t.record_failure(104);
        assert_eq!(retry_after(&t, 104), Some(30));
        assert_eq!(retry_after(&t, 133), Some(1));
        assert_eq!(t.check(134), Ok(()));
    }

    #[test]
    fn lockouts_double_up_to_fifteen_minutes() {
        let mut t = LoginThrottle::default();
        let mut now = 1_000;
        let mut delays = Vec::new();
        for _ in 0..12 {
            t.record_failure(now);
            let delay = (t.locked_until - now).max(0);
            delays.push(delay);
            now += delay;
        }
        assert_eq!(delays, [0, 0, 0, 0, 30, 60, 120, 240, 480, 900, 900, 900]);
    }

    #[test]
    fn failures_spread_beyond_the_window_start_over() {
        let mut t = LoginThrottle::default();
        for i in 0..4 {
            t.record_failure(i * (WINDOW + 1));
        }
        assert_eq!(t.failures, 1);
        assert_eq!(t.check(4 * (WINDOW + 1)), Ok(()));
    }

    #[test]
    fn a_success_clears_the_state() {
        let mut t = LoginThrottle::default();
        for i in 0..6 {
            t.record_failure(i);
        }
        assert!(t.check(6).is_err());
        t.record_success();
        assert!(t.is_clear());
        assert_eq!(t.check(6), Ok(()));
        let json = serde_json::to_string(&t).expect("json");
        assert_eq!(serde_json::from_str::<LoginThrottle>(&json).ok(), Some(t));
    }
}
