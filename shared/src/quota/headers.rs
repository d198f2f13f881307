//! The `RateLimit` and `RateLimit-Policy` response header values.
//!
//! Syntax per the IETF httpapi draft "RateLimit header fields for HTTP"
//! (draft-ietf-httpapi-ratelimit-headers-10 at the time of writing;
//! <https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/>).
//! Both fields are Structured Field Lists (RFC 9651) whose members are
//! quoted policy names with parameters:
//!
//! - `RateLimit-Policy: "monthly";q=50000;w=2592000, "burst";q=10;w=1`
//!   where `q` is the quota and `w` the window in seconds;
//! - `RateLimit: "monthly";r=49950;t=123456` where `r` is the remaining
//!   quota and `t` the seconds until it resets.
//!
//! The monthly window `w` is the length of the current UTC calendar month.

use super::decision::{Decision, Window};
use super::period::Month;

/// One advertised policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The policy name: a short lowercase token, quoted in the header.
    pub name: &'static str,
    /// The quota `q`.
    pub quota: u64,
    /// The window `w` in seconds.
    pub window: u64,
}

/// The live state of one policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyState {
    /// The policy name, matching a [`Policy`].
    pub name: &'static str,
    /// The remaining quota `r`.
    pub remaining: u64,
    /// Seconds `t` until the quota resets.
    pub reset: u64,
}

/// The name used in the headers for a decision's window.
pub fn policy_name(window: Window) -> &'static str {
    match window {
        Window::Monthly(_) => "monthly",
        Window::Burst => "burst",
    }
}

impl Policy {
    /// The policy a decision was made under; `now` sizes the monthly window.
    pub fn of(decision: &Decision, now: i64) -> Policy {
        let window = match decision.window {
            Window::Monthly(_) => Month::from_unix(now).seconds().unsigned_abs(),
            Window::Burst => 1,
        };
        Policy {
            name: policy_name(decision.window),
            quota: decision.limit,
            window,
        }
    }
}

impl PolicyState {
    /// The live state a decision reports.
    pub fn of(decision: &Decision) -> PolicyState {
        PolicyState {
            name: policy_name(decision.window),
            remaining: decision.remaining,
            reset: decision.reset,
        }
    }
}

/// The `RateLimit-Policy` header value for these policies.
pub fn rate_limit_policy(policies: &[Policy]) -> String {
    let mut out = String::with_capacity(32 * policies.len());
    for (i, p) in policies.iter().enumerate() {
        member(&mut out, i, p.name, ("q", p.quota), ("w", p.window));
    }
    out
}

/// The `RateLimit` header value for these policy states.
pub fn rate_limit(states: &[PolicyState]) -> String {
    let mut out = String::with_capacity(32 * states.len());
    for (i, s) in states.iter().enumerate() {
        member(&mut out, i, s.name, ("r", s.remaining), ("t", s.reset));
    }
    out
}

/// Appends the `i`th list member `"name";a=1;b=2`. Built by hand, not with
/// `write!`: both headers go out with every answer the quota component
/// gives, and the formatting machinery cost it about 10,000 instructions
/// per request (BENCHMARKS.md).
fn member(out: &mut String, i: usize, name: &str, a: (&str, u64), b: (&str, u64)) {
    if i > 0 {
        out.push_str(", ");
    }
    out.push('"');
    out.push_str(name);
    out.push('"');
    for (key, value) in [a, b] {
        out.push(';');
        out.push_str(key);
        out.push('=');
        push_decimal(out, value);
    }
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

/// Both header values, `(RateLimit-Policy, RateLimit)`, for a set of
/// decisions made on one request.
pub fn headers(decisions: &[&Decision], now: i64) -> (String, String) {
    let policies: Vec<Policy> = decisions.iter().map(|d| Policy::of(d, now)).collect();
    let states: Vec<PolicyState> = decisions.iter().map(|d| PolicyState::of(d)).collect();
    (rate_limit_policy(&policies), rate_limit(&states))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::Product;
    use crate::quota::decision::{decide_burst, decide_monthly};

    /// 2024-11-10T00:00:00Z; November has 30 days.
    const NOV_10: i64 = 1_731_196_800;

    #[test]
    fn headers_follow_the_structured_field_syntax_of_the_draft() {
        let monthly = decide_monthly(Product::Ondemand, 50_000, 50, 1, NOV_10);
        let burst = decide_burst(10, 3, 1);
        let (policy, state) = headers(&[&monthly, &burst], NOV_10);
        assert_eq!(policy, r#""monthly";q=50000;w=2592000, "burst";q=10;w=1"#);
        assert_eq!(state, r#""monthly";r=49950;t=1814400, "burst";r=7;t=1"#);
    }

    #[test]
    fn decimals_are_written_as_display_writes_them() {
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            12_345,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut out = String::from("x");
            push_decimal(&mut out, n);
            assert_eq!(out, format!("x{n}"));
        }
    }

    #[test]
    fn an_empty_list_gives_an_empty_value() {
        assert_eq!(rate_limit(&[]), "");
        assert_eq!(rate_limit_policy(&[]), "");
    }
}
