//! The rule file and its unit tests, through promtool.

mod helpers;

use std::collections::{BTreeMap, BTreeSet};

use helpers::{repo_root, run, text, tool};
use serde_norway::Value;

#[test]
fn rule_file_passes_promtool_check() {
    let promtool = tool(&["promtool"]);
    let out = run(
        &promtool,
        &["check", "rules", "alerts/flowforge-rules.yaml"],
    );
    assert!(
        out.status.success(),
        "promtool check rules failed:\n{}",
        text(&out)
    );
}

/// Every file of alerts/tests/, each in its own promtool (they are independent and slow).
#[test]
fn promtool_unit_tests_pass() {
    let promtool = tool(&["promtool"]);
    let mut files: Vec<String> = std::fs::read_dir(repo_root().join("alerts/tests"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .map(|n| format!("alerts/tests/{n}"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "expected the generated and hand-written tests: {files:?}"
    );
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .iter()
            .map(|file| {
                let promtool = &promtool;
                scope.spawn(move || {
                    let out = run(promtool, &["test", "rules", file]);
                    (!out.status.success()).then(|| format!("{file}:\n{}", text(&out)))
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "promtool test rules failed:\n{}",
        failures.join("\n")
    );
}

/// For every alerting rule (alert name and severity), some promtool test expects it firing and
/// some test of the same alert name expects it silent.
#[test]
fn every_alert_is_tested_firing_and_silent() {
    let root = repo_root();
    let rules: Value = serde_norway::from_str(
        &std::fs::read_to_string(root.join("alerts/flowforge-rules.yaml")).unwrap(),
    )
    .unwrap();
    let mut alerts = BTreeSet::new();
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            if let Some(name) = rule["alert"].as_str() {
                let severity = rule["labels"]["severity"].as_str().unwrap().to_owned();
                alerts.insert((name.to_owned(), severity));
            }
        }
    }
    assert_eq!(
        alerts.len(),
        16,
        "4 SLOs x 2 severities + 3 seed + 5 operational: {alerts:?}"
    );

    // (alert, severity) -> (seen firing, seen silent)
    let mut seen: BTreeMap<(String, String), (bool, bool)> = BTreeMap::new();
    for entry in std::fs::read_dir(root.join("alerts/tests")).unwrap() {
        let path = entry.unwrap().path();
        let file: Value = serde_norway::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for group in file["tests"].as_sequence().unwrap() {
            for test in group["alert_rule_test"].as_sequence().into_iter().flatten() {
                let name = test["alertname"].as_str().unwrap();
                let firing: BTreeSet<&str> = test["exp_alerts"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a["exp_labels"]["severity"].as_str())
                    .collect();
                for (alert, severity) in alerts.iter().filter(|(a, _)| a == name) {
                    let entry = seen.entry((alert.clone(), severity.clone())).or_default();
                    if firing.contains(severity.as_str()) {
                        entry.0 = true;
                    } else {
                        entry.1 = true;
                    }
                }
            }
        }
    }
    for alert in &alerts {
        let (fires, silent) = seen.get(alert).copied().unwrap_or_default();
        assert!(fires, "no test expects {alert:?} to fire");
        assert!(silent, "no test expects {alert:?} to stay silent");
    }
}
