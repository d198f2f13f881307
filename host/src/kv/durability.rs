//! When the SQLite backend's acknowledged writes reach the disk
//! ([`super::sqlite`] explains both modes).

/// When acknowledged writes reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync every group commit before answering (`synchronous = FULL`).
    Fsync,
    /// Answer after the WAL write; fsync the WAL every interval.
    Interval(std::time::Duration),
}

/// The default interval between the WAL's fsyncs. Every 50 ms, as it
/// was until 2026-12-03, the fsync kept writing back the WAL pages that the
/// next commits were appending to, and request threads blocked in the
/// kernel inside their WAL write for up to hundreds of milliseconds
/// (BENCHMARKS.md, "Stalls of hundreds of milliseconds were the WAL's
/// fsync"). Once a second is also Redis's default (`appendfsync everysec`)
/// and the checkpoint's cadence.
pub const DEFAULT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// When a transaction that a caller's writes went into commits
/// (`super::sqlite::commit` explains both).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CommitMode {
    /// Before any of its writers is answered, as Spin's own store does:
    /// for bulk tools and anything else with no reply to hold back.
    #[default]
    EachWrite,
    /// Before anything that depends on it leaves the process: a response
    /// head or an outbound request (their senders settle the database
    /// first), a read of a key it wrote, and at the latest this long after
    /// it began ([`CommitMode::before_reply`]: `COMMIT_WITHIN`). For a
    /// server.
    BeforeReply(std::time::Duration),
}

impl CommitMode {
    /// [`CommitMode::BeforeReply`] with the default window.
    pub fn before_reply() -> Self {
        CommitMode::BeforeReply(super::sqlite::COMMIT_WITHIN)
    }
}

impl Default for Durability {
    fn default() -> Self {
        Durability::Interval(DEFAULT_INTERVAL)
    }
}

impl std::str::FromStr for Durability {
    type Err = anyhow::Error;

    /// `fsync`, or `interval` / `interval:MS`.
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "fsync" => Ok(Durability::Fsync),
            "interval" => Ok(Durability::default()),
            other => match other.strip_prefix("interval:").map(str::parse::<u64>) {
                Some(Ok(ms)) if ms > 0 => {
                    Ok(Durability::Interval(std::time::Duration::from_millis(ms)))
                }
                _ => anyhow::bail!(
                    "durability must be `fsync`, `interval` or `interval:MS`, not `{s}`"
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durability_parses_from_the_command_line() {
        use std::time::Duration;
        assert_eq!("fsync".parse::<Durability>().ok(), Some(Durability::Fsync));
        assert_eq!(
            "interval".parse::<Durability>().ok(),
            Some(Durability::Interval(Duration::from_millis(1000)))
        );
        assert_eq!(
            "interval:5".parse::<Durability>().ok(),
            Some(Durability::Interval(Duration::from_millis(5)))
        );
        assert!("interval:0".parse::<Durability>().is_err());
        assert!("sometimes".parse::<Durability>().is_err());
    }
}
