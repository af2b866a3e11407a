//! The committed generated files: current, runbooks present, dashboards well-formed, queries
//! readable.

mod helpers;

use std::collections::BTreeSet;

use flowforge_slo::queries::{dashboard_paths, panels, substitute};
use flowforge_slo::QueryKind;
use helpers::repo_root;
use serde_json::Value;

#[test]
fn generated_files_are_current() {
    let stale = flowforge_slo::stale_files(&repo_root()).unwrap();
    assert!(
        stale.is_empty(),
        "stale generated files: {stale:?}; run `cargo run -p flowforge-slo -- generate` and commit"
    );
}

#[test]
fn check_names_the_stale_file() {
    // A copy of the inputs and outputs, one output edited by hand.
    let root = repo_root();
    let copy = tempfile::tempdir().unwrap();
    for dir in ["slo", "alerts/tests", "dashboards"] {
        std::fs::create_dir_all(copy.path().join(dir)).unwrap();
    }
    for file in flowforge_slo::generate(&root).unwrap() {
        let path = copy.path().join(&file.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &file.contents).unwrap();
    }
    for input in ["slo/slos.yaml", "slo/cases.yaml"] {
        std::fs::copy(root.join(input), copy.path().join(input)).unwrap();
    }
    flowforge_slo::check(copy.path()).unwrap();

    let board = copy.path().join("dashboards/flowforge-secrets.json");
    let edited = std::fs::read_to_string(&board)
        .unwrap()
        .replace("Refresh results", "Refresh");
    std::fs::write(&board, edited).unwrap();
    let orphan = copy.path().join("alerts/tests/slo-old.yaml");
    std::fs::write(
        &orphan,
        format!("{}\n", flowforge_slo::rules::GENERATED_MARKER),
    )
    .unwrap();
    let err = flowforge_slo::check(copy.path()).unwrap_err().to_string();
    assert!(err.contains("dashboards/flowforge-secrets.json"), "{err}");
    assert!(err.contains("alerts/tests/slo-old.yaml"), "{err}");
    assert!(!err.contains("flowforge-rules.yaml"), "{err}");
    assert!(!err.contains("prometheusrule.yaml"), "{err}");

    // generate repairs both: rewrites the edited file, removes the orphan.
    flowforge_slo::write(copy.path()).unwrap();
    flowforge_slo::check(copy.path()).unwrap();
    assert!(!orphan.exists());
}

/// GitHub's anchor for a Markdown heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if !fenced && line.starts_with('#') {
            let base = anchor(line.trim_start_matches('#'));
            let mut candidate = base.clone();
            let mut n = 0;
            while out.contains(&candidate) {
                n += 1;
                candidate = format!("{base}-{n}");
            }
            out.insert(candidate);
        }
    }
    out
}

#[test]
fn every_runbook_url_points_at_an_existing_runbook_and_anchor() {
    let root = repo_root();
    let prefix = "https://github.com/flowforge/flowforge/blob/main/";
    let alerts: Vec<_> = flowforge_slo::queries(&root)
        .unwrap()
        .into_iter()
        .filter(|q| q.kind == QueryKind::Alert)
        .collect();
    assert_eq!(alerts.len(), 16);
    let rules: serde_norway::Value = serde_norway::from_str(
        &std::fs::read_to_string(root.join("alerts/flowforge-rules.yaml")).unwrap(),
    )
    .unwrap();
    let mut checked = 0;
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let Some(name) = rule["alert"].as_str() else {
                continue;
            };
            for key in ["summary", "description", "runbook_url"] {
                let value = rule["annotations"][key].as_str().unwrap_or_default();
                assert!(
                    !value.trim().is_empty(),
                    "{name}: annotation {key} is missing"
                );
            }
            let url = rule["annotations"]["runbook_url"].as_str().unwrap();
            let rest = url.strip_prefix(prefix).unwrap_or_else(|| {
                panic!("{name}: runbook_url {url} does not start with {prefix}")
            });
            let (file, fragment) = match rest.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (rest, None),
            };
            assert!(file.starts_with("docs/runbooks/"), "{name}: {url}");
            let path = root.join(file);
            let markdown = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{name}: runbook {} unreadable: {e}", path.display()));
            if let Some(fragment) = fragment {
                let found = anchors(&markdown);
                assert!(
                    found.contains(fragment),
                    "{name}: {file} has no heading for #{fragment}; it has {found:?}"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 16);
}

fn dashboards() -> Vec<(String, Value)> {
    let root = repo_root();
    dashboard_paths(&root)
        .unwrap()
        .into_iter()
        .map(|path| {
            let name = path.strip_prefix(&root).unwrap().display().to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            let value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{name} is not valid JSON: {e}"));
            (name, value)
        })
        .collect()
}

#[test]
fn dashboards_have_fixed_unique_uids_and_the_datasource_variables() {
    let boards = dashboards();
    assert_eq!(boards.len(), 5);
    let mut uids = BTreeSet::new();
    for (name, board) in &boards {
        let uid = board["uid"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no uid"));
        assert!(!uid.is_empty() && uid.len() <= 40, "{name}: uid {uid:?}");
        assert!(uids.insert(uid.to_owned()), "{name}: uid {uid} used twice");
        let vars = board["templating"]["list"].as_array().unwrap();
        let var = |n: &str| vars.iter().find(|v| v["name"] == n);
        let ds = var("datasource").unwrap_or_else(|| panic!("{name}: no datasource variable"));
        assert_eq!(ds["type"], "datasource", "{name}");
        assert_eq!(ds["query"], "prometheus", "{name}");
        let loki = var("loki").unwrap_or_else(|| panic!("{name}: no loki variable"));
        assert_eq!(loki["type"], "datasource", "{name}");
        assert_eq!(loki["query"], "loki", "{name}");
        if let Some(queue) = var("queue") {
            assert_eq!(queue["multi"], true, "{name}");
            assert_eq!(queue["includeAll"], true, "{name}");
            assert_eq!(queue["allValue"], ".*", "{name}");
            assert_eq!(
                queue["definition"],
                "label_values(flowforge_queue_depth, queue)"
            );
        }
        for v in vars {
            let n = v["name"].as_str().unwrap();
            assert!(
                ["datasource", "loki", "queue"].contains(&n),
                "{name}: variable {n}"
            );
        }
    }
}

/// Every `datasource` anywhere in a dashboard is a reference by uid variable.
fn check_datasources(name: &str, value: &Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                if key == "datasource" {
                    let uid = v.get("uid").and_then(Value::as_str);
                    assert!(
                        matches!(uid, Some("${datasource}" | "${loki}")),
                        "{name}: datasource {v} is not ${{datasource}} or ${{loki}}"
                    );
                    assert!(!v["uid"].is_number(), "{name}: numeric datasource id");
                }
                check_datasources(name, v);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| check_datasources(name, v)),
        _ => {}
    }
}

#[test]
fn every_panel_has_a_target_and_uses_only_allowed_variables() {
    let mut panel_count = 0;
    for (name, board) in dashboards() {
        check_datasources(&name, &board);
        let mut ids = BTreeSet::new();
        for panel in panels(&board) {
            let title = panel["title"].as_str().unwrap_or_default();
            assert!(!title.is_empty(), "{name}: a panel without a title");
            assert!(
                ids.insert(panel["id"].as_u64().unwrap()),
                "{name}: panel id twice"
            );
            let targets = panel["targets"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            assert!(!targets.is_empty(), "{name}: panel '{title}' has no target");
            for target in targets {
                let expr = target["expr"].as_str().unwrap_or_default();
                assert!(!expr.trim().is_empty(), "{name}: '{title}': empty query");
                if let Err(e) = substitute(expr) {
                    panic!("{name}: panel '{title}': {e}: {expr}");
                }
            }
            panel_count += 1;
        }
    }
    assert!(panel_count >= 40, "{panel_count} panels");
}

#[test]
fn queries_cover_every_rule_and_panel_with_variables_filled_in() {
    let root = repo_root();
    let all = flowforge_slo::queries(&root).unwrap();
    let count = |k| all.iter().filter(|q| q.kind == k).count();
    assert_eq!(count(QueryKind::Recording), 4 * (4 * 8 + 2));
    assert_eq!(count(QueryKind::Alert), 16);
    assert!(count(QueryKind::Panel) >= 100);
    for q in &all {
        assert!(!q.expr.contains('$'), "{}: {}", q.source, q.expr);
    }
    let burn = all
        .iter()
        .find(|q| q.source == "rule flowforge_slo:burn_rate:rate5m{slo=task-wait}")
        .expect("the task-wait 5m burn rate");
    assert_eq!(
        burn.expr,
        "flowforge_slo:error_ratio:rate5m{slo=\"task-wait\"} / 0.01"
    );
    let queue = all
        .iter()
        .find(|q| {
            q.source == "dashboards/flowforge-overview.json: panel 'Queue depth by state' target A"
        })
        .unwrap();
    assert!(queue.expr.contains("queue=~\".*\""), "{}", queue.expr);
    assert!(all.iter().any(|q| q.expr.contains("[1m]")));

    let logs = flowforge_slo::logql_queries(&root).unwrap();
    assert!(logs.len() >= 5);
    let known: BTreeSet<&str> = [
        "timestamp",
        "level",
        "message",
        "target",
        "request_id",
        "method",
        "route",
        "status",
        "task_id",
        "queue",
        "kind",
        "trace_id",
        "span_id",
    ]
    .into();
    for q in &logs {
        assert_eq!(q.stream_labels, ["app"], "{}", q.source);
        for field in &q.fields {
            assert!(
                known.contains(field.as_str()),
                "{}: field {field} is not in the log contract",
                q.source
            );
        }
        assert!(q.expr.contains("| json"), "{}", q.source);
    }
    assert!(logs
        .iter()
        .any(|q| q.fields.contains(&"task_id".to_owned())));
    assert!(logs
        .iter()
        .any(|q| q.fields.contains(&"request_id".to_owned())));
}

#[test]
fn rule_names_are_the_contract() {
    let text = std::fs::read_to_string(repo_root().join("alerts/flowforge-rules.yaml")).unwrap();
    for w in ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"] {
        for kind in ["error_ratio", "burn_rate", "events"] {
            let name = format!("record: flowforge_slo:{kind}:rate{w}\n");
            assert_eq!(text.matches(&name).count(), 4, "{name}");
        }
    }
    for name in [
        "flowforge_slo:error_budget_remaining:ratio",
        "flowforge_slo:objective:ratio",
    ] {
        assert_eq!(
            text.matches(&format!("record: {name}\n")).count(),
            4,
            "{name}"
        );
    }
}

/// A spec that does not validate is bad configuration: exit 64 and one line naming the problem.
#[test]
fn an_invalid_spec_exits_64_with_one_line() {
    let root = tempfile::tempdir().unwrap();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::create_dir_all(root.path().join("slo")).unwrap();
    let spec = std::fs::read_to_string(repo.join("slo/slos.yaml")).unwrap();
    let broken = spec.replacen("objective: 99\n", "objective: 100\n", 1);
    assert_ne!(spec, broken, "the spec has an objective of 99 to break");
    std::fs::write(root.path().join("slo/slos.yaml"), broken).unwrap();
    std::fs::copy(
        repo.join("slo/cases.yaml"),
        root.path().join("slo/cases.yaml"),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flowforge-slo"))
        .arg("--repo-root")
        .arg(root.path())
        .arg("generate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("objective"), "{stderr}");
}

#[test]
fn the_prometheus_rule_holds_exactly_the_rule_files_groups() {
    // Both committed files, read back: the PrometheusRule the cluster gets and the rule file
    // promtool and the e2e Prometheus test.
    let root = repo_root();
    let read = |rel: &str| std::fs::read_to_string(root.join(rel)).unwrap();
    let rule_file: flowforge_slo::rules::RuleFile =
        serde_norway::from_str(&read(flowforge_slo::rules::RULES_PATH)).unwrap();
    let object: flowforge_slo::rules::PrometheusRule =
        serde_norway::from_str(&read(flowforge_slo::rules::PROMETHEUS_RULE_PATH)).unwrap();
    assert_eq!(object.api_version, "monitoring.coreos.com/v1");
    assert_eq!(object.kind, "PrometheusRule");
    assert!(!rule_file.groups.is_empty());
    assert_eq!(object.spec, rule_file);
    // Nothing but apiVersion, kind, metadata and spec.groups: a field the operator does not
    // know would be dropped (or refused) by the API server.
    let raw: serde_json::Value =
        serde_norway::from_str(&read(flowforge_slo::rules::PROMETHEUS_RULE_PATH)).unwrap();
    let keys: BTreeSet<&str> = raw
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["apiVersion", "kind", "metadata", "spec"])
    );
    let spec_keys: Vec<&String> = raw["spec"].as_object().unwrap().keys().collect();
    assert_eq!(spec_keys, ["groups"]);
}
