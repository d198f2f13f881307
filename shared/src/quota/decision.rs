//! The admit/deny decision over atomic counters, and the counter keys.
//!
//! The component does one atomic `increment(key, units)` on the key-value
//! store and hands the *new* value to [`decide_monthly`] or [`decide_burst`].
//! The request is admitted iff `new_value <= limit`. A denied request must be
//! compensated (`increment(key, -units)`, see [`Decision::compensate`]) so
//! that a denied attempt does not eat quota a later request could use.
//!
//! Why this is correct while limits do not change:
//!
//! - It never over-admits. At any moment the counter holds every admitted
//!   unit plus the units of denied requests not yet compensated, so it is at
//!   least the admitted total; a request is admitted only when the counter,
//!   including its own units, is at most the limit.
//! - It never wrongly denies requests of equal size (the usual case: one
//!   unit per request). Before the first denial, no increment was ever
//!   compensated, so every earlier increment was admitted; the first denial
//!   sees `new_value > limit`, which means `admitted >= limit` already (the
//!   quota is genuinely spent) and it stays spent for the period, since
//!   admitted units are never given back.
//! - With requests of mixed sizes, a small request can be denied while a
//!   larger denied one is in flight and not yet compensated. That can only
//!   happen when the quota is nearly spent, it is transient, and it errs on
//!   the side of denying, never of over-admitting.
//!
//! A check-then-set on `get`/`set` instead over-admits under concurrency.
//!
//! Order per request: validate the units, take the limits
//! ([`crate::quota::Limits::require`] refuses products not included, before
//! any counter moves), check the burst window, then the monthly quota. When
//! either denies, every counter incremented for that request is
//! compensated, so a denied request leaves no trace in the quota (it is
//! still metered as denied).

use crate::quota::Product;
use crate::quota::period::{Month, seconds_until_next_month};
use crate::{Error, Result};

/// The most units a single call may consume.
pub const MAX_UNITS: i64 = 1000;

/// The key of a monthly quota counter: `quota:{account}:{product}:{YYYY-MM}`.
pub fn monthly_key(account: &str, product: Product, now: i64) -> String {
    format!("quota:{account}:{product}:{}", Month::from_unix(now))
}

/// The key of a burst counter for one second: `burst:{account}:{unix_second}`.
pub fn burst_key(account: &str, now: i64) -> String {
    format!("burst:{account}:{now}")
}

/// Validates the units a call consumes: 1 to [`MAX_UNITS`].
pub fn validate_units(units: i64) -> Result<u64> {
    if (1..=MAX_UNITS).contains(&units) {
        Ok(units.unsigned_abs())
    } else {
        Err(Error::Unprocessable(format!(
            "units must be between 1 and {MAX_UNITS}, got {units}"
        )))
    }
}

/// Which window a decision is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The UTC calendar month for one product.
    Monthly(Product),
    /// The current one-second burst window.
    Burst,
}

/// The outcome of one counter check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The window decided on.
    pub window: Window,
    /// Whether the request is admitted.
    pub admitted: bool,
    /// The window's limit.
    pub limit: u64,
    /// Units left in the window after this request (0 when denied and spent).
    pub remaining: u64,
    /// Seconds until the window resets.
    pub reset: u64,
    /// Seconds to wait before retrying, set only when denied.
    pub retry_after: Option<u64>,
    /// The delta the caller must add back to the counter: `-units` when
    /// denied, `None` when admitted.
    pub compensate: Option<i64>,
}

fn decide(window: Window, limit: u64, new_value: i64, units: u64, reset: u64) -> Decision {
    // A negative counter cannot arise from our own increments; treat it as 0.
    let value = u64::try_from(new_value).unwrap_or(0);
    let admitted = value <= limit;
    let remaining = if admitted {
        limit - value
    } else {
        // The counter includes our units, which will be taken back.
        limit.saturating_sub(value.saturating_sub(units))
    };
    Decision {
        window,
        admitted,
        limit,
        remaining,
        reset,
        retry_after: (!admitted).then_some(reset),
        compensate: (!admitted).then(|| -i64::try_from(units).unwrap_or(i64::MAX)),
    }
}

/// Decides a monthly quota from the counter's value after the increment.
pub fn decide_monthly(
    product: Product,
    limit: u64,
    new_value: i64,
    units: u64,
    now: i64,
) -> Decision {
    decide(
        Window::Monthly(product),
        limit,
        new_value,
        units,
        seconds_until_next_month(now),
    )
}

/// Decides the one-second burst window from the counter's value after the
/// increment; a denial should be retried after 1 second.
pub fn decide_burst(limit: u64, new_value: i64, units: u64) -> Decision {
    decide(Window::Burst, limit, new_value, units, 1)
}

impl Decision {
    /// The 429 for a denial, or `Ok(())` when admitted.
    pub fn into_result(&self) -> Result<()> {
        if self.admitted {
            return Ok(());
        }
        let message = match self.window {
            Window::Monthly(product) => {
                format!("Monthly quota for {product} has been exceeded")
            }
            Window::Burst => "Rate limit has been exceeded".to_string(),
        };
        Err(Error::TooManyRequests {
            message,
            retry_after: self.retry_after.unwrap_or(1),
        })
    }
}

/// The error for a product the account's limits do not include.
pub fn not_included(product: Product) -> Error {
    Error::Forbidden(format!("Your plan does not include {product}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-11-30T23:59:59Z, the last second of November.
    const LAST_SECOND: i64 = 1_733_011_199;

    #[test]
    fn counter_keys_name_account_product_and_period() {
        assert_eq!(
            monthly_key("alice", Product::Chunk, LAST_SECOND),
            "quota:alice:chunk:2024-11"
        );
        assert_eq!(
            monthly_key("alice", Product::Chunk, LAST_SECOND + 1),
            "quota:alice:chunk:2024-12"
        );
        assert_eq!(burst_key("alice", 42), "burst:alice:42");
    }

    #[test]
    fn units_must_be_between_1_and_1000() {
        assert_eq!(validate_units(1), Ok(1));
        assert_eq!(validate_units(1000), Ok(1000));
        for bad in [0, -1, 1001, i64::MAX, i64::MIN] {
            assert_eq!(
                validate_units(bad).map_err(|e| e.status()),
                Err(422),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_request_that_reaches_the_limit_is_admitted_and_the_next_is_not() {
        let at = decide_monthly(Product::Ondemand, 50, 50, 1, LAST_SECOND);
        assert!(at.admitted);
        assert_eq!(
            (at.remaining, at.compensate, at.retry_after),
            (0, None, None)
        );
        let over = decide_monthly(Product::Ondemand, 50, 51, 1, LAST_SECOND);
        assert!(!over.admitted);
        assert_eq!((over.remaining, over.compensate), (0, Some(-1)));
        assert_eq!((over.reset, over.retry_after), (1, Some(1)));
    }

    #[test]
    fn a_denied_large_request_reports_what_a_smaller_one_could_still_use() {
        let d = decide_monthly(Product::Ondemand, 50, 55, 10, 0);
        assert!(!d.admitted);
        assert_eq!(d.remaining, 5);
        assert_eq!(d.compensate, Some(-10));
    }

    #[test]
    fn burst_denials_retry_after_one_second() {
        let d = decide_burst(10, 11, 1);
        assert_eq!(
            d.into_result(),
            Err(Error::TooManyRequests {
                message: "Rate limit has been exceeded".into(),
                retry_after: 1
            })
        );
        assert_eq!(decide_burst(10, 10, 1).into_result(), Ok(()));
    }

    #[test]
    fn monthly_denials_retry_at_the_start_of_next_month() {
        let d = decide_monthly(Product::Snapshot, 30, 31, 1, LAST_SECOND - 99);
        assert_eq!(d.into_result().map_err(|e| e.retry_after()), Err(Some(100)));
    }

    /// A tiny deterministic generator so the interleavings are reproducible.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, bound: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 33) as usize) % bound
        }
    }

    /// One simulated request: it increments, decides, and compensates if
    /// denied, each step interleaved arbitrarily with the others.
    enum Step {
        Increment,
        Compensate(i64),
        Done,
    }

    fn simulate(requests: usize, units: &[u64], limit: u64, seed: u64) -> (u64, u64, i64) {
        let mut rng = Lcg(seed);
        let mut counter: i64 = 0;
        let mut steps: Vec<Step> = (0..requests).map(|_| Step::Increment).collect();
        let (mut admitted_units, mut admitted) = (0u64, 0u64);
        while steps.iter().any(|s| !matches!(s, Step::Done)) {
            let i = rng.next(requests);
            let u = units[i % units.len()];
            steps[i] = match steps[i] {
                Step::Increment => {
                    counter += u as i64;
                    let d = decide_burst(limit, counter, u);
                    if d.admitted {
                        admitted += 1;
                        admitted_units += u;
                        Step::Done
                    } else {
                        Step::Compensate(d.compensate.expect("denials compensate"))
                    }
                }
                Step::Compensate(delta) => {
                    counter += delta;
                    Step::Done
                }
                Step::Done => Step::Done,
            };
        }
        (admitted, admitted_units, counter)
    }

    #[test]
    fn exactly_the_cap_is_admitted_under_any_interleaving() {
        for seed in 0..500 {
            let (admitted, _, counter) = simulate(64, &[1], 50, seed);
            assert_eq!(admitted, 50, "seed {seed}");
            assert_eq!(counter, 50, "denials were all compensated (seed {seed})");
        }
    }

    #[test]
    fn mixed_sizes_never_over_admit() {
        for seed in 0..500 {
            let (_, units, counter) = simulate(64, &[1, 3, 7, 2], 50, seed);
            assert!(units <= 50, "seed {seed}: admitted {units} units");
            assert_eq!(counter as u64, units);
        }
    }
}
