//! The ScaledObject's trigger metadata: `queues`, `targetTasksPerWorker`, `activationTasks`.

use std::collections::HashMap;

use flowforge_core::names::{is_valid_name, NAME_PATTERN};

/// Default tasks per worker: a worker's default concurrency (`FLOWFORGE_CONCURRENCY`).
pub const DEFAULT_TARGET_TASKS_PER_WORKER: f64 = 32.0;

/// What one ScaledObject asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalerMetadata {
    /// Queues whose ready and running tasks count, sorted and without duplicates.
    pub queues: Vec<String>,
    /// Tasks one worker replica should carry: the HPA's target average value.
    pub target_tasks_per_worker: f64,
    /// The scaler is active (scales from zero) when more tasks than this are ready or running.
    pub activation_tasks: f64,
}

impl ScalerMetadata {
    /// Parses the trigger metadata. The error names the key and says what is expected; it is
    /// sent back to KEDA as InvalidArgument.
    pub fn parse(metadata: &HashMap<String, String>) -> Result<Self, String> {
        let raw = metadata
            .get("queues")
            .map(|q| q.trim())
            .filter(|q| !q.is_empty())
            .ok_or("metadata \"queues\" is required: a comma-separated list of queue names")?;
        let mut queues: Vec<String> = Vec::new();
        for q in raw.split(',').map(str::trim).filter(|q| !q.is_empty()) {
            if !is_valid_name(q) {
                return Err(format!(
                    "metadata \"queues\": {q:?} is not a queue name ({NAME_PATTERN})"
                ));
            }
            queues.push(q.to_owned());
        }
        if queues.is_empty() {
            return Err("metadata \"queues\" names no queue".into());
        }
        queues.sort();
        queues.dedup();
        let number = |key: &str, default: f64| -> Result<f64, String> {
            match metadata.get(key).map(|v| v.trim()) {
                None | Some("") => Ok(default),
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite())
                    .ok_or_else(|| format!("metadata {key:?}: {v:?} is not a number")),
            }
        };
        let target_tasks_per_worker =
            number("targetTasksPerWorker", DEFAULT_TARGET_TASKS_PER_WORKER)?;
        if target_tasks_per_worker <= 0.0 {
            return Err("metadata \"targetTasksPerWorker\" must be greater than 0".into());
        }
        let activation_tasks = number("activationTasks", 0.0)?;
        if activation_tasks < 0.0 {
            return Err("metadata \"activationTasks\" must be 0 or more".into());
        }
        Ok(ScalerMetadata {
            queues,
            target_tasks_per_worker,
            activation_tasks,
        })
    }

    /// The metric's name: stable for a queue set, valid as a Kubernetes metric name.
    pub fn metric_name(&self) -> String {
        format!("flowforge-tasks-{}", self.queues.join("-")).replace(['_', '.'], "-")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_queues_target_and_activation() {
        let m = ScalerMetadata::parse(&meta(&[
            ("queues", " emails, default ,emails"),
            ("targetTasksPerWorker", "10"),
            ("activationTasks", "2.5"),
        ]))
        .unwrap();
        assert_eq!(m.queues, vec!["default", "emails"]);
        assert_eq!(m.target_tasks_per_worker, 10.0);
        assert_eq!(m.activation_tasks, 2.5);
        assert_eq!(m.metric_name(), "flowforge-tasks-default-emails");
        let d = ScalerMetadata::parse(&meta(&[("queues", "q")])).unwrap();
        assert_eq!(d.target_tasks_per_worker, DEFAULT_TARGET_TASKS_PER_WORKER);
        assert_eq!(d.activation_tasks, 0.0);
    }

    #[test]
    fn bad_metadata_names_the_key() {
        for (pairs, key) in [
            (vec![], "queues"),
            (vec![("queues", " , ")], "queues"),
            (vec![("queues", "Bad Queue")], "queues"),
            (
                vec![("queues", "q"), ("targetTasksPerWorker", "0")],
                "targetTasksPerWorker",
            ),
            (
                vec![("queues", "q"), ("targetTasksPerWorker", "ten")],
                "targetTasksPerWorker",
            ),
            (
                vec![("queues", "q"), ("activationTasks", "-1")],
                "activationTasks",
            ),
            (
                vec![("queues", "q"), ("activationTasks", "NaN")],
                "activationTasks",
            ),
        ] {
            let err = ScalerMetadata::parse(&meta(&pairs)).unwrap_err();
            assert!(err.contains(key), "{pairs:?}: {err}");
        }
    }
}
