//! Jittered exponential reconnect delays.

use std::time::Duration;

/// Reconnect delay policy: exponential from `initial` up to `max`, with jitter (a uniform
/// draw in `[d/2, d]`, so a fleet of clients does not reconnect in step), and a floor of
/// `floor` once more than `fast_attempts` attempts in a row failed (Kraken: reconnect
/// "instantly a few times", then no more than once per 5 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first reconnect attempt (before jitter).
    pub initial: Duration,
    /// Largest delay (before the floor).
    pub max: Duration,
    /// Attempts in a row allowed below `floor`.
    pub fast_attempts: u32,
    /// Smallest delay after `fast_attempts` failures in a row.
    pub floor: Duration,
    /// A session that lasted at least this long resets the failure count.
    pub stable_after: Duration,
}

impl Backoff {
    /// The delay before reconnect attempt number `failures` (1 = first after a drop).
    #[must_use]
    pub fn delay(&self, failures: u32) -> Duration {
        let shift = failures.saturating_sub(1).min(20);
        let base = self.initial.saturating_mul(1u32 << shift).min(self.max);
        let half = base / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        let jittered = half + Duration::from_nanos(fastrand::u64(0..=nanos));
        if failures > self.fast_attempts {
            jittered.max(self.floor)
        } else {
            jittered
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_and_floors() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
            fast_attempts: 3,
            floor: Duration::from_secs(5),
            stable_after: Duration::from_secs(30),
        };
        for _ in 0..100 {
            let d1 = b.delay(1);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d3 = b.delay(3);
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
            // Capped at max, then raised to the floor after the fast attempts.
            assert!(b.delay(4) >= Duration::from_secs(5));
            assert!(b.delay(40) >= Duration::from_secs(5) && b.delay(40) <= Duration::from_secs(5));
        }
    }
}
