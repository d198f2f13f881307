//! Per-instance configuration: the variables of the articles component,
//! read once per instance (see [`wikiedge_fn::config`]).

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use wikiedge_core::article::pipeline::Freshness;
use wikiedge_fn::config::{cached, number, upstream_overrides, variable};

/// The project used for an uncached title when neither a project filter,
/// `unfiltered_projects` nor `upstream_overrides` says where to look.
const DEFAULT_PROJECT: &str = "enwiki";

/// The variables of the articles component.
#[derive(Debug, Clone)]
pub struct Config {
    /// Project id -> upstream base URL, from `upstream_overrides`.
    pub overrides: BTreeMap<String, String>,
    /// The projects an unfiltered miss looks in (`unfiltered_projects`,
    /// comma-separated); empty: see [`Config::default_projects`].
    pub unfiltered: Vec<String>,
    /// Seconds a cached article is fresh (`article_max_age`).
    pub max_age: u64,
    /// The time bound of one upstream fetch (`upstream_timeout_ms`).
    pub timeout: Duration,
    /// The Lift Wing revert-risk model URL (`revertrisk_url`); `None` (the
    /// default) leaves `version.scores` out.
    pub revertrisk_url: Option<String>,
    /// How long a fetch waits for the model (`revertrisk_timeout_ms`).
    pub revertrisk_timeout: Duration,
}

impl Config {
    /// The projects tried for a title no store entry knows and no filter
    /// narrows: `unfiltered_projects` when set, else the overridden
    /// projects when overrides are set (an operator pointed us at them),
    /// else `enwiki`.
    pub fn default_projects(&self) -> Vec<String> {
        if !self.unfiltered.is_empty() {
            self.unfiltered.clone()
        } else if self.overrides.is_empty() {
            vec![DEFAULT_PROJECT.to_string()]
        } else {
            self.overrides.keys().cloned().collect()
        }
    }

    /// The freshness rules of cached articles (max age, retry backoff).
    pub fn freshness(&self) -> Freshness {
        Freshness {
            max_age: self.max_age,
        }
    }
}

/// A comma-separated list of project ids, blanks dropped.
fn project_list(value: Option<String>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

static CONFIG: OnceLock<Config> = OnceLock::new();

/// The configuration, read on first use. Malformed values are logged and
/// replaced by the defaults, so a typo never takes the API down.
pub async fn config() -> &'static Config {
    cached(&CONFIG, async {
        Config {
            overrides: upstream_overrides().await,
            unfiltered: project_list(variable("unfiltered_projects").await),
            max_age: number(variable("article_max_age").await, 86_400),
            timeout: Duration::from_millis(number(variable("upstream_timeout_ms").await, 5_000)),
            revertrisk_timeout: Duration::from_millis(number(
                variable("revertrisk_timeout_ms").await,
                1_000,
            )),
            revertrisk_url: variable("revertrisk_url")
                .await
                .map(|u| u.trim().to_string())
                .filter(|u| !u.is_empty()),
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(unfiltered: &str, overrides: &[&str]) -> Config {
        Config {
            overrides: overrides
                .iter()
                .map(|p| (p.to_string(), "http://127.0.0.1:1".to_string()))
                .collect(),
            unfiltered: project_list(Some(unfiltered.to_string())),
            max_age: 1,
            timeout: Duration::from_millis(1),
            revertrisk_url: None,
            revertrisk_timeout: Duration::from_millis(1_000),
        }
    }

    #[test]
    fn unfiltered_projects_come_first_then_overrides_then_enwiki() {
        assert_eq!(
            config(" dewiki, ,frwiki ", &["enwiki"]).default_projects(),
            ["dewiki", "frwiki"]
        );
        assert_eq!(
            config("", &["simplewiki"]).default_projects(),
            ["simplewiki"]
        );
        assert_eq!(config("", &[]).default_projects(), ["enwiki"]);
    }
}
