//! Loading an application: manifest, stores, variables, compiled components.
//!
//! Everything that can fail does so here, before the listener opens: a bad
//! manifest, a missing `.wasm`, an undeclared store, an unset required
//! variable, a dependency that does not fit. Each component is compiled once
//! (or loaded from the compile cache), linked and pre-instantiated; requests
//! then only instantiate from the pre-instance, and instances are reused for
//! many (and, for WASI 0.3 components, concurrent) requests, as Spin 4 does.

use crate::compose;
use crate::kv::StoreRegistry;
use crate::kv::sqlite::SqliteDatabase;
use crate::manifest::Manifest;
use crate::outbound::OutboundPolicy;
use crate::router::Router;
use crate::runtime_config::{RuntimeConfig, StoreConfig};
use crate::state::HostState;
use crate::variables::{ComponentVariables, Resolver};
use anyhow::{Context, Result, anyhow, bail};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, GuestTaskId, Linker};
use wasmtime::{Engine, Store, StoreContextMut, UpdateDeadline};
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, ProxyHandler, ProxyPre, ShouldAccept, WorkerExpiration, WorkerState,
    WorkerStatus,
};

/// How to load an application.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// The manifest file.
    pub manifest: PathBuf,
    /// Where state (key-value data, development keys) lives.
    pub state_dir: PathBuf,
    /// An optional runtime configuration file.
    pub runtime_config: Option<PathBuf>,
    /// Where compiled code is cached (None disables the cache).
    pub cache_dir: Option<PathBuf>,
    /// When SQLite key-value writes reach the disk.
    pub kv_durability: crate::kv::sqlite::Durability,
    /// Report every compare-and-swap as failed after doing it, as Spin
    /// 4.1's Redis store does ([`crate::kv::misreport`]).
    pub emulate_spin_redis_cas: bool,
}

/// Instance reuse limits, as Spin 4 / `wasmtime serve` apply to WASI 0.3.
#[derive(Debug, Clone, Copy)]
pub struct ReuseLimits {
    /// Requests one instance handles before it is retired.
    pub max_requests: usize,
    /// Requests one instance handles at the same time.
    pub max_concurrent: usize,
    /// How long an idle instance is kept.
    pub idle_timeout: Duration,
    /// The CPU time (guest code running, sampled every epoch tick) a request
    /// may use before its response head is ready. A request past it traps
    /// its instance and is answered 503; see [`RequestClock`].
    pub cpu_limit: Duration,
}

impl Default for ReuseLimits {
    fn default() -> Self {
        ReuseLimits {
            max_requests: 1024,
            max_concurrent: 16,
            idle_timeout: Duration::from_secs(10),
            cpu_limit: Duration::from_secs(10),
        }
    }
}

/// A loaded application, ready to serve.
pub struct App {
    /// The manifest.
    pub manifest: Manifest,
    /// The router.
    pub router: Router,
    /// Per-component request handlers.
    pub components: HashMap<String, ProxyHandler<ComponentHandler>>,
    /// The engine.
    pub engine: Engine,
    /// The key-value databases (kept open for the app's lifetime).
    pub databases: Vec<Arc<SqliteDatabase>>,
}

impl App {
    /// Load and prepare an application.
    pub fn load(opts: &AppOptions, engine: Engine, reuse: ReuseLimits) -> Result<App> {
        let manifest = Manifest::load(&opts.manifest)?;
        let (router, warnings) = Router::build(&manifest);
        for w in warnings {
            tracing::warn!("{w}");
        }

        let runtime = match &opts.runtime_config {
            Some(path) => RuntimeConfig::load(path, &opts.state_dir)?,
            None => RuntimeConfig::defaults(&opts.state_dir),
        };

        // Open each distinct database file once.
        let mut registry = StoreRegistry::default();
        let mut databases: BTreeMap<PathBuf, Arc<SqliteDatabase>> = BTreeMap::new();
        let used: std::collections::BTreeSet<&String> = manifest
            .components
            .values()
            .flat_map(|c| c.key_value_stores.iter())
            .collect();
        for label in &used {
            let config = runtime.key_value_stores.get(*label).ok_or_else(|| {
                anyhow!(
                    "key-value store \"{label}\" is used by a component but not defined; define [key_value_store.{label}] in a runtime config file"
                )
            })?;
            match config {
                StoreConfig::Sqlite(path) => {
                    let db = match databases.get(path) {
                        Some(db) => db.clone(),
                        None => {
                            let db = SqliteDatabase::open_with(path, opts.kv_durability)
                                .with_context(|| {
                                    format!("cannot open key-value store {}", path.display())
                                })?;
                            databases.insert(path.clone(), db.clone());
                            db
                        }
                    };
                    registry.insert(label.as_str(), misreport(opts, db.store(label)));
                }
                StoreConfig::Redis(url) => {
                    let store = crate::kv::redis::RedisStore::new(url).with_context(|| {
                        format!("key-value store \"{label}\": invalid Redis URL")
                    })?;
                    registry.insert(label.as_str(), misreport(opts, Arc::new(store)));
                }
            }
        }

        let env_lookup = |k: &str| std::env::var(k).ok();
        let dev = crate::devkeys::dev_defaults(&manifest, &opts.state_dir, &env_lookup)?;
        let resolver = Resolver::new(&manifest, &env_lookup, &dev);
        resolver.validate()?;

        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi::p3::add_to_linker(&mut linker)?;
        wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
        crate::kv_host::add_to_linker(&mut linker)?;

        let mut components = HashMap::new();
        let routed: std::collections::BTreeSet<&str> = manifest
            .http_triggers
            .iter()
            .map(|t| t.component.as_str())
            .collect();
        for id in routed {
            let decl = &manifest.components[id];
            let bytes = compose::composed_bytes(&manifest, id)?;
            let component = Component::new(&engine, &bytes)
                .map_err(|e| anyhow!("component `{id}` failed to compile: {e:?}"))?;
            let pre = linker
                .instantiate_pre(&component)
                .map_err(|e| anyhow!("component `{id}` cannot be linked: {e:?}"))?;
            let pre = wasmtime_wasi_http::p3::bindings::ServicePre::new(pre).map_err(|e| {
                anyhow!("component `{id}` is not a wasi:http/handler@0.3.0 component: {e:?}")
            })?;
            let outbound =
                OutboundPolicy::resolve(&decl.allowed_outbound_hosts, id, |t| resolver.expand(t))
                    .with_context(|| format!("[component.{id}] allowed_outbound_hosts"))?;
            for label in &decl.key_value_stores {
                if !registry.contains(label) {
                    bail!("[component.{id}] key_value_stores: no store \"{label}\"");
                }
            }
            let handler = ComponentHandler {
                id: id.to_string(),
                engine: engine.clone(),
                pre: ProxyPre::P3(pre),
                stores: registry.restricted_to(&decl.key_value_stores),
                variables: Arc::new(resolver.component(id)?),
                outbound: Arc::new(outbound),
                env: decl
                    .environment
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                reuse,
                next_instance: AtomicU64::new(0),
            };
            components.insert(id.to_string(), ProxyHandler::new(handler));
        }
        Ok(App {
            manifest,
            router,
            components,
            engine,
            databases: databases.into_values().collect(),
        })
    }
}

/// The store, wrapped in [`crate::kv::misreport::Misreporting`] when asked.
fn misreport(opts: &AppOptions, store: Arc<dyn crate::kv::Store>) -> Arc<dyn crate::kv::Store> {
    if opts.emulate_spin_redis_cas {
        Arc::new(crate::kv::misreport::Misreporting(store))
    } else {
        store
    }
}

/// Creates instances of one component for the request handler.
pub struct ComponentHandler {
    id: String,
    engine: Engine,
    pre: ProxyPre<HostState>,
    stores: crate::kv::ComponentStores,
    variables: Arc<ComponentVariables>,
    outbound: Arc<OutboundPolicy>,
    env: Vec<(String, String)>,
    reuse: ReuseLimits,
    next_instance: AtomicU64,
}

impl ComponentHandler {
    /// The component id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl HandlerState for ComponentHandler {
    type StoreData = HostState;
    type WorkerExpiration = IdleExpiration;
    type WorkerState = ReuseState;

    async fn instantiate(
        &self,
    ) -> wasmtime::Result<Instance<HostState, IdleExpiration, ReuseState>> {
        self.next_instance.fetch_add(1, Ordering::Relaxed);
        let mut store = Store::new(
            &self.engine,
            HostState::new(
                &self.id,
                &self.env,
                self.stores.clone(),
                self.variables.clone(),
                self.outbound.clone(),
                crate::engine::MAX_MEMORY,
            ),
        );
        store.limiter(|s| &mut s.limits);
        let meter: Arc<Meter> = Arc::default();
        let limit_ticks = (self.reuse.cpu_limit.as_millis()
            / crate::engine::EPOCH_TICK.as_millis().max(1))
        .max(1) as u64;
        let charged = meter.clone();
        store.epoch_deadline_callback(move |_| charged.tick(limit_ticks));
        store.set_epoch_deadline(1);
        let proxy = self.pre.instantiate_async(&mut store).await?;
        crate::metrics::metrics().instance_created(&self.id);
        Ok(Instance {
            store,
            proxy,
            view: wasmtime_wasi_http::WasiHttpView::http,
            expiration: IdleExpiration {
                idle_timeout: self.reuse.idle_timeout,
                sleep: Box::pin(tokio::time::sleep(Duration::MAX / 4)),
            },
            state: ReuseState {
                id: self.id.clone(),
                reuse: self.reuse,
                meter,
            },
        })
    }
}

/// Retires an instance after it has been idle for a while.
pub struct IdleExpiration {
    idle_timeout: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl WorkerExpiration for IdleExpiration {
    fn poll(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        let me = self.get_mut();
        if status != WorkerStatus::Idle {
            return Poll::Pending;
        }
        let deadline = (start + me.idle_timeout).into();
        if me.sleep.deadline() != deadline {
            me.sleep.as_mut().reset(deadline);
        }
        me.sleep.as_mut().poll(cx)
    }
}

/// The CPU time one request has used, shared between the server (which
/// marks it done once the response head is ready) and its instance's epoch
/// callback (which charges every tick during which the instance runs guest
/// code to each of the instance's unfinished requests, and traps the
/// instance when one of them is over the limit).
///
/// Charging every unfinished request of the instance errs on the side of
/// the neighbours: a request is never charged less than it used, so a guest
/// that loops cannot hide behind requests that wait on I/O; the price is
/// that a request waiting on I/O next to a long busy one is charged too.
#[derive(Debug, Default)]
pub struct RequestClock {
    ticks: AtomicU64,
    done: AtomicBool,
    timed_out: AtomicBool,
}

impl RequestClock {
    /// The response head is ready (or the request failed): stop charging.
    pub fn finish(&self) {
        self.done.store(true, Ordering::Relaxed);
    }

    /// Whether this request used up its CPU budget.
    pub fn timed_out(&self) -> bool {
        self.timed_out.load(Ordering::Relaxed)
    }

    /// CPU time charged so far (in epoch ticks).
    pub fn charged(&self) -> Duration {
        crate::engine::EPOCH_TICK * self.ticks.load(Ordering::Relaxed) as u32
    }
}

/// The CPU accounting of one instance: its unfinished requests, and the
/// ticks it has run guest code with none (streaming bodies, or a guest
/// spinning after its responses).
#[derive(Debug, Default)]
struct Meter {
    active: Mutex<Vec<Arc<RequestClock>>>,
    background: AtomicU64,
}

/// Background ticks allowed per request CPU budget: streaming a large body
/// may legitimately take a while; spinning forever may not.
const BACKGROUND_FACTOR: u64 = 10;

impl Meter {
    /// The epoch callback: charge this tick, trap if over budget, else
    /// yield to the executor and come back at the next tick.
    fn tick(&self, limit_ticks: u64) -> wasmtime::Result<UpdateDeadline> {
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        active.retain(|c| !c.done.load(Ordering::Relaxed));
        if active.is_empty() {
            let used = self.background.fetch_add(1, Ordering::Relaxed) + 1;
            if used > limit_ticks.saturating_mul(BACKGROUND_FACTOR) {
                return Err(CpuLimitExceeded.into());
            }
            return Ok(UpdateDeadline::Yield(1));
        }
        let mut over = false;
        for clock in active.iter() {
            if clock.ticks.fetch_add(1, Ordering::Relaxed) + 1 > limit_ticks {
                clock.timed_out.store(true, Ordering::Relaxed);
                over = true;
            }
        }
        if over {
            return Err(CpuLimitExceeded.into());
        }
        Ok(UpdateDeadline::Yield(1))
    }

    fn start(&self, clock: Arc<RequestClock>) {
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        active.retain(|c| !c.done.load(Ordering::Relaxed));
        active.push(clock);
        self.background.store(0, Ordering::Relaxed);
    }
}

/// The trap raised in an instance whose request ran past its CPU budget.
#[derive(Debug)]
pub struct CpuLimitExceeded;

impl std::fmt::Display for CpuLimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request exceeded its CPU time limit")
    }
}

impl std::error::Error for CpuLimitExceeded {}

/// Decides whether an instance takes another request.
pub struct ReuseState {
    id: String,
    reuse: ReuseLimits,
    meter: Arc<Meter>,
}

impl WorkerState for ReuseState {
    type StoreData = HostState;
    type RequestData = Arc<RequestClock>;

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.reuse.max_requests {
            ShouldAccept::Never
        } else if concurrent >= self.reuse.max_concurrent {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        _store: StoreContextMut<'_, HostState>,
        clock: Arc<RequestClock>,
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + 'static + Send + Sync>> {
        self.meter.start(clock);
        Box::pin(std::future::pending())
    }

    fn drop(&self, store: Store<HostState>, result: wasmtime::Result<()>) {
        if let Err(e) = result {
            tracing::error!(
                "component `{}`: instance failed and was discarded: {e:?}",
                self.id
            );
        }
        drop(store);
        crate::metrics::metrics().instance_dropped(&self.id);
    }
}
