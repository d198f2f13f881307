//! Loading an application: manifest, stores, variables, compiled components.
//!
//! Everything that can fail does so here, before the listener opens: a bad
//! manifest, a missing `.wasm`, an undeclared store, an unset required
//! variable, a dependency that does not fit. Each component is compiled once
//! (or loaded from the compile cache), linked and pre-instantiated; requests
//! then only instantiate from the pre-instance, and instances are reused for
//! many (and, for WASI 0.3 components, concurrent) requests, as Spin 4 does.

use crate::compose;
use crate::idle::{Activity, IdleExpiration};
use crate::kv::open::{Databases, OpenStores, StoreOptions, open_stores};
use crate::kv::sqlite::CommitMode;
use crate::manifest::Manifest;
use crate::outbound::OutboundPolicy;
use crate::router::Router;
use crate::runtime_config::RuntimeConfig;
use crate::shard::Sharded;
use crate::state::HostState;
use crate::variables::{ComponentVariables, Resolver};
use anyhow::{Context, Result, anyhow, bail};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use wasmtime::component::{GuestTaskId, Linker};
use wasmtime::{Engine, Store, StoreContextMut, UpdateDeadline};
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, ProxyHandler, ProxyPre, ShouldAccept, WorkerState,
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
    /// Key-value stores the embedding tool defines when there is no runtime
    /// configuration file ([`RuntimeConfig::resolve`]); `default` is
    /// always defined.
    pub store_defaults: BTreeMap<String, crate::runtime_config::StoreConfig>,
    /// Where compiled code is cached (None disables the cache).
    pub cache_dir: Option<PathBuf>,
    /// Who compiles a component the cache lacks: a process of its own
    /// (None: this one; [`crate::compiled`]).
    pub compile_process: Option<crate::compiled::CompileProcess>,
    /// When SQLite key-value writes reach the disk.
    pub kv_durability: crate::kv::sqlite::Durability,
    /// Report every compare-and-swap as failed after doing it, as Spin
    /// 4.1's Redis store does ([`crate::kv::misreport`]).
    pub emulate_spin_redis_cas: bool,
    /// Values for variables the manifest declares and nothing sets (the
    /// embedding tool's development secrets, say); below `SPIN_VARIABLE_*`
    /// and above the manifest's own defaults.
    pub variable_defaults: VariableDefaults,
    /// Serving threads, each with its own instances of every component
    /// ([`crate::shard`]; [`crate::server::serve`] runs one per pool).
    pub threads: usize,
}

/// Fallback variable values. Its `Debug` names the variables, never a value:
/// these are typically secrets.
#[derive(Clone, Default)]
pub struct VariableDefaults(pub BTreeMap<String, String>);

impl std::fmt::Debug for VariableDefaults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
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
    /// The largest linear memory an instance's guest may grow to, in bytes
    /// (at most the engine's [`crate::engine::EngineOptions::max_memory`]).
    pub max_memory: usize,
    /// An instance whose guests hold more linear memory than this is
    /// retired as soon as it is idle, instead of after `idle_timeout`: a
    /// linear memory never shrinks, so an instance that once needed much
    /// (a login's password hash: 19 MiB) would hold it while it waits.
    pub max_idle_memory: usize,
}

impl Default for ReuseLimits {
    fn default() -> Self {
        ReuseLimits {
            max_requests: 1024,
            max_concurrent: 16,
            idle_timeout: Duration::from_secs(10),
            cpu_limit: Duration::from_secs(10),
            max_memory: crate::engine::MAX_MEMORY,
            max_idle_memory: MAX_IDLE_MEMORY,
        }
    }
}

/// The default [`ReuseLimits::max_idle_memory`]: above what the composed
/// article function's four guests hold under load, below what one login
/// needs.
pub const MAX_IDLE_MEMORY: usize = 16 << 20;

/// A loaded application, ready to serve.
pub struct App {
    /// The manifest.
    pub manifest: Manifest,
    /// The router.
    pub router: Router,
    /// Per-component request handlers, one per serving thread
    /// ([`crate::shard`]).
    pub components: HashMap<String, Sharded<ProxyHandler<ComponentHandler>>>,
    /// The engine.
    pub engine: Engine,
    /// The key-value databases (kept open for the app's lifetime).
    pub databases: Databases,
    /// Requests and instances coming and going, for [`crate::idle`].
    pub activity: Arc<Activity>,
    /// Serving threads: the number of instance pools of each component.
    pub threads: usize,
}

impl App {
    /// Load and prepare an application.
    pub fn load(opts: &AppOptions, engine: Engine, reuse: ReuseLimits) -> Result<App> {
        let manifest = Manifest::load(&opts.manifest)?;
        let (router, warnings) = Router::build(&manifest);
        for w in warnings {
            tracing::warn!("{w}");
        }

        let runtime = RuntimeConfig::resolve(
            opts.runtime_config.as_deref(),
            &opts.state_dir,
            &opts.store_defaults,
        )?;

        // As Spin's key-value factor (`configure_app`): every label a
        // component declares must be defined.
        for (id, decl) in &manifest.components {
            if let Some(label) = decl
                .key_value_stores
                .iter()
                .find(|l| !runtime.key_value_stores.contains_key(l.as_str()))
            {
                bail!(
                    "unknown key_value_stores label \"{label}\" for component \"{id}\": define [key_value_store.{label}] in the runtime config file"
                );
            }
        }
        let used: std::collections::BTreeSet<&str> = manifest
            .components
            .values()
            .flat_map(|c| c.key_value_stores.iter().map(String::as_str))
            .collect();
        let OpenStores {
            registry,
            databases,
        } = open_stores(
            &runtime,
            used,
            StoreOptions {
                durability: opts.kv_durability,
                // The server and the outbound hook settle `databases`
                // before every response head and outbound request.
                commit: CommitMode::before_reply(),
                emulate_spin_redis_cas: opts.emulate_spin_redis_cas,
            },
        )?;
        let databases = Databases::new(databases);

        let env_lookup = |k: &str| std::env::var(k).ok();
        let resolver = Resolver::new(&manifest, &env_lookup, &opts.variable_defaults.0);
        resolver.validate()?;

        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi::p3::add_to_linker(&mut linker)?;
        wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
        crate::kv_host::add_to_linker(&mut linker)?;

        let activity = Arc::new(Activity::default());
        let shards = opts.threads.max(1);
        let mut components = HashMap::new();
        let routed: std::collections::BTreeSet<&str> = manifest
            .http_triggers
            .iter()
            .map(|t| t.component.as_str())
            .collect();
        for id in routed {
            let decl = &manifest.components[id];
            let bytes = compose::composed_bytes(&manifest, id)?;
            let cache = opts.cache_dir.as_deref();
            let component =
                crate::compiled::load(&engine, id, &bytes, cache, opts.compile_process.as_ref())
                    .map_err(|e| anyhow!("component `{id}` failed to compile: {e:#}"))?;
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
            let stores = registry.restricted_to(&decl.key_value_stores);
            let variables = Arc::new(resolver.component(id)?);
            let outbound = Arc::new(outbound);
            let env: Vec<(String, String)> = decl
                .environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let handlers = Sharded::new(shards, |_| {
                ProxyHandler::new(ComponentHandler {
                    id: id.to_string(),
                    engine: engine.clone(),
                    pre: ProxyPre::P3(pre.clone()),
                    stores: stores.clone(),
                    databases: databases.clone(),
                    variables: variables.clone(),
                    outbound: outbound.clone(),
                    env: env.clone(),
                    reuse,
                    next_instance: AtomicU64::new(0),
                    activity: activity.clone(),
                })
            });
            components.insert(id.to_string(), handlers);
        }
        Ok(App {
            manifest,
            router,
            components,
            engine,
            databases,
            activity,
            threads: shards,
        })
    }

    /// Give back the memory the host keeps only for speed: the key-value
    /// read caches and pooled SQLite readers, then the allocator's free
    /// pages, and the resident pages of the compiled code (read in again
    /// when it next runs). Called when the host has gone quiet
    /// ([`crate::idle`]).
    pub fn release_memory(&self) {
        for db in self.databases.iter() {
            db.release_memory();
        }
        crate::idle::trim_allocator();
        crate::idle::page_out_compiled_code();
        crate::metrics::metrics().idle_release();
    }
}

/// Creates instances of one component for the request handler.
pub struct ComponentHandler {
    id: String,
    engine: Engine,
    pre: ProxyPre<HostState>,
    stores: crate::kv::ComponentStores,
    databases: Databases,
    variables: Arc<ComponentVariables>,
    outbound: Arc<OutboundPolicy>,
    env: Vec<(String, String)>,
    reuse: ReuseLimits,
    next_instance: AtomicU64,
    activity: Arc<Activity>,
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
                self.databases.clone(),
                self.reuse.max_memory,
            ),
        );
        store.limiter(|s| &mut s.limits);
        let held = store.data().limits.held();
        let meter: Arc<Meter> = Arc::default();
        let limit_ticks = (self.reuse.cpu_limit.as_millis()
            / crate::engine::EPOCH_TICK.as_millis().max(1))
        .max(1) as u64;
        let charged = meter.clone();
        store.epoch_deadline_callback(move |_| charged.tick(limit_ticks));
        store.set_epoch_deadline(1);
        let proxy = self.pre.instantiate_async(&mut store).await?;
        crate::metrics::metrics().instance_created(&self.id);
        self.activity.instance_created();
        Ok(Instance {
            store,
            proxy,
            view: wasmtime_wasi_http::WasiHttpView::http,
            expiration: IdleExpiration::new(
                self.reuse.idle_timeout,
                held,
                self.reuse.max_idle_memory,
                &self.activity,
            ),
            state: ReuseState {
                id: self.id.clone(),
                reuse: self.reuse,
                meter,
                activity: self.activity.clone(),
            },
        })
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
    /// When the epoch callback last ran: a callback that comes long after
    /// the previous one follows a wait, not a run of guest code.
    last_tick: Mutex<Option<Instant>>,
}

/// A callback this long after the previous one follows a wait (a timer, a
/// host call, a stream waiting on its reader): the guest was not running
/// during those ticks, so the tick that merely notices the passed deadline
/// is not charged. Guest code running without a pause meets the callback
/// every tick and is charged every tick.
const WAIT_GAP: Duration = Duration::from_millis(3 * crate::engine::EPOCH_TICK.as_millis() as u64);

/// Background ticks allowed per request CPU budget: streaming a large body
/// may legitimately take a while; spinning forever may not.
const BACKGROUND_FACTOR: u64 = 10;

/// Yields to the serving thread's runtime until the next tick, the way
/// `tokio::task::yield_now` does: the guest's task is woken only after the
/// runtime has polled for I/O and run the tasks that are ready. With a plain
/// wake-up (`UpdateDeadline::Yield`) the task went straight back on the run
/// queue, and tokio polls for I/O only every 61 task polls: each poll a
/// tick long, a request on the same thread waited for the guest to end
/// (`instances::a_long_running_guest_lets_the_requests_on_its_thread_through`).
fn yield_tick() -> UpdateDeadline {
    UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()))
}

impl Meter {
    /// The epoch callback: charge this tick, trap if over budget, else
    /// yield to the executor and come back at the next tick.
    fn tick(&self, limit_ticks: u64) -> wasmtime::Result<UpdateDeadline> {
        self.tick_at(Instant::now(), limit_ticks)
    }

    /// [`Meter::tick`] at a given time. A long-lived stream that wakes every
    /// few ticks to look for work used to pay one tick per wake-up (the
    /// deadline had passed while it slept); a 15-minute realtime stream
    /// polling every 50 ms paid 18,000 ticks, more than the background
    /// budget, and charged its wake-ups to every neighbouring request.
    fn tick_at(&self, now: Instant, limit_ticks: u64) -> wasmtime::Result<UpdateDeadline> {
        let after_wait = {
            let mut last = self.last_tick.lock().unwrap_or_else(|e| e.into_inner());
            let after_wait = last.is_none_or(|t| now.saturating_duration_since(t) >= WAIT_GAP);
            *last = Some(now);
            after_wait
        };
        if after_wait {
            return Ok(UpdateDeadline::Continue(1));
        }
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        active.retain(|c| !c.done.load(Ordering::Relaxed));
        if active.is_empty() {
            let used = self.background.fetch_add(1, Ordering::Relaxed) + 1;
            if used > limit_ticks.saturating_mul(BACKGROUND_FACTOR) {
                return Err(CpuLimitExceeded.into());
            }
            return Ok(yield_tick());
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
        Ok(yield_tick())
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
    activity: Arc<Activity>,
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
        if let Err(e) = result
            && !self.activity.discarding()
        {
            tracing::error!(
                "component `{}`: instance failed and was discarded: {e:?}",
                self.id
            );
        }
        drop(store);
        crate::metrics::metrics().instance_dropped(&self.id);
        self.activity.instance_dropped();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charged(meter: &Meter) -> u64 {
        meter.background.load(Ordering::Relaxed)
    }

    #[test]
    fn a_guest_running_without_pause_is_charged_every_tick() {
        let meter = Meter::default();
        let t0 = Instant::now();
        let tick = crate::engine::EPOCH_TICK;
        for i in 0..=100u32 {
            assert!(meter.tick_at(t0 + tick * i, 1000).is_ok());
        }
        // The first callback has nothing before it; the next 100 follow
        // one tick of running each.
        assert_eq!(charged(&meter), 100);
        // Over the budget (10 × 5 ticks with no request): trapped.
        let meter = Meter::default();
        let trapped = (0..=60u32).any(|i| meter.tick_at(t0 + tick * i, 5).is_err());
        assert!(trapped);
    }

    #[test]
    fn a_guest_that_mostly_waits_is_not_charged_for_its_wake_ups() {
        let meter = Meter::default();
        let t0 = Instant::now();
        // A stream polling every 50 ms for 15 minutes: 18,000 wake-ups,
        // each running well under a tick.
        let poll = Duration::from_millis(50);
        for i in 0..18_000u32 {
            assert!(meter.tick_at(t0 + poll * i, 1000).is_ok(), "wake-up {i}");
        }
        assert_eq!(charged(&meter), 0);
        // A wake-up that then runs for three ticks pays for the two it ran
        // past the first.
        let t1 = t0 + poll * 18_000;
        let tick = crate::engine::EPOCH_TICK;
        for i in 0..3u32 {
            assert!(meter.tick_at(t1 + tick * i, 1000).is_ok());
        }
        assert_eq!(charged(&meter), 2);
    }
}
