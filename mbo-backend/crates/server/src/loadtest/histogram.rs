//! A log-linear histogram of nanosecond values, HDR style, without a dependency.
//!
//! Values below 256 are counted exactly; above, every power of two is split into 128 equal
//! buckets, so any value is known to within 1/128 (< 0.8 %) whatever its size, in a fixed
//! 7,424 counters (58 KiB). The maximum is kept exactly. That is precise enough for a
//! latency report and small enough to keep one per event type and merge them freely.

use serde::Serialize;

/// Bits of mantissa kept per power of two: 2^7 = 128 buckets per octave.
const SUB_BITS: u32 = 7;
/// Buckets per octave.
const SUB: u64 = 1 << SUB_BITS;
/// Buckets needed for the whole `u64` range (see [`index`]).
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB as usize;

/// Counts of `u64` values (nanoseconds here), with exact count and maximum.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

/// The bucket of `v`: `v` itself below 256; above, `shift * 128 + mantissa` where
/// `mantissa = v >> shift` is in `[128, 256)`.
fn index(v: u64) -> usize {
    if v < 2 * SUB {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    let shift = msb - SUB_BITS;
    ((u64::from(shift) << SUB_BITS) + (v >> shift)) as usize
}

/// The smallest value and the width of bucket `i` (the inverse of [`index`]).
fn bucket_range(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < 2 * SUB {
        return (i, 1);
    }
    let shift = (i >> SUB_BITS) - 1;
    let mantissa = i - (shift << SUB_BITS);
    (mantissa << shift, 1 << shift)
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }

    /// Counts `v` once.
    #[inline]
    pub fn record(&mut self, v: u64) {
        if let Some(c) = self.counts.get_mut(index(v)) {
            *c += 1;
        }
        self.total += 1;
        self.max = self.max.max(v);
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Self) {
        if other.total == 0 {
            return;
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// Values counted.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest value counted (exact), `None` when empty.
    pub fn max(&self) -> Option<u64> {
        (self.total > 0).then_some(self.max)
    }

    /// The value at quantile `q` (0..=1): the middle of the bucket holding the
    /// `ceil(q * count)`-th smallest value, never above the exact maximum. `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (low, width) = bucket_range(i);
                return Some((low + (width - 1) / 2).min(self.max));
            }
        }
        Some(self.max)
    }

    /// p50, p99 and max in milliseconds (what the report shows).
    pub fn summary_ms(&self) -> Summary {
        Summary {
            count: self.total,
            p50: self.quantile(0.50).map(ns_to_ms),
            p99: self.quantile(0.99).map(ns_to_ms),
            max: self.max().map(ns_to_ms),
        }
    }
}

/// Nanoseconds as milliseconds, rounded to the microsecond (finer digits would be noise).
pub fn ns_to_ms(ns: u64) -> f64 {
    (ns as f64 / 1e3).round() / 1e3
}

/// A distribution as reported: how many values and p50/p99/max in ms (`null` when empty).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Values summarised.
    pub count: u64,
    /// Median.
    pub p50: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn index_and_range_are_inverse_and_contiguous() {
        let mut next = 0u64;
        for i in 0..BUCKETS {
            let (low, width) = bucket_range(i);
            assert_eq!(low, next, "bucket {i} starts where the previous ended");
            assert_eq!(index(low), i);
            assert_eq!(index(low + (width - 1)), i);
            next = low.wrapping_add(width);
        }
        assert_eq!(next, 0, "the buckets cover the whole u64 range");
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn empty_reports_nulls() {
        let h = Histogram::new();
        assert_eq!(h.quantile(0.5), None);
        assert_eq!(
            h.summary_ms(),
            Summary {
                count: 0,
                p50: None,
                p99: None,
                max: None
            }
        );
    }

    #[test]
    fn percentiles_within_one_percent() {
        // 1..=1000 ms.
        let mut h = Histogram::new();
        for ms in 1..=1000u64 {
            h.record(ms * 1_000_000);
        }
        let s = h.summary_ms();
        assert_eq!(s.count, 1000);
        let near = |got: Option<f64>, want: f64| {
            let got = got.unwrap();
            assert!((got - want).abs() <= want * 0.01, "{got} vs {want}");
        };
        near(s.p50, 500.0);
        near(s.p99, 990.0);
        assert_eq!(s.max, Some(1000.0), "the maximum is exact");
    }

    #[test]
    fn small_values_are_exact_and_merge_adds() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        for v in [1, 2, 3] {
            a.record(v);
        }
        for v in [100, 200] {
            b.record(v);
        }
        a.merge(&b);
        assert_eq!(a.count(), 5);
        assert_eq!(a.quantile(0.0), Some(1));
        assert_eq!(a.quantile(0.5), Some(3));
        assert_eq!(a.quantile(0.8), Some(100));
        assert_eq!(a.quantile(1.0), Some(200));
        assert_eq!(a.max(), Some(200));
    }

    #[test]
    fn single_sample_is_its_own_percentiles() {
        let mut h = Histogram::new();
        h.record(1_234_567_891);
        let q = h.quantile(0.5).unwrap();
        assert!(q.abs_diff(1_234_567_891) <= 1_234_567_891 / 128);
        assert_eq!(h.quantile(0.99), Some(q));
        assert_eq!(h.max(), Some(1_234_567_891));
        assert_eq!(ns_to_ms(1_234_567_891), 1234.568);
    }
}
