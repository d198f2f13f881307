//! Latency histograms (microseconds) and their summaries.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The largest latency a histogram tracks exactly: 10 minutes in µs.
/// Larger values saturate to it.
pub const MAX_TRACKED_US: u64 = 600_000_000;

/// A new latency histogram in microseconds with 3 significant figures.
pub fn new_histogram() -> Histogram<u64> {
    // Constant bounds that hdrhistogram accepts (low >= 1, high >= 2 * low,
    // sigfig <= 5): this cannot fail.
    Histogram::new_with_bounds(1, MAX_TRACKED_US, 3).expect("valid histogram bounds")
}

/// Records one latency, clamped to the tracked range.
pub fn record(hist: &mut Histogram<u64>, us: u64) {
    hist.saturating_record(us.clamp(1, MAX_TRACKED_US));
}

/// A summary of a latency histogram, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Samples recorded.
    pub count: u64,
    /// Smallest sample.
    pub min_us: u64,
    /// Arithmetic mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest sample.
    pub max_us: u64,
}

impl Latency {
    /// Summarises a histogram; all zeros when it is empty.
    ///
    /// Percentiles are hdrhistogram's `value_at_quantile`: the smallest
    /// recorded value (to the histogram's precision) such that at least
    /// that fraction of samples is at or below it.
    pub fn of(hist: &Histogram<u64>) -> Latency {
        if hist.is_empty() {
            return Latency::default();
        }
        let q = |q: f64| hist.highest_equivalent(hist.value_at_quantile(q));
        Latency {
            count: hist.len(),
            min_us: hist.min(),
            mean_us: hist.mean(),
            p50_us: q(0.50),
            p90_us: q(0.90),
            p99_us: q(0.99),
            p999_us: q(0.999),
            max_us: hist.highest_equivalent(hist.max()),
        }
    }
}

/// Formats microseconds for people: `870µs`, `12.3ms`, `1.20s`.
pub fn fmt_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us}µs")
    } else if us < 1_000_000 {
        format!("{:.2}ms", us as f64 / 1_000.0)
    } else {
        format!("{:.2}s", us as f64 / 1_000_000.0)
    }
}

/// The median of the finite `values` (the mean of the middle two for an
/// even count); `None` when there is none.
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|x| x.is_finite());
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// `num / den`, or `None` when the denominator is zero.
pub fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0 && num.is_finite() && den.is_finite()).then(|| num / den)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Within hdrhistogram's 3-significant-figure precision.
    fn close(actual: u64, expected: u64) -> bool {
        let tolerance = (expected / 500).max(1);
        actual.abs_diff(expected) <= tolerance
    }

    #[test]
    fn the_median_takes_the_middle_or_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
        // Values that are not finite are left out.
        assert_eq!(
            median(vec![f64::NAN, 1.0, f64::INFINITY, 3.0, 2.0]),
            Some(2.0)
        );
        assert_eq!(median(vec![f64::NAN]), None);
    }

    #[test]
    fn empty_histogram_is_all_zero() {
        assert_eq!(Latency::of(&new_histogram()), Latency::default());
    }

    #[test]
    fn percentiles_of_uniform_samples() {
        let mut h = new_histogram();
        for us in 1..=10_000 {
            record(&mut h, us);
        }
        let l = Latency::of(&h);
        assert_eq!(l.count, 10_000);
        assert_eq!(l.min_us, 1);
        assert!(close(l.p50_us, 5_000), "p50 {}", l.p50_us);
        assert!(close(l.p90_us, 9_000), "p90 {}", l.p90_us);
        assert!(close(l.p99_us, 9_900), "p99 {}", l.p99_us);
        assert!(close(l.p999_us, 9_990), "p999 {}", l.p999_us);
        assert!(close(l.max_us, 10_000), "max {}", l.max_us);
        assert!((l.mean_us - 5_000.5).abs() < 10.0, "mean {}", l.mean_us);
    }

    #[test]
    fn tail_outlier_shows_in_p99_and_max_only() {
        let mut h = new_histogram();
        for _ in 0..990 {
            record(&mut h, 100);
        }
        for _ in 0..10 {
            record(&mut h, 50_000);
        }
        let l = Latency::of(&h);
        assert!(close(l.p50_us, 100));
        assert!(close(l.p90_us, 100));
        // Exactly 99% of samples are <= 100µs.
        assert!(close(l.p99_us, 100), "p99 {}", l.p99_us);
        assert!(close(l.p999_us, 50_000), "p999 {}", l.p999_us);
        assert!(close(l.max_us, 50_000));
    }

    #[test]
    fn merging_worker_histograms_equals_one_histogram() {
        let mut all = new_histogram();
        let mut a = new_histogram();
        let mut b = new_histogram();
        for us in 1..=1000 {
            record(&mut all, us * 7);
            if us % 2 == 0 {
                record(&mut a, us * 7);
            } else {
                record(&mut b, us * 7);
            }
        }
        a.add(&b).expect("same bounds");
        assert_eq!(Latency::of(&a), Latency::of(&all));
    }

    #[test]
    fn out_of_range_values_saturate() {
        let mut h = new_histogram();
        record(&mut h, 0);
        record(&mut h, u64::MAX);
        let l = Latency::of(&h);
        assert_eq!(l.count, 2);
        assert_eq!(l.min_us, 1);
        assert!(l.max_us >= MAX_TRACKED_US);
    }

    #[test]
    fn formats_and_ratios() {
        assert_eq!(fmt_us(870), "870µs");
        assert_eq!(fmt_us(12_300), "12.30ms");
        assert_eq!(fmt_us(1_200_000), "1.20s");
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(1.0, 4.0), Some(0.25));
    }
}
