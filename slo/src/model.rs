//! An independent model of what the generated rules compute for a known stream of events, used
//! to write the expectations of the generated promtool tests.
//!
//! Events arrive in phases of constant traffic and constant burn rate. The model follows
//! Prometheus' semantics where they matter: counters sampled every minute from zero, `rate()`
//! over a window that starts on a sample (no extrapolation; before the window is full, the
//! increase since the first sample over the whole window), recording rules evaluated every
//! `step`, long windows averaging the base window's recorded rates at the evaluation times inside
//! `[t - window, t]`, and alerts firing once their condition held at every evaluation for `for`.

use crate::duration::Duration;
use crate::spec::{SeverityName, Slo, Spec, Tier, RAW_WINDOW_LIMIT};

/// A stretch of constant traffic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    /// Length in minutes (at least 1).
    pub minutes: u64,
    /// All events per second.
    pub events_per_sec: f64,
    /// Burn rate: the bad share of the events divided by the error budget.
    pub burn: f64,
}

/// Events per minute of one phase: (good, bad).
pub fn per_minute(phase: &Phase, budget: f64) -> (f64, f64) {
    let all = phase.events_per_sec * 60.0;
    let bad = all * phase.burn * budget;
    (all - bad, bad)
}

/// What the recording rules of one SLO hold at an evaluation time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recorded {
    pub events: f64,
    pub errors: f64,
}

impl Recorded {
    pub fn error_ratio(&self) -> f64 {
        self.errors / self.events
    }
}

/// A burn-rate alert as the model evaluates it: the spec's, or an altered copy (to prove that
/// the generated tests tell the two apart).
#[derive(Debug, Clone)]
pub struct AlertRule {
    pub tiers: Vec<Tier>,
    /// `for`, in minutes.
    pub hold: u64,
    /// Events/s over a tier's long window below which the tier does not hold.
    pub min_event_rate: f64,
}

/// The model of one SLO's rules under one scenario.
pub struct Model<'a> {
    spec: &'a Spec,
    slo: &'a Slo,
    /// Evaluation interval, minutes.
    step: u64,
    /// Cumulative (all, bad) events at each minute, from 0.
    cumulative: Vec<(f64, f64)>,
    /// Running sums of the base window's recordings at the evaluation times `k * step`:
    /// element k holds (events, errors, count) of the evaluations before `k * step`.
    base_sums: Vec<(f64, f64, u32)>,
}

impl<'a> Model<'a> {
    pub fn new(spec: &'a Spec, slo: &'a Slo, phases: &[Phase], step: Duration) -> Self {
        let budget = slo.budget();
        let mut cumulative = vec![(0.0, 0.0)];
        let (mut all, mut bad) = (0.0, 0.0);
        for phase in phases {
            let (g, b) = per_minute(phase, budget);
            for _ in 0..phase.minutes {
                all += g + b;
                bad += b;
                cumulative.push((all, bad));
            }
        }
        let mut model = Self {
            spec,
            slo,
            step: step.minutes().max(1),
            cumulative,
            base_sums: Vec::new(),
        };
        let base = spec.windows[0];
        let mut sums = (0.0, 0.0, 0u32);
        model.base_sums.push(sums);
        let mut at = 0;
        while at <= model.minutes() {
            if let Some(r) = model.raw(at, base) {
                sums = (sums.0 + r.events, sums.1 + r.errors, sums.2 + 1);
            }
            model.base_sums.push(sums);
            at += model.step;
        }
        model
    }

    /// Minutes covered by the scenario.
    pub fn minutes(&self) -> u64 {
        self.cumulative.len() as u64 - 1
    }

    /// `sum(rate(x[window]))` at minute `t` for all and bad events: `None` before two samples.
    fn raw(&self, t: u64, window: Duration) -> Option<Recorded> {
        if t == 0 {
            return None;
        }
        let w = window.minutes();
        let start = t.saturating_sub(w);
        let (a1, b1) = self.cumulative[t as usize];
        let (a0, b0) = self.cumulative[start as usize];
        let secs = window.secs() as f64;
        Some(Recorded {
            events: (a1 - a0) / secs,
            errors: (b1 - b0) / secs,
        })
    }

    /// The recorded rates over `window` at evaluation time `t` (minutes, a multiple of the step).
    pub fn recorded(&self, t: u64, window: Duration) -> Option<Recorded> {
        if window <= RAW_WINDOW_LIMIT {
            self.raw(t, window)
        } else {
            self.mean(t, window)
        }
    }

    /// The mean of the base window's recordings at the evaluation times in [t - window, t].
    fn mean(&self, t: u64, window: Duration) -> Option<Recorded> {
        // From the running sums.
        let first = t.saturating_sub(window.minutes()).div_ceil(self.step) as usize;
        let last = (t / self.step) as usize;
        let (e1, b1, n1) = self.base_sums[last + 1];
        let (e0, b0, n0) = self.base_sums[first];
        let n = n1 - n0;
        (n > 0).then(|| Recorded {
            events: (e1 - e0) / f64::from(n),
            errors: (b1 - b0) / f64::from(n),
        })
    }

    /// What a rule like the one of `like` (a raw rate, or a mean of the base window's
    /// recordings) would record over `window` at `t`: for windows the spec does not have.
    pub fn recorded_like(&self, t: u64, window: Duration, like: Duration) -> Option<Recorded> {
        if like <= RAW_WINDOW_LIMIT {
            self.raw(t, window)
        } else {
            self.mean(t, window)
        }
    }

    /// The burn rate over `window` at `t`.
    pub fn burn(&self, t: u64, window: Duration) -> Option<f64> {
        self.recorded(t, window)
            .map(|r| r.error_ratio() / self.slo.budget())
            .filter(|b| b.is_finite())
    }

    /// The severity's burn-rate alert of this SLO, as the spec defines it.
    pub fn rule(&self, severity: SeverityName) -> AlertRule {
        let settings = self.spec.burn_rate_alerts.get(severity);
        AlertRule {
            tiers: settings.tiers.clone(),
            hold: settings.hold.minutes(),
            min_event_rate: self.slo.min_event_rate,
        }
    }

    /// Whether a tier's condition holds at `t`.
    pub fn tier_holds(&self, t: u64, tier: &Tier) -> bool {
        self.tier_holds_with(t, tier, self.slo.min_event_rate)
    }

    fn tier_holds_with(&self, t: u64, tier: &Tier, min_event_rate: f64) -> bool {
        let over = |w| self.burn(t, w).is_some_and(|b| b > tier.factor);
        over(tier.long)
            && over(tier.short)
            && self
                .recorded(t, tier.long)
                .is_some_and(|r| r.events > min_event_rate)
    }

    /// Whether any tier of the rule holds at `t`.
    pub fn condition_of(&self, t: u64, rule: &AlertRule) -> bool {
        rule.tiers
            .iter()
            .any(|tier| self.tier_holds_with(t, tier, rule.min_event_rate))
    }

    /// Whether any tier of the severity holds at `t`.
    pub fn condition(&self, t: u64, severity: SeverityName) -> bool {
        self.condition_of(t, &self.rule(severity))
    }

    /// Whether the rule's alert is firing at `t`: its condition held at every evaluation since
    /// some time at least `for` before `t`.
    pub fn firing_of(&self, t: u64, rule: &AlertRule) -> bool {
        let mut active_since = None;
        let mut at = 0;
        while at <= t {
            if self.condition_of(at, rule) {
                active_since.get_or_insert(at);
            } else {
                active_since = None;
            }
            at += self.step;
        }
        active_since.is_some_and(|since| t - since >= rule.hold)
    }

    /// Whether the rule's alert is firing at each evaluation time `k * step` up to `until`
    /// (element k): [`Self::firing_of`] for all of them at once.
    pub fn firing_series(&self, rule: &AlertRule, until: u64) -> Vec<bool> {
        let mut out = Vec::new();
        let mut active_since = None;
        let mut at = 0;
        while at <= until {
            if self.condition_of(at, rule) {
                active_since.get_or_insert(at);
            } else {
                active_since = None;
            }
            out.push(active_since.is_some_and(|since| at - since >= rule.hold));
            at += self.step;
        }
        out
    }

    /// Whether the severity's alert is firing at `t`.
    pub fn firing(&self, t: u64, severity: SeverityName) -> bool {
        self.firing_of(t, &self.rule(severity))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn spec() -> Spec {
        Spec::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("slos.yaml")).unwrap()
    }

    fn w(text: &str) -> Duration {
        text.parse().unwrap()
    }

    fn phase(minutes: u64, events_per_sec: f64, burn: f64) -> Phase {
        Phase {
            minutes,
            events_per_sec,
            burn,
        }
    }

    #[test]
    fn raw_windows_are_exact_and_partial_windows_keep_the_ratio() {
        let spec = spec();
        let slo = &spec.slos[0]; // budget 0.001
                                 // 2 h without errors, then 1 h at burn 10, 10 events/s.
        let m = Model::new(
            &spec,
            slo,
            &[phase(120, 10.0, 0.0), phase(60, 10.0, 10.0)],
            w("1m"),
        );
        assert_eq!(m.minutes(), 180);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(m.burn(180, w("1h")).unwrap(), 10.0));
        assert!(close(m.burn(180, w("2h")).unwrap(), 5.0));
        // 6h window with 3 h of data: the ratio of what exists, the rate divided by 6 h.
        assert!(close(m.burn(180, w("6h")).unwrap(), 10.0 / 3.0));
        assert!(close(m.recorded(180, w("6h")).unwrap().events, 5.0));
        assert!(m.burn(0, w("5m")).is_none());
    }

    #[test]
    fn long_windows_average_the_base_recordings() {
        let spec = spec();
        let slo = &spec.slos[0];
        let m = Model::new(
            &spec,
            slo,
            &[phase(600, 2.0, 1.0), phase(600, 2.0, 3.0)],
            w("5m"),
        );
        // At 1200: the 1d window holds the samples at 5, 10, ... 1200: 120 of burn 1 and 120
        // of burn 3 (the one at 600 covers 595..600, burn 1): mean 2.
        assert!((m.burn(1200, w("1d")).unwrap() - 2.0).abs() < 1e-9);
        assert!((m.recorded(1200, w("1d")).unwrap().events - 2.0).abs() < 1e-9);
    }

    #[test]
    fn altered_rules_and_the_firing_series() {
        let spec = spec();
        let slo = &spec.slos[0];
        let m = Model::new(
            &spec,
            slo,
            &[phase(30, 10.0, 0.0), phase(60, 10.0, 20.0)],
            w("1m"),
        );
        let rule = m.rule(SeverityName::Page);
        assert_eq!(rule.hold, 2);
        let series = m.firing_series(&rule, 90);
        assert_eq!(series.len(), 91);
        for (t, &fires) in series.iter().enumerate() {
            assert_eq!(fires, m.firing(t as u64, SeverityName::Page), "at {t}");
        }
        // The condition holds from some minute on: the alert fires `for` later, or at once
        // without a `for`.
        let first = series.iter().position(|&f| f).unwrap() as u64;
        assert!(m.condition(first - 2, SeverityName::Page));
        assert!(!m.condition(first - 3, SeverityName::Page));
        let at_once = AlertRule {
            hold: 0,
            ..rule.clone()
        };
        assert!(m.firing_of(first - 2, &at_once));
        // A higher minimum event rate than the traffic: never.
        let busy = AlertRule {
            min_event_rate: 100.0,
            ..rule
        };
        assert!(!m.firing_of(90, &busy));
    }

    #[test]
    fn alerts_fire_after_their_hold_and_only_above_the_factor() {
        let spec = spec();
        let slo = &spec.slos[0]; // min 0.5 events/s
        let just_above = Model::new(&spec, slo, &[phase(90, 10.0, 14.4 * 1.01)], w("1m"));
        assert!(just_above.condition(60, SeverityName::Page));
        assert!(just_above.firing(62, SeverityName::Page));
        assert!(!just_above.firing(1, SeverityName::Page));
        let just_below = Model::new(&spec, slo, &[phase(90, 10.0, 5.9)], w("1m"));
        assert!(!just_below.condition(90, SeverityName::Page));
        let too_few = Model::new(&spec, slo, &[phase(90, 0.49, 30.0)], w("1m"));
        assert!(!too_few.condition(90, SeverityName::Page));
    }
}
