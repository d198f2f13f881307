//! The `GET /v1/quota` report: plan, per-product usage and active grants.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Product;
use super::grant::{Grant, Limits, active_grants};
use super::period::{Month, seconds_until_next_month};

/// One product's quota state for the current month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductQuota {
    /// The product.
    pub product: Product,
    /// The monthly limit.
    pub limit: u64,
    /// Units used this month.
    pub used: u64,
    /// Units left this month.
    pub remaining: u64,
    /// Seconds until the quota resets.
    pub reset: u64,
}

/// The caller's quota report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaReport {
    /// The account's plan name.
    pub plan: String,
    /// The month reported on, `YYYY-MM`.
    pub month: String,
    /// Requests admitted per second.
    pub burst_per_second: u64,
    /// The included products, in a stable order.
    pub products: Vec<ProductQuota>,
    /// The grants active now.
    pub grants: Vec<Grant>,
}

impl QuotaReport {
    /// Builds the report from effective limits and the monthly counters read
    /// from storage (`used`; a missing product counts as 0).
    pub fn build(
        plan: &str,
        limits: &Limits,
        used: &BTreeMap<Product, u64>,
        grants: &[Grant],
        now: i64,
    ) -> QuotaReport {
        let reset = seconds_until_next_month(now);
        let products = limits
            .monthly
            .iter()
            .map(|(product, limit)| {
                let used = used.get(product).copied().unwrap_or(0);
                ProductQuota {
                    product: *product,
                    limit: *limit,
                    used,
                    remaining: limit.saturating_sub(used),
                    reset,
                }
            })
            .collect();
        QuotaReport {
            plan: plan.to_string(),
            month: Month::from_unix(now).to_string(),
            burst_per_second: limits.burst_per_second,
            products,
            grants: active_grants(grants, now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::{Plans, effective_limits};

    #[test]
    fn the_report_lists_included_products_with_usage_and_active_grants_only() {
        let plan = Plans::builtin().require("free").cloned().expect("free");
        let grants = vec![
            Grant {
                monthly: BTreeMap::from([(Product::Realtime, 100)]),
                burst_per_second: None,
                expires: 2_000,
                reason: "active".into(),
            },
            Grant {
                monthly: BTreeMap::from([(Product::Chunk, 1)]),
                burst_per_second: None,
                expires: 1_000,
                reason: "expired".into(),
            },
        ];
        let now = 1_500;
        let limits = effective_limits(&plan, &grants, now);
        let used = BTreeMap::from([(Product::Ondemand, 60_000), (Product::Realtime, 40)]);
        let report = QuotaReport::build("free", &limits, &used, &grants, now);
        assert_eq!(report.month, "1970-01");
        let rows: Vec<(Product, u64, u64, u64)> = report
            .products
            .iter()
            .map(|p| (p.product, p.limit, p.used, p.remaining))
            .collect();
        assert_eq!(
            rows,
            vec![
                (Product::Ondemand, 50_000, 60_000, 0),
                (Product::Snapshot, 30, 0, 30),
                (Product::Chunk, 1_500, 0, 1_500),
                (Product::Realtime, 100, 40, 60),
            ]
        );
        assert_eq!(report.grants.len(), 1);
        assert_eq!(report.grants[0].reason, "active");
        assert_eq!(report.products[0].reset, 31 * 86_400 - 1_500);
    }
}
