//! Sampling from measured bucket tables with one random `u64` per draw.

use rand::RngCore;

use super::calibration::Bucket;
use crate::source::Result;
use crate::FeedError;

/// Bits of the guide table that maps a random number to the first bucket it can fall in.
const GUIDE_BITS: u32 = 10;
/// Points of the tabulated quantile function used for log-uniform draws.
const QUANTILES: usize = 1024;

/// A bucket table prepared for sampling: cumulative thresholds in `u32` units, a guide table
/// so a draw finds its bucket in about one step, and (for time gaps) a tabulated quantile
/// function so a log-uniform draw costs no `exp`.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    /// Upper cumulative threshold of each bucket (the last is `u32::MAX`).
    cum: Vec<u32>,
    /// `guide[k]`: the first bucket whose threshold reaches `k << (32 - GUIDE_BITS)`.
    guide: Vec<u8>,
    lo: Vec<u64>,
    span: Vec<u64>,
    /// Quantile function of the log-uniform-in-bucket distribution at `k / QUANTILES`.
    quantiles: Vec<f64>,
}

impl Table {
    /// Prepares `buckets`.
    ///
    /// # Errors
    /// [`FeedError::Options`] (naming `what`) for an empty table or one of more than 255
    /// buckets, a negative or non-finite weight, a zero total, or a bucket with `lo > hi`.
    pub(crate) fn new(what: &str, buckets: &[Bucket]) -> Result<Self> {
        let bad = |why: &str| FeedError::Options(format!("simulator table {what}: {why}"));
        if buckets.is_empty() || buckets.len() > 255 {
            return Err(bad("needs 1 to 255 buckets"));
        }
        if buckets
            .iter()
            .any(|b| !b.weight.is_finite() || b.weight < 0.0)
        {
            return Err(bad("weights must be finite and non-negative"));
        }
        let total: f64 = buckets.iter().map(|b| b.weight).sum();
        if total <= 0.0 || !total.is_finite() {
            return Err(bad("weights sum to zero"));
        }
        if buckets.iter().any(|b| b.lo > b.hi) {
            return Err(bad("a bucket has lo > hi"));
        }
        let mut cum = Vec::with_capacity(buckets.len());
        let mut acc = 0.0;
        for b in buckets {
            acc += b.weight / total;
            cum.push((acc * f64::from(u32::MAX)).min(f64::from(u32::MAX)) as u32);
        }
        if let Some(last) = cum.last_mut() {
            *last = u32::MAX;
        }
        let guide = (0..1u64 << GUIDE_BITS)
            .map(|k| {
                let r = (k << (32 - GUIDE_BITS)) as u32;
                cum.iter().position(|&c| r <= c).unwrap_or(cum.len() - 1) as u8
            })
            .collect();
        // Quantile function: inside bucket i (probability mass from c0 to c1), log-uniform
        // between lo and hi; a bucket starting at 0 is a point mass at its `lo`.
        let mut quantiles = Vec::with_capacity(QUANTILES + 1);
        for k in 0..=QUANTILES {
            let q = k as f64 / QUANTILES as f64;
            let mut c0 = 0.0;
            let mut value = buckets[buckets.len() - 1].hi as f64;
            for b in buckets {
                let c1 = c0 + b.weight / total;
                if q <= c1 && b.weight > 0.0 {
                    let f = ((q - c0) / (c1 - c0)).clamp(0.0, 1.0);
                    value = if b.lo == 0 {
                        b.lo as f64
                    } else {
                        (b.lo as f64) * (b.hi as f64 / b.lo as f64).powf(f)
                    };
                    break;
                }
                c0 = c1;
            }
            quantiles.push(value);
        }
        Ok(Self {
            cum,
            guide,
            lo: buckets.iter().map(|b| b.lo).collect(),
            span: buckets.iter().map(|b| b.hi - b.lo + 1).collect(),
            quantiles,
        })
    }

    #[inline]
    fn bucket(&self, r: u32) -> usize {
        let mut i = usize::from(self.guide[(r >> (32 - GUIDE_BITS)) as usize]);
        // The guide lands on or just before the bucket: usually zero or one step.
        while r > self.cum[i] {
            i += 1;
        }
        i
    }

    /// A value, uniform inside its bucket.
    #[inline]
    pub(crate) fn sample(&self, rng: &mut impl RngCore) -> u64 {
        let r = rng.next_u64();
        let i = self.bucket(r as u32);
        // Multiply-shift maps the high 32 bits onto 0..span without a division.
        self.lo[i] + (((r >> 32) * self.span[i]) >> 32)
    }

    /// A value, uniform inside its bucket, from the low 48 bits of `r` (32 choose the
    /// bucket, 16 the position in it: enough for the small spans of depth tables). The
    /// caller may use the top 16 bits for something else.
    #[inline]
    pub(crate) fn sample_bits(&self, r: u64) -> u64 {
        let i = self.bucket(r as u32);
        self.lo[i] + ((((r >> 32) & 0xffff) * self.span[i]) >> 16)
    }

    /// A value, log-uniform inside its bucket (time gaps spanning decades), read from the
    /// tabulated quantile function with linear interpolation.
    #[inline]
    pub(crate) fn sample_log(&self, rng: &mut impl RngCore) -> u64 {
        let r = rng.next_u64();
        // Top 10 bits: the quantile segment; the next 32: the position inside it.
        let k = (r >> 54) as usize;
        let f = ((r >> 22) & 0xffff_ffff) as f64 * (1.0 / 4_294_967_296.0);
        let (a, b) = (self.quantiles[k], self.quantiles[k + 1]);
        (a + (b - a) * f) as u64
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::sim::calibration::{ADD_SIZE, EVENT_GAP_NS};

    #[test]
    fn frequencies_follow_the_weights() {
        let t = Table::new("add size", ADD_SIZE).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let n = 200_000;
        let ones = (0..n).filter(|_| t.sample(&mut rng) == 1).count();
        let f = ones as f64 / n as f64;
        assert!((f - ADD_SIZE[0].weight).abs() < 0.01, "{f}");
    }

    #[test]
    fn log_uniform_draws_follow_the_buckets() {
        let t = Table::new("gap", EVENT_GAP_NS).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let n = 400_000;
        let v: Vec<u64> = (0..n).map(|_| t.sample_log(&mut rng)).collect();
        assert!(v.iter().all(|&x| x <= 20_000_000_000));
        let frac =
            |lo: u64, hi: u64| v.iter().filter(|&&x| x >= lo && x <= hi).count() as f64 / n as f64;
        // Bucket masses within sampling noise (and the interpolation at bucket edges).
        assert!((frac(0, 0) - 0.0092).abs() < 0.002, "{}", frac(0, 0));
        assert!((frac(100_000, 999_999) - 0.3228).abs() < 0.005);
        assert!((frac(1_000_000_000, 10_000_000_000) - 0.0445).abs() < 0.003);
        // Log-uniform: within 10 µs–100 µs, as many draws below 31.6 µs as above.
        let low = frac(10_000, 31_622);
        let high = frac(31_623, 99_999);
        assert!((low - high).abs() < 0.01, "{low} {high}");
    }

    #[test]
    fn guide_finds_every_bucket() {
        let buckets: Vec<Bucket> = (0..40)
            .map(|i| Bucket {
                lo: i,
                hi: i,
                weight: if i % 7 == 0 { 0.0 } else { 1.0 + i as f64 },
            })
            .collect();
        let t = Table::new("x", &buckets).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut seen = [0u32; 40];
        for _ in 0..200_000 {
            seen[t.sample(&mut rng) as usize] += 1;
        }
        for (i, &n) in seen.iter().enumerate() {
            assert_eq!(n == 0, i % 7 == 0, "bucket {i}: {n}");
        }
    }

    #[test]
    fn rejects_bad_tables() {
        assert!(Table::new("x", &[]).is_err());
        assert!(Table::new(
            "x",
            &[Bucket {
                lo: 2,
                hi: 1,
                weight: 1.0
            }]
        )
        .is_err());
        assert!(Table::new(
            "x",
            &[Bucket {
                lo: 1,
                hi: 1,
                weight: 0.0
            }]
        )
        .is_err());
        assert!(Table::new(
            "x",
            &[Bucket {
                lo: 1,
                hi: 1,
                weight: f64::NAN
            }]
        )
        .is_err());
    }
}
