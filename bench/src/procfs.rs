//! Reading a process's memory figures from `/proc/PID/status` (Linux).

/// A `Field:   N kB` line of process `pid`'s `/proc/PID/status`, in KiB
/// (`VmHWM` is the peak RSS, `VmRSS` the current one). `None` when the
/// process or the field is gone.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&status, field)
}

/// [`status_kib`] from the text of a status file.
pub fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_field_in_kib() {
        let status = "Name:\twikiedge\nVmPeak:\t  900 kB\nVmHWM:\t   12345 kB\nVmRSS:\t 2000 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(12345));
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(2000));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
        // Our own process has a peak RSS.
        assert!(status_kib(std::process::id(), "VmHWM").is_some_and(|k| k > 0));
    }
}
