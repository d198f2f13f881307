//! Latency second by second through the measured window: whether a bad
//! tail is one stall or a queue that grew, and when.
//!
//! A request belongs to the second it was due in (open loop) or sent in
//! (closed loop), counted from the start of the measured window, so a
//! stall shows in the seconds whose requests it delayed. Latencies are kept
//! as they are (a few bytes each, as many as the run's requests) and the
//! percentiles of each second are exact.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One second of the measured window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Second {
    /// Whole seconds from the start of the measured window.
    pub second: u32,
    /// Requests of this second recorded (answered, or owed at the end).
    pub requests: u64,
    /// Median latency.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Largest latency.
    pub max_us: u64,
}

/// Latencies by second, as one worker or a whole run saw them.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    seconds: Vec<Vec<u32>>,
}

impl Timeline {
    /// Records a request of second `at` (from the start of the measured
    /// window) that took `latency`. Latencies saturate at `u32::MAX` µs
    /// (71 minutes).
    pub fn record(&mut self, at: Duration, latency: Duration) {
        let second = usize::try_from(at.as_secs()).unwrap_or(usize::MAX);
        if second >= self.seconds.len() {
            // A run is minutes at most; refuse to grow for a broken clock.
            if second > 86_400 {
                return;
            }
            self.seconds.resize_with(second + 1, Vec::new);
        }
        let us = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        self.seconds[second].push(us);
    }

    /// Adds another worker's latencies.
    pub fn merge(&mut self, other: Timeline) {
        if other.seconds.len() > self.seconds.len() {
            self.seconds.resize_with(other.seconds.len(), Vec::new);
        }
        for (mine, theirs) in self.seconds.iter_mut().zip(other.seconds) {
            mine.extend(theirs);
        }
    }

    /// Each second's summary, in order; a second with no request is
    /// listed with zeros, so a full stall shows as a gap. Sorts the
    /// latencies in place, so it takes the timeline.
    pub fn seconds(self) -> Vec<Second> {
        self.seconds
            .into_iter()
            .enumerate()
            .map(|(i, mut lat)| {
                lat.sort_unstable();
                // Nearest rank, as the histograms' percentiles are read.
                let at = |q: f64| -> u64 {
                    if lat.is_empty() {
                        return 0;
                    }
                    let rank = (q * lat.len() as f64).ceil() as usize;
                    u64::from(lat[rank.clamp(1, lat.len()) - 1])
                };
                Second {
                    second: u32::try_from(i).unwrap_or(u32::MAX),
                    requests: lat.len() as u64,
                    p50_us: at(0.50),
                    p99_us: at(0.99),
                    max_us: lat.last().copied().map_or(0, u64::from),
                }
            })
            .collect()
    }
}

/// The second with the highest p99, if any second has requests.
pub fn worst(seconds: &[Second]) -> Option<&Second> {
    seconds
        .iter()
        .filter(|s| s.requests > 0)
        .max_by_key(|s| s.p99_us)
}

/// A table of the seconds, one line each, for a terminal.
pub fn table(seconds: &[Second]) -> String {
    let mut out = String::from("second  requests  p50  p99  max\n");
    for s in seconds {
        out.push_str(&format!(
            "{:>6}  {:>8}  {}  {}  {}\n",
            s.second,
            s.requests,
            crate::stats::fmt_us(s.p50_us),
            crate::stats::fmt_us(s.p99_us),
            crate::stats::fmt_us(s.max_us),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn requests_land_in_the_second_they_were_due_in() {
        let mut t = Timeline::default();
        for i in 0..100 {
            t.record(MS(10 * i), MS(2));
        }
        // A stall in the third second: 10 requests took 300 ms.
        for i in 0..10 {
            t.record(MS(2000 + 10 * i), MS(300));
        }
        let s = t.seconds();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].requests, 100);
        assert_eq!((s[0].p50_us, s[0].p99_us, s[0].max_us), (2000, 2000, 2000));
        // The second second had nothing: listed, empty.
        assert_eq!(
            s[1],
            Second {
                second: 1,
                ..Second::default()
            }
        );
        assert_eq!((s[2].requests, s[2].p99_us), (10, 300_000));
        assert_eq!(worst(&s).map(|w| w.second), Some(2));
    }

    #[test]
    fn percentiles_are_exact_nearest_rank() {
        let mut t = Timeline::default();
        for us in 1..=200u64 {
            t.record(Duration::ZERO, Duration::from_micros(us));
        }
        let s = t.seconds()[0];
        assert_eq!((s.p50_us, s.p99_us, s.max_us), (100, 198, 200));
    }

    #[test]
    fn merging_workers_keeps_every_request() {
        let mut a = Timeline::default();
        let mut b = Timeline::default();
        a.record(MS(500), MS(1));
        b.record(MS(500), MS(9));
        b.record(MS(4500), MS(5));
        a.merge(b);
        let s = a.seconds();
        assert_eq!(s.len(), 5);
        assert_eq!((s[0].requests, s[0].max_us), (2, 9000));
        assert_eq!(s[4].requests, 1);
        assert!(worst(&[]).is_none());
    }
}
