//! Giving memory back once the host goes quiet ("scale to zero" in spirit).
//!
//! Under load the host holds memory that only load needs: live component
//! instances (their linear memories and fiber stacks), the key-value read
//! cache and the SQLite readers' page caches, and the allocator's free lists
//! (glibc keeps freed blocks in its arenas rather than returning them to the
//! kernel). Idle instances retire on their own timer
//! (`--idle-instance-timeout`, [`IdleExpiration`]), and all at once when the
//! server closes ([`Activity::close`]). This module watches the host's
//! activity — requests starting and ending, instances created and dropped —
//! and, once nothing has changed for the quiet period and no request is in
//! progress, releases the rest once: the key-value caches are emptied, the
//! pooled SQLite readers closed, and glibc's `malloc_trim` hands free heap
//! pages back to the kernel. Every later change re-arms it, so instances
//! that retire after a first release are followed by a second one.
//!
//! The decision ([`Quiet`]) is pure and takes the time as an argument, so
//! it is unit-tested without sleeping; [`run`] drives it with the clock.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};
use wasmtime_wasi_http::handler::{WorkerExpiration, WorkerStatus};

/// The host's activity counters, shared by the server (requests) and the
/// instance handlers (instances).
#[derive(Debug, Default)]
pub struct Activity {
    /// Requests between their start and their response head.
    active: AtomicUsize,
    /// Bumped by every start and end of a request and by every instance
    /// created or dropped.
    changes: AtomicU64,
    /// Live instances.
    instances: AtomicUsize,
    /// Set once the server has answered its last request: idle instances
    /// retire at once instead of after their idle timeout.
    closing: tokio::sync::watch::Sender<bool>,
    /// Set once a closing server gave up waiting for busy instances: they
    /// are dropped with their threads' runtimes.
    discarding: std::sync::atomic::AtomicBool,
}

/// What [`Quiet::observe`] looks at: a snapshot of [`Activity`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Requests in progress.
    pub active: usize,
    /// The change counter.
    pub changes: u64,
}

impl Activity {
    /// A request started; the returned guard ends it when dropped.
    pub fn request(&self) -> RequestGuard<'_> {
        self.active.fetch_add(1, Ordering::Relaxed);
        self.changed();
        RequestGuard(self)
    }

    /// Something that holds memory was created or dropped.
    pub fn changed(&self) {
        self.changes.fetch_add(1, Ordering::Relaxed);
    }

    /// An instance was created.
    pub fn instance_created(&self) {
        self.instances.fetch_add(1, Ordering::Relaxed);
        self.changed();
    }

    /// An instance was retired or discarded.
    pub fn instance_dropped(&self) {
        self.instances.fetch_sub(1, Ordering::Relaxed);
        self.changed();
    }

    /// Live instances.
    pub fn instances(&self) -> usize {
        self.instances.load(Ordering::Relaxed)
    }

    /// The server has answered its last request: every instance retires as
    /// soon as it is idle ([`Activity::closed`]).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once [`Activity::close`] has been called.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + Sync + 'static {
        let mut closing = self.closing.subscribe();
        async move {
            while !*closing.borrow_and_update() {
                if closing.changed().await.is_err() {
                    return;
                }
            }
        }
    }

    /// The instances still live at shutdown are about to be dropped busy.
    pub fn discard(&self) {
        self.discarding.store(true, Ordering::Relaxed);
    }

    /// Whether [`Activity::discard`] was called: an instance failing now is
    /// one of those, already reported.
    pub fn discarding(&self) -> bool {
        self.discarding.load(Ordering::Relaxed)
    }

    /// Wait, at most `limit`, until no instance is left; returns how many
    /// still are.
    pub async fn instances_retired(&self, limit: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = self.instances();
            if left == 0 || tokio::time::Instant::now() >= deadline {
                return left;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            active: self.active.load(Ordering::Relaxed),
            changes: self.changes.load(Ordering::Relaxed),
        }
    }
}

/// Retires an instance after it has been idle for a while, or as soon as it
/// is idle if its guests hold more than `max_idle_memory` or the server is
/// closing.
pub struct IdleExpiration {
    idle_timeout: Duration,
    held: Arc<AtomicUsize>,
    max_idle_memory: usize,
    sleep: Pin<Box<tokio::time::Sleep>>,
    /// [`Activity::closed`], until it has resolved.
    closing: Option<Pin<Box<dyn Future<Output = ()> + Send + Sync>>>,
}

impl IdleExpiration {
    /// The expiration of an instance whose guests' memory `held` counts,
    /// on a host whose activity is `activity`.
    pub fn new(
        idle_timeout: Duration,
        held: Arc<AtomicUsize>,
        max_idle_memory: usize,
        activity: &Activity,
    ) -> Self {
        IdleExpiration {
            idle_timeout,
            held,
            max_idle_memory,
            sleep: Box::pin(tokio::time::sleep(Duration::MAX / 4)),
            closing: Some(Box::pin(activity.closed())),
        }
    }
}

impl WorkerExpiration for IdleExpiration {
    fn poll(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        let me = self.get_mut();
        if status != WorkerStatus::Idle {
            return Poll::Pending;
        }
        if me.held.load(Ordering::Relaxed) > me.max_idle_memory {
            return Poll::Ready(());
        }
        match me.closing.as_mut().map(|c| c.as_mut().poll(cx)) {
            Some(Poll::Pending) => {}
            Some(Poll::Ready(())) | None => {
                me.closing = None;
                return Poll::Ready(());
            }
        }
        let deadline = (start + me.idle_timeout).into();
        if me.sleep.deadline() != deadline {
            me.sleep.as_mut().reset(deadline);
        }
        me.sleep.as_mut().poll(cx)
    }
}

/// A request in progress (see [`Activity::request`]).
#[derive(Debug)]
pub struct RequestGuard<'a>(&'a Activity);

impl Drop for RequestGuard<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
        self.0.changed();
    }
}

/// Decides when the host has been quiet long enough: no request in
/// progress and no change for `after`. Fires once per quiet spell.
#[derive(Debug)]
pub struct Quiet {
    after: Duration,
    seen: Option<Snapshot>,
    since: Instant,
    released: bool,
}

impl Quiet {
    /// A detector that fires after `after` of quiet, starting at `now`.
    pub fn new(after: Duration, now: Instant) -> Self {
        Quiet {
            after,
            seen: None,
            since: now,
            released: false,
        }
    }

    /// Look at the counters at `now`: `true` exactly when the host has just
    /// been quiet for the whole period (and not yet released in this spell).
    pub fn observe(&mut self, snapshot: Snapshot, now: Instant) -> bool {
        if self.seen != Some(snapshot) || snapshot.active > 0 {
            self.seen = Some(snapshot);
            self.since = now;
            self.released = false;
            return false;
        }
        if self.released || now.saturating_duration_since(self.since) < self.after {
            return false;
        }
        self.released = true;
        true
    }

    /// How often to look: a few times per quiet period, at most once every
    /// 100 ms and at least once a second.
    pub fn poll_interval(&self) -> Duration {
        (self.after / 4).clamp(Duration::from_millis(100), Duration::from_secs(1))
    }
}

/// Return the allocator's free memory to the kernel where the allocator
/// keeps it (glibc); elsewhere nothing to do.
#[allow(unsafe_code)] // one libc call, no memory handed over
pub fn trim_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it is
    // thread-safe (it takes each arena's lock).
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The address ranges of the compiled component files (`*.cwasm`,
/// [`crate::compiled`]) in a `/proc/PID/maps` listing.
pub fn compiled_code_ranges(maps: &str) -> Vec<(usize, usize)> {
    maps.lines()
        .filter(|line| line.trim_end().ends_with(".cwasm"))
        .filter_map(|line| {
            let (start, end) = line.split_whitespace().next()?.split_once('-')?;
            let start = usize::from_str_radix(start, 16).ok()?;
            let end = usize::from_str_radix(end, 16).ok()?;
            (end > start).then_some((start, end))
        })
        .collect()
}

/// Asks the kernel to reclaim the resident pages of the compiled component
/// files this process maps: clean file pages, read in again when the code
/// next runs (so a quiet host gives back the code it ran, not only its
/// heap). Returns the bytes of the mappings advised. Linux only (kernel
/// 5.4+, `MADV_PAGEOUT`); elsewhere, or on an older kernel, nothing.
#[allow(unsafe_code)] // madvise on this process's own mappings, advisory only
pub fn page_out_compiled_code() -> u64 {
    #[cfg(target_os = "linux")]
    {
        let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
            return 0;
        };
        let mut advised = 0u64;
        for (start, end) in compiled_code_ranges(&maps) {
            // SAFETY: MADV_PAGEOUT only reclaims pages; it never changes
            // what a mapping reads (clean file pages are read in again,
            // written private pages are anonymous and would be swapped,
            // not dropped). The range is one of this process's mappings as
            // the kernel just listed it; if it has gone since, the call
            // fails with ENOMEM and nothing happens.
            let r = unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_PAGEOUT)
            };
            if r == 0 {
                advised += (end - start) as u64;
            }
        }
        advised
    }
    #[cfg(not(target_os = "linux"))]
    0
}

/// Bound glibc's heap: at most `arenas` per-thread heap arenas (glibc makes
/// up to eight per core; each holds on to freed memory of its own), and a
/// free block of more than `trim_threshold` bytes at the top of any arena
/// given back to the kernel as it is freed. Does nothing elsewhere; a bound
/// of 0 leaves glibc's default.
///
/// glibc's default trim threshold moves: it becomes twice the largest block
/// it has handed out by `mmap` and taken back (up to 64 MiB; 8 MiB once this
/// host listens, 32 MiB under load), so a thread arena's free top below it
/// stayed resident however long the host was idle (`malloc_trim` trims only
/// the main arena's top). Fixing the trim threshold fixes the `mmap` threshold
/// too; it is set to [`MMAP_THRESHOLD`], where glibc's own adjustment ends
/// up under load, so requests allocate as before.
#[allow(unsafe_code)] // libc calls, no memory handed over
pub fn bound_allocator(arenas: usize, trim_threshold: usize) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let int = |n: usize| n.min(i32::MAX as usize) as i32;
        // SAFETY: mallopt only sets tuning parameters of the allocator.
        unsafe {
            if arenas > 0 {
                libc::mallopt(libc::M_ARENA_MAX, int(arenas));
            }
            if trim_threshold > 0 {
                libc::mallopt(libc::M_MMAP_THRESHOLD, int(MMAP_THRESHOLD));
                libc::mallopt(libc::M_TRIM_THRESHOLD, int(trim_threshold));
            }
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = (arenas, trim_threshold);
}

/// Blocks at least this large get a mapping of their own (when the trim
/// threshold is fixed, [`bound_allocator`]): 16 MiB, the value glibc's
/// adjustment reached in a host under the 32-connection bench load.
pub const MMAP_THRESHOLD: usize = 16 << 20;

/// Watch `activity` and call `release` once the host has been quiet for
/// `after` (again after every later change), until the process ends.
pub async fn run(activity: std::sync::Arc<Activity>, after: Duration, release: impl Fn()) {
    let mut quiet = Quiet::new(after, Instant::now());
    let every = quiet.poll_interval();
    loop {
        tokio::time::sleep(every).await;
        if quiet.observe(activity.snapshot(), Instant::now()) {
            release();
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_compiled_code_mappings_are_found_in_a_maps_listing() {
        let maps = "\
55d0c0a00000-55d0c0b00000 r-xp 00000000 fd:01 123 /usr/bin/wikiedge
7f0000000000-7f0000200000 r--p 00000000 fd:01 456 /root/.cache/wikiedge/components/ab12-cd34.cwasm
7f0000200000-7f0000900000 r-xp 00200000 fd:01 456 /root/.cache/wikiedge/components/ab12-cd34.cwasm
7f0000900000-7f0000901000 rw-p 00000000 00:00 0 
7f0001000000-7f0001000000 r--p 00000000 fd:01 789 /tmp/x.cwasm
7fff00000000-7fff00021000 rw-p 00000000 00:00 0                          [stack]
";
        assert_eq!(
            compiled_code_ranges(maps),
            [
                (0x7f00_0000_0000, 0x7f00_0020_0000),
                (0x7f00_0020_0000, 0x7f00_0090_0000)
            ]
        );
    }

    use super::*;

    fn at(t0: Instant, secs: u64) -> Instant {
        t0 + Duration::from_secs(secs)
    }

    #[test]
    fn fires_once_after_the_quiet_period_and_again_after_new_activity() {
        let t0 = Instant::now();
        let activity = Activity::default();
        let mut quiet = Quiet::new(Duration::from_secs(5), t0);
        assert!(!quiet.observe(activity.snapshot(), t0));
        assert!(!quiet.observe(activity.snapshot(), at(t0, 4)));
        assert!(quiet.observe(activity.snapshot(), at(t0, 5)));
        // Once per quiet spell.
        assert!(!quiet.observe(activity.snapshot(), at(t0, 6)));
        assert!(!quiet.observe(activity.snapshot(), at(t0, 60)));

        // A request (start and end between two looks) re-arms it, counting
        // the period from when the change was seen.
        drop(activity.request());
        assert!(!quiet.observe(activity.snapshot(), at(t0, 61)));
        assert!(!quiet.observe(activity.snapshot(), at(t0, 65)));
        assert!(quiet.observe(activity.snapshot(), at(t0, 66)));

        // An instance retiring later (a change with no request) re-arms it
        // too: its memory is released by the next firing.
        activity.changed();
        assert!(!quiet.observe(activity.snapshot(), at(t0, 70)));
        assert!(quiet.observe(activity.snapshot(), at(t0, 75)));
    }

    #[test]
    fn never_fires_while_a_request_is_in_progress() {
        let t0 = Instant::now();
        let activity = Activity::default();
        let mut quiet = Quiet::new(Duration::from_secs(5), t0);
        let request = activity.request();
        for s in 0..100 {
            assert!(!quiet.observe(activity.snapshot(), at(t0, s)), "at {s} s");
        }
        drop(request);
        assert_eq!(activity.snapshot().active, 0);
        assert!(!quiet.observe(activity.snapshot(), at(t0, 100)));
        assert!(quiet.observe(activity.snapshot(), at(t0, 105)));
    }

    /// `closed` resolves for every waiter, registered before the close or
    /// after it, and `instances_retired` counts the instances still live.
    #[tokio::test]
    async fn closing_wakes_every_waiter_and_retiring_counts_what_is_left() {
        use std::future::Future;
        use std::task::{Context, Poll, Waker};
        let activity = Activity::default();
        let mut before = Box::pin(activity.closed());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(before.as_mut().poll(&mut cx).is_pending());
        activity.instance_created();
        activity.instance_created();
        activity.instance_dropped();
        assert_eq!(activity.instances(), 1);
        activity.close();
        assert_eq!(before.as_mut().poll(&mut cx), Poll::Ready(()));
        let mut after = Box::pin(activity.closed());
        assert_eq!(after.as_mut().poll(&mut cx), Poll::Ready(()));
        assert_eq!(
            activity.instances_retired(Duration::from_millis(20)).await,
            1
        );
        activity.instance_dropped();
        assert_eq!(activity.instances_retired(Duration::from_secs(2)).await, 0);
    }

    #[test]
    fn the_poll_interval_is_a_fraction_of_the_period_within_bounds() {
        let t0 = Instant::now();
        let every = |s: f64| Quiet::new(Duration::from_secs_f64(s), t0).poll_interval();
        assert_eq!(every(2.0), Duration::from_millis(500));
        assert_eq!(every(0.1), Duration::from_millis(100));
        assert_eq!(every(60.0), Duration::from_secs(1));
    }

    /// Set in the child process of the allocator test: the trim threshold
    /// (bytes, 0: glibc's default) the child runs with.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    const ALLOCATOR_CHILD: &str = "WIKIEDGE_TEST_ALLOCATOR_TRIM";

    /// A thread arena's free top goes back to the kernel as it is freed once
    /// the trim threshold is bound, even after a block large enough to move
    /// glibc's own threshold was freed first (as compiling at start does);
    /// with glibc's default, or below the bound, it stays. The allocator's
    /// settings and counters are the whole process's, so each case runs in a
    /// child process of this test binary running only this test.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    #[allow(unsafe_code)] // mallinfo2 reads the allocator's counters
    fn a_thread_arenas_free_top_is_given_back_once_the_trim_threshold_is_bound() {
        const NAME: &str =
            "idle::tests::a_thread_arenas_free_top_is_given_back_once_the_trim_threshold_is_bound";
        if let Ok(trim) = std::env::var(ALLOCATOR_CHILD) {
            bound_allocator(0, trim.parse().expect("a number of bytes"));
            // What a start that compiles does: a block of several MiB freed.
            drop(std::hint::black_box(vec![1u8; 12 << 20]));
            // SAFETY: mallinfo2 only reads the arenas' counters.
            let heap = || unsafe { libc::mallinfo2() }.arena;
            let before = heap();
            std::thread::spawn(|| {
                // 8 MiB in blocks small enough to come from the thread's arena.
                let blocks: Vec<Vec<u8>> = (0..128).map(|_| vec![1u8; 64 << 10]).collect();
                drop(std::hint::black_box(blocks));
            })
            .join()
            .expect("the allocating thread");
            println!("kept={}", heap().saturating_sub(before));
            return;
        }
        let kept = |trim: usize| -> usize {
            let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
                .args([NAME, "--exact", "--nocapture", "--test-threads", "1"])
                .env(ALLOCATOR_CHILD, trim.to_string())
                .output()
                .expect("the child test process");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "child failed: {stdout}");
            stdout
                .lines()
                // libtest prints the test's name on the same line.
                .find_map(|l| l.split_once("kept=").map(|(_, n)| n))
                .and_then(|n| n.split_whitespace().next()?.parse().ok())
                .unwrap_or_else(|| panic!("no kept= line: {stdout}"))
        };
        let default = kept(0);
        let bound = kept(1 << 20);
        let above = kept(16 << 20);
        assert!(
            default >= 4 << 20,
            "glibc's default kept {default} bytes: the case no longer shows what the bound is for"
        );
        assert!(
            above >= 4 << 20,
            "a 16 MiB trim threshold kept only {above} bytes of the 8 MiB freed"
        );
        assert!(
            bound < 2 << 20,
            "with a 1 MiB trim threshold the heap kept {bound} bytes after the thread freed 8 MiB"
        );
    }
}
