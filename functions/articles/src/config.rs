//! Per-instance configuration: the variables and the project registry,
//! each read once per instance (variables cannot change while an instance
//! lives, on Spin or on `wikiedge up`).

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use wikiedge_core::Error;
use wikiedge_core::projects::Registry;

/// The site matrix the registry is built from (see `data/README.md`).
const SITEMATRIX: &[u8] = include_bytes!("../data/sitematrix.json");

/// The project used for an uncached title when neither a project filter nor
/// `upstream_overrides` says where to look.
const DEFAULT_PROJECT: &str = "enwiki";

/// The variables of the articles component.
#[derive(Debug, Clone)]
pub struct Config {
    /// Project id -> upstream base URL, from `upstream_overrides`.
    pub overrides: BTreeMap<String, String>,
    /// Seconds a cached article is fresh (`article_max_age`).
    pub max_age: u64,
    /// The time bound of one upstream fetch (`upstream_timeout_ms`).
    pub timeout: Duration,
}

impl Config {
    /// The projects tried for a title no store entry knows: the overridden
    /// projects when overrides are set (an operator pointed us at them),
    /// else `enwiki`.
    pub fn default_projects(&self) -> Vec<String> {
        if self.overrides.is_empty() {
            vec![DEFAULT_PROJECT.to_string()]
        } else {
            self.overrides.keys().cloned().collect()
        }
    }

    /// Seconds to wait before trying upstream again after it failed for a
    /// stale article: a tenth of the max age, between 10 s and 5 min.
    pub fn retry_backoff(&self) -> u64 {
        (self.max_age / 10).clamp(10, 300)
    }
}

static CONFIG: OnceLock<Config> = OnceLock::new();
static REGISTRY: OnceLock<Registry> = OnceLock::new();

async fn variable(name: &str) -> Option<String> {
    match spin_sdk::variables::get(name).await {
        Ok(value) => Some(value),
        Err(err) => {
            eprintln!("articles: variable {name} unavailable: {err:?}");
            None
        }
    }
}

/// The configuration, read on first use. Malformed values are logged and
/// replaced by the defaults, so a typo never takes the API down.
pub async fn config() -> &'static Config {
    if let Some(config) = CONFIG.get() {
        return config;
    }
    let overrides = match variable("upstream_overrides").await {
        Some(json) if !json.trim().is_empty() => serde_json::from_str(&json)
            .map_err(|e| eprintln!("articles: ignoring invalid upstream_overrides: {e}"))
            .unwrap_or_default(),
        _ => BTreeMap::new(),
    };
    let number = |value: Option<String>, default: u64| {
        value
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(default)
    };
    let config = Config {
        overrides,
        max_age: number(variable("article_max_age").await, 86_400),
        timeout: Duration::from_millis(number(variable("upstream_timeout_ms").await, 5_000)),
    };
    CONFIG.get_or_init(|| config)
}

/// The project registry, built from the embedded site matrix on first use.
pub fn registry() -> Result<&'static Registry, Error> {
    if let Some(registry) = REGISTRY.get() {
        return Ok(registry);
    }
    let registry = Registry::from_sitematrix(SITEMATRIX)
        .map_err(|e| Error::Internal(format!("embedded site matrix: {e}")))?;
    Ok(REGISTRY.get_or_init(|| registry))
}

/// The upstream base URL of a project: an override, else its site-matrix URL.
pub fn base_url(config: &Config, project: &str) -> Result<String, Error> {
    if let Some(url) = config.overrides.get(project) {
        return Ok(url.clone());
    }
    Ok(registry()?.base_url(project)?.to_string())
}
