//! The test cases (`slo/cases.yaml`): how each SLO's events show up in raw series, and the
//! inputs of the service alerts' tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::duration::Duration;
use crate::error::{Error, Result};
use crate::spec::Spec;

/// The evaluation interval of the service alerts' tests, in seconds.
pub const EVALUATION_SECS: u64 = 60;

/// Both parts of the cases file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cases {
    /// By SLO name: the series its good and bad events increment.
    pub slo_series: BTreeMap<String, Vec<SeriesShare>>,
    /// Inputs and expected labels of the seed and operational alerts.
    pub alert_cases: Vec<AlertCase>,
}

/// One raw series and how much it grows per good event, per bad event, and per minute anyway.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesShare {
    pub series: String,
    #[serde(default)]
    pub good: f64,
    #[serde(default)]
    pub bad: f64,
    #[serde(default)]
    pub extra: f64,
}

/// One promtool test of a service alert.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertCase {
    pub alert: String,
    pub name: String,
    pub eval_time: Duration,
    /// (series, values in promtool's notation), sampled every minute.
    pub series: Vec<(String, String)>,
    /// Labels of each firing alert besides `alertname` and the rule's own labels.
    pub expect: Vec<BTreeMap<String, String>>,
}

impl Cases {
    /// The cases file's path inside the repository.
    pub fn path(repo_root: &Path) -> PathBuf {
        repo_root.join("slo/cases.yaml")
    }

    /// Reads the cases and checks them against the spec.
    pub fn load(path: &Path, spec: &Spec) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let cases: Cases = serde_norway::from_str(&text).map_err(|source| Error::Yaml {
            path: path.to_owned(),
            source,
        })?;
        cases.validate(spec).map_err(|message| Error::Invalid {
            path: path.to_owned(),
            message,
        })?;
        Ok(cases)
    }

    fn validate(&self, spec: &Spec) -> Result<(), String> {
        for slo in &spec.slos {
            let shares = self.slo_series.get(&slo.name).ok_or_else(|| {
                format!(
                    "slo_series: no series for SLO {}: say which series its events grow",
                    slo.name
                )
            })?;
            if !shares.iter().any(|s| s.good > 0.0) || !shares.iter().any(|s| s.bad > 0.0) {
                return Err(format!(
                    "slo_series.{}: some series must grow with good events and some with bad ones",
                    slo.name
                ));
            }
            for share in shares {
                for (what, x) in [
                    ("good", share.good),
                    ("bad", share.bad),
                    ("extra", share.extra),
                ] {
                    if !x.is_finite() || x < 0.0 {
                        return Err(format!(
                            "slo_series.{}: {what} of {} must be 0 or more",
                            slo.name, share.series
                        ));
                    }
                }
                spec.expand(&share.series, None)
                    .map_err(|m| format!("slo_series.{}: {m}", slo.name))?;
            }
        }
        if let Some(name) = self
            .slo_series
            .keys()
            .find(|n| !spec.slos.iter().any(|s| &s.name == *n))
        {
            return Err(format!("slo_series: no SLO is called {name}"));
        }
        for alert in spec.service_alerts() {
            let mine = self.alert_cases.iter().filter(|c| c.alert == alert.alert);
            let (fires, silent): (Vec<_>, Vec<_>) = mine.partition(|c| !c.expect.is_empty());
            if fires.is_empty() || silent.is_empty() {
                return Err(format!(
                    "alert_cases: {} needs a case where it fires and one where it stays silent",
                    alert.alert
                ));
            }
            // The same inputs silent at one evaluation (a minute) and firing at the next: the
            // moment the alert first fires, and so its `for`, is pinned.
            let pinned = fires.iter().any(|f| {
                silent.iter().any(|s| {
                    s.series == f.series
                        && s.eval_time.secs() + EVALUATION_SECS == f.eval_time.secs()
                })
            });
            if alert.hold.secs() > 0 && !pinned {
                return Err(format!(
                    "alert_cases: {} needs a case where it first fires and one with the same series \
                     a minute earlier where it is still silent (its for: {} has not elapsed)",
                    alert.alert, alert.hold
                ));
            }
        }
        for case in &self.alert_cases {
            if !spec.service_alerts().any(|a| a.alert == case.alert) {
                return Err(format!(
                    "alert_cases: {:?} tests {}, which is not a seed or operational alert",
                    case.name, case.alert
                ));
            }
            for (series, _) in &case.series {
                spec.expand(series, None)
                    .map_err(|m| format!("alert_cases: {:?}: {m}", case.name))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> (Spec, String) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let spec = Spec::load(&dir.join("slos.yaml")).unwrap();
        (
            spec,
            std::fs::read_to_string(dir.join("cases.yaml")).unwrap(),
        )
    }

    fn check(spec: &Spec, text: &str) -> Result<(), String> {
        serde_norway::from_str::<Cases>(text)
            .unwrap()
            .validate(spec)
    }

    #[test]
    fn the_cases_are_valid() {
        let (spec, text) = inputs();
        check(&spec, &text).unwrap();
    }

    #[test]
    fn a_hold_time_must_be_pinned_by_a_silent_case_a_minute_before_the_first_firing() {
        let (spec, text) = inputs();
        // The queue backlog's case one minute before it first fires, moved a minute earlier.
        let silent =
            "101 ready tasks from 0; at 14m, a minute before for 15m elapses\n    eval_time: 14m";
        assert!(text.contains(silent), "cases.yaml no longer has {silent:?}");
        let moved = text.replace(silent, &silent.replace("eval_time: 14m", "eval_time: 13m"));
        let err = check(&spec, &moved).unwrap_err();
        assert!(
            err.contains("FlowForgeQueueBacklog needs a case where it first fires"),
            "{err}"
        );
    }
}
