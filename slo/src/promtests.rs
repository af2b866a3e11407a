//! The generated promtool unit tests (`alerts/tests/*.yaml`).
//!
//! - recording rules: one stream of events with known phases for every SLO, and the value of
//!   every recorded series at the end, computed by [`crate::model`]. The phases change inside
//!   every window, so that each window's values differ from every other window's and from those
//!   of windows a little shorter or longer (the generator checks it); a minute-by-minute test
//!   covers the end of the stream, a coarse one (rules every 6 hours) all of it, for the longest
//!   window and the error budget;
//! - burn-rate alerts, per severity: for every tier a case just above its factor that fires and
//!   one just below that stays silent (with the other tiers kept below theirs), the
//!   minimum-event-rate guard just above and just below, and for every tier a burst that it
//!   fires on alone and that its short window clears; every scenario that fires is also checked
//!   one evaluation before its alert first fires (silent: `for` has not elapsed) and when it
//!   does. The generator checks, with the model, that these checks tell the rules from altered
//!   ones (another short or long window for a tier, another `for`), and that no check sits on a
//!   threshold;
//! - service alerts: the cases of `slo/cases.yaml`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cases::{AlertCase, Cases, SeriesShare, EVALUATION_SECS};
use crate::duration::Duration;
use crate::model::{per_minute, AlertRule, Model, Phase};
use crate::rules::{self, Series, BUDGET_REMAINING, GENERATED_MARKER, OBJECTIVE};
use crate::spec::{expand_annotation, fmt_num, round12, SeverityName, Slo, Spec, Tier};

/// The generated test files, relative to the repository root.
pub const RECORDING_TESTS: &str = "alerts/tests/slo-recording-rules.yaml";
pub const SERVICE_ALERT_TESTS: &str = "alerts/tests/service-alerts.yaml";

/// The recording-rule tests of the longest window (and the error budget).
pub fn slo_window_tests_path(longest: Duration) -> String {
    format!("alerts/tests/slo-recording-rules-{longest}.yaml")
}

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
    let mut out = Vec::new();
    let mut recording = recording_tests(spec, cases)?.into_iter();
    let (path, fine) = recording.next().expect("two recording test files");
    out.push((
        path,
        render(
            &fine,
            "Recording rules: every SLO gets a known stream of events (phases of constant traffic\n\
             # and burn rate, in the group's name) that tells every window from every other one\n\
             # and from windows a little shorter or longer; the expected values are computed by\n\
             # slo/src/model.rs, independently of PromQL, and compared after rounding.",
        ),
    ));
    let (path, coarse) = recording.next().expect("two recording test files");
    out.push((
        path,
        render(
            &coarse,
            "Recording rules over the longest window: the stream of events of\n\
             # slo-recording-rules.yaml, from a sixteenth of the window before the window's start;\n\
             # rules evaluated every 6 hours. The window's values differ from those of any whole\n\
             # number of days but its own. Expected values from slo/src/model.rs.",
        ),
    ));
    for severity in SeverityName::ALL {
        out.push((
            burn_rate_tests_path(severity),
            render(
                &burn_rate_tests(spec, cases, severity)?,
                "Burn-rate alerts: each group drives every SLO through the same scenario (its\n\
                 # name says what it shows; a group that fires is also checked one evaluation\n\
                 # before its alert first fires, silent as `for` has not elapsed, and when it\n\
                 # does); the expected alerts come from slo/src/model.rs, which also checks that\n\
                 # each scenario shows what its name says and that the checks tell the rules from\n\
                 # ones with another window or `for`.",
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
    /// This many times the normal test traffic: 11 × the minimum event rate, 11 dividing no
    /// window's minutes, so that the event rate over a window still filling up never reaches the
    /// minimum exactly at an evaluation.
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
            Traffic::Normal(x) => x * 11.0 * slo.min_event_rate,
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

/// `round(expr * scale)` and its expected value. A value too close to a rounding edge to compare
/// reliably is compared with one more digit (up to two more); refused if still too close.
fn rounded(expr: String, scale: f64, value: f64, at: u64, slo: &str) -> Result<ExprTest, String> {
    let mut scale = scale;
    for _ in 0..3 {
        let scaled = value * scale;
        if ((scaled.fract()).abs() - 0.5).abs() >= 0.02 {
            return Ok(ExprTest {
                expr: format!("round({expr} * {})", fmt_num(scale)),
                eval_time: minutes(at),
                exp_samples: vec![ExpSample {
                    labels: format!("{{slo=\"{slo}\"}}"),
                    value: scaled.round(),
                }],
            });
        }
        scale *= 10.0;
    }
    Err(format!(
        "{expr} for {slo} is {value}, too close to a rounding edge: change the recording scenario"
    ))
}

/// Rounds to two significant digits.
fn two_digits(x: f64) -> f64 {
    let magnitude = 10f64.powi(x.abs().log10().floor() as i32 - 1);
    (x / magnitude).round() * magnitude
}

/// The recording scenario, oldest phase first: burn and traffic change halfway into the shortest
/// window and halfway between each two windows (rounded up to a minute), and the scenario starts
/// a sixteenth of the longest window (rounded up to a multiple of `step`) before its end. So
/// every window's start falls strictly inside a phase; and as each phase burns more (about 1.6
/// times) and carries less traffic than the one before it, every window has a burn rate and an
/// event rate of its own, and so has any window a little shorter or longer.
fn recording_stages(spec: &Spec, step: u64) -> Vec<Stage> {
    let windows: Vec<u64> = spec.windows.iter().map(|w| w.minutes()).collect();
    // Where each phase starts, in minutes before the end, newest first.
    let mut starts = vec![windows[0].div_ceil(2)];
    starts.extend(
        windows
            .windows(2)
            .map(|pair| (pair[0] + pair[1]).div_ceil(2)),
    );
    starts.push(up(windows[windows.len() - 1] as f64 * 17.0 / 16.0, step));
    let mut stages = Vec::new();
    let mut later = 0;
    for (p, &start) in starts.iter().enumerate() {
        stages.push(Stage {
            minutes: start - later,
            traffic: Traffic::Normal(round12(0.6 + 0.2 * p as f64)),
            burn: two_digits(8.0 * 0.62f64.powi(p as i32)),
        });
        later = start;
    }
    stages.reverse();
    stages
}

/// The last `span` minutes of a run of stages.
fn tail(stages: &[Stage], span: u64) -> Vec<Stage> {
    let mut out = Vec::new();
    let mut left = span;
    for stage in stages.iter().rev() {
        if left == 0 {
            break;
        }
        let minutes = stage.minutes.min(left);
        out.push(Stage { minutes, ..*stage });
        left -= minutes;
    }
    out.reverse();
    out
}

/// Whether two expected values tell a wrong window from the right one: at least one unit apart
/// at the precision the tests compare (both rates are compared × 10^4).
fn apart(a: f64, b: f64) -> bool {
    (a - b).abs() * 1e4 >= 1.0
}

/// The recorded (burn rate, event rate) of `slo` over `window` at `t`, as a rule like the one of
/// `like` would record it.
fn burn_and_events(
    model: &Model,
    slo: &Slo,
    t: u64,
    window: Duration,
    like: Duration,
) -> Option<(f64, f64)> {
    model
        .recorded_like(t, window, like)
        .map(|r| (r.error_ratio() / slo.budget(), r.events))
}

/// Checks that the expected values `a` of `window` differ from the values `b` of `other`: both
/// the burn rate and the event rate, at the precision of the tests.
fn tells_apart(
    slo: &Slo,
    window: Duration,
    other: Duration,
    a: Option<(f64, f64)>,
    b: Option<(f64, f64)>,
) -> Result<(), String> {
    match (a, b) {
        (Some(a), Some(b)) if apart(a.0, b.0) && apart(a.1, b.1) => Ok(()),
        _ => Err(format!(
            "the recording scenario does not tell the {window} window from {other} for {} \
             (burn rate and event rate {a:?} against {b:?}): change it in slo/src/promtests.rs",
            slo.name
        )),
    }
}

/// Windows a little shorter and a little longer than `window` (a sixth), in whole minutes.
fn neighbours(window: Duration) -> [Duration; 2] {
    let m = window.minutes();
    [
        minutes((m * 5 / 6).min(m - 1)),
        minutes((m * 6 / 5).max(m + 1)),
    ]
}

/// The recording-rule tests: a scenario of a minute's resolution, rules evaluated every 5
/// minutes, that covers every window but the longest (which holds the whole scenario), and one
/// as long as the longest window and a sixteenth, with the rules evaluated every 6 hours, for the
/// longest window and the error budget.
fn recording_tests(spec: &Spec, cases: &Cases) -> Result<Vec<(String, TestFile)>, String> {
    let coarse_step = 360;
    recording_tests_of(
        spec,
        cases,
        &recording_stages(spec, coarse_step),
        coarse_step,
    )
}

/// The recording-rule tests of a run of stages (oldest first, as long as a multiple of
/// `coarse_step` minutes).
fn recording_tests_of(
    spec: &Spec,
    cases: &Cases,
    stages: &[Stage],
    coarse_step: u64,
) -> Result<Vec<(String, TestFile)>, String> {
    let step = 5;
    let longest = spec.windows[spec.windows.len() - 1];
    let second = spec.windows[spec.windows.len().saturating_sub(2)];
    let fine = tail(stages, up(second.minutes() as f64 * 17.0 / 16.0, step));
    let end: u64 = fine.iter().map(|s| s.minutes).sum();
    let coarse_end: u64 = stages.iter().map(|s| s.minutes).sum();
    let mut fine_group = TestGroup {
        name: String::new(),
        interval: minutes(1),
        input_series: Vec::new(),
        alert_rule_test: Vec::new(),
        promql_expr_test: Vec::new(),
    };
    let mut coarse_group = TestGroup {
        name: String::new(),
        interval: minutes(1),
        input_series: Vec::new(),
        alert_rule_test: Vec::new(),
        promql_expr_test: Vec::new(),
    };
    let mut scales = Vec::new();
    for (i, slo) in spec.slos.iter().enumerate() {
        // Each SLO burns at a different multiple, so that a rule reading another SLO's series
        // would be caught.
        let scale = 1.0 + 0.1 * i as f64;
        scales.push(format!("{} x{}", slo.name, fmt_num(scale)));
        let name = slo.name.as_str();
        let shares = &cases.slo_series[&slo.name];

        let phases: Vec<Phase> = fine.iter().map(|s| s.phase(slo, scale)).collect();
        fine_group
            .input_series
            .extend(slo_series(spec, slo, shares, &phases));
        let model = Model::new(spec, slo, &phases, minutes(step));
        let tests = &mut fine_group.promql_expr_test;
        for (k, &w) in spec.windows.iter().enumerate() {
            // Every window's values differ from every other window's, and from what its rule
            // would record over a window a little shorter or longer (but the longest window's:
            // it holds the whole scenario, the other test pins it).
            let value = |other, like| burn_and_events(&model, slo, end, other, like);
            for &other in &spec.windows[k + 1..] {
                tells_apart(slo, w, other, value(w, w), value(other, other))?;
            }
            if w.minutes() < end {
                for other in neighbours(w) {
                    tells_apart(slo, w, other, value(w, w), value(other, w))?;
                }
            }
            let r = model
                .recorded(end, w)
                .ok_or_else(|| format!("no {w} rate at the end of the recording scenario"))?;
            let burn = r.error_ratio() / slo.budget();
            tests.push(rounded(Series::BurnRate.of(name, w), 1e4, burn, end, name)?);
            tests.push(rounded(
                Series::ErrorRatio.of(name, w),
                1e6,
                r.error_ratio(),
                end,
                name,
            )?);
            tests.push(rounded(
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
        tests.push(rounded(
            format!("{BUDGET_REMAINING}{{slo=\"{name}\"}}"),
            1e4,
            1.0 - burn,
            end,
            name,
        )?);
        tests.push(ExprTest {
            expr: format!("{OBJECTIVE}{{slo=\"{name}\"}}"),
            eval_time: minutes(end),
            exp_samples: vec![ExpSample {
                labels: format!("{OBJECTIVE}{{slo=\"{name}\"}}"),
                value: slo.objective_ratio(),
            }],
        });

        // The longest window, and the SLO window's budget, over the whole scenario: they differ
        // from every whole number of days but their own, and from their neighbours.
        let phases: Vec<Phase> = stages.iter().map(|s| s.phase(slo, scale)).collect();
        coarse_group
            .input_series
            .extend(slo_series(spec, slo, shares, &phases));
        let model = Model::new(spec, slo, &phases, minutes(coarse_step));
        let tests = &mut coarse_group.promql_expr_test;
        let mut checked = vec![longest];
        if spec.window != longest {
            checked.push(spec.window);
        }
        for &w in &checked {
            let value = |other, like| burn_and_events(&model, slo, coarse_end, other, like);
            let days = (1..=longest.minutes() * 4 / 3 / 1440).map(|d| minutes(d * 1440));
            for other in days.chain(neighbours(w)) {
                if other != w {
                    tells_apart(slo, w, other, value(w, w), value(other, w))?;
                }
            }
            for &other in &spec.windows {
                if other != w {
                    tells_apart(slo, w, other, value(w, w), value(other, other))?;
                }
            }
        }
        let r = model
            .recorded(coarse_end, longest)
            .ok_or_else(|| format!("no {longest} rate at the end of the recording scenario"))?;
        tests.push(rounded(
            Series::BurnRate.of(name, longest),
            1e4,
            r.error_ratio() / slo.budget(),
            coarse_end,
            name,
        )?);
        tests.push(rounded(
            Series::ErrorRatio.of(name, longest),
            1e6,
            r.error_ratio(),
            coarse_end,
            name,
        )?);
        tests.push(rounded(
            Series::Events.of(name, longest),
            1e4,
            r.events,
            coarse_end,
            name,
        )?);
        let burn = model
            .burn(coarse_end, spec.window)
            .ok_or("no burn rate over the SLO window")?;
        tests.push(rounded(
            format!("{BUDGET_REMAINING}{{slo=\"{name}\"}}"),
            1e4,
            1.0 - burn,
            coarse_end,
            name,
        )?);
    }
    fine_group.name = format!(
        "every recorded series after {}; burn multiplied per SLO: {}",
        Stage::describe(&fine),
        scales.join(", ")
    );
    coarse_group.name = format!(
        "the {longest} window and the error budget after {}; burn multiplied per SLO: {}",
        Stage::describe(stages),
        scales.join(", ")
    );
    Ok(vec![
        (
            RECORDING_TESTS.to_owned(),
            TestFile {
                rule_files: vec!["../flowforge-rules.yaml".into()],
                evaluation_interval: minutes(step),
                tests: vec![fine_group],
            },
        ),
        (
            slo_window_tests_path(longest),
            TestFile {
                rule_files: vec!["../flowforge-rules.yaml".into()],
                evaluation_interval: minutes(coarse_step),
                tests: vec![coarse_group],
            },
        ),
    ])
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
    let mut out = Vec::new();

    // The lowest tier, with steady errors just above and just below its factor. An hour of
    // data is enough: a window that is not full yet holds the ratio of what exists (the window
    // lengths themselves are proven by the recording-rule tests, the isolated tiers and the
    // clearing scenarios below).
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

    // Every tier clears with its short window: see `clearing_scenario`.
    for i in 0..tiers.len() {
        out.push(clearing_scenario(spec, severity, i, step)?);
    }
    Ok(out)
}

/// How far from a factor (relatively) a burn rate must be for a clearing scenario to count it
/// above or below.
const MARGIN: f64 = 0.02;

/// Traffic of the busy stretch and of the quiet night of a clearing scenario that needs them.
const BUSY: f64 = 10.0;
const NIGHT: f64 = 0.1;

fn mins(d: Duration) -> f64 {
    d.minutes() as f64
}

/// Tier `i` on its own, and its short window clearing it: a burst fires the alert through this
/// tier alone; once the errors stop, the alert still fires while the short window is above the
/// factor (every shorter window already below), and is silent as soon as the short window falls
/// below while the long window and the next longer window are still above. So the short window
/// can be neither a shorter nor a longer one.
///
/// The lower tiers are kept below their factors by a quiet stretch before the burst or, where
/// that would not fit in their long windows, by busy traffic without errors before this tier's
/// long window and a quiet night (a tenth of the traffic) inside it.
fn clearing_scenario(
    spec: &Spec,
    severity: SeverityName,
    i: usize,
    step: u64,
) -> Result<Scenario, String> {
    let settings = spec.burn_rate_alerts.get(severity);
    let tiers = &settings.tiers;
    let tier = tiers[i];
    let hold = settings.hold.minutes() as f64;
    // Well above the factor, and below any higher one (1.55: windows filling up or emptying do
    // not cross the factor exactly at an evaluation, as they would at 1.5).
    let higher = tiers
        .iter()
        .map(|t| t.factor)
        .filter(|&f| f > tier.factor)
        .fold(f64::INFINITY, f64::min);
    let burn = (tier.factor * 1.55).min((tier.factor + higher) / 2.0);
    let lower: Vec<Tier> = tiers
        .iter()
        .copied()
        .filter(|t| t.factor < tier.factor)
        .collect();
    // What the lower tiers' long windows must hold (in minutes of normal traffic) to stay at 90%
    // of their factors.
    let diluted = |burst: u64| {
        lower
            .iter()
            .map(|j| (burn * burst as f64 / (0.9 * j.factor), mins(j.long)))
            .collect::<Vec<_>>()
    };
    let mut plans: Vec<Vec<Stage>> = Vec::new();
    if lower.is_empty() {
        // An hour of data is enough for the long window (a window not full yet holds the
        // ratio of what exists), but the short window must fill.
        let burst = up(
            mins(tier.long).min(60.0).max(mins(tier.short)) + hold + 10.0,
            step,
        );
        plans.push(vec![Stage::new(burst, burn)]);
    } else {
        let burst = up(mins(tier.long) + hold + 10.0, step);
        let needed = diluted(burst);
        if needed.iter().all(|&(n, long)| n <= long) {
            let total = needed.iter().map(|&(n, _)| n).fold(0.0f64, f64::max);
            let quiet = up((total - burst as f64).max(0.0), step);
            plans.push(vec![Stage::new(quiet, 0.0), Stage::new(burst, burn)]);
        }
        // The busy stretch must be out of the long window from `for` before the errors stop.
        let long = tier.long.minutes();
        let mut burst = up(mins(tier.short) + hold + 10.0, step);
        while burst <= long {
            let night = up((long - burst) as f64 + hold + 10.0, step);
            let total = diluted(burst)
                .iter()
                .map(|&(n, _)| n)
                .fold(0.0f64, f64::max);
            let busy = up(
                ((total - NIGHT * night as f64 - burst as f64) / BUSY).max(step as f64),
                step,
            );
            let mut stages = vec![Stage {
                minutes: busy,
                traffic: Traffic::Normal(BUSY),
                burn: 0.0,
            }];
            if night > 0 {
                stages.push(Stage {
                    minutes: night,
                    traffic: Traffic::Normal(NIGHT),
                    burn: 0.0,
                });
            }
            stages.push(Stage::new(burst, burn));
            plans.push(stages);
            burst += up(mins(tier.short) / 4.0, step);
        }
    }
    plans
        .into_iter()
        .find_map(|stages| clearing_checks(spec, severity, i, stages, step))
        .ok_or_else(|| {
            format!(
                "cannot build a test where the {} clears with its short window: adjust slo/src/promtests.rs",
                tier_text(&tier)
            )
        })
}

/// The checks of a clearing scenario whose burst is the last of `stages`, if it shows all it
/// must (see [`clearing_scenario`]); the scenario then ends at the last check.
fn clearing_checks(
    spec: &Spec,
    severity: SeverityName,
    i: usize,
    mut stages: Vec<Stage>,
    step: u64,
) -> Option<Scenario> {
    let tiers = &spec.burn_rate_alerts.get(severity).tiers;
    let tier = tiers[i];
    let slo = &spec.slos[0];
    let stop: u64 = stages.iter().map(|s| s.minutes).sum();
    // Long enough for the short window to empty.
    stages.push(Stage::new(up(mins(tier.short), step) + step, 0.0));
    let end: u64 = stages.iter().map(|s| s.minutes).sum();
    let phases: Vec<Phase> = stages.iter().map(|s| s.phase(slo, 1.0)).collect();
    let model = Model::new(spec, slo, &phases, minutes(step));
    let firing = model.firing_series(&model.rule(severity), end);
    let fires = |t: u64| firing[(t / step) as usize];
    let above = |t, w| {
        model
            .burn(t, w)
            .is_some_and(|b| b > tier.factor * (1.0 + MARGIN))
    };
    let below = |t, w| {
        model
            .burn(t, w)
            .is_none_or(|b| b < tier.factor * (1.0 - MARGIN))
    };
    let alone = |t| {
        tiers
            .iter()
            .enumerate()
            .all(|(j, x)| model.tier_holds(t, x) == (i == j))
    };
    if !(fires(stop) && alone(stop)) {
        return None;
    }
    let shorter: Vec<Duration> = spec
        .windows
        .iter()
        .copied()
        .filter(|&w| w < tier.short)
        .collect();
    let next_longer = spec.windows.iter().copied().find(|&w| w > tier.short);
    let mut still = None;
    let mut cleared = None;
    let mut t = stop + step;
    while t <= end {
        if below(t, tier.short) {
            let ok = !fires(t)
                && tiers.iter().all(|x| !model.tier_holds(t, x))
                && above(t, tier.long)
                && next_longer.is_none_or(|w| above(t, w))
                && model
                    .recorded(t, tier.long)
                    .is_some_and(|r| r.events > slo.min_event_rate * (1.0 + MARGIN));
            cleared = ok.then_some(t);
            break;
        }
        if still.is_none()
            && !shorter.is_empty()
            && above(t, tier.short)
            && shorter.iter().all(|&w| below(t, w))
            && fires(t)
            && alone(t)
        {
            still = Some(t);
        }
        t += step;
    }
    let cleared = cleared?;
    if still.is_none() && !shorter.is_empty() {
        return None;
    }
    stages.last_mut().expect("the after stage").minutes = cleared - stop;
    let mut checks = vec![Check::fires(stop, Some(i))];
    let mut name = format!(
        "{severity}, {} clears with its short window: {}: fires when the errors stop",
        tier_text(&tier),
        Stage::describe(&stages)
    );
    if let Some(at) = still {
        checks.push(Check::fires(at, Some(i)));
        name.push_str(&format!(
            "; still fires {} later (the {} window above, shorter ones below)",
            minutes(at - stop),
            tier.short
        ));
    }
    checks.push(Check {
        at: cleared,
        fires: false,
        only_tier: None,
        long_over: Some(i),
    });
    name.push_str(&format!(
        "; silent {} later (the {} window below, the {}{} window above)",
        minutes(cleared - stop),
        tier.short,
        next_longer
            .filter(|&w| w != tier.long)
            .map(|w| format!("{w} and the "))
            .unwrap_or_default(),
        tier.long
    ));
    Some(Scenario {
        name,
        stages,
        checks,
    })
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

/// An alteration of a burn-rate alert, as a mutation of the rule file would make it.
#[derive(Debug, Clone, Copy)]
enum Alteration {
    /// Tier `.0` reads its short window over another window.
    Short(usize, Duration),
    /// Tier `.0` reads its long window (and the event rate) over another window.
    Long(usize, Duration),
    /// Another `for`, in minutes.
    Hold(u64),
    /// Every factor multiplied by this.
    Factors(f64),
    /// The minimum event rate multiplied by this.
    MinEventRate(f64),
}

impl Alteration {
    fn apply(self, rule: &AlertRule) -> AlertRule {
        let mut rule = rule.clone();
        match self {
            Alteration::Short(i, w) => rule.tiers[i].short = w,
            Alteration::Long(i, w) => rule.tiers[i].long = w,
            Alteration::Hold(h) => rule.hold = h,
            Alteration::Factors(x) => rule.tiers.iter_mut().for_each(|t| t.factor *= x),
            Alteration::MinEventRate(x) => rule.min_event_rate *= x,
        }
        rule
    }

    fn describe(self, tiers: &[Tier]) -> String {
        match self {
            Alteration::Short(i, w) => {
                format!("the {} with a {w} short window", tier_text(&tiers[i]))
            }
            Alteration::Long(i, w) => {
                format!("the {} with a {w} long window", tier_text(&tiers[i]))
            }
            Alteration::Hold(h) => format!("for: {}", minutes(h)),
            Alteration::Factors(x) => format!("every factor x{x}"),
            Alteration::MinEventRate(x) => format!("the minimum event rate x{x}"),
        }
    }
}

/// The alterations the tests of a severity must catch: any other short window for a tier; any
/// other long window, but where both are longer than every scenario (`longest`, minutes: they
/// hold the same ratio); and any shorter `for` (or one evaluation longer).
fn must_catch(spec: &Spec, severity: SeverityName, step: u64, longest: u64) -> Vec<Alteration> {
    let settings = spec.burn_rate_alerts.get(severity);
    let mut out = Vec::new();
    for (i, tier) in settings.tiers.iter().enumerate() {
        for &w in &spec.windows {
            if w != tier.short {
                out.push(Alteration::Short(i, w));
            }
            if w != tier.long && w.min(tier.long).minutes() < longest {
                out.push(Alteration::Long(i, w));
            }
        }
    }
    let hold = settings.hold.minutes();
    out.extend((0..hold).step_by(step as usize).map(Alteration::Hold));
    out.push(Alteration::Hold(hold + step));
    out
}

/// Alterations that must change nothing: no check may sit on a threshold, where PromQL's
/// rounding could decide differently from the model's.
const NO_CHANGE: [Alteration; 4] = [
    Alteration::Factors(1.0 + 1e-9),
    Alteration::Factors(1.0 - 1e-9),
    Alteration::MinEventRate(1.0 + 1e-9),
    Alteration::MinEventRate(1.0 - 1e-9),
];

/// Adds to a scenario that fires the evaluation before its alert first fires (the condition
/// holds, `for` has not elapsed: silent) and the one where it does.
fn first_firing_checks(spec: &Spec, severity: SeverityName, step: u64, scenario: &mut Scenario) {
    let Some(first_check) = scenario
        .checks
        .iter()
        .filter(|c| c.fires)
        .map(|c| c.at)
        .min()
    else {
        return;
    };
    let slo = &spec.slos[0];
    let phases: Vec<Phase> = scenario.stages.iter().map(|s| s.phase(slo, 1.0)).collect();
    let model = Model::new(spec, slo, &phases, minutes(step));
    let firing = model.firing_series(&model.rule(severity), first_check);
    let Some(k) = firing.iter().position(|&f| f) else {
        return;
    };
    let at = k as u64 * step;
    let mut add = vec![Check::fires(at, None)];
    if spec.burn_rate_alerts.get(severity).hold.minutes() > 0 {
        add.push(Check::silent(at - step));
    }
    for check in add {
        if !scenario.checks.iter().any(|c| c.at == check.at) {
            scenario.checks.push(check);
        }
    }
    scenario.checks.sort_by_key(|c| c.at);
}

/// The evaluation interval of a severity's tests, in minutes: pages are tested minute by
/// minute; tickets, with their day-long windows, every 5 minutes.
fn burn_rate_step(severity: SeverityName) -> u64 {
    match severity {
        SeverityName::Page => 1,
        SeverityName::Ticket => 5,
    }
}

fn burn_rate_tests(spec: &Spec, cases: &Cases, severity: SeverityName) -> Result<TestFile, String> {
    let scenarios = scenarios(spec, severity, burn_rate_step(severity))?;
    burn_rate_tests_of(spec, cases, severity, scenarios)
}

/// The tests of a severity's scenarios; fails if a scenario does not show what it says, or if
/// the scenarios together do not catch every alteration of [`must_catch`].
fn burn_rate_tests_of(
    spec: &Spec,
    cases: &Cases,
    severity: SeverityName,
    scenarios: Vec<Scenario>,
) -> Result<TestFile, String> {
    let step = burn_rate_step(severity);
    let annotations = annotations_by_alert(spec);
    let tiers = &spec.burn_rate_alerts.get(severity).tiers;
    let longest = scenarios
        .iter()
        .map(|s| s.stages.iter().map(|s| s.minutes).sum())
        .max()
        .unwrap_or(0);
    let catch = must_catch(spec, severity, step, longest);
    // Which alterations some check tells from the real rule, per SLO.
    let mut caught = vec![vec![false; spec.slos.len()]; catch.len()];
    let mut tests = Vec::new();
    for mut scenario in scenarios {
        first_firing_checks(spec, severity, step, &mut scenario);
        let mut input_series = Vec::new();
        let mut alert_rule_test = Vec::new();
        let last = scenario.checks.iter().map(|c| c.at).max().unwrap_or(0);
        for (s, slo) in spec.slos.iter().enumerate() {
            let phases: Vec<Phase> = scenario.stages.iter().map(|s| s.phase(slo, 1.0)).collect();
            input_series.extend(slo_series(spec, slo, &cases.slo_series[&slo.name], &phases));
            let model = Model::new(spec, slo, &phases, minutes(step));
            let rule = model.rule(severity);
            let altered: Vec<Vec<bool>> = catch
                .iter()
                .chain(&NO_CHANGE)
                .map(|a| model.firing_series(&a.apply(&rule), last))
                .collect();
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
                let k = (check.at / step) as usize;
                for (n, series) in altered[..catch.len()].iter().enumerate() {
                    if series[k] != check.fires {
                        caught[n][s] = true;
                    }
                }
                for (a, series) in NO_CHANGE.iter().zip(&altered[catch.len()..]) {
                    if series[k] != check.fires {
                        return Err(wrong(format!(
                            "the check is on a threshold: with {} the alert {}",
                            a.describe(tiers),
                            if check.fires { "is silent" } else { "fires" }
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
    for (a, by_slo) in catch.iter().zip(&caught) {
        if let Some(s) = by_slo.iter().position(|&c| !c) {
            return Err(format!(
                "no {severity} test tells the alert of {} from one with {}: adjust slo/src/promtests.rs",
                spec.slos[s].name,
                a.describe(tiers)
            ));
        }
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
        evaluation_interval: Duration::from_secs(EVALUATION_SECS),
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

    fn cases(spec: &Spec) -> Cases {
        Cases::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("cases.yaml"),
            spec,
        )
        .unwrap()
    }

    #[test]
    fn page_scenarios_show_each_tier_and_the_guard() {
        let spec = spec();
        let names: Vec<String> = scenarios(&spec, SeverityName::Page, 1)
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names.len(), 8, "{names:#?}");
        assert!(names
            .iter()
            .any(|n| n.contains("1h/5m tier (14.4x) on its own")));
    }

    #[test]
    fn every_tier_clears_with_its_short_window() {
        let spec = spec();
        for severity in SeverityName::ALL {
            let scenarios = scenarios(&spec, severity, burn_rate_step(severity)).unwrap();
            for tier in &spec.burn_rate_alerts.get(severity).tiers {
                let name = format!("{} clears with its short window", tier_text(tier));
                let scenario = scenarios
                    .iter()
                    .find(|s| s.name.contains(&name))
                    .unwrap_or_else(|| panic!("no scenario: {name}"));
                // Fires, (still fires,) then silent.
                let fires: Vec<bool> = scenario.checks.iter().map(|c| c.fires).collect();
                assert_eq!(fires.last(), Some(&false), "{}", scenario.name);
                assert!(fires[..fires.len() - 1].iter().all(|&f| f));
            }
        }
    }

    #[test]
    fn scenarios_that_fire_are_checked_just_before_and_when_they_first_fire() {
        let spec = spec();
        for severity in SeverityName::ALL {
            let step = burn_rate_step(severity);
            let hold = spec.burn_rate_alerts.get(severity).hold.minutes();
            for mut scenario in scenarios(&spec, severity, step).unwrap() {
                if !scenario.checks.iter().any(|c| c.fires) {
                    continue;
                }
                first_firing_checks(&spec, severity, step, &mut scenario);
                let first = scenario.checks.iter().find(|c| c.fires).unwrap().at;
                let before = scenario.checks.iter().find(|c| c.at == first - step);
                assert!(
                    before.is_some_and(|c| !c.fires),
                    "{}: no silent check at {}",
                    scenario.name,
                    minutes(first - step)
                );
                // The condition already held `for` before the first firing.
                let slo = &spec.slos[0];
                let phases: Vec<Phase> =
                    scenario.stages.iter().map(|s| s.phase(slo, 1.0)).collect();
                let model = Model::new(&spec, slo, &phases, minutes(step));
                assert!(model.condition(first - hold, severity), "{}", scenario.name);
                assert!(first < hold + step || !model.condition(first - hold - step, severity));
            }
        }
    }

    /// The generator's own mutation check bites: without the clearing scenarios, other short
    /// windows go unnoticed.
    #[test]
    fn tests_that_miss_another_short_window_are_refused() {
        let spec = spec();
        let cases = cases(&spec);
        for severity in SeverityName::ALL {
            let step = burn_rate_step(severity);
            let all = scenarios(&spec, severity, step).unwrap();
            burn_rate_tests_of(&spec, &cases, severity, all).unwrap();
            let some: Vec<Scenario> = scenarios(&spec, severity, step)
                .unwrap()
                .into_iter()
                .filter(|s| !s.name.contains("clears with its short window"))
                .collect();
            let err = burn_rate_tests_of(&spec, &cases, severity, some).unwrap_err();
            assert!(err.contains("short window"), "{err}");
        }
    }

    #[test]
    fn recording_scenario_tells_every_window_apart() {
        let spec = spec();
        let stages = recording_stages(&spec, 360);
        // A phase starts strictly inside every window.
        let mut before_end = 0;
        let mut starts = Vec::new();
        for stage in stages.iter().rev() {
            before_end += stage.minutes;
            starts.push(before_end);
        }
        for w in &spec.windows {
            let w = w.minutes();
            let previous = spec
                .windows
                .iter()
                .map(|x| x.minutes())
                .filter(|&x| x < w)
                .max()
                .unwrap_or(0);
            assert!(
                starts.iter().any(|&s| previous < s && s < w),
                "no phase starts inside the {w}-minute window: {starts:?}"
            );
        }
        // Later phases burn more.
        assert!(stages.windows(2).all(|p| p[0].burn < p[1].burn));
        recording_tests_of(&spec, &cases(&spec), &stages, 360).unwrap();
    }

    /// The scenario of old, whose last hour was constant: 5m, 30m and 1h recorded the same.
    #[test]
    fn a_recording_scenario_that_does_not_tell_windows_apart_is_refused() {
        let spec = spec();
        let stages = [
            Stage::new(43200, 0.5),
            Stage::new(1440, 2.0),
            Stage::new(150, 10.0),
            Stage::new(60, 40.0),
        ];
        let err = recording_tests_of(&spec, &cases(&spec), &stages, 5).unwrap_err();
        assert!(
            err.contains("does not tell the 5m window from 30m"),
            "{err}"
        );
    }
}
