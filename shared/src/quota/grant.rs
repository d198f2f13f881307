//! Grants (per-account overrides with an expiry) and the effective limits.
//!
//! A grant raises an account's limits until it expires: exceptional access
//! is a grant, and so is a paid account's negotiated quota. Grants only ever
//! add: for each product the effective monthly quota is the largest of the
//! plan's and of every active grant's, and likewise for the burst rate. An
//! expired grant is simply ignored, so it lapses by itself without any job.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Plan, Product};

/// A time-limited raise of an account's limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Monthly quota per product granted; absent products are unchanged.
    #[serde(default)]
    pub monthly: BTreeMap<Product, u64>,
    /// A raised burst rate, if any.
    #[serde(default)]
    pub burst_per_second: Option<u64>,
    /// Unix time at which the grant stops applying (exclusive).
    pub expires: i64,
    /// Why it was granted (e.g. the access request id).
    pub reason: String,
}

impl Grant {
    /// Whether the grant applies at unix time `now`.
    pub fn is_active(&self, now: i64) -> bool {
        now < self.expires
    }
}

/// The limits that apply to one account at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Monthly quota per included product.
    pub monthly: BTreeMap<Product, u64>,
    /// Requests admitted per second.
    pub burst_per_second: u64,
}

impl Limits {
    /// The monthly quota for `product`, or `None` if it is not included.
    pub fn monthly_limit(&self, product: Product) -> Option<u64> {
        self.monthly.get(&product).copied()
    }

    /// The monthly quota for `product`, or a 403 when the plan and grants
    /// do not include it (nothing is counted then).
    pub fn require(&self, product: Product) -> crate::Result<u64> {
        self.monthly_limit(product)
            .ok_or_else(|| super::decision::not_included(product))
    }

    /// The limits as a JSON value, e.g. for the get-user response.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// The limits of `plan` raised by every grant active at `now`.
pub fn effective_limits(plan: &Plan, grants: &[Grant], now: i64) -> Limits {
    let mut limits = Limits {
        monthly: plan.monthly.clone(),
        burst_per_second: plan.burst_per_second,
    };
    for grant in grants.iter().filter(|g| g.is_active(now)) {
        for (product, quota) in &grant.monthly {
            let entry = limits.monthly.entry(*product).or_insert(0);
            *entry = (*entry).max(*quota);
        }
        if let Some(burst) = grant.burst_per_second {
            limits.burst_per_second = limits.burst_per_second.max(burst);
        }
    }
    limits
}

/// The grants still active at `now` (for reports and for pruning storage).
pub fn active_grants(grants: &[Grant], now: i64) -> Vec<Grant> {
    grants
        .iter()
        .filter(|g| g.is_active(now))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::Plans;

    fn free() -> Plan {
        Plans::builtin()
            .require("free")
            .cloned()
            .expect("free plan")
    }

    fn grant(expires: i64) -> Grant {
        Grant {
            monthly: BTreeMap::from([(Product::Ondemand, 1_000_000), (Product::Realtime, 10)]),
            burst_per_second: Some(50),
            expires,
            reason: "access request ar-1".into(),
        }
    }

    #[test]
    fn without_grants_the_plan_applies() {
        let limits = effective_limits(&free(), &[], 0);
        assert_eq!(limits.monthly_limit(Product::Ondemand), Some(50_000));
        assert_eq!(limits.monthly_limit(Product::Realtime), None);
        assert_eq!(limits.burst_per_second, 10);
        assert_eq!(limits.require(Product::Chunk), Ok(1_500));
        assert_eq!(
            limits.require(Product::Realtime).map_err(|e| e.status()),
            Err(403)
        );
    }

    #[test]
    fn an_active_grant_raises_limits_and_adds_products() {
        let limits = effective_limits(&free(), &[grant(1_000)], 999);
        assert_eq!(limits.monthly_limit(Product::Ondemand), Some(1_000_000));
        assert_eq!(limits.monthly_limit(Product::Realtime), Some(10));
        assert_eq!(limits.monthly_limit(Product::Snapshot), Some(30));
        assert_eq!(limits.burst_per_second, 50);
    }

    #[test]
    fn a_grant_lapses_by_itself_at_its_expiry() {
        let limits = effective_limits(&free(), &[grant(1_000)], 1_000);
        assert_eq!(limits, effective_limits(&free(), &[], 1_000));
        assert!(active_grants(&[grant(1_000)], 1_000).is_empty());
    }

    #[test]
    fn a_grant_never_lowers_a_limit() {
        let mut small = grant(1_000);
        small.monthly = BTreeMap::from([(Product::Ondemand, 5)]);
        small.burst_per_second = Some(1);
        let limits = effective_limits(&free(), &[small], 0);
        assert_eq!(limits.monthly_limit(Product::Ondemand), Some(50_000));
        assert_eq!(limits.burst_per_second, 10);
    }
}
