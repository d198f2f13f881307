//! Per-instance configuration: variables and the project registry, read
//! once per instance.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use wikiedge_fn::config::{cached, number, upstream_overrides, variable};

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
    /// The bytes of archive a batch build holds before it spills a part to
    /// the store, and the size of a stored part (`realtime_batch_budget_bytes`).
    pub batch_budget_bytes: usize,
}

/// The default batch build budget: 1 MiB.
pub const DEFAULT_BATCH_BUDGET_BYTES: u64 = 1 << 20;

static CONFIG: OnceLock<Config> = OnceLock::new();

/// How long a stream connection lasts by default: 15 minutes. WME's
/// connections are long-lived and the SDKs do not reconnect; a consumer
/// that does (`Last-Event-ID`, `offsets`) resumes exactly.
pub const DEFAULT_MAX_CONNECTION_SECONDS: u64 = 900;
/// The longest lifetime accepted: a day (WME's access tokens last 24 h).
pub const MAX_CONNECTION_SECONDS: u64 = 86_400;

/// The configuration, read on first use. Malformed numbers are logged and
/// replaced by the defaults.
pub async fn config() -> &'static Config {
    cached(&CONFIG, async {
        Config {
            overrides: upstream_overrides().await,
            timeout: Duration::from_millis(number(variable("upstream_timeout_ms").await, 5_000)),
            admin_key: variable("admin_api_key").await.unwrap_or_default(),
            ingest_key: variable("ingest_key").await.unwrap_or_default(),
            retention_seconds: number(variable("realtime_retention_seconds").await, 172_800),
            max_connection: Duration::from_secs(
                number(
                    variable("realtime_max_connection_seconds").await,
                    DEFAULT_MAX_CONNECTION_SECONDS,
                )
                .clamp(1, MAX_CONNECTION_SECONDS),
            ),
            poll: Duration::from_millis(
                number(variable("realtime_poll_ms").await, 50).clamp(5, 5_000),
            ),
            batch_budget_bytes: number(
                variable("realtime_batch_budget_bytes").await,
                DEFAULT_BATCH_BUDGET_BYTES,
            )
            .clamp(1024, 16 << 20) as usize,
        }
    })
    .await
}
