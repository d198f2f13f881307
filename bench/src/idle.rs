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
    crate::procfs::status_kib(pid?, "VmRSS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn zero_idle_is_not_measured() {
        assert_eq!(
            rss_after(Some(std::process::id()), Duration::ZERO).await,
            None
        );
    }
}
