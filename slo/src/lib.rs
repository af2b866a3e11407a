//! FlowForge SLOs as code.
//!
//! One spec (`slo/slos.yaml`) and its test cases (`slo/cases.yaml`) generate the Prometheus rule
//! file (and its copy as a Prometheus Operator `PrometheusRule` under `k8s/`), the promtool unit
//! tests and the Grafana dashboards: [`generate`] returns what the files should contain,
//! [`write`] writes them, [`stale_files`] names the committed files that differ.
//! [`queries`] and [`logql_queries`] read the committed files back, for tests that run every
//! query against live data.
#![forbid(unsafe_code)]

pub mod cases;
pub mod dashboards;
pub mod duration;
pub mod error;
pub mod model;
pub mod promtests;
pub mod queries;
pub mod rules;
pub mod spec;

use std::path::Path;

pub use error::{Error, Result};
pub use queries::{logql_queries, queries, LogQuery, Query, QueryKind};

use cases::Cases;
use spec::Spec;

/// A file `generate` writes: its path relative to the repository root, and its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    pub path: String,
    pub contents: String,
}

/// Everything generated from the spec and the test cases in `repo_root`, in a fixed order.
pub fn generate(repo_root: &Path) -> Result<Vec<GeneratedFile>> {
    let spec = Spec::load(&Spec::path(repo_root))?;
    let cases_path = Cases::path(repo_root);
    let cases = Cases::load(&cases_path, &spec)?;
    let mut files = vec![
        GeneratedFile {
            path: rules::RULES_PATH.to_owned(),
            contents: rules::render(&spec),
        },
        GeneratedFile {
            path: rules::PROMETHEUS_RULE_PATH.to_owned(),
            contents: rules::render_prometheus_rule(&spec),
        },
    ];
    let tests = promtests::files(&spec, &cases).map_err(|message| Error::Invalid {
        path: cases_path,
        message,
    })?;
    for (path, contents) in tests.into_iter().chain(dashboards::files(&spec)) {
        files.push(GeneratedFile { path, contents });
    }
    Ok(files)
}

/// What `write` did to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    Written,
    /// A file generated before that is no longer generated (e.g. a renamed dashboard).
    Removed,
}

/// Generates and writes every file under `repo_root`; returns what happened to each.
pub fn write(repo_root: &Path) -> Result<Vec<(String, Outcome)>> {
    let files = generate(repo_root)?;
    let mut report = Vec::new();
    for file in &files {
        let path = repo_root.join(&file.path);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(file.contents.as_str()) {
            report.push((file.path.clone(), Outcome::Unchanged));
            continue;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        std::fs::write(&path, &file.contents).map_err(|e| Error::io(&path, e))?;
        report.push((file.path.clone(), Outcome::Written));
    }
    for orphan in orphans(repo_root, &files)? {
        let path = repo_root.join(&orphan);
        std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        report.push((orphan, Outcome::Removed));
    }
    Ok(report)
}

/// The committed files that differ from what `generate` writes (missing ones included), and
/// generated files that are no longer generated.
pub fn stale_files(repo_root: &Path) -> Result<Vec<String>> {
    let files = generate(repo_root)?;
    let mut stale: Vec<String> = files
        .iter()
        .filter(|f| {
            std::fs::read_to_string(repo_root.join(&f.path))
                .ok()
                .as_deref()
                != Some(f.contents.as_str())
        })
        .map(|f| f.path.clone())
        .collect();
    stale.extend(orphans(repo_root, &files)?);
    Ok(stale)
}

/// `Ok` if every generated file is current, else [`Error::Stale`] naming the others.
pub fn check(repo_root: &Path) -> Result<()> {
    let stale = stale_files(repo_root)?;
    if stale.is_empty() {
        Ok(())
    } else {
        Err(Error::Stale(stale))
    }
}

/// Files in the generated folders that carry the generator's mark but are not generated now.
fn orphans(repo_root: &Path, files: &[GeneratedFile]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (dir, ext, mark) in [
        ("alerts/tests", "yaml", rules::GENERATED_MARKER),
        ("dashboards", "json", dashboards::GENERATED_NOTE),
    ] {
        let full = repo_root.join(dir);
        let Ok(entries) = std::fs::read_dir(&full) else {
            continue;
        };
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            if path.extension().is_none_or(|e| e != ext) {
                continue;
            }
            let rel = format!(
                "{dir}/{}",
                path.file_name().unwrap_or_default().to_string_lossy()
            );
            if files.iter().any(|f| f.path == rel) {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            if text.contains(mark) {
                out.push(rel);
            }
        }
    }
    Ok(out)
}
