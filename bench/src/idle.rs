//! The host's resident memory after a quiet spell: what an idle host gives
//! back (issue #18: at most 40 MB after 30 s idle).

use std::time::Duration;

/// Waits `idle` (no requests are sent meanwhile), then reads `VmRSS` of
/// process `pid` in KiB. `None` when the process or the field is gone, or
/// when `idle` is zero (not measured).
pub async fn rss_after(pid: Option<u32>, idle: Duration) -> Option<u64> {
    if idle.is_zero() {
        return None;
    }
    tokio::time::sleep(idle).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    vm_kib(&status, "VmRSS")
}

/// A `Field:   N kB` line of `/proc/PID/status`, in KiB.
fn vm_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_field_in_kib() {
        let status = "Name:\twikiedge\nVmHWM:\t  176000 kB\nVmRSS:\t   38500 kB\n";
        assert_eq!(vm_kib(status, "VmRSS"), Some(38500));
        assert_eq!(vm_kib(status, "VmHWM"), Some(176000));
        assert_eq!(vm_kib(status, "VmSwap"), None);
    }

    #[tokio::test]
    async fn zero_idle_is_not_measured() {
        assert_eq!(
            rss_after(Some(std::process::id()), Duration::ZERO).await,
            None
        );
    }
}
