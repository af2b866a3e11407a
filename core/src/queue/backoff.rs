//! Retry delays: capped exponential backoff with full jitter.

use std::time::Duration;

/// How long a failed task waits before its next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Ceiling of the first retry's delay.
    pub base: Duration,
    /// No delay ceiling grows beyond this.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(600),
        }
    }
}

impl Backoff {
    /// The ceiling for the retry after attempt number `attempt` (1-based): `min(cap, base * 2^(attempt-1))`.
    pub fn ceiling(&self, attempt: i32) -> Duration {
        let exp = attempt.saturating_sub(1).clamp(0, 32) as u32;
        let factor = 1u64 << exp;
        let base_ms = self.base.as_millis().min(u64::MAX as u128) as u64;
        let ms = base_ms.saturating_mul(factor);
        Duration::from_millis(ms).min(self.cap)
    }

    /// The delay before the retry that follows attempt `attempt`: uniform in `[0, ceiling]`
    /// ("full jitter"), so that tasks failing together do not retry together.
    pub fn delay(&self, attempt: i32) -> Duration {
        let ceiling = self.ceiling(attempt).as_millis() as u64;
        Duration::from_millis(rand::random_range(0..=ceiling))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_per_attempt_until_the_cap() {
        let b = Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        };
        let ceilings: Vec<u64> = (1..=8).map(|a| b.ceiling(a).as_secs()).collect();
        assert_eq!(ceilings, vec![1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(b.ceiling(10_000), Duration::from_secs(60));
    }

    #[test]
    fn delay_is_jittered_within_the_ceiling() {
        let b = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(10),
        };
        let delays: Vec<Duration> = (0..200).map(|_| b.delay(4)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(800)));
        // Full jitter spreads the delays: they are not all equal to the ceiling.
        let distinct: std::collections::HashSet<_> = delays.iter().collect();
        assert!(
            distinct.len() > 50,
            "only {} distinct delays",
            distinct.len()
        );
        assert!(delays.iter().any(|d| *d < Duration::from_millis(400)));
    }
}
