//! Autoscaling policies: a ScaledObject's settings plus its HPA's behavior, and how activity
//! reaches KEDA. Built-in policies are defined here; more can be loaded from a TOML or JSON file.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::hpa::{
    Behavior, PolicyType, ScalingPolicy, ScalingRules, SelectPolicy, DEFAULT_SYNC_PERIOD_S,
    DEFAULT_TOLERANCE,
};

/// How KEDA learns that an idle queue has work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Activation {
    /// Only by polling `IsActive` (or running the trigger's query) every `pollingInterval`.
    Poll,
    /// `external-push`: the scaler streams `StreamIsActive` = true this long after the first
    /// task arrives, and KEDA also polls every `pollingInterval`.
    Push { latency_ms: u64 },
}

/// What the trigger reports as its metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Metric {
    /// Ready (queued) tasks only: `SELECT count(*) ... WHERE status = 'queued'`.
    #[serde(rename = "ready")]
    Ready,
    /// Ready + running tasks (FlowForge's scaler).
    #[serde(rename = "ready+running")]
    ReadyAndRunning,
}

impl Metric {
    fn label(self) -> &'static str {
        match self {
            Metric::Ready => "ready tasks",
            Metric::ReadyAndRunning => "ready + running tasks",
        }
    }
}

/// One autoscaling configuration to simulate.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub name: String,
    pub description: String,
    pub activation: Activation,
    /// `pollingInterval`, seconds.
    pub polling_interval: u32,
    /// `cooldownPeriod`, seconds.
    pub cooldown_period: u32,
    /// Active when the metric is above this (`activationTasks`, `activationTargetQueryValue`).
    pub activation_threshold: f64,
    pub metric: Metric,
    /// Tasks per worker (`targetTasksPerWorker`, `targetQueryValue`); `None`: the workers'
    /// concurrency.
    pub target_per_worker: Option<f64>,
    pub min_replica_count: u32,
    pub max_replica_count: u32,
    /// KEDA's `useCachedMetrics`: the HPA reads the value of the last poll instead of querying.
    pub use_cached_metrics: bool,
    /// `--horizontal-pod-autoscaler-sync-period`, seconds.
    pub hpa_sync_period: u32,
    /// `--horizontal-pod-autoscaler-tolerance`.
    pub tolerance: f64,
    pub behavior: Behavior,
}

/// The `StreamIsActive` latency modelled for FlowForge's scaler: the brief's p99 target
/// (≤ 100 ms), well above the measured p99 (docs/benchmarks.md, "Activation").
pub const PUSH_LATENCY_MS: u64 = 100;
/// KEDA's default `maxReplicaCount`.
pub const DEFAULT_MAX_REPLICAS: u32 = 100;

impl Policy {
    /// KEDA's defaults around a poll-activated trigger; the built-ins start from here.
    fn keda_defaults(name: &str, description: &str, metric: Metric) -> Policy {
        Policy {
            name: name.into(),
            description: description.into(),
            activation: Activation::Poll,
            polling_interval: 30,
            cooldown_period: 300,
            activation_threshold: 0.0,
            metric,
            target_per_worker: None,
            min_replica_count: 0,
            max_replica_count: DEFAULT_MAX_REPLICAS,
            use_cached_metrics: false,
            hpa_sync_period: DEFAULT_SYNC_PERIOD_S,
            tolerance: DEFAULT_TOLERANCE,
            behavior: Behavior::default(),
        }
    }

    /// The built-in policies, in report order.
    pub fn builtins() -> Vec<Policy> {
        let default = Policy::keda_defaults(
            "keda-postgresql-default",
            "KEDA's postgresql trigger with its defaults and the usual query \
             (SELECT count(*) FROM flowforge.tasks WHERE status = 'queued'); \
             targetQueryValue = worker concurrency",
            Metric::Ready,
        );
        let mut tuned = Policy::keda_defaults(
            "keda-postgresql-tuned",
            "KEDA's postgresql trigger with everything flowforge-push-recommended sets but the \
             push: 5 s polling, 60 s cooldown and scale-down window, at most half the workers \
             removed per 30 s, maxReplicaCount 20, and a query that counts queued + running tasks",
            Metric::ReadyAndRunning,
        );
        tuned.max_replica_count = 20;
        tuned.polling_interval = 5;
        tuned.cooldown_period = 60;
        tuned.behavior.scale_down.stabilization_window_s = 60;
        tuned.behavior.scale_down.policies = vec![ScalingPolicy::percent(50, 30)];
        let mut push = Policy::keda_defaults(
            "flowforge-push-recommended",
            "FlowForge's external-push scaler with the ScaledObject of \
             k8s/base/worker/scaledobject.yaml: StreamIsActive on the first task, 5 s polling, \
             60 s cooldown and scale-down window, at most half the workers removed per 30 s, \
             targetTasksPerWorker = worker concurrency, maxReplicaCount 20",
            Metric::ReadyAndRunning,
        );
        push.max_replica_count = 20;
        push.activation = Activation::Push {
            latency_ms: PUSH_LATENCY_MS,
        };
        push.polling_interval = 5;
        push.cooldown_period = 60;
        push.behavior.scale_down.stabilization_window_s = 60;
        push.behavior.scale_down.policies = vec![ScalingPolicy::percent(50, 30)];
        vec![default, tuned, push]
    }

    /// Tasks per worker for a given worker concurrency.
    pub fn target(&self, concurrency: u32) -> f64 {
        self.target_per_worker.unwrap_or(f64::from(concurrency))
    }

    /// Checks the settings the way Kubernetes' and KEDA's validation would.
    pub fn validate(&self) -> Result<(), String> {
        let err = |m: String| Err(format!("policy {:?}: {m}", self.name));
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return err("names use letters, digits, '-', '_' and '.' only".into());
        }
        if self.polling_interval == 0 {
            return err("pollingInterval must be at least 1 s".into());
        }
        if self.hpa_sync_period == 0 {
            return err("hpaSyncPeriodSeconds must be at least 1 s".into());
        }
        if !(self.tolerance.is_finite() && self.tolerance >= 0.0) {
            return err("tolerance must be 0 or more".into());
        }
        if !(self.activation_threshold.is_finite() && self.activation_threshold >= 0.0) {
            return err("activationThreshold must be 0 or more".into());
        }
        if let Some(t) = self.target_per_worker {
            if !(t.is_finite() && t > 0.0) {
                return err("targetPerWorker must be above 0".into());
            }
        }
        if self.max_replica_count == 0 || self.max_replica_count < self.min_replica_count {
            return err(format!(
                "maxReplicaCount ({}) must be at least 1 and at least minReplicaCount ({})",
                self.max_replica_count, self.min_replica_count
            ));
        }
        for (dir, r) in [
            ("scaleUp", &self.behavior.scale_up),
            ("scaleDown", &self.behavior.scale_down),
        ] {
            if r.stabilization_window_s > 3600 {
                return err(format!(
                    "behavior.{dir}.stabilizationWindowSeconds must be 0..=3600"
                ));
            }
            if r.select_policy != SelectPolicy::Disabled && r.policies.is_empty() {
                return err(format!("behavior.{dir}.policies needs at least one policy"));
            }
            for p in &r.policies {
                if p.value == 0 || p.period_s == 0 || p.period_s > 1800 {
                    return err(format!(
                        "behavior.{dir}.policies: value must be above 0 and periodSeconds 1..=1800"
                    ));
                }
            }
            if let Some(t) = r.tolerance {
                if !(t.is_finite() && t >= 0.0) {
                    return err(format!("behavior.{dir}.tolerance must be 0 or more"));
                }
            }
        }
        Ok(())
    }

    /// A few lines describing every setting, for the report.
    pub fn describe(&self, concurrency: u32) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{}: {}", self.name, self.description);
        let activation = match self.activation {
            Activation::Poll => format!("poll every {}s", self.polling_interval),
            Activation::Push { latency_ms } => format!(
                "push {} after the first task, poll every {}s",
                super::report::fmt_ms(latency_ms),
                self.polling_interval
            ),
        };
        let _ = writeln!(
            s,
            "    activation: {activation}; active when metric > {}; cooldown {}s to zero",
            trim_float(self.activation_threshold),
            self.cooldown_period
        );
        let target = self.target(concurrency);
        let _ = writeln!(
            s,
            "    metric: {}{}; target {} per worker (replicas = ceil(metric / {})); \
             minReplicaCount {}, maxReplicaCount {}",
            self.metric.label(),
            if self.use_cached_metrics {
                " (cached at each poll)"
            } else {
                ""
            },
            trim_float(target),
            trim_float(target),
            self.min_replica_count,
            self.max_replica_count
        );
        let _ = writeln!(
            s,
            "    HPA: sync {}s, tolerance {}; scaleUp {}; scaleDown {}",
            self.hpa_sync_period,
            trim_float(self.tolerance),
            describe_rules(&self.behavior.scale_up),
            describe_rules(&self.behavior.scale_down)
        );
        s
    }
}

fn describe_rules(r: &ScalingRules) -> String {
    let tol = r
        .tolerance
        .map(|t| format!(", tolerance {}", trim_float(t)))
        .unwrap_or_default();
    if r.select_policy == SelectPolicy::Disabled {
        return format!("disabled{tol}");
    }
    let policies: Vec<String> = r
        .policies
        .iter()
        .map(|p| match p.kind {
            PolicyType::Pods => format!("{} pods/{}s", p.value, p.period_s),
            PolicyType::Percent => format!("{}%/{}s", p.value, p.period_s),
        })
        .collect();
    let select = match (r.select_policy, policies.len()) {
        (_, 1) => String::new(),
        (SelectPolicy::Min, _) => "min of ".into(),
        _ => "max of ".into(),
    };
    format!(
        "window {}s, {select}{}{tol}",
        r.stabilization_window_s,
        policies.join(" + ")
    )
}

pub(crate) fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_owned()
}

/// A policies file: `[[policy]]` tables (TOML) or `{"policy": [...]}` (JSON).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    policy: Vec<PolicySpec>,
}

/// One policy in a file: every field but `name` is optional and falls back to `base`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PolicySpec {
    name: String,
    /// A built-in policy, or one defined earlier in the file, to start from
    /// (default: keda-postgresql-default).
    base: Option<String>,
    description: Option<String>,
    /// "poll" or "push".
    activation: Option<String>,
    /// For push activation, e.g. "100ms".
    push_latency: Option<String>,
    polling_interval: Option<u32>,
    cooldown_period: Option<u32>,
    activation_threshold: Option<f64>,
    /// "ready" or "ready+running".
    metric: Option<String>,
    target_per_worker: Option<f64>,
    min_replica_count: Option<u32>,
    max_replica_count: Option<u32>,
    use_cached_metrics: Option<bool>,
    hpa_sync_period_seconds: Option<u32>,
    tolerance: Option<f64>,
    behavior: Option<BehaviorSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BehaviorSpec {
    scale_up: Option<RulesSpec>,
    scale_down: Option<RulesSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RulesSpec {
    stabilization_window_seconds: Option<u32>,
    select_policy: Option<SelectPolicySpec>,
    policies: Option<Vec<PolicyEntrySpec>>,
    tolerance: Option<f64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
enum SelectPolicySpec {
    Max,
    Min,
    Disabled,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PolicyEntrySpec {
    #[serde(rename = "type")]
    kind: PolicyTypeSpec,
    value: u32,
    period_seconds: u32,
}

#[derive(Debug, Clone, Copy, Deserialize)]
enum PolicyTypeSpec {
    Pods,
    Percent,
}

impl RulesSpec {
    fn apply(self, r: &mut ScalingRules) {
        if let Some(w) = self.stabilization_window_seconds {
            r.stabilization_window_s = w;
        }
        if let Some(s) = self.select_policy {
            r.select_policy = match s {
                SelectPolicySpec::Max => SelectPolicy::Max,
                SelectPolicySpec::Min => SelectPolicy::Min,
                SelectPolicySpec::Disabled => SelectPolicy::Disabled,
            };
        }
        if let Some(ps) = self.policies {
            r.policies = ps
                .into_iter()
                .map(|p| ScalingPolicy {
                    kind: match p.kind {
                        PolicyTypeSpec::Pods => PolicyType::Pods,
                        PolicyTypeSpec::Percent => PolicyType::Percent,
                    },
                    value: p.value,
                    period_s: p.period_seconds,
                })
                .collect();
        }
        if let Some(t) = self.tolerance {
            r.tolerance = Some(t);
        }
    }
}

impl PolicySpec {
    fn build(self, known: &[Policy]) -> Result<Policy, String> {
        let base_name = self.base.as_deref().unwrap_or("keda-postgresql-default");
        let mut p = known
            .iter()
            .find(|p| p.name == base_name)
            .cloned()
            .ok_or_else(|| {
                format!(
                    "policy {:?}: unknown base {base_name:?} (known: {})",
                    self.name,
                    names(known)
                )
            })?;
        p.name = self.name.clone();
        p.description = self
            .description
            .unwrap_or_else(|| format!("{base_name} with the changes in the policies file"));
        let push_latency_ms = match &self.push_latency {
            Some(s) => Some(
                flowforge_core::config::parse_duration(s)
                    .map_err(|e| format!("policy {:?}: pushLatency: {e}", self.name))?
                    .as_millis() as u64,
            ),
            None => None,
        };
        match self.activation.as_deref() {
            None => {
                if let (Some(l), Activation::Push { latency_ms }) =
                    (push_latency_ms, &mut p.activation)
                {
                    *latency_ms = l;
                }
            }
            Some("poll") => p.activation = Activation::Poll,
            Some("push") => {
                p.activation = Activation::Push {
                    latency_ms: push_latency_ms.unwrap_or(PUSH_LATENCY_MS),
                }
            }
            Some(other) => {
                return Err(format!(
                    "policy {:?}: activation {other:?}: expected \"poll\" or \"push\"",
                    self.name
                ))
            }
        }
        if push_latency_ms.is_some() && p.activation == Activation::Poll {
            return Err(format!(
                "policy {:?}: pushLatency needs activation = \"push\"",
                self.name
            ));
        }
        match self.metric.as_deref() {
            None => {}
            Some("ready") => p.metric = Metric::Ready,
            Some("ready+running") => p.metric = Metric::ReadyAndRunning,
            Some(other) => {
                return Err(format!(
                    "policy {:?}: metric {other:?}: expected \"ready\" or \"ready+running\"",
                    self.name
                ))
            }
        }
        macro_rules! set {
            ($field:ident, $value:expr) => {
                if let Some(v) = $value {
                    p.$field = v;
                }
            };
        }
        set!(polling_interval, self.polling_interval);
        set!(cooldown_period, self.cooldown_period);
        set!(activation_threshold, self.activation_threshold);
        set!(min_replica_count, self.min_replica_count);
        set!(max_replica_count, self.max_replica_count);
        set!(use_cached_metrics, self.use_cached_metrics);
        set!(hpa_sync_period, self.hpa_sync_period_seconds);
        set!(tolerance, self.tolerance);
        if self.target_per_worker.is_some() {
            p.target_per_worker = self.target_per_worker;
        }
        if let Some(b) = self.behavior {
            if let Some(up) = b.scale_up {
                up.apply(&mut p.behavior.scale_up);
            }
            if let Some(down) = b.scale_down {
                down.apply(&mut p.behavior.scale_down);
            }
        }
        p.validate()?;
        Ok(p)
    }
}

fn names(ps: &[Policy]) -> String {
    ps.iter()
        .map(|p| p.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses a policies file's text; `json` selects JSON, otherwise TOML. Each policy may name a
/// built-in or an earlier policy of the file as its `base`.
pub fn parse_policies(text: &str, json: bool) -> Result<Vec<Policy>, String> {
    let file: PolicyFile = if json {
        serde_json::from_str(text).map_err(|e| e.to_string())?
    } else {
        toml::from_str(text).map_err(|e| e.to_string())?
    };
    if file.policy.is_empty() {
        return Err("no policies: expected [[policy]] tables with at least a name".into());
    }
    let mut known = Policy::builtins();
    let mut out = Vec::new();
    for spec in file.policy {
        if known.iter().any(|p| p.name == spec.name) {
            return Err(format!(
                "policy {:?} is defined twice (or shadows a built-in)",
                spec.name
            ));
        }
        let p = spec.build(&known)?;
        known.push(p.clone());
        out.push(p);
    }
    Ok(out)
}

/// Loads a policies file (`.json`: JSON; anything else: TOML).
pub fn load_policies(path: &Path) -> Result<Vec<Policy>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    parse_policies(&text, json).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_valid_and_match_the_documented_settings() {
        let b = Policy::builtins();
        for p in &b {
            p.validate().unwrap();
        }
        let names: Vec<&str> = b.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "keda-postgresql-default",
                "keda-postgresql-tuned",
                "flowforge-push-recommended"
            ]
        );
        let d = &b[0];
        assert_eq!(
            (d.polling_interval, d.cooldown_period, d.metric),
            (30, 300, Metric::Ready)
        );
        assert_eq!(d.behavior, Behavior::default());
        let push = &b[2];
        assert_eq!(push.activation, Activation::Push { latency_ms: 100 });
        assert_eq!(
            (push.polling_interval, push.cooldown_period, push.metric),
            (5, 60, Metric::ReadyAndRunning)
        );
        assert_eq!(push.behavior.scale_down.stabilization_window_s, 60);
        assert_eq!(
            push.behavior.scale_down.policies,
            vec![ScalingPolicy::percent(50, 30)]
        );
        assert_eq!(push.target(32), 32.0);
    }

    #[test]
    fn toml_policies_inherit_from_a_base_and_override_fields() {
        let text = r#"
            [[policy]]
            name = "warm"
            base = "flowforge-push-recommended"
            minReplicaCount = 1
            pushLatency = "250ms"

            [[policy]]
            name = "warm-fast"
            base = "warm"
            targetPerWorker = 16
            [policy.behavior.scaleUp]
            policies = [{ type = "Percent", value = 400, periodSeconds = 15 }]
            [policy.behavior.scaleDown]
            selectPolicy = "Disabled"
        "#;
        let ps = parse_policies(text, false).unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].min_replica_count, 1);
        assert_eq!(ps[0].activation, Activation::Push { latency_ms: 250 });
        assert_eq!(ps[1].activation, Activation::Push { latency_ms: 250 });
        assert_eq!(ps[1].target_per_worker, Some(16.0));
        assert_eq!(
            ps[1].behavior.scale_up.policies,
            vec![ScalingPolicy::percent(400, 15)]
        );
        assert_eq!(
            ps[1].behavior.scale_down.select_policy,
            SelectPolicy::Disabled
        );
        assert!(ps[1].describe(32).contains("scaleDown disabled"));
    }

    #[test]
    fn json_policies_parse_too() {
        let text = r#"{"policy": [{"name": "slow-poll", "pollingInterval": 60, "metric": "ready+running"}]}"#;
        let ps = parse_policies(text, true).unwrap();
        assert_eq!(ps[0].polling_interval, 60);
        assert_eq!(ps[0].metric, Metric::ReadyAndRunning);
        assert_eq!(ps[0].activation, Activation::Poll);
    }

    #[test]
    fn bad_policy_files_say_what_is_wrong() {
        let cases = [
            ("[[policy]]\nname = \"a\"\npollingIntervall = 5\n", "pollingIntervall"),
            ("[[policy]]\nname = \"a\"\nbase = \"nope\"\n", "unknown base \"nope\""),
            ("[[policy]]\nname = \"a\"\nmetric = \"running\"\n", "metric \"running\""),
            ("[[policy]]\nname = \"a\"\nactivation = \"pull\"\n", "activation \"pull\""),
            ("[[policy]]\nname = \"a\"\npushLatency = \"1s\"\n", "needs activation"),
            ("[[policy]]\nname = \"a\"\nmaxReplicaCount = 0\n", "maxReplicaCount"),
            ("[[policy]]\nname = \"a b\"\n", "names use"),
            ("[[policy]]\nname = \"keda-postgresql-default\"\n", "defined twice"),
            ("", "no policies"),
            (
                "[[policy]]\nname = \"a\"\n[policy.behavior.scaleUp]\npolicies = [{ type = \"Pods\", value = 4, periodSeconds = 0 }]\n",
                "periodSeconds",
            ),
            (
                "[[policy]]\nname = \"a\"\n[policy.behavior.scaleDown]\nselectPolicy = \"Fastest\"\n",
                "Fastest",
            ),
        ];
        for (text, needle) in cases {
            let err = parse_policies(text, false).unwrap_err();
            assert!(err.contains(needle), "{text:?}: {err:?} lacks {needle:?}");
        }
    }

    #[test]
    fn description_lists_every_setting() {
        let d = Policy::builtins()[0].describe(32);
        for needle in [
            "poll every 30s",
            "cooldown 300s",
            "metric: ready tasks",
            "target 32 per worker",
            "maxReplicaCount 100",
            "sync 15s, tolerance 0.1",
            "scaleUp window 0s, max of 100%/15s + 4 pods/15s",
            "scaleDown window 300s, 100%/15s",
        ] {
            assert!(d.contains(needle), "{d} lacks {needle}");
        }
    }
}
