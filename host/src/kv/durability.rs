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

impl Default for Durability {
    fn default() -> Self {
        Durability::Interval(std::time::Duration::from_millis(50))
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
            Some(Durability::Interval(Duration::from_millis(50)))
        );
        assert_eq!(
            "interval:5".parse::<Durability>().ok(),
            Some(Durability::Interval(Duration::from_millis(5)))
        );
        assert!("interval:0".parse::<Durability>().is_err());
        assert!("sometimes".parse::<Durability>().is_err());
    }
}
