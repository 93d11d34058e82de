//! Per-participant token buckets, sans-IO (time is an argument).
//!
//! Implemented as GCRA (the generic cell rate algorithm, ITU-T I.371), which is a token bucket
//! kept as one number per participant: the theoretical arrival time `tat` of the next message.
//! A message at `now` is accepted if `tat − now ≤ (burst − 1) × interval`; then `tat` moves one
//! interval on. Refused messages cost nothing and learn how long to wait.
//!
//! Buckets are not part of the event log: a restart refills everyone's bucket.

use std::collections::HashMap;

use crate::config::RateLimit;
use crate::error::{InteractionError, Result};

/// The buckets of every participant for one kind of message.
#[derive(Debug, Clone, Default)]
pub struct RateLimiter {
    tat: HashMap<String, u64>,
}

/// Buckets kept before idle ones (full again) are dropped.
const PRUNE_ABOVE: usize = 4_096;

impl RateLimiter {
    /// Takes one token for `participant` at `now_ms`, or says how long to wait for one.
    pub fn check(&mut self, limit: RateLimit, participant: &str, now_ms: u64) -> Result<()> {
        if limit.burst == 0 {
            return Err(InteractionError::RateLimited { retry_after_ms: u64::MAX });
        }
        let tolerance = u64::from(limit.burst - 1).saturating_mul(limit.interval_ms);
        let tat = self.tat.get(participant).copied().unwrap_or(now_ms).max(now_ms);
        let ahead = tat - now_ms;
        if ahead > tolerance {
            return Err(InteractionError::RateLimited { retry_after_ms: ahead - tolerance });
        }
        if self.tat.len() >= PRUNE_ABOVE {
            self.tat.retain(|_, t| *t > now_ms);
        }
        self.tat.insert(participant.to_owned(), tat.saturating_add(limit.interval_ms));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RateLimit = RateLimit { burst: 5, interval_ms: 1_000 };

    #[test]
    fn a_flood_gets_the_burst_then_waits_for_the_refill() {
        let mut rl = RateLimiter::default();
        for _ in 0..5 {
            assert_eq!(rl.check(LIMIT, "a", 10_000), Ok(()));
        }
        assert_eq!(rl.check(LIMIT, "a", 10_000), Err(InteractionError::RateLimited { retry_after_ms: 1_000 }));
        assert_eq!(rl.check(LIMIT, "a", 10_400), Err(InteractionError::RateLimited { retry_after_ms: 600 }));
        // Another participant has their own bucket.
        assert_eq!(rl.check(LIMIT, "b", 10_400), Ok(()));
        // One token back after one interval, and only one.
        assert_eq!(rl.check(LIMIT, "a", 11_000), Ok(()));
        assert!(rl.check(LIMIT, "a", 11_000).is_err());
        // A long pause refills the whole burst, no more.
        for _ in 0..5 {
            assert_eq!(rl.check(LIMIT, "a", 60_000), Ok(()));
        }
        assert!(rl.check(LIMIT, "a", 60_000).is_err());
    }

    #[test]
    fn a_zero_burst_refuses_everything() {
        let mut rl = RateLimiter::default();
        assert!(rl.check(RateLimit { burst: 0, interval_ms: 1_000 }, "a", 0).is_err());
    }
}
