//! The Horizontal Pod Autoscaler's replica calculation, as kube-controller-manager does it for
//! `autoscaling/v2` objects with `spec.behavior` (which is what KEDA creates).
//!
//! One sync (every `--horizontal-pod-autoscaler-sync-period`, 15 s by default):
//!
//! 1. If the target has 0 replicas and `minReplicas` > 0, autoscaling is disabled (KEDA owns the
//!    0 ↔ 1 step). Above `maxReplicas` or below `minReplicas`, the target is set to that bound.
//! 2. Otherwise the metric gives a proposal. For an External metric with an `AverageValue`
//!    target (KEDA's scalers): `ratio = metric / (target × replicas)`; if the ratio is within
//!    `[1 − tolerance, 1 + tolerance]` the proposal is the current count, else
//!    `ceil(metric / target)`.
//! 3. Stabilisation: every proposal is recorded; the scale-down window keeps the highest proposal
//!    of the last `stabilizationWindowSeconds` (300 s by default), the scale-up window the lowest
//!    (0 s by default: none).
//! 4. Rate policies: the change allowed by each policy, counted from the replicas at the start of
//!    its `periodSeconds` (replicas added or removed by this HPA within the period are undone);
//!    `selectPolicy: Max` takes the policy that allows the largest change, `Min` the smallest,
//!    `Disabled` forbids that direction. Then `minReplicas`/`maxReplicas` clamp.
//!
//! Times are milliseconds since the start of the simulation.

use serde::Serialize;

/// The cluster-wide default tolerance (`--horizontal-pod-autoscaler-tolerance`).
pub const DEFAULT_TOLERANCE: f64 = 0.1;
/// The default HPA sync period (`--horizontal-pod-autoscaler-sync-period`), seconds.
pub const DEFAULT_SYNC_PERIOD_S: u32 = 15;

/// `HPAScalingPolicy.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PolicyType {
    Pods,
    Percent,
}

/// One `HPAScalingPolicy`: at most `value` pods (or percent of the replicas at the start of the
/// period) added or removed within any `period_s` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ScalingPolicy {
    #[serde(rename = "type")]
    pub kind: PolicyType,
    pub value: u32,
    #[serde(rename = "periodSeconds")]
    pub period_s: u32,
}

impl ScalingPolicy {
    pub const fn pods(value: u32, period_s: u32) -> Self {
        ScalingPolicy {
            kind: PolicyType::Pods,
            value,
            period_s,
        }
    }

    pub const fn percent(value: u32, period_s: u32) -> Self {
        ScalingPolicy {
            kind: PolicyType::Percent,
            value,
            period_s,
        }
    }
}

/// `HPAScalingRules.selectPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SelectPolicy {
    Max,
    Min,
    Disabled,
}

/// `HPAScalingRules`: one direction of `spec.behavior`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScalingRules {
    #[serde(rename = "stabilizationWindowSeconds")]
    pub stabilization_window_s: u32,
    #[serde(rename = "selectPolicy")]
    pub select_policy: SelectPolicy,
    pub policies: Vec<ScalingPolicy>,
    /// `tolerance` for this direction (Kubernetes 1.33+); `None`: the cluster-wide default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
}

impl ScalingRules {
    /// The default `scaleUp`: no stabilisation, at most 100% or 4 pods (whichever is more) per
    /// 15 s.
    pub fn default_scale_up() -> Self {
        ScalingRules {
            stabilization_window_s: 0,
            select_policy: SelectPolicy::Max,
            policies: vec![ScalingPolicy::percent(100, 15), ScalingPolicy::pods(4, 15)],
            tolerance: None,
        }
    }

    /// The default `scaleDown`: a 300 s stabilisation window, then down to `minReplicas` at once
    /// (100% per 15 s).
    pub fn default_scale_down() -> Self {
        ScalingRules {
            stabilization_window_s: 300,
            select_policy: SelectPolicy::Max,
            policies: vec![ScalingPolicy::percent(100, 15)],
            tolerance: None,
        }
    }

    fn longest_period_ms(&self) -> i64 {
        self.policies
            .iter()
            .map(|p| i64::from(p.period_s) * 1000)
            .max()
            .unwrap_or(0)
    }
}

/// `spec.behavior`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Behavior {
    #[serde(rename = "scaleUp")]
    pub scale_up: ScalingRules,
    #[serde(rename = "scaleDown")]
    pub scale_down: ScalingRules,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            scale_up: ScalingRules::default_scale_up(),
            scale_down: ScalingRules::default_scale_down(),
        }
    }
}

/// The tolerances in force for each direction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerances {
    pub up: f64,
    pub down: f64,
}

impl Tolerances {
    pub const fn both(t: f64) -> Self {
        Tolerances { up: t, down: t }
    }

    /// No change when `1 − down ≤ ratio ≤ 1 + up`.
    pub fn within(&self, ratio: f64) -> bool {
        (1.0 - self.down) <= ratio && ratio <= (1.0 + self.up)
    }
}

/// The basic formula for per-pod metrics (CPU, per-pod custom metrics):
/// `desired = ceil(current × currentMetricValue / desiredMetricValue)`, or `current` when the ratio
/// is within the tolerance.
pub fn replicas_for_ratio(
    current: u32,
    current_value: f64,
    desired_value: f64,
    tol: Tolerances,
) -> u32 {
    let ratio = current_value / desired_value;
    if tol.within(ratio) {
        return current;
    }
    ceil_to_u32(f64::from(current) * ratio)
}

/// External metric with an `AverageValue` target (what KEDA's scalers produce): the metric is a
/// total, the target a value per pod. `ratio = metric / (target × current)`; outside the
/// tolerance, `desired = ceil(metric / target)`. Values are compared in milli-units, as the
/// controller does with resource quantities.
pub fn replicas_for_external_average(
    current: u32,
    metric: f64,
    target_average: f64,
    tol: Tolerances,
) -> u32 {
    let usage = (metric * 1000.0).round();
    let target = (target_average * 1000.0).round().max(1.0);
    let ratio = usage / (target * f64::from(current));
    if tol.within(ratio) {
        return current;
    }
    ceil_to_u32(usage / target)
}

fn ceil_to_u32(v: f64) -> u32 {
    if v <= 0.0 {
        0
    } else if v >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        v.ceil() as u32
    }
}

#[derive(Debug, Clone, Copy)]
struct Stamped {
    at_ms: i64,
    value: u32,
}

/// One HorizontalPodAutoscaler with its controller-side memory: past proposals (for
/// stabilisation) and its own past scale events (for rate policies).
#[derive(Debug, Clone)]
pub struct Hpa {
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub behavior: Behavior,
    /// Cluster-wide tolerance, used for a direction whose rules set none.
    pub tolerance: f64,
    recommendations: Vec<Stamped>,
    up_events: Vec<Stamped>,
    down_events: Vec<Stamped>,
}

/// What one sync decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sync {
    /// The proposal from the metric, before stabilisation and rate limits (`None` when the HPA
    /// did not compute one: disabled, or outside min/max).
    pub proposal: Option<u32>,
    /// Replicas the HPA sets; equal to the current count when it does nothing.
    pub replicas: u32,
}

impl Hpa {
    pub fn new(min_replicas: u32, max_replicas: u32, behavior: Behavior) -> Self {
        Hpa {
            min_replicas,
            max_replicas,
            behavior,
            tolerance: DEFAULT_TOLERANCE,
            recommendations: Vec::new(),
            up_events: Vec::new(),
            down_events: Vec::new(),
        }
    }

    pub fn with_tolerance(mut self, tolerance: f64) -> Self {
        self.tolerance = tolerance;
        self
    }

    pub fn tolerances(&self) -> Tolerances {
        Tolerances {
            up: self.behavior.scale_up.tolerance.unwrap_or(self.tolerance),
            down: self.behavior.scale_down.tolerance.unwrap_or(self.tolerance),
        }
    }

    /// One sync for an External `AverageValue` metric (KEDA): `current` is the target's replica
    /// count (`scale.spec.replicas`; pods being started count, terminating ones do not).
    pub fn sync_external(
        &mut self,
        now_ms: u64,
        current: u32,
        metric: f64,
        target_average: f64,
    ) -> Sync {
        let tol = self.tolerances();
        self.sync_with(now_ms, current, |cur| {
            replicas_for_external_average(cur, metric, target_average, tol)
        })
    }

    /// One sync where `propose` turns the current replica count into the metric's proposal.
    pub fn sync_with(
        &mut self,
        now_ms: u64,
        current: u32,
        propose: impl FnOnce(u32) -> u32,
    ) -> Sync {
        let now = now_ms as i64;
        if current == 0 && self.min_replicas != 0 {
            // "scaling is disabled since the replica count of the target is zero"
            return Sync {
                proposal: None,
                replicas: 0,
            };
        }
        let (proposal, desired) = if current > self.max_replicas {
            (None, self.max_replicas)
        } else if current < self.min_replicas {
            (None, self.min_replicas)
        } else {
            let proposal = propose(current);
            (Some(proposal), self.normalize(now, current, proposal))
        };
        if desired != current {
            self.store_scale_event(now, current, desired);
        }
        Sync {
            proposal,
            replicas: desired,
        }
    }

    /// Stabilisation, then rate policies and min/max (`normalizeDesiredReplicasWithBehaviors`).
    fn normalize(&mut self, now: i64, current: u32, proposal: u32) -> u32 {
        let stabilized = self.stabilize(now, current, proposal);
        self.limit_rate(now, current, stabilized)
    }

    fn stabilize(&mut self, now: i64, current: u32, proposal: u32) -> u32 {
        let up_cutoff = now - i64::from(self.behavior.scale_up.stabilization_window_s) * 1000;
        let down_cutoff = now - i64::from(self.behavior.scale_down.stabilization_window_s) * 1000;
        let mut up = proposal;
        let mut down = proposal;
        for r in &self.recommendations {
            if r.at_ms > up_cutoff {
                up = up.min(r.value);
            }
            if r.at_ms > down_cutoff {
                down = down.max(r.value);
            }
        }
        let mut recommendation = current;
        if recommendation < up {
            recommendation = up;
        }
        if recommendation > down {
            recommendation = down;
        }
        let oldest_kept = up_cutoff.min(down_cutoff);
        self.recommendations.retain(|r| r.at_ms > oldest_kept);
        self.recommendations.push(Stamped {
            at_ms: now,
            value: proposal,
        });
        recommendation
    }

    fn limit_rate(&self, now: i64, current: u32, desired: u32) -> u32 {
        if desired > current {
            let limit = self.scale_up_limit(now, current).max(i64::from(current));
            let max_allowed = i64::from(self.max_replicas).min(limit);
            (i64::from(desired).min(max_allowed)) as u32
        } else if desired < current {
            let limit = self.scale_down_limit(now, current).min(i64::from(current));
            let min_allowed = i64::from(self.min_replicas).max(limit);
            (i64::from(desired).max(min_allowed)) as u32
        } else {
            desired
        }
    }

    fn change_in_period(events: &[Stamped], now: i64, period_s: u32) -> i64 {
        let cutoff = now - i64::from(period_s) * 1000;
        events
            .iter()
            .filter(|e| e.at_ms > cutoff)
            .map(|e| i64::from(e.value))
            .sum()
    }

    /// `calculateScaleUpLimitWithScalingRules`.
    fn scale_up_limit(&self, now: i64, current: u32) -> i64 {
        let rules = &self.behavior.scale_up;
        let current = i64::from(current);
        let mut result = match rules.select_policy {
            SelectPolicy::Disabled => return current,
            SelectPolicy::Min => i64::MAX,
            SelectPolicy::Max => i64::MIN,
        };
        for p in &rules.policies {
            let added = Self::change_in_period(&self.up_events, now, p.period_s);
            let removed = Self::change_in_period(&self.down_events, now, p.period_s);
            let start = current - added + removed;
            let proposed = match p.kind {
                PolicyType::Pods => start + i64::from(p.value),
                PolicyType::Percent => {
                    (start as f64 * (1.0 + f64::from(p.value) / 100.0)).ceil() as i64
                }
            };
            result = match rules.select_policy {
                SelectPolicy::Min => result.min(proposed),
                _ => result.max(proposed),
            };
        }
        if rules.policies.is_empty() {
            current
        } else {
            result
        }
    }

    /// `calculateScaleDownLimitWithBehaviors`.
    fn scale_down_limit(&self, now: i64, current: u32) -> i64 {
        let rules = &self.behavior.scale_down;
        let current = i64::from(current);
        let mut result = match rules.select_policy {
            SelectPolicy::Disabled => return current,
            // For scaling down, the smallest change is the largest replica count.
            SelectPolicy::Min => i64::MIN,
            SelectPolicy::Max => i64::MAX,
        };
        for p in &rules.policies {
            let added = Self::change_in_period(&self.up_events, now, p.period_s);
            let removed = Self::change_in_period(&self.down_events, now, p.period_s);
            let start = current - added + removed;
            let proposed = match p.kind {
                PolicyType::Pods => start - i64::from(p.value),
                // Truncated, as the controller's int32 conversion does.
                PolicyType::Percent => (start as f64 * (1.0 - f64::from(p.value) / 100.0)) as i64,
            };
            result = match rules.select_policy {
                SelectPolicy::Min => result.max(proposed),
                _ => result.min(proposed),
            };
        }
        if rules.policies.is_empty() {
            current
        } else {
            result
        }
    }

    fn store_scale_event(&mut self, now: i64, from: u32, to: u32) {
        let up_keep = now - self.behavior.scale_up.longest_period_ms();
        let down_keep = now - self.behavior.scale_down.longest_period_ms();
        self.up_events.retain(|e| e.at_ms > up_keep);
        self.down_events.retain(|e| e.at_ms > down_keep);
        if to > from {
            self.up_events.push(Stamped {
                at_ms: now,
                value: to - from,
            });
        } else {
            self.down_events.push(Stamped {
                at_ms: now,
                value: from - to,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    //! Each test reproduces an example from the Kubernetes documentation page "Horizontal Pod
    //! Autoscaling" (kubernetes.io/docs/concepts/workloads/autoscaling/horizontal-pod-autoscale/,
    //! formerly /docs/tasks/run-application/horizontal-pod-autoscale/) or KEP-853
    //! (configurable scale velocity), named in the test's comment.
    use super::*;

    const S: u64 = 1000;
    const TOL: Tolerances = Tolerances::both(DEFAULT_TOLERANCE);

    /// Runs syncs every `every_s` seconds with a fixed proposal; returns the replicas after each.
    fn run(hpa: &mut Hpa, start: u32, proposal: u32, every_s: u64, syncs: usize) -> Vec<u32> {
        let mut current = start;
        (0..syncs)
            .map(|i| {
                current = hpa
                    .sync_with(i as u64 * every_s * S, current, |_| proposal)
                    .replicas;
                current
            })
            .collect()
    }

    #[test]
    fn doc_algorithm_200m_over_100m_doubles_and_50m_halves() {
        // "Algorithm details": current metric 200m, desired 100m → replicas doubled
        // (200.0 / 100.0 == 2.0); 50m → halved (50.0 / 100.0 == 0.5).
        assert_eq!(replicas_for_ratio(1, 200.0, 100.0, TOL), 2);
        assert_eq!(replicas_for_ratio(3, 200.0, 100.0, TOL), 6);
        assert_eq!(replicas_for_ratio(4, 50.0, 100.0, TOL), 2);
        // desiredReplicas = ceil[currentReplicas * ( currentMetricValue / desiredMetricValue )]
        assert_eq!(replicas_for_ratio(3, 150.0, 100.0, TOL), 5); // ceil(4.5)
    }

    #[test]
    fn doc_algorithm_ratio_within_tolerance_skips_scaling() {
        // "The control plane skips any scaling action if the ratio is sufficiently close to 1.0
        // (within a configurable tolerance, 0.1 by default)."
        assert_eq!(replicas_for_ratio(10, 109.0, 100.0, TOL), 10);
        assert_eq!(replicas_for_ratio(10, 110.0, 100.0, TOL), 10); // 1.1 is still within
        assert_eq!(replicas_for_ratio(10, 91.0, 100.0, TOL), 10);
        assert_eq!(replicas_for_ratio(10, 90.0, 100.0, TOL), 10); // 0.9 is still within
        assert_eq!(replicas_for_ratio(10, 111.0, 100.0, TOL), 12); // ceil(11.1)
        assert_eq!(replicas_for_ratio(10, 89.0, 100.0, TOL), 9); // ceil(8.9)
    }

    #[test]
    fn doc_tolerance_example_5_percent_scale_up_tolerance() {
        // "Tolerance": target 100MiB with `scaleUp.tolerance: 0.05` → only consider scaling up
        // when consumption is above 105MiB; scale-down keeps the 10% default.
        let tol = Tolerances {
            up: 0.05,
            down: 0.1,
        };
        assert_eq!(replicas_for_ratio(4, 105.0, 100.0, tol), 4);
        assert_eq!(replicas_for_ratio(4, 106.0, 100.0, tol), 5);
        assert_eq!(replicas_for_ratio(4, 91.0, 100.0, tol), 4);
        // The same through the HPA's behavior.
        let mut behavior = Behavior::default();
        behavior.scale_up.tolerance = Some(0.05);
        let hpa = Hpa::new(1, 10, behavior);
        assert_eq!(hpa.tolerances(), tol);
    }

    #[test]
    fn doc_external_metric_average_value_divides_the_total_by_the_target() {
        // "For object metrics and external metrics, a single metric is fetched ... this value can
        // optionally be divided by the number of Pods before the comparison is made"
        // (AverageValue, what KEDA uses): desired = ceil(metric / targetAverageValue).
        assert_eq!(replicas_for_external_average(1, 250.0, 32.0, TOL), 8);
        assert_eq!(replicas_for_external_average(2, 64.0, 32.0, TOL), 2);
        assert_eq!(replicas_for_external_average(2, 70.0, 32.0, TOL), 2); // ratio 1.09: within
        assert_eq!(replicas_for_external_average(2, 71.0, 32.0, TOL), 3); // ratio 1.11: ceil(2.2)
        assert_eq!(replicas_for_external_average(5, 0.0, 32.0, TOL), 0);
        // 200m over a 100m target on one pod, as in the Algorithm details example.
        assert_eq!(replicas_for_external_average(1, 0.2, 0.1, TOL), 2);
    }

    #[test]
    fn doc_default_behavior_scale_up_4_pods_or_100_percent_per_15s() {
        // "Default behavior": "There are 2 policies where 4 pods or a 100% of the currently
        // running replicas may at most be added every 15 seconds till the HPA reaches its steady
        // state." From 1 replica with a proposal of 100: +4 (5), then +100% each sync.
        let mut hpa = Hpa::new(1, 100, Behavior::default());
        assert_eq!(
            run(&mut hpa, 1, 100, 15, 7),
            vec![5, 10, 20, 40, 80, 100, 100]
        );
    }

    #[test]
    fn default_scale_up_limit_counts_the_whole_15s_period() {
        // The policies hold over their period: two syncs 5 s apart share one 15 s allowance.
        let mut hpa = Hpa::new(1, 100, Behavior::default());
        assert_eq!(run(&mut hpa, 2, 50, 5, 4), vec![6, 6, 6, 12]);
    }

    #[test]
    fn doc_default_behavior_scale_down_after_300s_window_then_to_minimum() {
        // "Default behavior": scale-down stabilisation window 300 s ("all desired states from the
        // past 5 minutes will be considered"), then 100% of replicas may be removed per 15 s
        // ("the scaling target can be scaled down to the minimum allowed replicas").
        let mut hpa = Hpa::new(2, 100, Behavior::default());
        let mut current = 10;
        current = hpa.sync_with(0, current, |_| 10).replicas;
        assert_eq!(current, 10);
        // The metric drops at 15 s; the 10 recorded at 0 s stays in the window (t − 300 s, t]
        // while t < 300 s.
        for t in (15..300).step_by(15) {
            current = hpa.sync_with(t * S, current, |_| 1).replicas;
            assert_eq!(current, 10, "at {t} s");
        }
        current = hpa.sync_with(300 * S, current, |_| 1).replicas;
        assert_eq!(
            current, 2,
            "the highest proposal in (0 s, 300 s] is 1 → minReplicas 2"
        );
    }

    #[test]
    fn doc_stabilization_window_uses_the_highest_recommendation() {
        // "Stabilization window": "the algorithm looks into previously computed desired states,
        // and uses the highest value from the specified interval".
        let mut hpa = Hpa::new(1, 100, Behavior::default());
        let proposals = [8, 5, 7, 3, 2];
        let mut current = 8;
        let mut seen = Vec::new();
        for (i, p) in proposals.iter().enumerate() {
            current = hpa.sync_with(i as u64 * 60 * S, current, |_| *p).replicas;
            seen.push(current);
        }
        // Within 300 s of the first sync the 8 holds.
        assert_eq!(seen, vec![8, 8, 8, 8, 8]);
        // At 300 s the 8 (0 s) leaves the window; the highest left is 7 (120 s).
        current = hpa.sync_with(300 * S, current, |_| 2).replicas;
        assert_eq!(current, 7);
        // At 420 s, the window (120 s, 420 s] holds 3, 2, 2, 2.
        current = hpa.sync_with(420 * S, current, |_| 2).replicas;
        assert_eq!(current, 3);
    }

    #[test]
    fn doc_example_change_downscale_stabilization_window_to_60s() {
        // "Example: change downscale stabilization window": stabilizationWindowSeconds: 60.
        let mut behavior = Behavior::default();
        behavior.scale_down.stabilization_window_s = 60;
        let mut hpa = Hpa::new(1, 100, behavior);
        let out = run(&mut hpa, 10, 10, 15, 1);
        assert_eq!(out, vec![10]);
        let mut current = 10;
        let mut seen = Vec::new();
        for t in [15, 30, 45, 60] {
            current = hpa.sync_with(t * S, current, |_| 4).replicas;
            seen.push(current);
        }
        // The 10 recorded at 0 s is in the window (t − 60 s, t] up to t = 45 s.
        assert_eq!(seen, vec![10, 10, 10, 4]);
    }

    #[test]
    fn doc_scaling_policies_example_4_pods_or_10_percent_per_60s() {
        // "Scaling policies": scaleDown policies Pods 4 / 60 s and Percent 10 / 60 s, selectPolicy
        // Max (default). "if there are 80 replicas and the target has to be scaled down to 10
        // replicas then during the first step 8 replicas will be reduced. In the next iteration
        // when the number of replicas is 72, 10% of the pods is 7.2 but the number is rounded up
        // to 8. ... When the number of replicas falls below 40 the first policy (Pods) is applied
        // and 4 replicas will be reduced at a time."
        let behavior = Behavior {
            scale_up: ScalingRules::default_scale_up(),
            scale_down: ScalingRules {
                stabilization_window_s: 0,
                select_policy: SelectPolicy::Max,
                policies: vec![ScalingPolicy::pods(4, 60), ScalingPolicy::percent(10, 60)],
                tolerance: None,
            },
        };
        let mut hpa = Hpa::new(1, 100, behavior);
        // Syncs every 15 s: only one step per 60 s period is allowed.
        let every_15s = run(&mut hpa, 80, 10, 15, 9);
        assert_eq!(every_15s, vec![72, 72, 72, 72, 64, 64, 64, 64, 57]);

        let mut hpa = Hpa::new(1, 100, hpa.behavior.clone());
        let steps = run(&mut hpa, 80, 10, 60, 15);
        assert_eq!(
            steps,
            vec![72, 64, 57, 51, 45, 40, 36, 32, 28, 24, 20, 16, 12, 10, 10]
        );
        // Below 40 replicas, every step removes 4 pods (the Pods policy allows more).
        assert!(steps.windows(2).skip(7).take(5).all(|w| w[0] - w[1] == 4));
    }

    #[test]
    fn doc_example_limit_scale_down_rate_10_percent_per_minute() {
        // "Example: limit scale down rate": Percent 10 / 60 s.
        let mut behavior = Behavior {
            scale_down: ScalingRules {
                stabilization_window_s: 0,
                select_policy: SelectPolicy::Max,
                policies: vec![ScalingPolicy::percent(10, 60)],
                tolerance: None,
            },
            ..Behavior::default()
        };
        let mut hpa = Hpa::new(1, 200, behavior.clone());
        assert_eq!(run(&mut hpa, 100, 1, 60, 3), vec![90, 81, 72]);

        // "To ensure that no more than 5 Pods are removed per minute, you can add a second
        // scale-down policy with a fixed size of 5, and set selectPolicy to minimum."
        behavior
            .scale_down
            .policies
            .push(ScalingPolicy::pods(5, 60));
        behavior.scale_down.select_policy = SelectPolicy::Min;
        let mut hpa = Hpa::new(1, 200, behavior);
        assert_eq!(run(&mut hpa, 100, 1, 60, 3), vec![95, 90, 85]);
        // With few replicas the 10% policy is the smaller change: 30 → 27.
        let mut hpa = Hpa::new(1, 200, hpa.behavior.clone());
        assert_eq!(run(&mut hpa, 30, 1, 60, 1), vec![27]);
    }

    #[test]
    fn doc_example_disable_scale_down() {
        // "Example: disable scale down": selectPolicy: Disabled.
        let mut behavior = Behavior::default();
        behavior.scale_down.select_policy = SelectPolicy::Disabled;
        behavior.scale_down.stabilization_window_s = 0;
        let mut hpa = Hpa::new(1, 100, behavior);
        assert_eq!(run(&mut hpa, 10, 1, 15, 3), vec![10, 10, 10]);
        // Scaling up still works.
        assert_eq!(hpa.sync_with(60 * S, 10, |_| 12).replicas, 12);
    }

    #[test]
    fn kep_853_stabilization_before_scaling_down() {
        // KEP-853 "Stabilization before scaling down": stabilizationWindowSeconds 600 with Pods 5
        // per 600 s, controller cycle once a minute, CurReplicas 10; recommendations
        // [10, 9, 8, 9, 9, 8, 9, 8, 9, 8] keep 10 replicas; the next one (7) drops the first 10
        // from the window and the largest left, 9, is applied.
        let behavior = Behavior {
            scale_up: ScalingRules::default_scale_up(),
            scale_down: ScalingRules {
                stabilization_window_s: 600,
                select_policy: SelectPolicy::Max,
                policies: vec![ScalingPolicy::pods(5, 600)],
                tolerance: None,
            },
        };
        let mut hpa = Hpa::new(1, 100, behavior);
        let mut current = 10;
        for (i, p) in [10, 9, 8, 9, 9, 8, 9, 8, 9, 8].iter().enumerate() {
            current = hpa.sync_with(i as u64 * 60 * S, current, |_| *p).replicas;
            assert_eq!(current, 10, "minute {i}");
        }
        current = hpa.sync_with(600 * S, current, |_| 7).replicas;
        assert_eq!(current, 9);
    }

    #[test]
    fn min_and_max_replicas_clamp() {
        // minReplicas/maxReplicas bound every decision (HorizontalPodAutoscalerSpec).
        let mut hpa = Hpa::new(2, 20, Behavior::default());
        assert_eq!(hpa.sync_with(0, 16, |_| 500).replicas, 20);
        let mut behavior = Behavior::default();
        behavior.scale_down.stabilization_window_s = 0;
        let mut hpa = Hpa::new(2, 20, behavior);
        assert_eq!(hpa.sync_with(0, 16, |_| 0).replicas, 2);
        // Outside the bounds (e.g. maxReplicas lowered), the target is set to the bound.
        let s = hpa.sync_with(15 * S, 30, |_| 30);
        assert_eq!((s.proposal, s.replicas), (None, 20));
        let s = hpa.sync_with(30 * S, 1, |_| 1);
        assert_eq!((s.proposal, s.replicas), (None, 2));
    }

    #[test]
    fn zero_replicas_disables_the_hpa_when_min_is_above_zero() {
        // "Implicit maintenance-mode deactivation": a target at 0 replicas with minReplicas > 0 is
        // left alone; this is how KEDA keeps a ScaledObject at zero.
        let mut hpa = Hpa::new(1, 10, Behavior::default());
        let s = hpa.sync_external(0, 0, 500.0, 32.0);
        assert_eq!((s.proposal, s.replicas), (None, 0));
        // Once KEDA sets 1 replica, the HPA takes over.
        let s = hpa.sync_external(15 * S, 1, 500.0, 32.0);
        assert_eq!((s.proposal, s.replicas), (Some(16), 5));
    }

    #[test]
    fn scale_down_then_up_within_a_period_uses_the_period_start() {
        // The limits count this HPA's own events within each policy's period: after removing 6
        // of 10 pods, the scale-up allowance starts from the 10 at the start of the period.
        let mut behavior = Behavior::default();
        behavior.scale_down.stabilization_window_s = 0;
        let mut hpa = Hpa::new(1, 100, behavior);
        assert_eq!(hpa.sync_with(0, 10, |_| 4).replicas, 4);
        // 5 s later: start of period = 4 + 6 = 10 → up to max(20, 14) = 20.
        assert_eq!(hpa.sync_with(5 * S, 4, |_| 50).replicas, 20);
    }
}
