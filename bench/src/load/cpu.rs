//! The server's CPU time over a run's measured window
//! ([`super::LoadConfig::server_pid`]).

use std::time::Duration;

use tokio::time::{Instant, sleep_until};

use serde::{Deserialize, Serialize};

/// The CPU time a server process used in the measured window: the
/// server's own cost per request, apart from the load generator's (which
/// shares the machine's cores).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerCpu {
    /// The process measured.
    pub pid: u32,
    /// CPU seconds it used in the window, all threads, user and system
    /// (10 ms resolution).
    pub cpu_s: f64,
    /// `cpu_s / duration_s`: the cores it kept busy.
    pub cores: f64,
    /// `cpu_s / requests`, in microseconds; 0 with no request answered.
    pub us_per_request: f64,
}

impl ServerCpu {
    /// The figures of `cpu` used over a `window` in which `requests` were
    /// answered.
    pub fn of(pid: u32, cpu: Duration, window: Duration, requests: u64) -> ServerCpu {
        let (cpu_s, cores, us_per_request) = figures(cpu, window, requests);
        ServerCpu {
            pid,
            cpu_s,
            cores,
            us_per_request,
        }
    }
}

/// `cpu` used over a `window` in which `requests` were answered: CPU
/// seconds, cores kept busy, and microseconds per request (0 with no
/// request answered).
fn figures(cpu: Duration, window: Duration, requests: u64) -> (f64, f64, f64) {
    let cpu_s = cpu.as_secs_f64();
    let per_request = if requests == 0 {
        0.0
    } else {
        cpu_s * 1e6 / requests as f64
    };
    (cpu_s, cpu_s / window.as_secs_f64(), per_request)
}

/// The CPU time the load generator's own threads used in the measured
/// window: what the measurement itself takes from the cores it shares with
/// the server. On a machine where both run, a server can answer at most
/// `cores / (server + load generator CPU per request)` requests per second,
/// so this is the other half of a throughput ratio's arithmetic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadCpu {
    /// The load threads measured.
    pub threads: usize,
    /// CPU seconds they used in the window, user and system (each
    /// thread's own clock, to the nanosecond).
    pub cpu_s: f64,
    /// `cpu_s / duration_s`: the cores they kept busy.
    pub cores: f64,
    /// `cpu_s / requests`, in microseconds; 0 with no request answered.
    pub us_per_request: f64,
}

impl LoadCpu {
    /// The figures of `cpu` used by `threads` over a `window` in which
    /// `requests` were answered.
    pub fn of(threads: usize, cpu: Duration, window: Duration, requests: u64) -> LoadCpu {
        let (cpu_s, cores, us_per_request) = figures(cpu, window, requests);
        LoadCpu {
            threads,
            cpu_s,
            cores,
            us_per_request,
        }
    }
}

/// Reads the calling thread's own CPU clock at `from` and at `to`, from a
/// task of the thread's single-threaded runtime (so the reading may come
/// one poll late): the CPU time the thread used between. `None` if the
/// clock cannot be read.
pub(super) async fn sample_this_thread(from: Instant, to: Instant) -> Option<Duration> {
    sleep_until(from).await;
    let before = crate::procfs::thread_cpu_now()?;
    sleep_until(to).await;
    let after = crate::procfs::thread_cpu_now()?;
    Some(after.saturating_sub(before))
}

/// Reads the CPU clocks of process `pid` and its live descendants at
/// `from` and at `to` ([`crate::procfs::tree_cpu_time`]: nginx works in
/// its worker processes): the process and the CPU time between, or `None`
/// without a pid or once the process is gone.
pub(super) async fn sample(
    pid: Option<u32>,
    from: Instant,
    to: Instant,
) -> Option<(u32, Duration)> {
    let pid = pid?;
    sleep_until(from).await;
    let before = crate::procfs::tree_cpu_time(pid)?;
    sleep_until(to).await;
    let after = crate::procfs::tree_cpu_time(pid)?;
    Some((pid, after.saturating_sub(before)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_per_request_and_per_second() {
        let c = ServerCpu::of(7, Duration::from_millis(1500), Duration::from_secs(5), 3000);
        assert_eq!(c.pid, 7);
        assert!((c.cpu_s - 1.5).abs() < 1e-12);
        assert!((c.cores - 0.3).abs() < 1e-12);
        assert!((c.us_per_request - 500.0).abs() < 1e-9);
        // No request answered: no division by zero, nothing per request.
        let none = ServerCpu::of(7, Duration::from_millis(20), Duration::from_secs(1), 0);
        assert_eq!(none.us_per_request, 0.0);
        let load = LoadCpu::of(2, Duration::from_millis(400), Duration::from_secs(4), 800);
        assert_eq!(load.threads, 2);
        assert!((load.cores - 0.1).abs() < 1e-12);
        assert!((load.us_per_request - 500.0).abs() < 1e-9);
    }
}
