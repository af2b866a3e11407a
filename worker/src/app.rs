//! The worker process: database, admin server, housekeeping and runner, wired together.

use std::net::SocketAddr;
use std::sync::Arc;

use flowforge_core::admin::{self, AdminState};
use flowforge_core::queue::maintenance::{run_maintenance, MaintenanceSettings, Retention};
use flowforge_core::queue::{Backoff, Queue, Wakeups};
use flowforge_core::shutdown::Readiness;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::handlers::{builtin_registry, AllowList, BuiltinSettings};
use crate::runner::{DrainReport, Runner, RunnerSettings};
use crate::{Error, Registry, Result};

/// A worker with its listeners bound, ready to run.
pub struct Application {
    config: Config,
    /// Stops the database secret refresher when the worker ends.
    stop_secrets: CancellationToken,
    queue: Queue,
    registry: Registry,
    admin: TcpListener,
    readiness: Arc<Readiness>,
}

impl Application {
    /// Builds the worker with the built-in kinds. Binding happens here, so `admin_addr` may use port 0.
    pub async fn build(config: Config) -> Result<Self> {
        let registry = builtin_registry(&BuiltinSettings {
            http_allow: AllowList::new(config.http_allow_hosts.iter().cloned()),
            enable_fail: !config.disable_fail_kind,
        });
        Self::build_with(config, registry).await
    }

    /// Builds the worker with a custom registry (embedding FlowForge in your own binary).
    pub async fn build_with(config: Config, registry: Registry) -> Result<Self> {
        // The recorder first: the secret watchers publish gauges as soon as they start.
        flowforge_core::telemetry::metrics_handle();
        let stop_secrets = CancellationToken::new();
        let db = flowforge_core::db::Db::from_config(
            &config.db,
            &config.secrets,
            "flowforge-worker",
            stop_secrets.clone(),
        )
        .map_err(Error::Config)?;
        // A normal start is ready at once; a secret store that is down is not fatal.
        db.wait_loaded(std::time::Duration::from_secs(2)).await;
        let queue = Queue::new(db)
            .with_backoff(Backoff {
                base: config.retry_base,
                cap: config.retry_cap,
            })
            .with_keep_succeeded(!config.retention.is_zero());
        let admin = TcpListener::bind(config.admin_addr)
            .await
            .map_err(|source| Error::Bind {
                what: "admin server",
                addr: config.admin_addr,
                source,
            })?;
        Ok(Application {
            config,
            stop_secrets,
            queue,
            registry,
            admin,
            readiness: Arc::default(),
        })
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// Runs until `shutdown` resolves, then drains and returns what the drain did.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<DrainReport> {
        let Application {
            config,
            stop_secrets,
            queue,
            registry,
            admin,
            readiness,
        } = self;
        let stop_claims = CancellationToken::new();
        let stop_background = CancellationToken::new();

        let admin_state = AdminState {
            name: "flowforge-worker",
            version: env!("CARGO_PKG_VERSION"),
            readiness: readiness.clone(),
            check: admin::database_check(queue.clone()),
            metrics: flowforge_core::telemetry::metrics_handle(),
            db: Some(queue.db().clone()),
        };
        let admin_server = tokio::spawn(admin::serve(admin, admin_state, stop_background.clone()));
        let wakeups = Wakeups::spawn(
            queue.db().clone(),
            config.queues.clone(),
            stop_background.clone(),
        );
        let maintenance = tokio::spawn(run_maintenance(
            queue.clone(),
            MaintenanceSettings {
                rescue_interval: config.rescue_interval,
                prune_interval: config.prune_interval,
                retention: Retention {
                    finished: config.retention,
                    dead: config.dead_retention,
                },
                ..MaintenanceSettings::default()
            },
            stop_background.clone(),
        ));

        tracing::info!(
            queues = ?config.queues,
            concurrency = config.concurrency,
            kinds = ?registry.kinds(),
            admin = %config.admin_addr,
            "worker started"
        );
        let runner = Runner::new(
            queue,
            registry,
            RunnerSettings {
                worker_id: worker_id(),
                queues: config.queues.clone(),
                concurrency: config.concurrency as usize,
                claim_batch: config.claim_batch as usize,
                lease: config.lease,
                poll_interval: config.poll_interval,
                shutdown_grace: config.shutdown_grace,
            },
        );
        let signal_readiness = readiness.clone();
        let signal_stop = stop_claims.clone();
        tokio::spawn(async move {
            shutdown.await;
            signal_readiness.start_draining();
            signal_stop.cancel();
        });
        let report = runner.run(wakeups, stop_claims).await;
        tracing::info!(handed_back = report.handed_back, "drained; exiting");
        stop_background.cancel();
        let _ = maintenance.await;
        stop_secrets.cancel();
        if let Ok(Err(err)) = admin_server.await {
            return Err(Error::Serve(err));
        }
        Ok(report)
    }
}

/// Host name (the pod name on Kubernetes) and process id, for operators reading `worker_id`.
fn worker_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".into());
    format!("{host}:{}", std::process::id())
}
