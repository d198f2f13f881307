//! The one-screen report of a run, as `loadgen` prints it.

use super::LoadResult;
use crate::stats;

impl LoadResult {
    /// A one-screen human-readable report.
    pub fn human(&self) -> String {
        let l = &self.latency;
        let statuses: Vec<String> = self
            .status_counts
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        let open = match (self.target_rate, &self.send_lag) {
            (Some(rate), Some(lag)) => format!(
                "\nopen loop     {rate:.0} req/s offered; p99.9 {}; late at end {}; send lag p50 {} p99 {}",
                stats::fmt_us(l.p999_us),
                self.late_at_end,
                stats::fmt_us(lag.p50_us),
                stats::fmt_us(lag.p99_us),
            ),
            _ => String::new(),
        };
        let cpu = match &self.server_cpu {
            Some(c) => format!(
                "\nserver CPU    {:.0} µs per request ({:.2} s, {:.2} cores, pid {})",
                c.us_per_request, c.cpu_s, c.cores, c.pid
            ),
            None => String::new(),
        };
        let load_cpu = match &self.load_cpu {
            Some(c) => format!(
                "\nloadgen CPU   {:.0} µs per request ({:.2} s, {:.2} cores, {} threads)",
                c.us_per_request, c.cpu_s, c.cores, c.threads
            ),
            None => String::new(),
        };
        format!(
            "{} {}  ({} connections, {:.0}s warm-up, {:.0}s measured)\n\
             requests      {} ({:.1} req/s)\n\
             latency       p50 {}  p90 {}  p99 {}  max {}  (mean {})\n\
             statuses      {}\n\
             non-2xx/3xx   {}\n\
             errors        {} (connect {}; warm-up {}; connections opened {})\n\
             body bytes    {} ({:.1} MiB/s){open}{cpu}{load_cpu}",
            self.method,
            self.url,
            self.connections,
            self.warmup_s,
            self.duration_s,
            self.requests,
            self.requests_per_s,
            stats::fmt_us(l.p50_us),
            stats::fmt_us(l.p90_us),
            stats::fmt_us(l.p99_us),
            stats::fmt_us(l.max_us),
            stats::fmt_us(l.mean_us.round() as u64),
            if statuses.is_empty() {
                "-".to_string()
            } else {
                statuses.join(", ")
            },
            self.non_success,
            self.errors,
            self.connect_errors,
            self.warmup_errors,
            self.connections_opened,
            self.response_bytes,
            self.response_bytes_per_s / (1024.0 * 1024.0),
        )
    }
}
