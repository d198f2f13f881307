//! Variables and the project registry. Variables cannot change while an
//! instance lives (on Spin or on `wikiedge up`), so components read them
//! once per instance.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use wikiedge_core::Error;
use wikiedge_core::projects::Registry;
use wikiedge_core::quota::Plans;

use crate::name;

use wikiedge_core::projects::SITEMATRIX;

static REGISTRY: OnceLock<Registry> = OnceLock::new();
static PLANS: OnceLock<Plans> = OnceLock::new();

/// The value in `cell`, computed by `read` on first use (a component's
/// configuration, read once per instance).
pub async fn cached<T>(cell: &'static OnceLock<T>, read: impl Future<Output = T>) -> &'static T {
    if let Some(value) = cell.get() {
        return value;
    }
    let value = read.await;
    cell.get_or_init(|| value)
}

/// A variable, or `None` (logged) when it cannot be read.
pub async fn variable(name: &str) -> Option<String> {
    match spin_sdk::variables::get(name).await {
        Ok(value) => Some(value),
        Err(err) => {
            eprintln!("{}: variable {name} unavailable: {err:?}", crate::name());
            None
        }
    }
}

/// A declared variable, read through the synchronous `wasi:config/store`,
/// for code that cannot wait for the asynchronous `spin:variables` (the
/// exported `func`s of auth and quota, which Spin and `wikiedge up` lift
/// synchronously). A variable the component does not declare is our
/// misconfiguration (500).
pub fn variable_now(name: &str) -> Result<String, Error> {
    spin_sdk::experimental::wasi::config::store::get(name)
        .map_err(|e| Error::Internal(format!("variable {name}: {e:?}")))?
        .ok_or_else(|| Error::Internal(format!("variable {name} is not declared")))
}

/// The plans: the `plans` variable, or the built-in set when it is empty,
/// parsed once per instance (read with [`variable_now`]: quota's exports
/// need them). A bad `plans` variable is our misconfiguration (500), and a
/// failed read is not kept.
pub fn plans() -> Result<&'static Plans, Error> {
    if let Some(plans) = PLANS.get() {
        return Ok(plans);
    }
    let text = variable_now("plans")?;
    let plans = if text.trim().is_empty() {
        Plans::builtin()
    } else {
        Plans::parse(&text).map_err(|e| Error::Internal(format!("variable plans: {e}")))?
    };
    Ok(PLANS.get_or_init(|| plans))
}

/// A number variable's value, or `default` when unset or malformed.
pub fn number(value: Option<String>, default: u64) -> u64 {
    value
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(default)
}

/// Project id -> upstream base URL, from `upstream_overrides` (a JSON
/// object); an invalid value is logged and ignored.
pub async fn upstream_overrides() -> BTreeMap<String, String> {
    match variable("upstream_overrides").await {
        Some(json) if !json.trim().is_empty() => serde_json::from_str(&json)
            .map_err(|e| eprintln!("{}: ignoring invalid upstream_overrides: {e}", name()))
            .unwrap_or_default(),
        _ => BTreeMap::new(),
    }
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
pub fn base_url(overrides: &BTreeMap<String, String>, project: &str) -> Result<String, Error> {
    if let Some(url) = overrides.get(project) {
        return Ok(url.clone());
    }
    Ok(registry()?.base_url(project)?.to_string())
}
