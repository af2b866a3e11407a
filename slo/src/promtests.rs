//! The generated promtool unit tests (`alerts/tests/*.yaml`).
//!
//! - recording rules: one stream of events with known phases for every SLO, and the value of
//!   every recorded series at the end, computed by [`crate::model`];
//! - burn-rate alerts, per severity: for every tier a case just above its factor that fires and
//!   one just below that stays silent (with the other tiers kept below theirs), the
//!   minimum-event-rate guard just above and just below, and a page that clears when its short
//!   window does;
//! - service alerts: the cases of `slo/cases.yaml`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cases::{AlertCase, Cases, SeriesShare};
use crate::duration::Duration;
use crate::model::{per_minute, Model, Phase};
use crate::rules::{self, Series, BUDGET_REMAINING, GENERATED_MARKER, OBJECTIVE};
use crate::spec::{expand_annotation, fmt_num, SeverityName, Slo, Spec, Tier};

/// The generated test files, relative to the repository root.
pub const RECORDING_TESTS: &str = "alerts/tests/slo-recording-rules.yaml";
pub const SERVICE_ALERT_TESTS: &str = "alerts/tests/service-alerts.yaml";

/// The burn-rate alert tests of a severity.
pub fn burn_rate_tests_path(severity: SeverityName) -> String {
    format!("alerts/tests/slo-{severity}-alerts.yaml")
}

#[derive(Debug, Serialize)]
struct TestFile {
    rule_files: Vec<String>,
    evaluation_interval: Duration,
    tests: Vec<TestGroup>,
}

#[derive(Debug, Serialize)]
struct TestGroup {
    name: String,
    interval: Duration,
    input_series: Vec<InputSeries>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    alert_rule_test: Vec<AlertTest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    promql_expr_test: Vec<ExprTest>,
}

#[derive(Debug, Serialize)]
struct InputSeries {
    series: String,
    values: String,
}

#[derive(Debug, Serialize)]
struct AlertTest {
    eval_time: Duration,
    alertname: String,
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Debug, Serialize)]
struct ExpAlert {
    exp_labels: BTreeMap<String, String>,
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
struct ExprTest {
    expr: String,
    eval_time: Duration,
    exp_samples: Vec<ExpSample>,
}

#[derive(Debug, Serialize)]
struct ExpSample {
    labels: String,
    value: f64,
}

/// Every generated test file: (path, contents).
pub fn files(spec: &Spec, cases: &Cases) -> Result<Vec<(String, String)>, String> {
    let mut out = vec![(
        RECORDING_TESTS.to_owned(),
        render(
            &recording_tests(spec, cases)?,
            "Recording rules: every SLO gets a known stream of events (phases of constant traffic\n\
             # and burn rate, in each group's name); the expected values are computed by\n\
             # slo/src/model.rs, independently of PromQL, and compared after rounding.",
        ),
    )];
    for severity in SeverityName::ALL {
        out.push((
            burn_rate_tests_path(severity),
            render(
                &burn_rate_tests(spec, cases, severity)?,
                "Burn-rate alerts: each group drives every SLO through the same scenario (its\n\
                 # name says what it shows); the expected alerts come from slo/src/model.rs, which\n\
                 # also checks that each scenario shows what its name says.",
            ),
        ));
    }
    out.push((
        SERVICE_ALERT_TESTS.to_owned(),
        render(
            &service_alert_tests(spec, cases),
            "Seed and operational alerts: the cases of slo/cases.yaml, with the annotations of\n\
             # slo/slos.yaml.",
        ),
    ));
    Ok(out)
}

fn render(file: &TestFile, about: &str) -> String {
    let yaml = serde_norway::to_string(file).expect("test files serialise");
    format!(
        "{GENERATED_MARKER}\n\
         # Regenerate with `cargo run -p flowforge-slo -- generate`; run with\n\
         # `promtool test rules alerts/tests/*.yaml`.\n\
         # {about}\n\
         {yaml}"
    )
}

fn minutes(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

/// Rounds `m` up to a multiple of `step`.
fn up(m: f64, step: u64) -> u64 {
    (m / step as f64).ceil() as u64 * step
}

/// Traffic of a stage, relative to the SLO's minimum event rate.
#[derive(Debug, Clone, Copy)]
enum Traffic {
    /// This many times the normal test traffic (10 × the minimum event rate).
    Normal(f64),
    /// This many times the minimum event rate.
    OfMinimum(f64),
}

#[derive(Debug, Clone, Copy)]
struct Stage {
    minutes: u64,
    traffic: Traffic,
    burn: f64,
}

impl Stage {
    fn new(minutes: u64, burn: f64) -> Self {
        Self {
            minutes,
            traffic: Traffic::Normal(1.0),
            burn,
        }
    }

    fn phase(&self, slo: &Slo, burn_scale: f64) -> Phase {
        let events_per_sec = match self.traffic {
            Traffic::Normal(x) => x * 10.0 * slo.min_event_rate,
            Traffic::OfMinimum(x) => x * slo.min_event_rate,
        };
        Phase {
            minutes: self.minutes,
            events_per_sec,
            burn: self.burn * burn_scale,
        }
    }

    fn describe(stages: &[Stage]) -> String {
        stages
            .iter()
            .map(|s| {
                let traffic = match s.traffic {
                    Traffic::Normal(1.0) => String::new(),
                    Traffic::Normal(x) => format!(" with {}x the traffic", fmt_num(x)),
                    Traffic::OfMinimum(x) => {
                        format!(" at {}x the minimum event rate", fmt_num(x))
                    }
                };
                format!(
                    "{} at burn {}{traffic}",
                    minutes(s.minutes),
                    fmt_num(s.burn)
                )
            })
            .collect::<Vec<_>>()
            .join(", then ")
    }
}

/// The series of one SLO for a run of phases: every series of its shares, in promtool's
/// expanding notation, one sample a minute from 0.
fn slo_series(
    spec: &Spec,
    slo: &Slo,
    shares: &[SeriesShare],
    phases: &[Phase],
) -> Vec<InputSeries> {
    let budget = slo.budget();
    shares
        .iter()
        .map(|share| {
            let mut segments = Vec::new();
            let mut last = 0.0f64;
            for (i, phase) in phases.iter().enumerate() {
                let (good, bad) = per_minute(phase, budget);
                let inc = share.good * good + share.bad * bad + share.extra;
                // promtool expands `a+bxn` by adding b n times: follow it exactly, so that the
                // next segment starts exactly one step above where this one ended.
                let (start, n) = if i == 0 {
                    (0.0, phase.minutes)
                } else {
                    (last + inc, phase.minutes - 1)
                };
                segments.push(format!("{}+{}x{n}", start, inc));
                last = start;
                for _ in 0..n {
                    last += inc;
                }
            }
            InputSeries {
                series: spec
                    .expand(&share.series, None)
                    .expect("cases were validated"),
                values: segments.join(" "),
            }
        })
        .collect()
}

/// `round(expr * scale)` and its expected value; refuses values too close to a rounding edge to
/// compare reliably.
fn rounded(expr: String, scale: f64, value: f64, at: u64, slo: &str) -> Result<ExprTest, String> {
    let scaled = value * scale;
    if ((scaled.fract()).abs() - 0.5).abs() < 0.02 {
        return Err(format!(
            "{expr} for {slo} is {value}, too close to a rounding edge: change the recording scenario"
        ));
    }
    Ok(ExprTest {
        expr: format!("round({expr} * {})", fmt_num(scale)),
        eval_time: minutes(at),
        exp_samples: vec![ExpSample {
            labels: format!("{{slo=\"{slo}\"}}"),
            value: scaled.round(),
        }],
    })
}

fn recording_tests(spec: &Spec, cases: &Cases) -> Result<TestFile, String> {
    let step = 5;
    // A day at burn 0.5 seen only by the 30d window's start, two days of mixed burn, a long
    // quiet stretch at double traffic, then a burst that grows: every window a different value.
    let stages = [
        Stage::new(60, 30.0),
        Stage::new(1440, 0.5),
        Stage::new(1440, 2.0),
        Stage {
            minutes: 1260,
            traffic: Traffic::Normal(2.0),
            burn: 0.0,
        },
        Stage::new(150, 10.0),
        Stage::new(60, 40.0),
    ];
    let end: u64 = stages.iter().map(|s| s.minutes).sum();
    let mut input_series = Vec::new();
    let mut promql_expr_test = Vec::new();
    let mut scales = Vec::new();
    for (i, slo) in spec.slos.iter().enumerate() {
        // Each SLO burns at a different multiple, so that a rule reading another SLO's series
        // would be caught.
        let scale = 1.0 + 0.1 * i as f64;
        scales.push(format!("{} x{}", slo.name, fmt_num(scale)));
        let phases: Vec<Phase> = stages.iter().map(|s| s.phase(slo, scale)).collect();
        input_series.extend(slo_series(spec, slo, &cases.slo_series[&slo.name], &phases));
        let model = Model::new(spec, slo, &phases, minutes(step));
        let name = slo.name.as_str();
        for &w in &spec.windows {
            let r = model
                .recorded(end, w)
                .ok_or_else(|| format!("no {w} rate at the end of the recording scenario"))?;
            let burn = r.error_ratio() / slo.budget();
            promql_expr_test.push(rounded(Series::BurnRate.of(name, w), 1e4, burn, end, name)?);
            promql_expr_test.push(rounded(
                Series::ErrorRatio.of(name, w),
                1e6,
                r.error_ratio(),
                end,
                name,
            )?);
            promql_expr_test.push(rounded(
                Series::Events.of(name, w),
                1e4,
                r.events,
                end,
                name,
            )?);
        }
        let burn = model
            .burn(end, spec.window)
            .ok_or("no burn rate over the SLO window")?;
        promql_expr_test.push(rounded(
            format!("{BUDGET_REMAINING}{{slo=\"{name}\"}}"),
            1e4,
            1.0 - burn,
            end,
            name,
        )?);
        promql_expr_test.push(ExprTest {
            expr: format!("{OBJECTIVE}{{slo=\"{name}\"}}"),
            eval_time: minutes(end),
            exp_samples: vec![ExpSample {
                labels: format!("{OBJECTIVE}{{slo=\"{name}\"}}"),
                value: slo.objective_ratio(),
            }],
        });
    }
    Ok(TestFile {
        rule_files: vec!["../flowforge-rules.yaml".into()],
        evaluation_interval: minutes(step),
        tests: vec![TestGroup {
            name: format!(
                "every recorded series after {}; burn multiplied per SLO: {}",
                Stage::describe(&stages),
                scales.join(", ")
            ),
            interval: minutes(1),
            input_series,
            alert_rule_test: Vec::new(),
            promql_expr_test,
        }],
    })
}

/// What a scenario must show at one time, for every SLO.
#[derive(Debug, Clone, Copy)]
struct Check {
    at: u64,
    fires: bool,
    /// This tier holds and no other tier of the severity does.
    only_tier: Option<usize>,
    /// This tier's long window is still above its factor (the short one cleared the alert).
    long_over: Option<usize>,
}

impl Check {
    fn fires(at: u64, only_tier: Option<usize>) -> Self {
        Self {
            at,
            fires: true,
            only_tier,
            long_over: None,
        }
    }

    fn silent(at: u64) -> Self {
        Self {
            at,
            fires: false,
            only_tier: None,
            long_over: None,
        }
    }
}

struct Scenario {
    name: String,
    stages: Vec<Stage>,
    checks: Vec<Check>,
}

fn tier_text(tier: &Tier) -> String {
    format!(
        "{}/{} tier ({}x)",
        tier.long,
        tier.short,
        fmt_num(tier.factor)
    )
}

/// The scenarios of one severity, evaluated every `step` minutes.
fn scenarios(spec: &Spec, severity: SeverityName, step: u64) -> Result<Vec<Scenario>, String> {
    let settings = spec.burn_rate_alerts.get(severity);
    let tiers = &settings.tiers;
    let hold = settings.hold.minutes() as f64;
    let mut by_factor: Vec<usize> = (0..tiers.len()).collect();
    by_factor.sort_by(|&a, &b| tiers[b].factor.total_cmp(&tiers[a].factor));
    let highest = by_factor[0];
    let lowest = by_factor[by_factor.len() - 1];
    let mins = |d: Duration| d.minutes() as f64;
    let mut out = Vec::new();

    // The lowest tier, with steady errors just above and just below its factor. An hour of
    // data is enough: a window that is not full yet holds the ratio of what exists (the window
    // lengths themselves are proven by the recording-rule tests and the isolated tiers below).
    let low = &tiers[lowest];
    let length = up(mins(low.long).min(60.0) + hold + 10.0, step);
    for (factor, fires) in [(1.01, true), (0.99, false)] {
        let burn = low.factor * factor;
        out.push(Scenario {
            name: format!(
                "{severity}, {}: steady burn {} {} the factor: {}",
                tier_text(low),
                fmt_num(burn),
                if fires { "above" } else { "below" },
                if fires { "fires" } else { "silent" }
            ),
            stages: vec![Stage::new(length, burn)],
            checks: vec![if fires {
                Check::fires(length, Some(lowest))
            } else {
                Check::silent(length)
            }],
        });
    }

    // Each higher tier on its own: a burst after a quiet stretch long enough to keep the lower
    // tiers' long windows under their factors; where no such stretch exists (the windows are in
    // the same ratio as the factors), busy traffic without errors fills the lowest tier's short
    // window instead.
    for &i in &by_factor[..by_factor.len() - 1] {
        let tier = &tiers[i];
        let burst = up(mins(tier.long) + hold + 10.0, step);
        let lower: Vec<&Tier> = by_factor
            .iter()
            .filter(|&&j| tiers[j].factor < tier.factor)
            .map(|&j| &tiers[j])
            .collect();
        let needed = |burn: f64| -> Option<f64> {
            lower
                .iter()
                .map(|j| {
                    let quiet_plus_burst = burn * burst as f64 / (0.9 * j.factor);
                    (quiet_plus_burst <= mins(j.long)).then_some(quiet_plus_burst)
                })
                .try_fold(0.0f64, |acc, x| x.map(|x| acc.max(x)))
        };
        let above = tier.factor * 1.01;
        let stages_for: Box<dyn Fn(f64) -> Vec<Stage>> = match needed(above) {
            Some(total) => {
                let quiet = up((total - burst as f64).max(0.0), step);
                Box::new(move |burn| {
                    let mut s = Vec::new();
                    if quiet > 0 {
                        s.push(Stage::new(quiet, 0.0));
                    }
                    s.push(Stage::new(burst, burn));
                    s
                })
            }
            None => {
                let j = &tiers[lowest];
                let last = up(mins(tier.short) + hold + 10.0, step);
                let busy = mins(j.short) - last as f64;
                let before = mins(tier.long) - mins(j.short);
                if busy < step as f64 || before < step as f64 {
                    return Err(format!(
                        "cannot build a test where the {} fires without the {}: adjust slo/src/promtests.rs",
                        tier_text(tier),
                        tier_text(j)
                    ));
                }
                let busy = busy as u64;
                let before = before as u64;
                // Busy enough to halve the lowest tier's short-window burn...
                let traffic = ((2.0 * last as f64 * above / j.factor - last as f64) / busy as f64)
                    .max(1.0)
                    .ceil();
                // ...and errors before it to put this tier's long window at 1.25x its factor.
                let early =
                    (1.25 * tier.factor * (before as f64 + busy as f64 * traffic + last as f64)
                        - last as f64 * above)
                        / before as f64;
                let early = (early * 100.0).ceil() / 100.0;
                Box::new(move |burn| {
                    vec![
                        Stage::new(before, early),
                        Stage {
                            minutes: busy,
                            traffic: Traffic::Normal(traffic),
                            burn: 0.0,
                        },
                        Stage::new(last, burn),
                    ]
                })
            }
        };
        for (factor, fires) in [(1.01, true), (0.99, false)] {
            let stages = stages_for(tier.factor * factor);
            let end = stages.iter().map(|s| s.minutes).sum();
            out.push(Scenario {
                name: format!(
                    "{severity}, {} on its own: {}: {}",
                    tier_text(tier),
                    Stage::describe(&stages),
                    if fires { "fires" } else { "silent" }
                ),
                stages,
                checks: vec![if fires {
                    Check::fires(end, Some(i))
                } else {
                    Check::silent(end)
                }],
            });
        }
    }

    // The minimum event rate: far above every factor, with traffic just above and just below it.
    let high = &tiers[highest];
    let length = up(mins(high.long).min(60.0) + hold + 10.0, step);
    let burn = high.factor * 1.5;
    for (traffic, fires) in [(1.01, true), (0.99, false)] {
        let stages = vec![Stage {
            minutes: length,
            traffic: Traffic::OfMinimum(traffic),
            burn,
        }];
        out.push(Scenario {
            name: format!(
                "{severity}, minimum event rate: {}: {}",
                Stage::describe(&stages),
                if fires { "fires" } else { "silent" }
            ),
            stages,
            checks: vec![if fires {
                Check::fires(length, None)
            } else {
                Check::silent(length)
            }],
        });
    }

    // The short window clears the alert: a burst well above the highest factor stops; once the
    // short window has no errors the alert is gone while the long window is still above.
    if by_factor.len() > 1 {
        let burn = high.factor * 1.5;
        let burst = up(mins(high.long) + hold + 10.0, step);
        let after = up(mins(high.short) + 5.0, step);
        let fits = by_factor[1..]
            .iter()
            .map(|&j| &tiers[j])
            .all(|j| burn * burst as f64 / (0.9 * j.factor) <= mins(j.long));
        if fits {
            let total = by_factor[1..]
                .iter()
                .map(|&j| burn * burst as f64 / (0.9 * tiers[j].factor))
                .fold(0.0f64, f64::max);
            let quiet = up((total - (burst + after) as f64).max(0.0), step);
            let stages = vec![
                Stage::new(quiet, 0.0),
                Stage::new(burst, burn),
                Stage::new(after, 0.0),
            ];
            out.push(Scenario {
                name: format!(
                    "{severity}, {} clears with its short window: {}: fires, then silent",
                    tier_text(high),
                    Stage::describe(&stages)
                ),
                checks: vec![
                    Check::fires(quiet + burst, Some(highest)),
                    Check {
                        at: quiet + burst + after,
                        fires: false,
                        only_tier: None,
                        long_over: Some(highest),
                    },
                ],
                stages,
            });
        }
    }
    Ok(out)
}

/// Expected firing alerts of an SLO's burn-rate alert name at `t`.
fn expected_burn_alerts(
    slo: &Slo,
    model: &Model,
    t: u64,
    annotations: &BTreeMap<(String, String), BTreeMap<String, String>>,
) -> Vec<ExpAlert> {
    SeverityName::ALL
        .iter()
        .filter(|&&s| model.firing(t, s))
        .map(|s| ExpAlert {
            exp_labels: BTreeMap::from([
                ("severity".to_owned(), s.to_string()),
                ("slo".to_owned(), slo.name.clone()),
            ]),
            exp_annotations: annotations[&(slo.alert.clone(), s.to_string())].clone(),
        })
        .collect()
}

fn annotations_by_alert(spec: &Spec) -> BTreeMap<(String, String), BTreeMap<String, String>> {
    rules::rule_file(spec)
        .groups
        .into_iter()
        .flat_map(|g| g.rules)
        .filter_map(|r| {
            let name = r.alert?;
            Some(((name, r.labels["severity"].clone()), r.annotations))
        })
        .collect()
}

fn burn_rate_tests(spec: &Spec, cases: &Cases, severity: SeverityName) -> Result<TestFile, String> {
    // Pages are tested minute by minute; tickets, with their day-long windows, every 5 minutes.
    let step = match severity {
        SeverityName::Page => 1,
        SeverityName::Ticket => 5,
    };
    let annotations = annotations_by_alert(spec);
    let tiers = &spec.burn_rate_alerts.get(severity).tiers;
    let mut tests = Vec::new();
    for scenario in scenarios(spec, severity, step)? {
        let mut input_series = Vec::new();
        let mut alert_rule_test = Vec::new();
        for slo in &spec.slos {
            let phases: Vec<Phase> = scenario.stages.iter().map(|s| s.phase(slo, 1.0)).collect();
            input_series.extend(slo_series(spec, slo, &cases.slo_series[&slo.name], &phases));
            let model = Model::new(spec, slo, &phases, minutes(step));
            for check in &scenario.checks {
                let wrong = |what: String| {
                    format!(
                        "scenario {:?} at {} for {}: {what}; adjust slo/src/promtests.rs",
                        scenario.name,
                        minutes(check.at),
                        slo.name
                    )
                };
                if model.firing(check.at, severity) != check.fires {
                    return Err(wrong(format!(
                        "the model says the {severity} alert {} fire",
                        if check.fires { "does not" } else { "does" }
                    )));
                }
                if let Some(i) = check.only_tier {
                    for (j, tier) in tiers.iter().enumerate() {
                        if model.tier_holds(check.at, tier) != (i == j) {
                            return Err(wrong(format!(
                                "the {} {}",
                                tier_text(tier),
                                if i == j { "does not hold" } else { "holds too" }
                            )));
                        }
                    }
                }
                if let Some(i) = check.long_over {
                    let tier = &tiers[i];
                    if !model
                        .burn(check.at, tier.long)
                        .is_some_and(|b| b > tier.factor)
                    {
                        return Err(wrong(format!(
                            "the long window of the {} is not above its factor",
                            tier_text(tier)
                        )));
                    }
                }
                alert_rule_test.push(AlertTest {
                    eval_time: minutes(check.at),
                    alertname: slo.alert.clone(),
                    exp_alerts: expected_burn_alerts(slo, &model, check.at, &annotations),
                });
            }
        }
        tests.push(TestGroup {
            name: scenario.name,
            interval: minutes(1),
            input_series,
            alert_rule_test,
            promql_expr_test: Vec::new(),
        });
    }
    Ok(TestFile {
        rule_files: vec!["../flowforge-rules.yaml".into()],
        evaluation_interval: minutes(step),
        tests,
    })
}

fn service_alert_tests(spec: &Spec, cases: &Cases) -> TestFile {
    let rules: BTreeMap<String, rules::Rule> = rules::rule_file(spec)
        .groups
        .into_iter()
        .flat_map(|g| g.rules)
        .filter_map(|r| Some((r.alert.clone()?, r)))
        .collect();
    let tests = cases
        .alert_cases
        .iter()
        .map(|case: &AlertCase| {
            let rule = &rules[&case.alert];
            let exp_alerts = case
                .expect
                .iter()
                .map(|labels| {
                    let mut labels = labels.clone();
                    labels.extend(rule.labels.clone());
                    ExpAlert {
                        exp_annotations: rule
                            .annotations
                            .iter()
                            .map(|(k, v)| (k.clone(), expand_annotation(v, &labels)))
                            .collect(),
                        exp_labels: labels,
                    }
                })
                .collect();
            TestGroup {
                name: format!(
                    "{}: {}: {}",
                    case.alert,
                    case.name,
                    if case.expect.is_empty() {
                        "silent"
                    } else {
                        "fires"
                    }
                ),
                interval: minutes(1),
                input_series: case
                    .series
                    .iter()
                    .map(|(series, values)| InputSeries {
                        series: spec.expand(series, None).expect("cases were validated"),
                        values: values.clone(),
                    })
                    .collect(),
                alert_rule_test: vec![AlertTest {
                    eval_time: case.eval_time,
                    alertname: case.alert.clone(),
                    exp_alerts,
                }],
                promql_expr_test: Vec::new(),
            }
        })
        .collect();
    TestFile {
        rule_files: vec!["../flowforge-rules.yaml".into()],
        evaluation_interval: minutes(1),
        tests,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn spec() -> Spec {
        Spec::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("slos.yaml")).unwrap()
    }

    #[test]
    fn series_segments_continue_exactly_where_the_last_one_ended() {
        let spec = spec();
        let slo = &spec.slos[0];
        let share = SeriesShare {
            series: "x".into(),
            good: 0.0,
            bad: 1.0,
            extra: 0.0,
        };
        let phases = [
            Phase {
                minutes: 3,
                events_per_sec: 1.0,
                burn: 100.0,
            },
            Phase {
                minutes: 2,
                events_per_sec: 1.0,
                burn: 0.0,
            },
        ];
        // 60 events a minute, 10% bad: 6 a minute, then none.
        let s = slo_series(&spec, slo, &[share], &phases);
        assert_eq!(s[0].values, "0+6x3 18+0x1");
    }

    #[test]
    fn page_scenarios_show_each_tier_and_the_guard() {
        let spec = spec();
        let names: Vec<String> = scenarios(&spec, SeverityName::Page, 1)
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names.len(), 7, "{names:#?}");
        assert!(names
            .iter()
            .any(|n| n.contains("1h/5m tier (14.4x) on its own")));
        assert!(names
            .iter()
            .any(|n| n.contains("clears with its short window")));
    }
}
