//! One instance pool per serving thread.
//!
//! The server runs each connection, start to end, on one of its serving
//! threads ([`crate::server`]), and each thread has its own instances of
//! every component. An instance's worker task is woken by the requests sent
//! to it and by the reads of its response bodies, and tokio runs a woken
//! task on the thread that woke it: with one pool shared by the threads of
//! a work-stealing runtime, an instance ran each request on whichever
//! thread's connection touched it last. Its guest buffers (the 188 KB
//! article lowered into its linear memory, then read out again as the
//! response body) were then written on one core while the other core still
//! held them from the previous request. When the VM's two cores did not
//! share a cache, such a copy took 45-70 µs instead of 6-9, and the host
//! spent half as much again per article request for seconds at a time: the
//! "slow spells" of BENCHMARKS.md ("One thread per core").

/// One `T` per serving thread (at least one).
#[derive(Debug)]
pub struct Sharded<T> {
    shards: Box<[T]>,
}

impl<T> Sharded<T> {
    /// `shards` values (at least one), the i-th made by `make(i)`.
    pub fn new(shards: usize, make: impl FnMut(usize) -> T) -> Self {
        Sharded {
            shards: (0..shards.max(1)).map(make).collect(),
        }
    }

    /// The value for serving thread `thread` (threads beyond the number of
    /// values share them round-robin).
    pub fn get(&self, thread: usize) -> &T {
        &self.shards[thread % self.shards.len()]
    }

    /// How many values there are.
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// Never true: there is at least one value.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Serving threads by default: one per core the process may use.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// The `i`-th of `parts` near-equal shares of `total`, at least one: how a
/// per-component bound is split among the serving threads.
pub fn share(total: usize, parts: usize, i: usize) -> usize {
    let parts = parts.max(1);
    (total / parts + usize::from(i % parts < total % parts)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_thread_gets_its_own_shard_and_extra_threads_share() {
        let sharded = Sharded::new(2, |i| i * 10);
        assert_eq!(sharded.len(), 2);
        assert_eq!(*sharded.get(0), 0);
        assert_eq!(*sharded.get(1), 10);
        assert_eq!(*sharded.get(2), 0);
        assert_eq!(*sharded.get(5), 10);
        let zero = Sharded::new(0, |i| i);
        assert_eq!(zero.len(), 1);
        assert_eq!(*zero.get(3), 0);
    }

    #[test]
    fn shares_add_up_to_the_total_and_none_is_zero() {
        for total in [1usize, 2, 3, 4, 7, 16] {
            for parts in 1..=5 {
                let shares: Vec<usize> = (0..parts).map(|i| share(total, parts, i)).collect();
                assert!(
                    shares.iter().all(|&s| s >= 1),
                    "{total}/{parts}: {shares:?}"
                );
                if total >= parts {
                    assert_eq!(shares.iter().sum::<usize>(), total, "{total}/{parts}");
                    let (lo, hi) = (shares.iter().min(), shares.iter().max());
                    assert!(hi.zip(lo).is_some_and(|(h, l)| h - l <= 1), "{shares:?}");
                }
            }
        }
    }
}
