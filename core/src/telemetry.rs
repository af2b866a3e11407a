//! Logs and metrics set-up, in one place.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// Installs the global log subscriber, filtered by `RUST_LOG` (default `info`), writing to
/// `writer` (stderr in the binaries; tests pass a sink).
///
/// `json` (the default format): one object per line with `timestamp`, `level`, `message`,
/// `target`, the event's fields and the fields of every enclosing span at the top level (the
/// request's `request_id`, `method`, `route`, `trace_id`, `span_id`; the task's `task_id`,
/// `queue`, `kind`, `attempt`, `trace_id`, `span_id`), so a log pipeline needs no nested paths.
/// Spans never carry secrets or payloads. `text`: human-readable lines for local development.
pub fn init_logs<W>(format: &str, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let result = if format == "text" {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .try_init()
    } else {
        let json = json_subscriber::fmt::layer()
            .with_writer(writer)
            .flatten_event(true)
            .with_current_span(false)
            .flatten_span_list_on_top_level(true);
        tracing_subscriber::registry()
            .with(filter)
            .with(json)
            .try_init()
            .map_err(Into::into)
    };
    // A second initialisation (tests) keeps the first subscriber.
    let _ = result;
}

/// Buckets (seconds) for latencies measured against the SLO thresholds (300 ms, 2 s, 30 s).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0,
    300.0,
];

/// The process-wide Prometheus recorder, installed on first use.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .expect("bucket list is not empty")
                .set_buckets_for_metric(
                    Matcher::Full("flowforge_enqueue_batch_size".into()),
                    &[
                        1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
                    ],
                )
                .expect("bucket list is not empty");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed, in which case ours simply stays empty.
            if metrics::set_global_recorder(recorder).is_ok() {
                describe_metrics();
            }
            // Histogram samples are buffered until drained into their buckets; without regular
            // upkeep a process that nobody scrapes would buffer every sample it ever recorded.
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(std::time::Duration::from_secs(5));
                    upkeep.run_upkeep();
                })
                .expect("spawning the metrics upkeep thread");
            handle
        })
        .clone()
}

/// `# HELP` (and unit) of every metric FlowForge exports, in one catalog. A process shows only
/// the metrics it records; `promtool check metrics` wants help text on each. Keep this list in
/// step with `docs/monitoring.md` and the metric names the generated rules use.
fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    // flowforge-api
    describe_counter!(
        "flowforge_http_requests_total",
        "HTTP requests served, by method, route template and status."
    );
    describe_histogram!(
        "flowforge_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request duration, by method, route template and status."
    );
    describe_counter!(
        "flowforge_tasks_created_total",
        "Tasks created through the API, by queue."
    );
    describe_histogram!(
        "flowforge_enqueue_batch_size",
        "Tasks written per enqueue statement (group commit of single creates)."
    );
    describe_counter!("flowforge_auth_total", "Bearer-token checks, by result.");
    describe_counter!(
        "flowforge_api_tls_reloads_total",
        "Changes of the API's TLS certificate files, by result (loaded, refused)."
    );
    // flowforge-worker
    describe_counter!("flowforge_tasks_completed_total", "Task attempts ended, by queue, kind and outcome (succeeded, retried, dead, lease_lost, handed_back).");
    describe_histogram!(
        "flowforge_task_processing_duration_seconds",
        Unit::Seconds,
        "Time a task attempt ran, by queue and kind."
    );
    describe_histogram!(
        "flowforge_task_wait_seconds",
        Unit::Seconds,
        "Time from a task becoming ready to its start, by queue (this worker's starts)."
    );
    describe_gauge!(
        "flowforge_worker_concurrency",
        "Task slots of this worker process."
    );
    describe_gauge!(
        "flowforge_worker_tasks_running",
        "Tasks this worker process runs now."
    );
    describe_counter!(
        "flowforge_tasks_rescued_total",
        "Tasks whose lease expired, by outcome (requeued, dead)."
    );
    describe_counter!(
        "flowforge_tasks_pruned_total",
        "Finished tasks deleted after their retention."
    );
    // flowforge-scaler
    describe_gauge!(
        "flowforge_queue_depth",
        "Tasks by queue and state (ready, scheduled, running, dead), read from the database."
    );
    describe_gauge!(
        "flowforge_queue_oldest_ready_age_seconds",
        Unit::Seconds,
        "How long the oldest ready task of the queue has been ready."
    );
    describe_counter!(
        "flowforge_task_wait_events_total",
        "Task starts counted for the task-wait SLI, by queue."
    );
    describe_counter!(
        "flowforge_task_wait_good_events_total",
        "Task starts within the task-wait threshold of becoming ready, by queue."
    );
    describe_gauge!(
        "flowforge_slo_burn_rate",
        "Error-budget burn rate of an SLO over a window, computed from the database."
    );
    describe_gauge!(
        "flowforge_slo_error_budget_remaining",
        "Share of the SLO's 30-day error budget left, computed from the database."
    );
    describe_gauge!(
        "flowforge_scaler_figures_timestamp_seconds",
        Unit::Seconds,
        "Database time of the last successful read of the queue figures (Unix seconds)."
    );
    describe_counter!(
        "flowforge_scaler_requests_total",
        "gRPC calls from KEDA, by method."
    );
    describe_gauge!("flowforge_scaler_streams", "Open StreamIsActive streams.");
    describe_counter!(
        "flowforge_scaler_activations_pushed_total",
        "Active answers pushed on StreamIsActive streams."
    );
    describe_counter!(
        "flowforge_scaler_depth_reads_total",
        "Queue depth reads of the gRPC service."
    );
    describe_gauge!(
        "flowforge_scaler_metric_value",
        "Metric value last returned to KEDA, by ScaledObject (namespace/name)."
    );
    describe_gauge!(
        "flowforge_local_workers",
        "Local mode: worker processes running."
    );
    describe_gauge!(
        "flowforge_local_workers_desired",
        "Local mode: worker processes the modelled HPA asks for."
    );
    // Every process: secrets and the database
    describe_counter!(
        "flowforge_secret_refresh_total",
        "Secret checks, by secret and result."
    );
    describe_gauge!(
        "flowforge_secret_last_success_timestamp_seconds",
        Unit::Seconds,
        "End of the last successful check of the secret (Unix seconds)."
    );
    describe_gauge!(
        "flowforge_secret_refresh_failing",
        "1 while checks of the secret fail (the last good value stays in use)."
    );
    describe_gauge!(
        "flowforge_secret_loaded",
        "1 once a version of the secret has loaded."
    );
    describe_gauge!(
        "flowforge_secret_version_info",
        "1 for the secret version in use, 0 for versions it replaced."
    );
    describe_gauge!(
        "flowforge_secret_version_written_timestamp_seconds",
        Unit::Seconds,
        "When the secret version in use was written (Unix seconds)."
    );
    describe_counter!(
        "flowforge_db_auth_failures_total",
        "Database connections refused for their credentials."
    );
    describe_counter!(
        "flowforge_db_credential_recoveries_total",
        "Recoveries after refused credentials, by result."
    );
    describe_counter!(
        "flowforge_db_credential_swaps_total",
        "Changes of the database login in use."
    );
    describe_counter!(
        "flowforge_db_statement_retries_total",
        "Statements run again after their session was terminated."
    );
    describe_gauge!(
        "flowforge_db_pool_connections",
        "Connections of the database pool, by state (in_use, idle)."
    );
    describe_gauge!(
        "flowforge_db_pool_max_connections",
        "Size limit of the database pool."
    );
}
