//! The one wasmtime [`Engine`] a host process uses.
//!
//! Compiled code is cached on disk across restarts (wasmtime's cache, keyed
//! by the component bytes and the engine configuration), so a restart with a
//! warm cache skips compilation. Instances come from the pooling allocator
//! when the machine's address space allows it, which makes instantiation a
//! few microseconds; otherwise the on-demand allocator is used.

use anyhow::Result;
use std::path::Path;
use wasmtime::{
    Cache, CacheConfig, Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig,
};

/// The largest linear memory a guest may grow to.
pub const MAX_MEMORY: usize = 256 << 20;

/// Build the engine. `cache_dir` enables the on-disk compilation cache.
pub fn engine(cache_dir: Option<&Path>) -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.wasm_component_model_async(true);
    if let Some(dir) = cache_dir {
        std::fs::create_dir_all(dir)?;
        let mut cache = CacheConfig::new();
        cache.with_directory(dir);
        config.cache(Some(Cache::new(cache)?));
    }
    if pooling_is_available() {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(1000);
        pool.total_core_instances(4000);
        pool.total_memories(2000);
        pool.total_tables(4000);
        pool.max_memory_size(MAX_MEMORY);
        pool.max_memories_per_component(64);
        pool.max_tables_per_component(64);
        pool.max_core_instances_per_component(256);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Ok(Engine::new(&config)?)
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
