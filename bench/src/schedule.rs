//! Open-loop scheduling: when each request is due, and what the requests
//! still owed at the end of a run have waited.
//!
//! At a fixed arrival rate `rate` (requests/s over all connections), the
//! `j`-th arrival of the run is due `j / rate` seconds after the start.
//! Connection `k` of `n` sends arrivals `k, k + n, k + 2n, ...`, so the
//! connections interleave evenly and each sends at `rate / n`. A request's
//! latency is measured from when it was *due*, not from when it was sent
//! (wrk2's correction for coordinated omission): when the server stalls, the
//! requests that should have gone out meanwhile wait in the client's queue,
//! and that wait is part of what their users would see.

use std::time::Duration;

/// When request `i` of connection `k` (of `connections`) is due, as an
/// offset from the start of the run, at `rate` requests/s overall.
pub fn due(rate: f64, connections: usize, k: usize, i: u64) -> Duration {
    arrival_due(rate, k as u64 + i * connections as u64)
}

/// When arrival `j` of the run is due: `j / rate` seconds after the start,
/// to the nearest nanosecond.
fn arrival_due(rate: f64, j: u64) -> Duration {
    Duration::from_nanos((j as f64 * 1e9 / rate).round() as u64)
}

/// The latency recorded for a request due at `due` and answered at `done`
/// (both offsets from the start): the whole time since it was due, whenever
/// it was actually sent.
pub fn latency(due: Duration, done: Duration) -> Duration {
    done.saturating_sub(due)
}

/// The waits of the requests connection `k` still owes when the run ends:
/// request `next` and every later one due inside the measured window
/// `[measure_from, end)`, each having waited from when it was due until
/// `end`. These are lower bounds of their latencies; without them a server
/// that stalls to the end would look as fast as its last answer.
pub fn owed_at_end(
    rate: f64,
    connections: usize,
    k: usize,
    next: u64,
    measure_from: Duration,
    end: Duration,
) -> Vec<Duration> {
    (next..)
        .map(|i| due(rate, connections, k, i))
        .take_while(|d| *d < end)
        .filter(|d| *d >= measure_from)
        .map(|d| end - d)
        .collect()
}

/// How many requests are due in `[measure_from, end)` over all connections.
pub fn due_in_window(rate: f64, measure_from: Duration, end: Duration) -> u64 {
    // The first arrival due at or after `t`: start just below the estimate
    // `t * rate` and step past float rounding.
    let first_at = |t: Duration| {
        let mut j = ((t.as_secs_f64() * rate).floor() as u64).saturating_sub(1);
        while arrival_due(rate, j) < t {
            j += 1;
        }
        j
    };
    first_at(end).saturating_sub(first_at(measure_from))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn connections_interleave_into_one_even_stream() {
        // 1000 req/s over 4 connections: one arrival every millisecond,
        // connection k sending every 4 ms from k ms.
        assert_eq!(due(1000.0, 4, 0, 0), MS(0));
        assert_eq!(due(1000.0, 4, 1, 0), MS(1));
        assert_eq!(due(1000.0, 4, 3, 0), MS(3));
        assert_eq!(due(1000.0, 4, 0, 1), MS(4));
        assert_eq!(due(1000.0, 4, 2, 5), MS(22));
        let mut all: Vec<Duration> = (0..4)
            .flat_map(|k| (0..25).map(move |i| due(1000.0, 4, k, i)))
            .collect();
        all.sort();
        let expected: Vec<Duration> = (0..100).map(MS).collect();
        assert_eq!(all, expected);
    }

    #[test]
    fn one_connection_at_the_full_rate() {
        assert_eq!(due(100.0, 1, 0, 0), MS(0));
        assert_eq!(due(100.0, 1, 0, 7), MS(70));
        assert_eq!(due(0.5, 1, 0, 3), Duration::from_secs(6));
    }

    #[test]
    fn latency_counts_from_when_the_request_was_due() {
        // A server stalled 500 ms: the request due at 10 ms went out at
        // 505 ms and was answered at 506 ms; its user waited 496 ms, not 1.
        assert_eq!(latency(MS(10), MS(506)), MS(496));
        // Answered in time.
        assert_eq!(latency(MS(10), MS(12)), MS(2));
        // Never negative.
        assert_eq!(latency(MS(10), MS(5)), Duration::ZERO);
    }

    #[test]
    fn a_stalled_connection_owes_every_request_due_in_the_window() {
        // 100 req/s on one connection, window [200 ms, 1000 ms): stalled
        // since request 5 (due 50 ms). Requests 5..=19 are warm-up; 20..=99
        // are owed, having waited 800, 790, ..., 10 ms.
        let owed = owed_at_end(100.0, 1, 0, 5, MS(200), MS(1000));
        assert_eq!(owed.len(), 80);
        assert_eq!(owed[0], MS(800));
        assert_eq!(owed[79], MS(10));
        assert!(owed.windows(2).all(|w| w[0] - w[1] == MS(10)));
        // Nothing owed once every request due in the window was answered.
        assert!(owed_at_end(100.0, 1, 0, 100, MS(200), MS(1000)).is_empty());
    }

    #[test]
    fn owed_requests_of_one_connection_among_several() {
        // 1000 req/s over 4: connection 2 is due at 2, 6, 10, ... ms.
        let owed = owed_at_end(1000.0, 4, 2, 0, MS(5), MS(20));
        assert_eq!(owed, vec![MS(14), MS(10), MS(6), MS(2)]);
    }

    #[test]
    fn counts_the_requests_due_in_a_window() {
        assert_eq!(due_in_window(100.0, MS(0), MS(1000)), 100);
        assert_eq!(due_in_window(100.0, MS(200), MS(1000)), 80);
        assert_eq!(due_in_window(1000.0, MS(5), MS(20)), 15);
        // The same count as the connections' schedules add up to.
        let by_connection: usize = (0..4)
            .map(|k| owed_at_end(1000.0, 4, k, 0, MS(5), MS(20)).len())
            .sum();
        assert_eq!(by_connection, 15);
    }
}
