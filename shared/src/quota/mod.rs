//! Quota policy: products, plans, grants, UTC periods, admit/deny decisions
//! over atomic counters, and the `RateLimit` headers.
//!
//! Everything takes the current time as an argument (unix seconds); nothing
//! here reads a clock or touches storage. A component reads the account's
//! plan and grants from key-value storage, computes [`effective_limits`],
//! increments the counters named by [`monthly_key`] and [`burst_key`], and
//! hands the new values to [`decide_monthly`] / [`decide_burst`].
//!
//! Layout:
//! - [`product`]: the products counted.
//! - [`plan`]: plans as data, with the embedded defaults.
//! - [`grant`]: expiring per-account raises and the effective limits.
//! - [`period`]: UTC civil-date arithmetic and period keys.
//! - [`decision`]: counter keys, unit validation, increment-then-compensate.
//! - [`headers`]: `RateLimit` / `RateLimit-Policy` values.
//! - [`report`]: the `GET /v1/quota` body.
//! - [`access`]: exceptional-access requests and their decisions.

pub mod access;
pub mod decision;
pub mod grant;
pub mod headers;
pub mod period;
pub mod plan;
pub mod product;
pub mod report;

pub use access::{AccessDecision, AccessRequest, AccessStatus, AccessSubmission};
pub use decision::{
    Decision, Window, burst_key, decide_burst, decide_monthly, monthly_key, validate_units,
};
pub use grant::{Grant, Limits, effective_limits};
pub use headers::{rate_limit, rate_limit_policy};
pub use period::{Date, Month};
pub use plan::{Plan, Plans};
pub use product::Product;
pub use report::QuotaReport;
