//! Every query of the committed rule file and dashboards, ready to run: for tests that prove
//! each one returns data from the real services.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::rules::{RuleFile, RULES_PATH};

/// Where a query comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QueryKind {
    /// A recording rule of `alerts/flowforge-rules.yaml`.
    Recording,
    /// An alerting rule's expression (returns data only while its condition holds).
    Alert,
    /// A Prometheus target of a dashboard panel.
    Panel,
}

impl fmt::Display for QueryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QueryKind::Recording => "recording rule",
            QueryKind::Alert => "alert",
            QueryKind::Panel => "panel",
        })
    }
}

/// A PromQL query, with Grafana's variables filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// E.g. `dashboards/flowforge-overview.json: panel 'Request rate by route' target A` or
    /// `rule flowforge_slo:burn_rate:rate5m{slo=task-wait}`.
    pub source: String,
    /// PromQL, ready for Prometheus' `/api/v1/query`.
    pub expr: String,
    pub kind: QueryKind,
}

/// A LogQL query of a dashboard's Loki target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    /// E.g. `dashboards/flowforge-logs.json: panel 'API: failed requests (5xx)' target A`.
    pub source: String,
    /// LogQL with Grafana's variables filled in.
    pub expr: String,
    /// The stream labels the selector matches on (`app`).
    pub stream_labels: Vec<String>,
    /// The JSON fields of the log lines it uses after `| json` (filters, `line_format`,
    /// grouping), sorted: each must exist in real log lines.
    pub fields: Vec<String>,
}

/// Grafana's variables allowed in dashboard queries and what they become here.
pub const VARIABLES: [(&str, &str); 4] = [
    ("__rate_interval", "1m"),
    ("__interval", "15s"),
    ("__range", "1h"),
    ("queue", ".*"),
];

/// Fills in [`VARIABLES`]; any other `$...`, `${...}` or `[[...]]` is an error.
pub fn substitute(expr: &str) -> Result<String, String> {
    if expr.contains("${") || expr.contains("[[") {
        return Err(format!(
            "uses ${{...}} or [[...]] variable syntax; write $name with one of {}",
            allowed()
        ));
    }
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..len];
        let value = VARIABLES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| format!("uses ${name}; only {} are allowed", allowed()))?;
        out.push_str(value);
        rest = &after[len..];
    }
    out.push_str(rest);
    Ok(out)
}

fn allowed() -> String {
    VARIABLES
        .iter()
        .map(|(n, _)| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every recording rule, alert and dashboard panel query of the committed files in
/// `repo_root`, in file order.
pub fn queries(repo_root: &Path) -> Result<Vec<Query>> {
    let mut out = rule_queries(repo_root)?;
    for target in dashboard_targets(repo_root)? {
        if target.datasource == Datasource::Prometheus {
            let expr = substitute(&target.expr).map_err(|message| Error::Query {
                source_name: target.source.clone(),
                message,
            })?;
            out.push(Query {
                source: target.source,
                expr,
                kind: QueryKind::Panel,
            });
        }
    }
    Ok(out)
}

/// Every Loki query of the committed dashboards in `repo_root`.
pub fn logql_queries(repo_root: &Path) -> Result<Vec<LogQuery>> {
    dashboard_targets(repo_root)?
        .into_iter()
        .filter(|t| t.datasource == Datasource::Loki)
        .map(|target| {
            let expr = substitute(&target.expr).map_err(|message| Error::Query {
                source_name: target.source.clone(),
                message,
            })?;
            let (stream_labels, fields) = logql_fields(&expr);
            Ok(LogQuery {
                source: target.source,
                expr,
                stream_labels,
                fields,
            })
        })
        .collect()
}

fn rule_queries(repo_root: &Path) -> Result<Vec<Query>> {
    let path = repo_root.join(RULES_PATH);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let file: RuleFile = serde_norway::from_str(&text).map_err(|source| Error::Yaml {
        path: path.clone(),
        source,
    })?;
    let mut out = Vec::new();
    for rule in file.groups.into_iter().flat_map(|g| g.rules) {
        let labels = ["severity", "slo"]
            .iter()
            .filter_map(|k| rule.labels.get(*k).map(|v| format!("{k}={v}")))
            .collect::<Vec<_>>();
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", labels.join(","))
        };
        let (source, kind) = match (&rule.record, &rule.alert) {
            (Some(record), _) => (format!("rule {record}{labels}"), QueryKind::Recording),
            (None, Some(alert)) => (format!("alert {alert}{labels}"), QueryKind::Alert),
            (None, None) => {
                return Err(Error::Query {
                    source_name: RULES_PATH.to_owned(),
                    message: "a rule has neither record nor alert".into(),
                })
            }
        };
        out.push(Query {
            source,
            expr: rule.expr.trim().to_owned(),
            kind,
        });
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Datasource {
    Prometheus,
    Loki,
}

struct Target {
    source: String,
    expr: String,
    datasource: Datasource,
}

/// The dashboard files of the repository, sorted.
pub fn dashboard_paths(repo_root: &Path) -> Result<Vec<std::path::PathBuf>> {
    let dir = repo_root.join("dashboards");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(&dir, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    Ok(paths)
}

/// Every panel of a dashboard, rows' nested panels included, rows themselves excluded.
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: Option<&'a Value>, out: &mut Vec<&'a Value>) {
        for panel in list.and_then(Value::as_array).into_iter().flatten() {
            if panel["type"] == "row" {
                walk(panel.get("panels"), out);
            } else {
                out.push(panel);
            }
        }
    }
    let mut out = Vec::new();
    walk(dashboard.get("panels"), &mut out);
    out
}

fn dashboard_targets(repo_root: &Path) -> Result<Vec<Target>> {
    let mut out = Vec::new();
    for path in dashboard_paths(repo_root)? {
        let name = path
            .strip_prefix(repo_root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let board: Value = serde_json::from_str(&text).map_err(|source| Error::Json {
            path: path.clone(),
            source,
        })?;
        for panel in panels(&board) {
            let title = panel["title"].as_str().unwrap_or("(untitled)");
            for target in panel["targets"].as_array().into_iter().flatten() {
                let ref_id = target["refId"].as_str().unwrap_or("?");
                let source = format!("{name}: panel '{title}' target {ref_id}");
                let uid = target
                    .get("datasource")
                    .or_else(|| panel.get("datasource"))
                    .and_then(|d| d.get("uid"))
                    .and_then(Value::as_str);
                let datasource = match uid {
                    Some("${datasource}") => Datasource::Prometheus,
                    Some("${loki}") => Datasource::Loki,
                    other => {
                        return Err(Error::Query {
                            source_name: source,
                            message: format!(
                                "data source uid {other:?}: use ${{datasource}} or ${{loki}}"
                            ),
                        })
                    }
                };
                let expr = target["expr"]
                    .as_str()
                    .ok_or_else(|| Error::Query {
                        source_name: source.clone(),
                        message: "the target has no expr".into(),
                    })?
                    .to_owned();
                out.push(Target {
                    source,
                    expr,
                    datasource,
                });
            }
        }
    }
    Ok(out)
}

/// The stream labels of a LogQL query's selector and the JSON fields it uses after `| json`.
pub fn logql_fields(expr: &str) -> (Vec<String>, Vec<String>) {
    let mut stream = BTreeSet::new();
    if let (Some(start), Some(end)) = (expr.find('{'), expr.find('}')) {
        for matcher in expr[start + 1..end].split(',') {
            let name: String = matcher
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                stream.insert(name);
            }
        }
    }
    let mut fields = BTreeSet::new();
    // line_format templates: {{.field}}
    let mut rest = expr;
    while let Some(i) = rest.find("{{.") {
        let after = &rest[i + 3..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        fields.insert(name);
        rest = after;
    }
    // Label filters after the parser: `| field <op> ...`
    let stages = split_pipeline(expr);
    let mut parsed = false;
    for stage in &stages {
        let stage = stage.trim();
        if stage == "json" || stage.starts_with("json ") || stage == "logfmt" {
            parsed = true;
            continue;
        }
        if !parsed || stage.starts_with("line_format") || stage.starts_with("label_format") {
            continue;
        }
        let name: String = stage
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let op = stage[name.len()..].trim_start();
        if !name.is_empty()
            && ["=", "!=", "=~", "!~", ">", "<"]
                .iter()
                .any(|o| op.starts_with(o))
        {
            fields.insert(name);
        }
    }
    // Grouping of metric queries: by (a, b)
    let mut rest = expr;
    while let Some(i) = rest.find("by (") {
        let after = &rest[i + 4..];
        if let Some(end) = after.find(')') {
            for name in after[..end].split(',') {
                fields.insert(name.trim().to_owned());
            }
        }
        rest = after;
    }
    fields.retain(|f| !f.is_empty() && !stream.contains(f) && f != "__error__");
    (stream.into_iter().collect(), fields.into_iter().collect())
}

/// Splits a LogQL query on the `|` that separate pipeline stages (not inside strings; `|=` and
/// `|~` line filters are stages too).
fn split_pipeline(expr: &str) -> Vec<String> {
    let mut stages = Vec::new();
    let mut current = String::new();
    let mut quoted: Option<char> = None;
    let mut prev = ' ';
    for c in expr.chars() {
        match quoted {
            Some(q) => {
                if c == q && prev != '\\' {
                    quoted = None;
                }
                current.push(c);
            }
            None if c == '"' || c == '`' => {
                quoted = Some(c);
                current.push(c);
            }
            None if c == '|' => stages.push(std::mem::take(&mut current)),
            None => current.push(c),
        }
        prev = c;
    }
    stages.push(current);
    stages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_allowed_variables_are_filled_in() {
        assert_eq!(
            substitute("rate(x{queue=~\"$queue\"}[$__rate_interval]) + $__interval + $__range")
                .unwrap(),
            "rate(x{queue=~\".*\"}[1m]) + 15s + 1h"
        );
        assert!(substitute("rate(x[$interval])")
            .unwrap_err()
            .contains("$interval"));
        assert!(substitute("rate(x[${__rate_interval}])").is_err());
        assert!(substitute("x{a=\"[[queue]]\"}").is_err());
        assert!(substitute("label_replace(x, \"a\", \"$1\", \"b\", \"(.*)\")").is_err());
    }

    #[test]
    fn logql_fields_come_from_filters_templates_and_grouping() {
        let (stream, fields) = logql_fields(
            "{app=\"flowforge-api\"} | json | status >= 500 | line_format \"{{.method}} {{.route}} {{.app}}\"",
        );
        assert_eq!(stream, ["app"]);
        assert_eq!(fields, ["method", "route", "status"]);
        let (_, fields) = logql_fields(
            "sum by (app, level) (count_over_time({app=~\"flowforge-.+\"} | json [15s]))",
        );
        assert_eq!(fields, ["level"]);
        let (_, fields) =
            logql_fields("{app=\"x\"} |= \"a|b\" | json | level=~\"WARN|ERROR\" | message!=\"\"");
        assert_eq!(fields, ["level", "message"]);
    }
}
