//! `flowforge-scaler simulate` end to end: the shipped traces against committed golden reports,
//! plus facts that must hold whatever the exact figures are.
//!
//! The golden files in tests/golden/ are the report tables (rounded figures, settings included).
//! After an intended change to the model, a policy or a trace, regenerate them with
//!
//!     UPDATE_GOLDEN=1 cargo test -p flowforge-scaler --test simulate
//!
//! and review the diff like any other change.

use std::path::{Path, PathBuf};

use clap::Parser;
use flowforge_scaler::simulate::{self, Report, SimulateArgs, Summary};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: SimulateArgs,
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn trace(name: &str) -> String {
    manifest_dir()
        .join("traces")
        .join(name)
        .display()
        .to_string()
}

fn args(extra: &[&str]) -> SimulateArgs {
    let mut argv = vec!["simulate"];
    argv.extend_from_slice(extra);
    Cli::try_parse_from(argv).expect("arguments parse").args
}

fn simulate(extra: &[&str]) -> Report {
    simulate::execute(&args(extra), false).expect("simulation runs")
}

fn summary<'a>(summaries: &'a [Summary], policy: &str) -> &'a Summary {
    summaries
        .iter()
        .find(|s| s.policy == policy)
        .unwrap_or_else(|| panic!("no results for {policy}"))
}

/// Compares `actual` with tests/golden/`name`, or rewrites the file when UPDATE_GOLDEN is set.
fn assert_golden(name: &str, actual: &str) {
    assert_generated(
        &manifest_dir().join("tests").join("golden").join(name),
        actual,
        true,
    );
}

/// The trace's chart in docs/img/ is generated too, and checked the same way.
fn assert_chart(trace: &str, report: &Report) {
    let path = manifest_dir().join(format!("../docs/img/simulator-{trace}.svg"));
    assert_generated(&path, &simulate::chart::render(report), false);
}

fn assert_generated(path: &Path, actual: &str, show_report: bool) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}\nCreate it with: UPDATE_GOLDEN=1 cargo test -p flowforge-scaler \
             --test simulate",
            path.display()
        )
    });
    if expected == actual {
        return;
    }
    let exp: Vec<&str> = expected.lines().collect();
    let act: Vec<&str> = actual.lines().collect();
    let mut diff = String::new();
    let mut shown = 0;
    for i in 0..exp.len().max(act.len()) {
        let (e, a) = (exp.get(i), act.get(i));
        if e != a && shown < 20 {
            shown += 1;
            diff.push_str(&format!(
                "line {}:\n  - {}\n  + {}\n",
                i + 1,
                e.unwrap_or(&"<missing>"),
                a.unwrap_or(&"<missing>")
            ));
        }
    }
    let full = if show_report {
        format!("this run's full report:\n{actual}\n")
    } else {
        String::new()
    };
    panic!(
        "the simulation no longer matches {} (- golden, + this run):\n{diff}\n{full}\
         If the change is intended, regenerate the golden files and charts with:\n  \
         UPDATE_GOLDEN=1 cargo test -p flowforge-scaler --test simulate",
        path.display()
    );
}

/// Facts that hold for every run, whatever the policy.
fn check_invariants(report: &Report) {
    for (policy, out) in &report.runs {
        let name = &policy.name;
        if out.settled {
            assert_eq!(
                out.starts,
                out.tasks + out.handed_back,
                "{name}: every task starts once, plus once per hand-back"
            );
            assert_eq!(out.unfinished, 0);
        } else {
            assert!(
                out.unfinished > 0,
                "{name}: cut off with nothing left to do"
            );
        }
        let waits: u64 = out.waits.iter().map(|&(_, c)| c).sum();
        assert_eq!(
            waits,
            out.starts + out.waiting_at_end,
            "{name}: one wait per start, and one per task still queued at the end"
        );
        assert!(out.max_replicas <= policy.max_replica_count, "{name}");
        // Work is conserved: worker slots over time cover the time tasks ran.
        let slots_ms = out.pod_ms * u128::from(report.workload.concurrency);
        assert!(
            out.busy_task_ms <= slots_ms,
            "{name}: busier than its slots"
        );
        // Every scale event moves the count to a different value within the bounds.
        for e in &out.scale_events {
            assert_ne!(e.from, e.to);
            assert!(e.to <= policy.max_replica_count);
        }
        // The series cover the whole run.
        let buckets = out.series.ready.len() as u64;
        assert!(
            buckets * report.bucket_ms > out.end_ms,
            "{name}: series too short"
        );
    }
    let summaries = report.summaries();
    for s in &summaries {
        assert!(s.wait_p50_s <= s.wait_p95_s && s.wait_p95_s <= s.wait_p99_s);
        assert!(s.wait_p99_s <= s.wait_max_s);
        assert!((0.0..=1.0).contains(&s.within_slo));
    }
    // Policies that count running tasks never scale in below the work in flight.
    for name in ["keda-postgresql-tuned", "flowforge-push-recommended"] {
        if let Some(s) = summaries.iter().find(|s| s.policy == name) {
            assert_eq!(s.scale_ins_below_running, 0, "{name}");
            assert!(s.settled, "{name} did not finish the work");
        }
    }
}

#[test]
fn steady_trace_matches_golden_and_conserves_work() {
    let report = simulate(&["--trace", &trace("steady.csv")]);
    check_invariants(&report);
    assert_golden("steady.txt", &report.table());
    assert_chart("steady", &report);
    // Constant 2 s tasks: the busy time is exactly 2 s per start.
    for (_, out) in &report.runs {
        assert_eq!(out.busy_task_ms, u128::from(out.starts) * 2000);
    }
    // Under steady load every policy ends up with enough workers; the push policy meets the SLO.
    let s = report.summaries();
    assert!(summary(&s, "flowforge-push-recommended").within_slo > 0.999);
}

#[test]
fn bursty_trace_matches_golden() {
    let report = simulate(&["--trace", &trace("bursty.csv")]);
    check_invariants(&report);
    assert_golden("bursty.txt", &report.table());
    assert_chart("bursty", &report);
    let s = report.summaries();
    let push = summary(&s, "flowforge-push-recommended");
    let default = summary(&s, "keda-postgresql-default");
    // Bursts are limited by the HPA's scale-up rate for every policy alike, so the SLO share is
    // about the same; the ready-only metric pays for it with far more worker time.
    assert!(push.within_slo >= default.within_slo);
    assert!(push.worker_seconds * 2.0 < default.worker_seconds);
    // With a ready-only metric the queue looks empty whenever the workers keep up, so KEDA
    // scales to zero under the steady background load; counting running tasks it never does.
    let to_zero_before_end = |name: &str| {
        let (_, out) = report.runs.iter().find(|(p, _)| p.name == name).unwrap();
        out.scale_events
            .iter()
            .filter(|e| e.to == 0 && e.at_ms < report.trace_end_ms)
            .count()
    };
    assert!(to_zero_before_end("keda-postgresql-default") >= 5);
    assert_eq!(to_zero_before_end("flowforge-push-recommended"), 0);
}

#[test]
fn spiky_idle_trace_matches_golden_and_push_activation_wins_from_zero() {
    let report = simulate(&["--trace", &trace("spiky-idle.csv")]);
    check_invariants(&report);
    assert_golden("spiky-idle.txt", &report.table());
    assert_chart("spiky-idle", &report);
    let s = report.summaries();
    let push = summary(&s, "flowforge-push-recommended");
    let tuned = summary(&s, "keda-postgresql-tuned");
    let default = summary(&s, "keda-postgresql-default");
    // From zero, the first task waits for the activation plus the pod's start-up (10 s): pushed
    // within 0.1 s, or at the next poll (every 5 s tuned, 30 s by default).
    assert!(push.cold_starts >= 15);
    assert!((push.cold_start_wait_mean_s - 10.1).abs() < 0.05);
    assert!(push.cold_start_wait_mean_s < tuned.cold_start_wait_mean_s);
    assert!(tuned.cold_start_wait_mean_s + 5.0 < default.cold_start_wait_mean_s);
    // Scale-from-zero: a pushed activation saves up to a polling interval on every spike.
    assert!(
        push.wait_p99_s * 1.5 < default.wait_p99_s,
        "push p99 {} vs default p99 {}",
        push.wait_p99_s,
        default.wait_p99_s
    );
    assert!(push.within_slo > default.within_slo);
    assert!(push.wait_p50_s <= tuned.wait_p50_s && tuned.wait_p50_s < default.wait_p50_s);
    // Scaling to zero 60 s after the work instead of 300 s is cheaper.
    assert!(push.worker_seconds < default.worker_seconds);
    // Counting only queued tasks lets the HPA remove workers that run 7-minute tasks. The
    // shipped drain (300 s) lets most of them finish...
    assert!(default.scale_ins_below_running > 0);
    assert_eq!(push.scale_ins_below_running, 0);
    // ...but with the binary's default drain (25 s) they outlive it and run again; tasks longer
    // than the cooldown (300 s) + drain are handed back over and over and never finish, and the
    // run is cut off with work left. Counting running tasks, nothing is handed back.
    let short = simulate(&[
        "--trace",
        &trace("spiky-idle.csv"),
        "--shutdown-grace",
        "25s",
    ]);
    check_invariants(&short);
    let s = short.summaries();
    let default = summary(&s, "keda-postgresql-default");
    let push = summary(&s, "flowforge-push-recommended");
    assert!(default.handed_back > 0);
    assert!(!default.settled && default.unfinished > 0);
    assert_eq!(push.handed_back, 0);
    assert!(push.settled);
}

#[test]
fn daily_wave_trace_matches_golden() {
    let report = simulate(&["--trace", &trace("daily-wave.csv")]);
    check_invariants(&report);
    assert_golden("daily-wave.txt", &report.table());
    assert_chart("daily-wave", &report);
    let s = report.summaries();
    let push = summary(&s, "flowforge-push-recommended");
    let default = summary(&s, "keda-postgresql-default");
    // A ready-only metric needs a backlog to hold replicas up: waits are longer all day.
    assert!(push.wait_p95_s < default.wait_p95_s);
}

#[test]
fn example_policies_file_runs_and_matches_golden() {
    let policies = manifest_dir().join("traces/policies.example.toml");
    let golden_trace = manifest_dir().join("tests/golden/two-spikes.csv");
    let report = simulate(&[
        "--trace",
        &golden_trace.display().to_string(),
        "--policies-file",
        &policies.display().to_string(),
        "--policy",
        "flowforge-push-recommended",
        "--policy",
        "flowforge-push-warm",
        "--policy",
        "flowforge-push-fast-scale-up",
        "--task-duration",
        "exp:3s",
    ]);
    check_invariants(&report);
    assert_golden("policies-example.txt", &report.table());
    let s = report.summaries();
    let warm = summary(&s, "flowforge-push-warm");
    let push = summary(&s, "flowforge-push-recommended");
    let fast = summary(&s, "flowforge-push-fast-scale-up");
    // A warm replica takes the first tasks at once, at the price of idling all day.
    assert!(warm.wait_p50_s < push.wait_p50_s);
    assert!(warm.worker_seconds > push.worker_seconds);
    // A faster scale-up policy reaches more replicas sooner.
    assert!(fast.wait_p99_s <= push.wait_p99_s);
}

#[test]
fn same_inputs_give_the_same_results_and_the_seed_matters() {
    let t = manifest_dir().join("tests/golden/two-spikes.csv");
    let t = t.display().to_string();
    let a = simulate(&["--trace", &t, "--task-duration", "exp:2s", "--seed", "7"]);
    let b = simulate(&["--trace", &t, "--task-duration", "exp:2s", "--seed", "7"]);
    let c = simulate(&["--trace", &t, "--task-duration", "exp:2s", "--seed", "8"]);
    assert_eq!(a.json(), b.json());
    assert_eq!(a.table(), b.table());
    assert_ne!(a.json(), c.json());
}

#[test]
fn max_replicas_caps_every_policy() {
    let t = trace("bursty.csv");
    let report = simulate(&[
        "--trace",
        &t,
        "--max-replicas",
        "6",
        "--policy",
        "flowforge-push-recommended",
    ]);
    check_invariants(&report);
    assert_eq!(report.runs.len(), 1);
    assert_eq!(report.runs[0].0.max_replica_count, 6);
    assert_eq!(report.runs[0].1.max_replicas, 6);
}

#[test]
fn run_writes_json_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let svg = dir.path().join("out.svg");
    let t = manifest_dir().join("tests/golden/two-spikes.csv");
    let a = args(&[
        "--trace",
        &t.display().to_string(),
        "--json",
        &json.display().to_string(),
        "--chart",
        &svg.display().to_string(),
    ]);
    simulate::run(a).unwrap();

    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let policies = doc["policies"].as_array().unwrap();
    assert_eq!(policies.len(), 3);
    for p in policies {
        let summary = &p["summary"];
        for key in [
            "wait_p50_s",
            "wait_p95_s",
            "wait_p99_s",
            "within_slo",
            "worker_seconds",
        ] {
            assert!(summary[key].is_number(), "{key} in {summary}");
        }
        assert!(p["settings"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"].is_u64());
        assert!(!p["scale_events"].as_array().unwrap().is_empty());
        let buckets = p["series"]["replicas_max"].as_array().unwrap().len();
        assert!(buckets > 10);
    }
    assert_eq!(doc["trace"]["tasks"], 1_600);

    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.starts_with("<svg "));
    assert!(chart.trim_end().ends_with("</svg>"));
    for needle in [
        "keda-postgresql-default",
        "flowforge-push-recommended",
        "tasks arriving per second",
        "queue depth",
        "replicas set by KEDA / HPA",
        "<polyline",
    ] {
        assert!(chart.contains(needle), "chart lacks {needle}");
    }
}

#[test]
fn bad_inputs_are_reported_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "# header next\nt_seconds,count\n0,5\n10,five\n").unwrap();
    let err =
        simulate::execute(&args(&["--trace", &bad.display().to_string()]), false).unwrap_err();
    // Bad input is a configuration error the binary can tell apart (exit 64).
    assert!(err.downcast_ref::<simulate::InputError>().is_some());
    let err = err.to_string();
    assert!(err.contains("bad.csv:4:"), "{err}");
    assert!(err.contains("count \"five\""), "{err}");

    let t = trace("steady.csv");
    let err =
        simulate::execute(&args(&["--trace", &t, "--policy", "hpa-magic"]), false).unwrap_err();
    assert!(err.downcast_ref::<simulate::InputError>().is_some());
    let err = err.to_string();
    assert!(err.contains("unknown policy \"hpa-magic\""), "{err}");
    assert!(err.contains("flowforge-push-recommended"), "{err}");

    let missing = Path::new("/nonexistent/trace.csv");
    let err = simulate::execute(&args(&["--trace", &missing.display().to_string()]), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot read"), "{err}");

    let policies = dir.path().join("p.toml");
    std::fs::write(&policies, "[[policy]]\nname = \"x\"\ncooldown = 5\n").unwrap();
    let err = simulate::execute(
        &args(&[
            "--trace",
            &t,
            "--policies-file",
            &policies.display().to_string(),
        ]),
        false,
    )
    .unwrap_err();
    assert!(err.downcast_ref::<simulate::InputError>().is_some());
    let err = err.to_string();
    assert!(err.contains("p.toml") && err.contains("cooldown"), "{err}");

    // Flags are validated by clap.
    assert!(Cli::try_parse_from(["simulate", "--trace", "x", "--concurrency", "0"]).is_err());
    assert!(Cli::try_parse_from(["simulate", "--trace", "x", "--task-duration", "soon"]).is_err());
    assert!(Cli::try_parse_from(["simulate", "--trace", "x", "--startup-delay", "10"]).is_err());
    assert!(
        Cli::try_parse_from(["simulate"]).is_err(),
        "--trace is required"
    );
}

#[test]
fn recommended_policy_matches_the_shipped_scaled_object() {
    // flowforge-push-recommended models k8s/base/worker/scaledobject.yaml: when one changes, so
    // must the other (and the golden files).
    let path = manifest_dir().join("../k8s/base/worker/scaledobject.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let values = |key: &str| -> Vec<String> {
        let prefix = format!("{key}:");
        text.lines()
            .filter_map(|l| {
                l.trim()
                    .trim_start_matches("- ")
                    .strip_prefix(prefix.as_str())
            })
            .map(|v| v.trim().trim_matches('"').to_owned())
            .collect()
    };
    let policy = simulate::Policy::builtins()
        .into_iter()
        .find(|p| p.name == "flowforge-push-recommended")
        .unwrap();
    let one = |v: String| vec![v];
    assert_eq!(
        values("pollingInterval"),
        one(policy.polling_interval.to_string())
    );
    assert_eq!(
        values("cooldownPeriod"),
        one(policy.cooldown_period.to_string())
    );
    assert_eq!(
        values("minReplicaCount"),
        one(policy.min_replica_count.to_string())
    );
    assert_eq!(
        values("activationTasks"),
        one(policy.activation_threshold.to_string())
    );
    // targetTasksPerWorker = the workers' default concurrency, the simulator's default.
    let default_concurrency = args(&["--trace", "x"]).concurrency;
    assert_eq!(
        values("targetTasksPerWorker"),
        one(default_concurrency.to_string())
    );
    assert!(policy.target_per_worker.is_none());
    assert_eq!(values("type"), ["Percent", "external-push"]);
    let down = &policy.behavior.scale_down;
    assert_eq!(
        values("stabilizationWindowSeconds"),
        one(down.stabilization_window_s.to_string())
    );
    assert_eq!(down.policies.len(), 1);
    assert_eq!(values("value"), one(down.policies[0].value.to_string()));
    assert_eq!(
        values("periodSeconds"),
        one(down.policies[0].period_s.to_string())
    );
    assert_eq!(
        values("maxReplicaCount"),
        one(policy.max_replica_count.to_string())
    );
    // The simulated workers drain as the shipped ones do.
    let worker_path = manifest_dir().join("../k8s/base/worker/kustomization.yaml");
    let worker = std::fs::read_to_string(&worker_path).unwrap();
    let drain: Vec<&str> = worker
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- FLOWFORGE_SHUTDOWN_GRACE="))
        .collect();
    let default_grace = args(&["--trace", "x"]).shutdown_grace;
    assert_eq!(drain, [format!("{}s", default_grace.as_secs())]);
    // The manifest leaves scaleUp at the HPA's defaults, as the policy does.
    assert!(!text.contains("scaleUp:"));
    assert_eq!(
        policy.behavior.scale_up,
        simulate::hpa::ScalingRules::default_scale_up()
    );
}

#[test]
fn docs_results_tables_match_the_golden_reports() {
    // docs/autoscaling-simulator.md shows the golden reports as Markdown tables; after
    // regenerating the golden files, update the tables (and the charts in docs/img/) too.
    let docs_path = manifest_dir().join("../docs/autoscaling-simulator.md");
    let docs = std::fs::read_to_string(&docs_path).unwrap();
    for name in ["steady", "bursty", "spiky-idle", "daily-wave"] {
        let golden = std::fs::read_to_string(
            manifest_dir()
                .join("tests/golden")
                .join(format!("{name}.txt")),
        )
        .unwrap();
        let rows: Vec<&str> = golden
            .lines()
            .skip_while(|l| !l.starts_with("policy "))
            .skip(1)
            .take_while(|l| !l.is_empty())
            .collect();
        assert_eq!(rows.len(), 3, "{name}: {golden}");
        for row in rows {
            let f: Vec<&str> = row.split_whitespace().collect();
            // policy, tasks, p50, p95, p99, max, slo, from zero (`N× Xs` or `-`), worker-s, busy,
            // ups, downs, max replicas
            let (from_zero, rest) = if f[7] == "-" {
                ("-".to_owned(), &f[8..])
            } else {
                (format!("{} {}", f[7], f[8]), &f[9..])
            };
            let mut cells = vec![f[0]];
            cells.extend_from_slice(&f[2..7]);
            cells.push(&from_zero);
            cells.extend_from_slice(rest);
            let md = format!("| {} |", cells.join(" | "));
            assert!(
                docs.contains(&md),
                "{} lacks the row\n{md}\nof tests/golden/{name}.txt: update its results table",
                docs_path.display()
            );
        }
    }
}
