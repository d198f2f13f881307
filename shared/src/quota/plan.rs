//! Plans as data: monthly quotas per product and a per-second burst limit.
//!
//! The default set is embedded JSON ([`DEFAULT_PLANS_JSON`]); an operator can
//! replace it with the Spin variable `plans`, which carries the same JSON
//! shape and goes through [`Plans::parse`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Product;
use crate::{Error, Result};

/// The built-in plans. `free` follows the published WME free tier; a product
/// absent from `monthly` is not included in the plan.
pub const DEFAULT_PLANS_JSON: &str = r#"[
  {"name": "free",
   "monthly": {"ondemand": 50000, "snapshot": 30, "chunk": 1500},
   "burst_per_second": 10},
  {"name": "exceptional",
   "monthly": {"ondemand": 1000000, "snapshot": 300, "chunk": 15000, "realtime": 1000000},
   "burst_per_second": 50},
  {"name": "paid",
   "monthly": {"ondemand": 10000000, "snapshot": 3000, "chunk": 150000, "realtime": 10000000},
   "burst_per_second": 100}
]"#;

/// The largest quota a plan may set, to keep sums far from overflow.
pub const MAX_QUOTA: u64 = 1 << 50;

/// A named plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The plan's name, e.g. `free`.
    pub name: String,
    /// Monthly quota per product; a product absent here is not included.
    pub monthly: BTreeMap<Product, u64>,
    /// Requests admitted per second, across all products.
    pub burst_per_second: u64,
}

impl Plan {
    /// Checks a plan's name and numbers.
    pub fn validate(&self) -> Result<()> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(Error::Unprocessable(format!(
                "invalid plan name '{}': use 1 to 64 characters of a-z, 0-9, '-' and '_'",
                self.name
            )));
        }
        if self.burst_per_second == 0 || self.burst_per_second > MAX_QUOTA {
            return Err(Error::Unprocessable(format!(
                "plan '{}': burst_per_second must be between 1 and {MAX_QUOTA}",
                self.name
            )));
        }
        if let Some((p, q)) = self.monthly.iter().find(|(_, q)| **q > MAX_QUOTA) {
            return Err(Error::Unprocessable(format!(
                "plan '{}': monthly quota {q} for {p} exceeds {MAX_QUOTA}",
                self.name
            )));
        }
        Ok(())
    }
}

/// A validated set of plans, keyed by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plans {
    plans: BTreeMap<String, Plan>,
}

impl Plans {
    /// The built-in default plans.
    pub fn builtin() -> Plans {
        // The embedded JSON is covered by a unit test; an empty set is the
        // impossible fallback that keeps this function infallible.
        Plans::parse(DEFAULT_PLANS_JSON).unwrap_or(Plans {
            plans: BTreeMap::new(),
        })
    }

    /// Parses and validates a JSON array of plans: unknown fields, unknown
    /// products, duplicate names and an empty list are errors, and so is a
    /// set without a `free` plan (new accounts start on it).
    pub fn parse(json: &str) -> Result<Plans> {
        let list: Vec<Plan> = serde_json::from_str(json)
            .map_err(|e| Error::Unprocessable(format!("invalid plans JSON: {e}")))?;
        let mut plans = BTreeMap::new();
        for plan in list {
            plan.validate()?;
            if plans.contains_key(&plan.name) {
                return Err(Error::Unprocessable(format!(
                    "plan '{}' is defined twice",
                    plan.name
                )));
            }
            plans.insert(plan.name.clone(), plan);
        }
        if !plans.contains_key("free") {
            return Err(Error::Unprocessable(
                "the plans must include a 'free' plan".into(),
            ));
        }
        Ok(Plans { plans })
    }

    /// The plan with this name, if any.
    pub fn get(&self, name: &str) -> Option<&Plan> {
        self.plans.get(name)
    }

    /// The plan with this name, or a 422 naming the known plans.
    pub fn require(&self, name: &str) -> Result<&Plan> {
        self.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.plans.keys().map(String::as_str).collect();
            Error::Unprocessable(format!(
                "unknown plan '{name}': expected one of {}",
                known.join(", ")
            ))
        })
    }

    /// The plan names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.plans.keys().map(String::as_str)
    }
}

impl Default for Plans {
    fn default() -> Plans {
        Plans::builtin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_plans_follow_the_free_tier() {
        let plans = Plans::parse(DEFAULT_PLANS_JSON).expect("embedded plans parse");
        let free = plans.require("free").expect("free plan");
        assert_eq!(free.monthly.get(&Product::Ondemand), Some(&50_000));
        assert_eq!(free.monthly.get(&Product::Snapshot), Some(&30));
        assert_eq!(free.monthly.get(&Product::Chunk), Some(&1_500));
        assert_eq!(free.monthly.get(&Product::Realtime), None);
        assert!(plans.get("exceptional").is_some() && plans.get("paid").is_some());
        assert_eq!(Plans::builtin(), plans);
    }

    fn check(json: &str, expect_error: Option<&str>) {
        match (Plans::parse(json), expect_error) {
            (Ok(_), None) => {}
            (Err(e), Some(needle)) => {
                assert_eq!(e.status(), 422);
                assert!(e.to_string().contains(needle), "{e} lacks {needle}");
            }
            (got, want) => panic!("{json}: got {got:?}, want error {want:?}"),
        }
    }

    #[test]
    fn plan_overrides_are_validated() {
        let free = r#"{"name":"free","monthly":{"ondemand":5},"burst_per_second":1}"#;
        check(&format!("[{free}]"), None);
        check("{}", Some("invalid plans JSON"));
        check("[]", Some("'free'"));
        check(&format!("[{free},{free}]"), Some("twice"));
        check(
            r#"[{"name":"free","monthly":{"articles":5},"burst_per_second":1}]"#,
            Some("unknown variant"),
        );
        check(
            r#"[{"name":"free","monthly":{},"burst_per_second":0}]"#,
            Some("burst_per_second"),
        );
        check(
            r#"[{"name":"free","monthly":{"ondemand":-1},"burst_per_second":1}]"#,
            Some("invalid plans JSON"),
        );
        check(
            r#"[{"name":"Free Plan","monthly":{},"burst_per_second":1}]"#,
            Some("invalid plan name"),
        );
        check(
            r#"[{"name":"free","monthly":{},"burst_per_second":1,"extra":1}]"#,
            Some("unknown field"),
        );
    }

    #[test]
    fn an_unknown_plan_name_is_a_422_listing_the_known_ones() {
        let err = Plans::builtin().require("gold").err();
        assert_eq!(
            err,
            Some(Error::Unprocessable(
                "unknown plan 'gold': expected one of exceptional, free, paid".into()
            ))
        );
    }
}
