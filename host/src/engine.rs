//! The one wasmtime [`Engine`] a host process uses.
//!
//! Compiled code is cached on disk across restarts by [`crate::compiled`]
//! (files keyed by the component bytes and the engine configuration, mapped
//! rather than copied), so a restart with a warm cache skips compilation;
//! wasmtime's own compile cache is not enabled. Instances come from the
//! pooling allocator when the machine's address space allows it, which
//! makes instantiation a few microseconds; otherwise the on-demand
//! allocator is used.
//!
//! Guest code is compiled with epoch checks: a ticker thread advances the
//! engine's epoch every [`EPOCH_TICK`], and each store's epoch callback
//! (see `app.rs`) charges the tick to the requests its instance is working
//! on, yields to the async executor (so a busy guest never holds a runtime
//! thread for longer than one tick) and traps the instance once a request
//! has used up its CPU budget.

use anyhow::Result;
use std::time::Duration;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// The largest linear memory a guest may grow to, by default.
pub const MAX_MEMORY: usize = 256 << 20;

/// Engine-wide bounds (docs/limits.md).
#[derive(Debug, Clone, Copy)]
pub struct EngineOptions {
    /// The largest linear memory any guest may grow to, in bytes: the size
    /// of each slot of the pooling allocator (address space, not memory).
    pub max_memory: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            max_memory: MAX_MEMORY,
        }
    }
}

/// How often the epoch advances: the granularity of the CPU budget and the
/// longest a guest runs before yielding its runtime thread.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Build the engine with the default options.
///
/// Starts the epoch ticker thread, which stops once the engine is dropped.
pub fn engine() -> Result<Engine> {
    engine_with(EngineOptions::default())
}

/// [`engine`] with explicit bounds.
pub fn engine_with(opts: EngineOptions) -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.wasm_component_model_async(true);
    config.epoch_interruption(true);
    // No `config.cache(..)`: wasmtime's cache would compress every
    // component compiled and write it beside `compiled`'s files, a second
    // copy that is never read while the first exists (BENCHMARKS.md, "A
    // start that compiles leaves less behind").
    if pooling_is_available() {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(1000);
        pool.total_core_instances(4000);
        pool.total_memories(2000);
        pool.total_tables(4000);
        pool.max_memory_size(opts.max_memory);
        pool.max_memories_per_component(64);
        pool.max_tables_per_component(64);
        pool.max_core_instances_per_component(256);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    let engine = Engine::new(&config)?;
    start_epoch_ticker(&engine);
    Ok(engine)
}

fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("wikiedge-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(e) = spawned {
        // Without the ticker no deadline fires, but nothing hangs either:
        // stores start with a deadline far in the future.
        eprintln!("warning: cannot start the epoch ticker thread: {e}");
    }
}

/// Whether the pooling allocator's virtual-memory reservation will succeed
/// here (it reserves address space for every slot up front).
fn pooling_is_available() -> bool {
    use wasmtime::{Memory, MemoryType, Store};
    const BITS_TO_TEST: u32 = 42;
    let mut config = Config::new();
    config.wasm_memory64(true);
    config.memory_reservation(1 << BITS_TO_TEST);
    let Ok(engine) = Engine::new(&config) else {
        return false;
    };
    let mut store = Store::new(&engine, ());
    let ty = MemoryType::new64(0, Some(1 << (BITS_TO_TEST - 16)));
    Memory::new(&mut store, ty).is_ok()
}

/// Turns off backtraces in errors (`std::backtrace::Backtrace::capture`)
/// unless `RUST_LIB_BACKTRACE` asks for them, so that `RUST_BACKTRACE=1`,
/// often set to see where a panic happened, does not also make every error
/// capture one. wasmtime builds an error each time it disposes of a fiber,
/// which a guest-to-guest call does; with `RUST_BACKTRACE=1` each of those
/// walked the stack under a global lock, 15-100 µs of CPU per article
/// request in 5 of 6 alternating pairs (BENCHMARKS.md, "Backtraces").
/// Panics keep their backtraces.
///
/// Call before any other thread exists: it changes the process
/// environment.
#[allow(unsafe_code)] // setting an environment variable, single-threaded
pub fn quiet_error_backtraces() {
    if sets_lib_backtrace(std::env::var_os("RUST_LIB_BACKTRACE").as_deref()) {
        // SAFETY: called from `main` before the runtime or any other thread
        // starts, so nothing reads the environment concurrently.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
}

/// Whether [`quiet_error_backtraces`] sets `RUST_LIB_BACKTRACE=0`: only
/// when the operator has not set it either way.
fn sets_lib_backtrace(current: Option<&std::ffi::OsStr>) -> bool {
    current.is_none()
}

#[cfg(test)]
mod backtrace_tests {
    use super::sets_lib_backtrace;
    use std::ffi::OsStr;

    #[test]
    fn error_backtraces_are_off_unless_the_operator_chose() {
        assert!(sets_lib_backtrace(None));
        assert!(!sets_lib_backtrace(Some(OsStr::new("1"))));
        assert!(!sets_lib_backtrace(Some(OsStr::new("0"))));
    }
}
