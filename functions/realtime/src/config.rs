//! Per-instance configuration: variables and the project registry, read
//! once per instance.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use wikiedge_core::Error;
use wikiedge_core::projects::Registry;

/// The site matrix the registry is built from (the articles function's copy).
const SITEMATRIX: &[u8] = include_bytes!("../../articles/data/sitematrix.json");

/// The variables of the realtime component.
#[derive(Debug, Clone)]
pub struct Config {
    /// Project id -> upstream base URL, from `upstream_overrides`.
    pub overrides: BTreeMap<String, String>,
    /// The time bound of one upstream fetch (`upstream_timeout_ms`).
    pub timeout: Duration,
    /// `admin_api_key`.
    pub admin_key: String,
    /// `ingest_key`; empty disables `X-Ingest-Key`.
    pub ingest_key: String,
    /// Seconds events are kept (`realtime_retention_seconds`).
    pub retention_seconds: u64,
    /// How long one stream connection lasts (`realtime_max_connection_seconds`).
    pub max_connection: Duration,
    /// How often an idle stream looks for new events (`realtime_poll_ms`).
    pub poll: Duration,
}

static CONFIG: OnceLock<Config> = OnceLock::new();
static REGISTRY: OnceLock<Registry> = OnceLock::new();

async fn variable(name: &str) -> Option<String> {
    match spin_sdk::variables::get(name).await {
        Ok(value) => Some(value),
        Err(err) => {
            eprintln!("realtime: variable {name} unavailable: {err:?}");
            None
        }
    }
}

/// The configuration, read on first use. Malformed numbers are logged and
/// replaced by the defaults.
pub async fn config() -> &'static Config {
    if let Some(config) = CONFIG.get() {
        return config;
    }
    let overrides = match variable("upstream_overrides").await {
        Some(json) if !json.trim().is_empty() => serde_json::from_str(&json)
            .map_err(|e| eprintln!("realtime: ignoring invalid upstream_overrides: {e}"))
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
        timeout: Duration::from_millis(number(variable("upstream_timeout_ms").await, 5_000)),
        admin_key: variable("admin_api_key").await.unwrap_or_default(),
        ingest_key: variable("ingest_key").await.unwrap_or_default(),
        retention_seconds: number(variable("realtime_retention_seconds").await, 172_800),
        max_connection: Duration::from_secs(
            number(variable("realtime_max_connection_seconds").await, 60).clamp(1, 3600),
        ),
        poll: Duration::from_millis(number(variable("realtime_poll_ms").await, 50).clamp(5, 5_000)),
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
