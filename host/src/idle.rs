//! Giving memory back once the host goes quiet ("scale to zero" in spirit).
//!
//! Under load the host holds memory that only load needs: live component
//! instances (their linear memories and fiber stacks), the key-value read
//! cache and the SQLite readers' page caches, and the allocator's free lists
//! (glibc keeps freed blocks in its arenas rather than returning them to the
//! kernel). Idle instances retire on their own timer
//! (`--idle-instance-timeout`, `app.rs`). This module watches the host's
//! activity — requests starting and ending, instances created and dropped —
//! and, once nothing has changed for the quiet period and no request is in
//! progress, releases the rest once: the key-value caches are emptied, the
//! pooled SQLite readers closed, and glibc's `malloc_trim` hands free heap
//! pages back to the kernel. Every later change re-arms it, so instances
//! that retire after a first release are followed by a second one.
//!
//! The decision ([`Quiet`]) is pure and takes the time as an argument, so
//! it is unit-tested without sleeping; [`run`] drives it with the clock.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The host's activity counters, shared by the server (requests) and the
/// instance handlers (instances).
#[derive(Debug, Default)]
pub struct Activity {
    /// Requests between their start and their response head.
    active: AtomicUsize,
    /// Bumped by every start and end of a request and by every instance
    /// created or dropped.
    changes: AtomicU64,
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

    /// Something that holds memory was created or dropped (an instance).
    pub fn changed(&self) {
        self.changes.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            active: self.active.load(Ordering::Relaxed),
            changes: self.changes.load(Ordering::Relaxed),
        }
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

/// Bound glibc's per-thread heap arenas to `n` (glibc makes up to eight per
/// core; each holds on to freed memory of its own). Does nothing elsewhere,
/// or when `n` is 0.
#[allow(unsafe_code)] // a libc call, no memory handed over
pub fn limit_allocator_arenas(n: usize) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if n > 0 {
        // SAFETY: mallopt only sets a tuning parameter of the allocator.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, n.min(i32::MAX as usize) as i32);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = n;
}

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

    #[test]
    fn the_poll_interval_is_a_fraction_of_the_period_within_bounds() {
        let t0 = Instant::now();
        let every = |s: f64| Quiet::new(Duration::from_secs_f64(s), t0).poll_interval();
        assert_eq!(every(2.0), Duration::from_millis(500));
        assert_eq!(every(0.1), Duration::from_millis(100));
        assert_eq!(every(60.0), Duration::from_secs(1));
    }
}
