//! glibc's heap bounds for the commands that run many threads (`up` and
//! `snapshot build`): how many arenas, and how much free memory an arena
//! keeps at its top (docs/limits.md).

/// glibc's heap bounds: arenas in `up` and in `snapshot build`, and the
/// free top (KiB) of an arena above which it is given back.
pub(crate) const MALLOC_ARENA_MAX: usize = 2;
pub(crate) const SNAPSHOT_MALLOC_ARENA_MAX: usize = 1;
const MALLOC_TRIM_THRESHOLD_KIB: usize = 1024;

/// glibc's heap bounds, for the commands that run many threads.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct HeapArgs {
    /// glibc heap arenas at most (each keeps freed memory of its own);
    /// 0: glibc's default (8 per core). Default: 2 in `up`, 1 in
    /// `snapshot build`.
    #[arg(long, env = "WIKIEDGE_MALLOC_ARENA_MAX")]
    malloc_arena_max: Option<usize>,
    /// KiB of free memory at the top of a glibc heap arena above which it
    /// is returned to the kernel as soon as it is freed; 0: glibc's
    /// moving default.
    #[arg(
        long,
        env = "WIKIEDGE_MALLOC_TRIM_THRESHOLD_KIB",
        default_value_t = MALLOC_TRIM_THRESHOLD_KIB
    )]
    malloc_trim_threshold_kib: usize,
}

impl HeapArgs {
    /// Sets the bounds, `arenas` unless given. Call before any thread
    /// exists: arenas are made per thread, and the environment is read by
    /// every thread.
    pub(crate) fn bound(&self, arenas: usize) {
        wikiedge_host::idle::bound_allocator(
            self.malloc_arena_max.unwrap_or(arenas),
            self.malloc_trim_threshold_kib.saturating_mul(1024),
        );
    }
}
