//! KEDA's part of a ScaledObject: activation (0 → N) and cooldown (N → 0). Between 1 and
//! `maxReplicaCount` KEDA leaves scaling to the HPA it creates.
//!
//! KEDA 2.x (`scale_scaledobjects.go`, `RequestScale`), at every `pollingInterval` and on every
//! `StreamIsActive` push of an `external-push` trigger:
//!
//! - active (metric > activation threshold) and 0 replicas → set `max(minReplicaCount, 1)`;
//!   active otherwise → only `lastActiveTime = now`;
//! - inactive, replicas > 0, `minReplicaCount` 0, and `lastActiveTime + cooldownPeriod` already
//!   past → set 0 replicas;
//! - inactive and below `minReplicaCount` → set `minReplicaCount`.
//!
//! The HPA KEDA creates has `minReplicas = max(minReplicaCount, 1)` and
//! `maxReplicas = maxReplicaCount`.

/// KEDA's memory for one ScaledObject.
#[derive(Debug, Clone)]
pub struct Keda {
    pub min_replica_count: u32,
    pub cooldown_ms: u64,
    /// `status.lastActiveTime`.
    pub last_active_ms: Option<u64>,
}

impl Keda {
    pub fn new(min_replica_count: u32, cooldown_ms: u64) -> Self {
        Keda {
            min_replica_count,
            cooldown_ms,
            last_active_ms: None,
        }
    }

    /// `minReplicas` of the HPA KEDA creates.
    pub fn hpa_min_replicas(&self) -> u32 {
        self.min_replica_count.max(1)
    }

    /// KEDA's decision for one activity check (a poll or a push) at `now_ms` with the target at
    /// `current` replicas; `Some(n)` when KEDA sets the replica count itself.
    pub fn request_scale(&mut self, now_ms: u64, active: bool, current: u32) -> Option<u32> {
        if active {
            self.last_active_ms = Some(now_ms);
            if current == 0 {
                return Some(self.hpa_min_replicas());
            }
            return None;
        }
        if current > 0 && self.min_replica_count == 0 {
            let cooled = match self.last_active_ms {
                None => true,
                // `lastActiveTime.Add(cooldownPeriod).Before(now)`
                Some(t) => t + self.cooldown_ms < now_ms,
            };
            return cooled.then_some(0);
        }
        if current < self.min_replica_count {
            return Some(self.min_replica_count);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1000;

    #[test]
    fn activation_scales_from_zero_to_one_and_later_activity_only_refreshes() {
        let mut k = Keda::new(0, 300 * S);
        assert_eq!(
            k.request_scale(0, false, 0),
            None,
            "idle at zero stays at zero"
        );
        assert_eq!(k.request_scale(30 * S, true, 0), Some(1));
        assert_eq!(k.last_active_ms, Some(30 * S));
        // Already running: the HPA owns 1..N; KEDA only records the activity.
        assert_eq!(k.request_scale(60 * S, true, 7), None);
        assert_eq!(k.last_active_ms, Some(60 * S));
    }

    #[test]
    fn activation_respects_min_replica_count() {
        let mut k = Keda::new(3, 300 * S);
        assert_eq!(k.hpa_min_replicas(), 3);
        assert_eq!(k.request_scale(0, true, 0), Some(3));
        assert_eq!(Keda::new(0, 0).hpa_min_replicas(), 1);
    }

    #[test]
    fn cooldown_scales_to_zero_only_after_the_period_since_the_last_active_check() {
        let mut k = Keda::new(0, 300 * S);
        assert_eq!(k.request_scale(0, true, 0), Some(1));
        assert_eq!(k.request_scale(30 * S, true, 4), None);
        // Inactive from 60 s on: nothing until lastActiveTime (30 s) + 300 s has passed.
        for t in [60, 120, 300, 330] {
            assert_eq!(k.request_scale(t * S, false, 4), None, "at {t} s");
        }
        assert_eq!(k.request_scale(330 * S + 1, false, 4), Some(0));
        // Activity in between restarts the cooldown.
        let mut k = Keda::new(0, 60 * S);
        k.request_scale(0, true, 0);
        k.request_scale(50 * S, true, 1);
        assert_eq!(k.request_scale(70 * S, false, 1), None);
        assert_eq!(k.request_scale(115 * S, false, 1), Some(0));
    }

    #[test]
    fn never_active_target_with_replicas_goes_to_zero_at_once() {
        // `lastActiveTime == nil` → scale to zero without waiting.
        let mut k = Keda::new(0, 300 * S);
        assert_eq!(k.request_scale(5 * S, false, 2), Some(0));
    }

    #[test]
    fn min_replica_count_above_zero_never_scales_to_zero() {
        let mut k = Keda::new(2, 10 * S);
        k.request_scale(0, true, 0);
        assert_eq!(k.request_scale(3_600 * S, false, 2), None);
        assert_eq!(k.request_scale(3_601 * S, false, 1), Some(2));
    }
}
