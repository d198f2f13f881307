//! The wikiedge benchmark toolkit.
//!
//! Everything is measured as a ratio against a native baseline in the same
//! run, because the machine is shared and noisy: absolute numbers move from
//! run to run, the ratio of two back-to-back runs much less.
//!
//! - [`load`]: an HTTP/1.1 load generator, closed loop or open loop at a
//!   fixed arrival rate (the `loadgen` binary).
//! - [`schedule`]: the open loop's due times and latency accounting.
//! - [`baseline`]: a bare hyper server answering fixed bytes (the `baseline`
//!   binary).
//! - [`nginx`]: nginx serving the same bytes from a file, where installed.
//! - [`stats`]: latency histograms and their summaries.
//! - [`client`]: a one-shot HTTP client for setup steps and readiness polls.
//! - [`idle`]: the host's resident memory after a quiet spell.
//! - [`procfs`]: a process's memory figures from `/proc/PID/status`, and
//!   which processor the run was on.
//! - [`proc`]: child processes (hosts, commands) killed with their process
//!   group when dropped, and the waits on them.
//! - [`account`]: the benchmark plans and an account's bearer token.
//!
//! The `wikiedge-bench` binary orchestrates the scenarios; `costcurve`
//! measures how costs grow with the data.

pub mod account;
pub mod baseline;
pub mod client;
pub mod idle;
pub mod load;
pub mod nginx;
pub mod proc;
pub mod procfs;
pub mod schedule;
pub mod stats;
pub mod timeline;

/// Parses a `Name: value` header argument (as in curl's `-H`).
pub fn parse_header(arg: &str) -> anyhow::Result<(http::HeaderName, http::HeaderValue)> {
    let (name, value) = arg
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("header '{arg}' is not of the form 'Name: value'"))?;
    let name = http::HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|e| anyhow::anyhow!("invalid header name in '{arg}': {e}"))?;
    let value = http::HeaderValue::from_str(value.trim())
        .map_err(|e| anyhow::anyhow!("invalid header value in '{arg}': {e}"))?;
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_headers() {
        let (n, v) = parse_header("Authorization: Bearer abc:def").expect("valid");
        assert_eq!(n, "authorization");
        assert_eq!(v, "Bearer abc:def");
        let (n, v) = parse_header("X-Empty:").expect("valid");
        assert_eq!(n, "x-empty");
        assert_eq!(v, "");
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("bad name: x").is_err());
        assert!(parse_header(": x").is_err());
    }
}
