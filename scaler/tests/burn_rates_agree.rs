//! The task-wait SLO computed both ways agrees over every window. One 31-day event history goes
//! through both paths:
//!
//! - the ledger: its per-minute rows go into a real database, and a real scaler publishes
//!   `flowforge_slo_burn_rate{slo="task-wait",window}` and
//!   `flowforge_slo_error_budget_remaining{slo="task-wait"}` from them. The test scrapes these
//!   from the scaler's `/metrics`. The ledger's writer only reads task rows as they start, so it
//!   cannot replay 31 days. The test inserts the rows the writer would have written instead;
//! - the recording rules: the same history becomes the scaler's two counters in a promtool unit
//!   test of alerts/flowforge-rules.yaml. It checks `flowforge_slo:burn_rate:rate<window>` and
//!   `flowforge_slo:error_budget_remaining:ratio` against the published figures.
//!
//! The history has a constant 1,000 task starts a minute in two queues. Its late share changes
//! in phases. Every window contains a phase boundary that the next shorter window does not, so
//! each window sees a different error ratio. No boundary is within 10 minutes of a window edge.
//!
//! How closely the figures must agree:
//! - windows up to 6h are `rate()` over the raw counters. The counters are sampled at whole
//!   minutes and Prometheus 2's range `[t - w, t]` includes both ends, so the rules count exactly
//!   the ledger's minutes `[t - w, t)`. They must agree to rounding;
//! - longer windows average the recorded 5m rates over `[t - w, t]`. The rules are evaluated
//!   every 5 minutes, so those 5m recordings tile the history. With steady traffic their average
//!   is the ratio of sums over `w + 5m`: the recording at `t - w` covers the five minutes before
//!   the window. The test allows exactly what those five minutes can change,
//!   `|share before - window's share| * 5m / (w + 5m)`, plus rounding. That allowance is at most
//!   0.1 % of the value here.
//!
//! promtool gets only the task-wait group of the real rule file, copied into a temporary
//! directory. Running every group over 31 days takes more than twice as long, and the other
//! groups neither read nor write task-wait series (the test checks this).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use flowforge_scaler::app::Application;
use flowforge_scaler::config::Config;
use flowforge_scaler::slo::{burn_rate, WINDOWS};
use serde_json::json;
use serde_norway::Value;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::oneshot;

/// Queues and their task starts per minute, the same at every minute. The rules' long windows
/// average 5-minute ratios, and that average is the ledger's ratio of sums only when traffic is
/// steady.
const QUEUES: [(&str, i64); 2] = [("mail", 600), ("report", 400)];

/// Scaler replicas. Each one publishes the same counters, and the rules take the max per queue.
const REPLICAS: [&str; 2] = ["scaler-0", "scaler-1"];

/// The history, oldest first: (minutes, late starts per minute in each queue of [`QUEUES`]).
/// It lasts 31 days. Phases end 40,000, 3,000, 1,000, 240, 90, 45 and 15 minutes before the end.
const PHASES: [(i64, [i64; 2]); 8] = [
    (4_640, [3, 2]),
    (37_000, [1, 1]),
    (2_000, [9, 6]),
    (760, [2, 3]),
    (150, [30, 10]),
    (45, [4, 6]),
    (30, [20, 60]),
    (15, [150, 50]),
];

/// Minutes between rule evaluations in promtool. This is the base window that the long windows
/// average (checked in the rule file), so its recordings tile the history.
const EVAL_MINUTES: i64 = 5;

/// Room for rounding: counts stay below 2^53, and each rule performs a few divisions and sums
/// at most 8,641 recordings, so rounding errors are around 1e-12 of the value. One late start
/// more or less in 30 days moves the 30d burn rate by about 2e-6.
const ROUNDING: f64 = 1e-9;

/// Late starts (summed over queues) of each minute, oldest first.
fn late_per_minute() -> Vec<i64> {
    PHASES
        .iter()
        .flat_map(|(minutes, late)| std::iter::repeat_n(late.iter().sum(), *minutes as usize))
        .collect()
}

fn starts_per_minute() -> i64 {
    QUEUES.iter().map(|(_, n)| n).sum()
}

/// (started, within threshold) over the minutes from `from` up to `to` minutes before the end.
fn events(late: &[i64], from: i64, to: i64) -> (i64, i64) {
    let n = late.len() as i64;
    let minutes = &late[(n - from) as usize..(n - to) as usize];
    let started = starts_per_minute() * minutes.len() as i64;
    (started, started - minutes.iter().sum::<i64>())
}

fn error_ratio((started, within): (i64, i64)) -> f64 {
    (started - within) as f64 / started as f64
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("scaler/ is inside the repository")
        .to_owned()
}

/// What the scaler publishes: burn rate per window of [`WINDOWS`], and budget remaining.
#[derive(Debug)]
struct Published {
    burn: Vec<f64>,
    budget_remaining: f64,
}

/// Writes the history into the ledger of a fresh database, ending at its watermark, and returns
/// what a scaler on it publishes, with the scaler's objective.
async fn published_by_the_scaler(late: &[i64]) -> (Published, f64) {
    let url = flowforge_testkit::fresh_database().await.unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .expect("connecting to the test database");
    flowforge_core::db::MIGRATOR.run(&pool).await.unwrap();

    // The ledger is complete up to its watermark, and every window ends there. The watermark is
    // an hour ahead of the clock so that the scaler's own step finds no new minute to add while
    // it runs (that step only moves the watermark forward, up to the last complete minute).
    let upto: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "UPDATE flowforge.ledger_watermarks SET upto = date_trunc('minute', now()) + interval '1 hour' \
         WHERE name = 'task_wait' RETURNING upto",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let n = late.len() as i32;
    let (mut ago, mut queue, mut started, mut within) = (vec![], vec![], vec![], vec![]);
    let mut minute = 0;
    for (minutes, late) in PHASES {
        for _ in 0..minutes {
            for ((name, starts), late) in QUEUES.iter().zip(late) {
                ago.push(n - minute);
                queue.push(name.to_string());
                started.push(*starts);
                within.push(starts - late);
            }
            minute += 1;
        }
    }
    let rows = sqlx::query(
        "INSERT INTO flowforge.task_wait_minutes (minute, queue, started, within) \
         SELECT $1 - make_interval(mins => t.ago), t.queue, t.started, t.within \
         FROM unnest($2::int4[], $3::text[], $4::int8[], $5::int8[]) AS t(ago, queue, started, within)",
    )
    .bind(upto)
    .bind(&ago)
    .bind(&queue)
    .bind(&started)
    .bind(&within)
    .execute(&pool)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(rows, late.len() as u64 * QUEUES.len() as u64);
    pool.close().await;

    let config = Config::try_parse_from([
        "flowforge-scaler",
        "--grpc-addr",
        "127.0.0.1:0",
        "--admin-addr",
        "127.0.0.1:0",
        "--database-url",
        &url,
        "--metrics-interval",
        "1s",
    ])
    .unwrap();
    config.validate().unwrap();
    let objective = config.slo_task_wait_objective;
    let app = Application::build(config).await.unwrap();
    let admin = app.admin_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    // The figures are published as soon as the scaler starts, and again every second. The
    // ledger does not change, so neither do they.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let published = loop {
        let text = reqwest::get(format!("http://{admin}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let burn: Option<Vec<f64>> = WINDOWS
            .iter()
            .map(|(label, _)| {
                gauge(
                    &text,
                    "flowforge_slo_burn_rate",
                    &["slo=\"task-wait\"", &format!("window=\"{label}\"")],
                )
            })
            .collect();
        let budget = gauge(
            &text,
            "flowforge_slo_error_budget_remaining",
            &["slo=\"task-wait\""],
        );
        if let (Some(burn), Some(budget_remaining)) = (burn, budget) {
            break Published {
                burn,
                budget_remaining,
            };
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the scaler published no burn rates within a minute:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    drop(stop);
    running.await.unwrap().expect("the scaler failed");
    (published, objective)
}

/// Value of the series `name{...}` whose labels include all of `labels`, from a `/metrics` text.
fn gauge(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// The rule group of the task-wait SLO, from the real rule file. Fails if another group reads
/// or writes task-wait series.
fn task_wait_group() -> Value {
    let file = repo_root().join("alerts/flowforge-rules.yaml");
    let rules: Value = serde_norway::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let concerns_task_wait = |rule: &Value| {
        rule["labels"]["slo"].as_str() == Some("task-wait")
            || rule["expr"]
                .as_str()
                .is_some_and(|e| e.contains("task-wait") || e.contains("task_wait"))
    };
    let (ours, others): (Vec<&Value>, Vec<&Value>) = rules["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .partition(|g| {
            g["rules"]
                .as_sequence()
                .unwrap()
                .iter()
                .any(|r| r["labels"]["slo"].as_str() == Some("task-wait"))
        });
    assert_eq!(ours.len(), 1, "one group holds the task-wait SLO's rules");
    for group in others {
        for rule in group["rules"].as_sequence().unwrap() {
            assert!(
                !concerns_task_wait(rule),
                "group {:?} also concerns task-wait: {rule:?}",
                group["name"]
            );
        }
    }
    ours[0].clone()
}

/// The expression of the recording rule `record` in `group`.
fn rule_expr<'a>(group: &'a Value, record: &str) -> &'a str {
    group["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|r| r["record"].as_str() == Some(record))
        .unwrap_or_else(|| panic!("no recording rule {record} in the task-wait group"))["expr"]
        .as_str()
        .unwrap()
}

/// A counter sampled every minute from 0, in promtool's expanding notation: `per_minute` is a
/// list of (minutes, increase per minute).
fn counter_values(per_minute: impl Iterator<Item = (i64, i64)>) -> String {
    let mut parts = vec!["0".to_owned()];
    let mut value = 0;
    for (minutes, per) in per_minute {
        // `a+bxn` expands to the n + 1 values a, a+b, ..., a+nb.
        parts.push(format!("{}+{}x{}", value + per, per, minutes - 1));
        value += per * minutes;
    }
    parts.join(" ")
}

/// One check: the rules' series `record{slo="task-wait"}` is `value`, within `tolerance`.
struct Check {
    record: String,
    value: f64,
    tolerance: f64,
}

/// A promtool unit test file: the history as the scaler's counters, rules from `rules`, and
/// at the end of the history one PromQL test per check. With `diagnose`, each test shows the
/// rule's value: the test expects nothing, so it fails and promtool prints what it got.
fn promtool_test(rules: &Path, checks: &[Check], diagnose: bool) -> String {
    let end: i64 = PHASES.iter().map(|(m, _)| m).sum();
    let mut input_series = vec![];
    for replica in REPLICAS {
        for (q, (queue, starts)) in QUEUES.iter().enumerate() {
            let labels =
                format!("job=\"flowforge-scaler\",instance=\"{replica}\",queue=\"{queue}\"");
            input_series.push(json!({
                "series": format!("flowforge_task_wait_events_total{{{labels}}}"),
                "values": counter_values(PHASES.iter().map(|(m, _)| (*m, *starts))),
            }));
            input_series.push(json!({
                "series": format!("flowforge_task_wait_good_events_total{{{labels}}}"),
                "values": counter_values(PHASES.iter().map(|(m, late)| (*m, starts - late[q]))),
            }));
        }
    }
    let tests: Vec<_> = checks
        .iter()
        .map(|c| {
            let series = format!("{}{{slo=\"task-wait\"}}", c.record);
            if diagnose {
                json!({"expr": series, "eval_time": format!("{end}m"), "exp_samples": []})
            } else {
                json!({
                    "expr": format!("abs({series} - {:?}) < bool {:?}", c.value, c.tolerance),
                    "eval_time": format!("{end}m"),
                    "exp_samples": [{"labels": "{slo=\"task-wait\"}", "value": 1}],
                })
            }
        })
        .collect();
    let file = json!({
        "rule_files": [rules],
        "evaluation_interval": format!("{EVAL_MINUTES}m"),
        "tests": [{
            "name": "31 days of task starts, as the scaler's counters",
            "interval": "1m",
            "input_series": input_series,
            "promql_expr_test": tests,
        }],
    });
    serde_norway::to_string(&file).unwrap()
}

async fn promtool(file: &Path) -> std::process::Output {
    let promtool = flowforge_testkit::which("promtool")
        .expect("promtool not found on PATH: run scripts/install-deps.sh test");
    tokio::process::Command::new(promtool)
        .args(["test", "rules"])
        .arg(file)
        .output()
        .await
        .expect("running promtool")
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn published_burn_rates_agree_with_the_recording_rules() {
    let late = late_per_minute();
    let n = late.len() as i64;
    let windows: Vec<(&str, i64)> = WINDOWS
        .iter()
        .map(|(label, secs)| (*label, *secs as i64 / 60))
        .collect();
    // The history covers the longest window and the five minutes before it, and no phase
    // boundary is within 10 minutes of a window's start.
    assert!(n >= windows.last().unwrap().1 + 2 * EVAL_MINUTES);
    let mut boundary = n;
    for (minutes, _) in &PHASES[..PHASES.len() - 1] {
        boundary -= minutes;
        for (label, w) in &windows {
            assert!(
                (boundary - w).abs() >= 10,
                "phase boundary {boundary} min before the end is near the {label} window's start"
            );
        }
    }

    // Path (b): the ledger, through a real scaler.
    let (published, objective) = published_by_the_scaler(&late).await;
    let budget = 1.0 - objective;
    // First, the published figures are the history's: each window is exactly the ledger's
    // minutes [end - window, end).
    for ((label, w), got) in windows.iter().zip(&published.burn) {
        let (started, within) = events(&late, *w, 0);
        assert_eq!(
            *got,
            burn_rate(started, within, objective),
            "published {label} burn rate"
        );
    }
    assert_eq!(published.budget_remaining, 1.0 - published.burn[7]);
    assert_eq!(windows[7].0, "30d");

    // Path (a): the recording rules, in promtool.
    let group = task_wait_group();
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("task-wait-rules.yaml");
    std::fs::write(
        &rules,
        serde_norway::to_string(&json!({ "groups": [group] })).unwrap(),
    )
    .unwrap();
    let mut checks = vec![];
    for ((label, w), value) in windows.iter().zip(&published.burn) {
        let events_expr = rule_expr(&group, &format!("flowforge_slo:events:rate{label}"));
        let allowance = if events_expr.contains("avg_over_time(") {
            assert!(
                events_expr.contains(&format!("flowforge_slo:events:rate{EVAL_MINUTES}m")),
                "the {label} window averages another window than {EVAL_MINUTES}m: {events_expr}"
            );
            // The rules see the five minutes before the window as well.
            let before = error_ratio(events(&late, w + EVAL_MINUTES, *w));
            let inside = error_ratio(events(&late, *w, 0));
            (before - inside).abs() * EVAL_MINUTES as f64 / (w + EVAL_MINUTES) as f64 / budget
        } else {
            assert!(events_expr.contains(&format!("[{label}]")), "{events_expr}");
            0.0
        };
        checks.push(Check {
            record: format!("flowforge_slo:burn_rate:rate{label}"),
            value: *value,
            tolerance: allowance + ROUNDING * value.abs().max(1.0),
        });
    }
    let budget_tolerance = checks[7].tolerance;
    checks.push(Check {
        record: "flowforge_slo:error_budget_remaining:ratio".into(),
        value: published.budget_remaining,
        tolerance: budget_tolerance,
    });

    // The windows tell each other apart by far more than the tolerance allows.
    let widest = checks.iter().map(|c| c.tolerance).fold(0.0, f64::max);
    for (i, a) in published.burn.iter().enumerate() {
        for (label, b) in windows.iter().map(|w| w.0).zip(&published.burn).skip(i + 1) {
            assert!(
                (a - b).abs() > 100.0 * widest,
                "the {} and {label} windows publish almost the same burn rate: {a}, {b}",
                windows[i].0
            );
        }
    }

    let table: String = checks
        .iter()
        .map(|c| format!("  {}: {} ± {:e}\n", c.record, c.value, c.tolerance))
        .collect();
    let test = dir.path().join("burn-rates-agree.yaml");
    std::fs::write(&test, promtool_test(&rules, &checks, false)).unwrap();
    let out = promtool(&test).await;
    if !out.status.success() {
        // Show what the rules computed: the same test, expecting nothing.
        let diagnosis = dir.path().join("diagnosis.yaml");
        std::fs::write(&diagnosis, promtool_test(&rules, &checks, true)).unwrap();
        let rules_got = text(&promtool(&diagnosis).await);
        panic!(
            "the recording rules disagree with the published figures (expected below):\n{table}\n\
             promtool:\n{}\nwhat the rules computed:\n{rules_got}",
            text(&out)
        );
    }
    println!("published figures, matched by the recording rules:\n{table}");
}
