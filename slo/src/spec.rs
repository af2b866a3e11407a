//! The SLO spec (`slo/slos.yaml`): its shape, its validation and the placeholders in its queries.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::duration::Duration;
use crate::error::{Error, Result};

/// Windows up to this one are computed from the raw counters; longer ones average the recorded
/// rates of the shortest window, which keeps the 1d, 3d and 30d rules cheap.
pub const RAW_WINDOW_LIMIT: Duration = Duration::from_secs(6 * 3600);

/// The whole spec, validated.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The SLO window: objectives are met over this period.
    pub window: Duration,
    /// Every rate window recorded, ascending; the first is the base the long ones average.
    pub windows: Vec<Duration>,
    /// Prometheus job names, by role (`api`, `worker`, `scaler`).
    pub jobs: BTreeMap<String, String>,
    /// Prefix of every `runbook_url`.
    pub runbook_base_url: String,
    /// The burn-rate alert tiers, by severity.
    pub burn_rate_alerts: BurnRateAlerts,
    /// The objectives.
    pub slos: Vec<Slo>,
    /// Symptom alerts asked for from the start.
    pub seed_alerts: Vec<AlertSpec>,
    /// Alerts on causes.
    pub operational_alerts: Vec<AlertSpec>,
}

/// Page and ticket tiers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurnRateAlerts {
    pub page: Severity,
    pub ticket: Severity,
}

/// The tiers of one severity, which fire one alert between them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Severity {
    /// How long a tier must hold before the alert fires.
    #[serde(rename = "for")]
    pub hold: Duration,
    pub tiers: Vec<Tier>,
}

/// Burn rate above `factor` over both windows.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub factor: f64,
    pub long: Duration,
    pub short: Duration,
}

/// One service-level objective.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// `api-availability`: the `slo` label of every rule and alert.
    pub name: String,
    /// For dashboards: `API availability`.
    pub title: String,
    /// What the SLI counts, in words.
    pub description: String,
    /// Percent of good events, e.g. 99.9.
    pub objective: f64,
    /// Name of the burn-rate alert (both severities).
    pub alert: String,
    /// Events per second over a tier's long window below which the tier does not fire.
    pub min_event_rate: f64,
    /// `docs/runbooks/<file>.md`, optionally with `#anchor`.
    pub runbook: String,
    /// For an SLI that the exporting process classifies itself (task-wait: the scaler counts a
    /// start as good when it came within this time of the task becoming ready), the threshold
    /// that process must use. Not used in the rules; the scaler's tests hold its default and the
    /// deployment's setting to it.
    #[serde(default)]
    pub threshold: Option<Duration>,
    pub sli: Sli,
}

/// The SLI as two queries with a `{{window}}` placeholder: all events, and either the bad or
/// the good ones.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sli {
    pub total: String,
    #[serde(default)]
    pub bad: Option<String>,
    #[serde(default)]
    pub good: Option<String>,
}

/// A plain alerting rule (seed and operational alerts).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSpec {
    pub alert: String,
    pub severity: SeverityName,
    #[serde(rename = "for")]
    pub hold: Duration,
    pub expr: String,
    pub summary: String,
    pub description: String,
    pub runbook: String,
}

/// Where an alert goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeverityName {
    Page,
    Ticket,
}

impl SeverityName {
    pub const ALL: [SeverityName; 2] = [SeverityName::Page, SeverityName::Ticket];

    pub fn as_str(self) -> &'static str {
        match self {
            SeverityName::Page => "page",
            SeverityName::Ticket => "ticket",
        }
    }
}

impl fmt::Display for SeverityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl BurnRateAlerts {
    pub fn get(&self, severity: SeverityName) -> &Severity {
        match severity {
            SeverityName::Page => &self.page,
            SeverityName::Ticket => &self.ticket,
        }
    }
}

impl Slo {
    /// The objective as a ratio (0.999), as written into the rules.
    pub fn objective_ratio(&self) -> f64 {
        round12(self.objective / 100.0)
    }

    /// The error budget as a ratio (0.001), as written into the rules.
    pub fn budget(&self) -> f64 {
        round12((100.0 - self.objective) / 100.0)
    }
}

impl Spec {
    /// Reads and validates the spec.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, path)
    }

    /// Parses and validates spec text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let spec: Spec = serde_norway::from_str(text).map_err(|source| Error::Yaml {
            path: path.to_owned(),
            source,
        })?;
        spec.validate().map_err(|message| Error::Invalid {
            path: path.to_owned(),
            message,
        })?;
        Ok(spec)
    }

    /// The SLO window, burn-rate and alert windows all recorded; every name, number and
    /// placeholder sane.
    fn validate(&self) -> Result<(), String> {
        let windows = self
            .windows
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>();
        let known = || windows.join(", ");
        if self.windows.is_empty() {
            return Err("windows: list at least one window".into());
        }
        if self.windows.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!(
                "windows: list each window once, shortest first (got {})",
                known()
            ));
        }
        if self.windows[0] > RAW_WINDOW_LIMIT {
            return Err(format!(
                "windows: the shortest window ({}) must be at most {RAW_WINDOW_LIMIT}",
                self.windows[0]
            ));
        }
        if !self.windows.contains(&self.window) {
            return Err(format!(
                "window: unknown window {}; add it to windows ({})",
                self.window,
                known()
            ));
        }
        for role in ["api", "worker", "scaler"] {
            match self.jobs.get(role) {
                Some(job) if !job.trim().is_empty() => {}
                _ => return Err(format!("jobs: name the Prometheus job of the {role}")),
            }
        }
        if !self.runbook_base_url.starts_with("https://") || !self.runbook_base_url.ends_with('/') {
            return Err(format!(
                "runbook_base_url: {:?} must start with https:// and end with /",
                self.runbook_base_url
            ));
        }
        for severity in SeverityName::ALL {
            let tiers = &self.burn_rate_alerts.get(severity).tiers;
            if tiers.is_empty() {
                return Err(format!(
                    "burn_rate_alerts.{severity}: list at least one tier"
                ));
            }
            for (i, tier) in tiers.iter().enumerate() {
                let at = format!("burn_rate_alerts.{severity}.tiers[{i}]");
                if !(tier.factor.is_finite() && tier.factor > 0.0) {
                    return Err(format!(
                        "{at}: factor must be a positive burn rate, got {}",
                        tier.factor
                    ));
                }
                for (what, w) in [("long", tier.long), ("short", tier.short)] {
                    if !self.windows.contains(&w) {
                        return Err(format!(
                            "{at}.{what}: unknown window {w}; use one of {} or add it to windows",
                            known()
                        ));
                    }
                }
                if tier.short >= tier.long {
                    return Err(format!(
                        "{at}: the short window ({}) must be shorter than the long one ({})",
                        tier.short, tier.long
                    ));
                }
            }
        }

        if self.slos.is_empty() {
            return Err("slos: define at least one SLO".into());
        }
        let mut names = BTreeSet::new();
        let mut alerts = BTreeSet::new();
        for (i, slo) in self.slos.iter().enumerate() {
            let at = format!("slos[{i}] ({})", slo.name);
            if !is_slug(&slo.name) {
                return Err(format!(
                    "{at}: name must be lowercase letters, digits and dashes, e.g. api-availability"
                ));
            }
            if !names.insert(slo.name.clone()) {
                return Err(format!("{at}: the name is used twice"));
            }
            check_objective(slo.objective).map_err(|m| format!("{at}: {m}"))?;
            if !(slo.min_event_rate.is_finite() && slo.min_event_rate > 0.0) {
                return Err(format!(
                    "{at}: min_event_rate must be a positive number of events per second, got {}",
                    slo.min_event_rate
                ));
            }
            check_alert_name(&slo.alert, &mut alerts).map_err(|m| format!("{at}: {m}"))?;
            check_runbook(&slo.runbook).map_err(|m| format!("{at}: {m}"))?;
            if slo.title.trim().is_empty() || slo.description.trim().is_empty() {
                return Err(format!("{at}: give a title and a description"));
            }
            let queries: Vec<(&str, &str)> = match (&slo.sli.bad, &slo.sli.good) {
                (Some(bad), None) => vec![("total", &slo.sli.total), ("bad", bad)],
                (None, Some(good)) => vec![("total", &slo.sli.total), ("good", good)],
                _ => {
                    return Err(format!(
                        "{at}: the sli needs `total` and exactly one of `bad` or `good`"
                    ))
                }
            };
            for (what, query) in queries {
                if !placeholders(query)?.iter().any(|p| p == "window") {
                    return Err(format!(
                        "{at}: sli.{what} must use {{{{window}}}} as its range, e.g. rate(x[{{{{window}}}}])"
                    ));
                }
                self.expand(query, Some(self.windows[0]))
                    .map_err(|m| format!("{at}: sli.{what}: {m}"))?;
            }
        }

        for (list, specs) in [
            ("seed_alerts", &self.seed_alerts),
            ("operational_alerts", &self.operational_alerts),
        ] {
            for (i, alert) in specs.iter().enumerate() {
                let at = format!("{list}[{i}] ({})", alert.alert);
                check_alert_name(&alert.alert, &mut alerts).map_err(|m| format!("{at}: {m}"))?;
                check_runbook(&alert.runbook).map_err(|m| format!("{at}: {m}"))?;
                if placeholders(&alert.expr)?.iter().any(|p| p == "window") {
                    return Err(format!(
                        "{at}: {{{{window}}}} only exists in SLI queries; write the range"
                    ));
                }
                self.expand(&alert.expr, None)
                    .map_err(|m| format!("{at}: expr: {m}"))?;
                for (what, text) in [
                    ("summary", &alert.summary),
                    ("description", &alert.description),
                ] {
                    if text.trim().is_empty() {
                        return Err(format!("{at}: {what} is empty"));
                    }
                    annotation_labels(text).map_err(|m| format!("{at}: {what}: {m}"))?;
                }
            }
        }
        Ok(())
    }

    /// The query with its placeholders filled in: `{{window}}` (only when `window` is given) and
    /// `{{job.<role>}}`.
    pub fn expand(&self, query: &str, window: Option<Duration>) -> Result<String, String> {
        let mut out = String::with_capacity(query.len());
        let mut rest = query;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find("}}")
                .ok_or_else(|| format!("unclosed {{{{ in {query:?}"))?;
            let name = rest[start + 2..start + end].trim();
            match (name, window) {
                ("window", Some(w)) => out.push_str(&w.to_string()),
                ("window", None) => return Err("{{window}} is not available here".into()),
                _ => match name
                    .strip_prefix("job.")
                    .and_then(|role| self.jobs.get(role))
                {
                    Some(job) => out.push_str(job),
                    None => {
                        return Err(format!(
                            "unknown placeholder {{{{{name}}}}}: use {{{{window}}}} or one of {}",
                            self.jobs
                                .keys()
                                .map(|r| format!("{{{{job.{r}}}}}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    }
                },
            }
            rest = &rest[start + end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Every alert of the spec (seed, then operational).
    pub fn service_alerts(&self) -> impl Iterator<Item = &AlertSpec> {
        self.seed_alerts.iter().chain(&self.operational_alerts)
    }

    /// The spec's path inside the repository.
    pub fn path(repo_root: &Path) -> PathBuf {
        repo_root.join("slo/slos.yaml")
    }
}

/// Names of the `{{ ... }}` placeholders in a query.
fn placeholders(query: &str) -> Result<Vec<String>, String> {
    let mut found = Vec::new();
    let mut rest = query;
    while let Some(start) = rest.find("{{") {
        let end = rest[start..]
            .find("}}")
            .ok_or_else(|| format!("unclosed {{{{ in {query:?}"))?;
        found.push(rest[start + 2..start + end].trim().to_owned());
        rest = &rest[start + end + 2..];
    }
    Ok(found)
}

/// The labels an annotation refers to; only `{{ $labels.<name> }}` is allowed, so that the
/// generated tests can predict every annotation.
pub fn annotation_labels(text: &str) -> Result<Vec<String>, String> {
    placeholders(text)?
        .into_iter()
        .map(|p| {
            p.strip_prefix("$labels.")
                .filter(|l| is_identifier(l))
                .map(str::to_owned)
                .ok_or_else(|| {
                    format!("only {{{{ $labels.<name> }}}} may be used in annotations, not {{{{ {p} }}}}")
                })
        })
        .collect()
}

/// Fills `{{ $labels.<name> }}` in with the alert's labels, as Prometheus would.
pub fn expand_annotation(text: &str, labels: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            break;
        };
        let name = rest[start + 2..start + end].trim();
        if let Some(value) = name.strip_prefix("$labels.").and_then(|l| labels.get(l)) {
            out.push_str(value);
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

fn check_objective(objective: f64) -> Result<(), String> {
    if !objective.is_finite() || objective <= 0.0 || objective > 100.0 {
        return Err(format!(
            "objective must be a percentage between 0 and 100, e.g. 99.9; got {objective}"
        ));
    }
    if objective >= 100.0 {
        return Err("objective 100 leaves no error budget: every burn rate would be infinite; use e.g. 99.99".into());
    }
    if objective < 1.0 {
        return Err(format!(
            "objective {objective} looks like a ratio: write the percentage, e.g. {}",
            objective * 100.0
        ));
    }
    if objective < 50.0 {
        return Err(format!(
            "objective {objective}% allows more bad events than good ones; is it a typo?"
        ));
    }
    Ok(())
}

fn check_alert_name(name: &str, seen: &mut BTreeSet<String>) -> Result<(), String> {
    if !is_identifier(name) {
        return Err(format!(
            "alert name {name:?} must be letters, digits and underscores, not starting with a digit"
        ));
    }
    if !seen.insert(name.to_owned()) {
        return Err(format!("alert name {name} is used twice"));
    }
    Ok(())
}

fn check_runbook(runbook: &str) -> Result<(), String> {
    let path = runbook.split('#').next().unwrap_or_default();
    if !path.starts_with("docs/runbooks/") || !path.ends_with(".md") {
        return Err(format!(
            "runbook {runbook:?} must be a file docs/runbooks/<name>.md, optionally with #anchor"
        ));
    }
    Ok(())
}

fn is_slug(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_identifier(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Rounds away the binary noise of decimal arithmetic (1 - 0.999 = 0.0010000000000000009).
pub fn round12(x: f64) -> f64 {
    (x * 1e12).round() / 1e12
}

/// A number as written into PromQL and names: the shortest decimal, without binary noise
/// (`6.06`, not `6.0600000000000005`).
pub fn fmt_num(x: f64) -> String {
    format!("{}", round12(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_text() -> String {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/slos.yaml")).unwrap()
    }

    fn parse(text: &str) -> Result<Spec> {
        Spec::parse(text, Path::new("slos.yaml"))
    }

    fn error_of(from: &str, to: &str) -> String {
        let text = spec_text();
        assert!(text.contains(from), "the spec no longer contains {from:?}");
        parse(&text.replacen(from, to, 1)).unwrap_err().to_string()
    }

    #[test]
    fn the_committed_spec_is_valid() {
        let spec = parse(&spec_text()).unwrap();
        assert_eq!(spec.slos.len(), 4);
        let budgets: Vec<f64> = spec.slos.iter().map(Slo::budget).collect();
        assert_eq!(budgets, [0.001, 0.01, 0.005, 0.01]);
        assert_eq!(fmt_num(spec.slos[0].objective_ratio()), "0.999");
        assert_eq!(fmt_num(spec.slos[0].budget()), "0.001");
    }

    #[test]
    fn objectives_out_of_range_are_refused_with_the_reason() {
        let e = error_of("objective: 99.9", "objective: 100");
        assert!(e.contains("leaves no error budget"), "{e}");
        let e = error_of("objective: 99.9", "objective: 0.999");
        assert!(e.contains("looks like a ratio"), "{e}");
        let e = error_of("objective: 99.9", "objective: 120");
        assert!(e.contains("between 0 and 100"), "{e}");
        let e = error_of("objective: 99.9", "objective: -1");
        assert!(e.contains("between 0 and 100"), "{e}");
        let e = error_of("objective: 99.9", "objective: .nan");
        assert!(e.contains("between 0 and 100"), "{e}");
        assert!(e.contains("slos[0] (api-availability)"), "{e}");
    }

    #[test]
    fn windows_must_be_known_and_ordered() {
        let e = error_of(
            "{ factor: 14.4, long: 1h, short: 5m }",
            "{ factor: 14.4, long: 4h, short: 5m }",
        );
        assert!(e.contains("unknown window 4h"), "{e}");
        assert!(e.contains("burn_rate_alerts.page.tiers[0].long"), "{e}");
        let e = error_of(
            "{ factor: 14.4, long: 1h, short: 5m }",
            "{ factor: 14.4, long: 1h, short: 2h }",
        );
        assert!(e.contains("must be shorter than the long one"), "{e}");
        let e = error_of("window: 30d", "window: 28d");
        assert!(e.contains("unknown window 28d"), "{e}");
        let e = error_of("[5m, 30m, 1h,", "[30m, 5m, 1h,");
        assert!(e.contains("shortest first"), "{e}");
        let e = error_of("window: 30d", "window: 30 days");
        assert!(e.contains("is not a duration"), "{e}");
        let e = error_of("factor: 14.4", "factor: 0");
        assert!(e.contains("positive burn rate"), "{e}");
    }

    #[test]
    fn slis_and_alerts_are_checked() {
        let e = error_of("[{{window}}]))\n      bad:", "[5m]))\n      bad:");
        assert!(e.contains("must use {{window}}"), "{e}");
        let e = error_of("job=\"{{job.api}}\"", "job=\"{{job.apii}}\"");
        assert!(e.contains("unknown placeholder {{job.apii}}"), "{e}");
        let e = error_of(
            "      bad: sum(rate(flowforge_http_requests_total",
            "      good: x[{{window}}]\n      bad: sum(rate(flowforge_http_requests_total",
        );
        assert!(e.contains("exactly one of `bad` or `good`"), "{e}");
        let e = error_of(
            "alert: ApiLatencyBudgetBurn",
            "alert: ApiAvailabilityBudgetBurn",
        );
        assert!(e.contains("used twice"), "{e}");
        let e = error_of("name: task-wait", "name: Task Wait");
        assert!(e.contains("lowercase"), "{e}");
        let e = error_of("min_event_rate: 0.5", "min_event_rate: 0");
        assert!(e.contains("min_event_rate must be a positive"), "{e}");
        let e = error_of(
            "runbook: docs/runbooks/slo-api-latency.md",
            "runbook: runbooks/x.txt",
        );
        assert!(e.contains("docs/runbooks/<name>.md"), "{e}");
        let e = error_of(
            "'Queue {{ $labels.queue }} has more",
            "'Queue {{ $value }} has more",
        );
        assert!(e.contains("only {{ $labels.<name> }}"), "{e}");
        let e = error_of("severity: ticket", "severity: urgent");
        assert!(e.contains("unknown variant `urgent`"), "{e}");
        let e = error_of("window: 30d", "window: 30d\nwindoww: 1d");
        assert!(e.contains("unknown field `windoww`"), "{e}");
    }

    #[test]
    fn placeholders_and_annotations_expand() {
        let spec = parse(&spec_text()).unwrap();
        let q = spec
            .expand(
                "rate(x{job=\"{{job.api}}\"}[{{ window }}])",
                Some("1d".parse().unwrap()),
            )
            .unwrap();
        assert_eq!(q, "rate(x{job=\"flowforge-api\"}[1d])");
        let labels = BTreeMap::from([("queue".to_owned(), "emails".to_owned())]);
        assert_eq!(
            expand_annotation("Queue {{ $labels.queue }} ({{$labels.missing}})", &labels),
            "Queue emails ()"
        );
    }
}
