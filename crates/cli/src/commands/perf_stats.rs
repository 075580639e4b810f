//! What `vltava perf produce` and `perf consume` share: the progress interval and latency
//! histograms summarised in milliseconds.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// How often a progress line is printed.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// A latency histogram in microseconds, from 1 µs to one hour, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Records `latency` (clamped to the histogram's range) in microseconds.
pub fn record_latency(histogram: &mut Histogram<u64>, latency: Duration) {
    let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1);
    histogram.saturating_record(micros);
}

/// Latency percentiles in milliseconds, as printed in `--json` output.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct LatencyMs {
    /// Mean.
    pub avg: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Maximum.
    pub max: f64,
}

impl LatencyMs {
    /// Summarises a microsecond histogram (all zeros when it is empty).
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return LatencyMs::default();
        }
        let ms = |us: f64| crate::output::round(us / 1000.0, 3);
        LatencyMs {
            avg: ms(h.mean()),
            p50: ms(h.value_at_quantile(0.50) as f64),
            p95: ms(h.value_at_quantile(0.95) as f64),
            p99: ms(h.value_at_quantile(0.99) as f64),
            p999: ms(h.value_at_quantile(0.999) as f64),
            max: ms(h.max() as f64),
        }
    }

    /// `a ms avg latency, b ms max latency, c ms 50th, d ms 95th, e ms 99th, f ms 99.9th`.
    pub fn describe(&self) -> String {
        format!(
            "{:.2} ms avg latency, {:.2} ms max latency, {:.2} ms 50th, {:.2} ms 95th, {:.2} ms 99th, {:.2} ms 99.9th",
            self.avg, self.max, self.p50, self.p95, self.p99, self.p999
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_summary_in_milliseconds() {
        let mut h = new_histogram();
        for ms in 1..=1000u64 {
            record_latency(&mut h, Duration::from_millis(ms));
        }
        let l = LatencyMs::from_histogram(&h);
        assert!((l.p50 - 500.0).abs() < 1.0, "{l:?}");
        assert!((l.p99 - 990.0).abs() < 1.0, "{l:?}");
        assert!((l.max - 1000.0).abs() < 1.0, "{l:?}");
        assert!((l.avg - 500.5).abs() < 1.0, "{l:?}");
        assert!(l.describe().starts_with("500.") && l.describe().contains("ms 99.9th"));
        assert_eq!(LatencyMs::from_histogram(&new_histogram()), LatencyMs::default());
        // Out-of-range values are clamped, not lost.
        record_latency(&mut h, Duration::from_secs(10 * 3600));
        record_latency(&mut h, Duration::ZERO);
        assert_eq!(h.len(), 1002);
    }
}
