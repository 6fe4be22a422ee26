//! A lock-free ring of recent latency samples per venue connection.
//!
//! The venue engine records one sample per published book (an atomic store and an atomic
//! increment, nothing else), so measuring costs the hot path almost nothing. Once a second
//! the health sampler reads the samples recorded since its last visit into the Prometheus
//! histograms and computes p50/p99 over the whole ring for the health panel: the sorting and
//! the histogram work happen off the hot path.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Samples kept (the most recent; at 1,000 publishes a second, about a second's worth).
pub const RING: usize = 1024;

/// Marks a slot never written.
const EMPTY: i64 = i64::MIN;

/// Recent samples in nanoseconds (signed: exchange clocks may be ahead of ours).
#[derive(Debug)]
pub struct LatencyRing {
    slots: Box<[AtomicI64]>,
    written: AtomicU64,
}

impl Default for LatencyRing {
    fn default() -> Self {
        Self {
            slots: (0..RING).map(|_| AtomicI64::new(EMPTY)).collect(),
            written: AtomicU64::new(0),
        }
    }
}

/// p50 and p99 of a set of samples, nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Percentiles {
    /// Median.
    pub p50: Option<i64>,
    /// 99th percentile.
    pub p99: Option<i64>,
}

impl LatencyRing {
    /// Records one sample (the writer is the venue engine, a single task).
    pub fn record(&self, ns: i64) {
        let n = self.written.load(Ordering::Relaxed);
        // `n % RING` is below RING, the slice's length.
        self.slots[(n % RING as u64) as usize].store(ns.max(EMPTY + 1), Ordering::Relaxed);
        self.written.store(n + 1, Ordering::Release);
    }

    /// Samples recorded so far, ever.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    /// Samples recorded after the first `since` (at most the ring's worth), oldest first.
    pub fn since(&self, since: u64) -> Vec<i64> {
        let end = self.written();
        let start = since.max(end.saturating_sub(RING as u64));
        (start..end)
            .map(|i| self.slots[(i % RING as u64) as usize].load(Ordering::Relaxed))
            .filter(|&v| v != EMPTY)
            .collect()
    }

    /// p50/p99 over the samples in the ring.
    pub fn percentiles(&self) -> Percentiles {
        let mut v = self.since(0);
        if v.is_empty() {
            return Percentiles::default();
        }
        v.sort_unstable();
        let at = |q: f64| {
            // Nearest rank: the smallest sample with at least q of the samples at or below.
            let rank = (q * v.len() as f64).ceil() as usize;
            v[rank.clamp(1, v.len()) - 1]
        };
        Percentiles {
            p50: Some(at(0.50)),
            p99: Some(at(0.99)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn empty_ring_has_no_percentiles() {
        assert_eq!(LatencyRing::default().percentiles(), Percentiles::default());
    }

    #[test]
    fn percentiles_are_nearest_rank_over_the_ring() {
        let r = LatencyRing::default();
        for v in 1..=100 {
            r.record(v);
        }
        assert_eq!(
            r.percentiles(),
            Percentiles {
                p50: Some(50),
                p99: Some(99)
            }
        );
    }

    #[test]
    fn the_ring_keeps_the_most_recent_samples() {
        let r = LatencyRing::default();
        for v in 0..(RING as i64 + 10) {
            r.record(v);
        }
        let all = r.since(0);
        assert_eq!(all.len(), RING);
        assert_eq!(all[0], 10);
        assert_eq!(
            r.since(RING as u64 + 8),
            vec![RING as i64 + 8, RING as i64 + 9]
        );
        // Negative samples (a venue clock ahead of ours) are kept as they are.
        r.record(-5);
        assert_eq!(*r.since(0).last().unwrap(), -5);
    }
}
