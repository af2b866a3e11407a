//! The gRPC service KEDA calls: `IsActive`, `StreamIsActive`, `GetMetricSpec`, `GetMetrics`.
//!
//! The metric is the number of ready plus running tasks of the ScaledObject's queues: with
//! running tasks counted, KEDA and the HPA never scale in below the number of workers the
//! running tasks occupy (which pod goes is Kubernetes' choice; the worker's drain lets a removed
//! pod's tasks finish). `StreamIsActive` pushes `true` as soon as an enqueue notification (LISTEN/NOTIFY)
//! makes an idle queue set active, instead of waiting for KEDA's next poll.

use std::pin::Pin;
use std::time::Duration;

use flowforge_core::queue::Queue;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::metadata::ScalerMetadata;
use crate::proto::external_scaler_server::ExternalScaler;
use crate::proto::{
    GetMetricSpecResponse, GetMetricsRequest, GetMetricsResponse, IsActiveResponse, MetricSpec,
    MetricValue, ScaledObjectRef,
};

/// The scaler's answers, from the database.
#[derive(Clone)]
pub struct ScalerService {
    queue: Queue,
    /// Bumped on every enqueue notification and every (re)connection of the listener.
    changes: watch::Receiver<u64>,
    /// How often an open stream re-checks its queues when no notification arrives (the fallback
    /// if a notification is lost, and how an active queue set is seen to go idle).
    stream_poll: Duration,
    /// Ends every open stream (shutdown): KEDA sees a clean end and reconnects elsewhere.
    stop: CancellationToken,
}

impl ScalerService {
    pub fn new(
        queue: Queue,
        changes: watch::Receiver<u64>,
        stream_poll: Duration,
        stop: CancellationToken,
    ) -> Self {
        ScalerService {
            queue,
            changes,
            stream_poll,
            stop,
        }
    }

    async fn active_tasks(&self, meta: &ScalerMetadata) -> Result<i64, Status> {
        let depth = self.queue.depth(&meta.queues).await.map_err(|err| {
            tracing::warn!(error = %err, queues = ?meta.queues, "cannot read queue depth");
            Status::unavailable(format!("cannot read queue depth: {err}"))
        })?;
        metrics::counter!("flowforge_scaler_depth_reads_total").increment(1);
        Ok(depth.active())
    }
}

fn metadata_of(r: &ScaledObjectRef) -> Result<ScalerMetadata, Status> {
    ScalerMetadata::parse(&r.scaler_metadata).map_err(|reason| {
        let so = format!("{}/{}", r.namespace, r.name);
        tracing::warn!(scaled_object = %so, %reason, "invalid scaler metadata");
        Status::invalid_argument(format!("ScaledObject {so}: {reason}"))
    })
}

fn count_call(rpc: &'static str) {
    metrics::counter!("flowforge_scaler_requests_total", "rpc" => rpc).increment(1);
}

type ActiveStream = Pin<Box<dyn Stream<Item = Result<IsActiveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ExternalScaler for ScalerService {
    async fn is_active(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<IsActiveResponse>, Status> {
        count_call("IsActive");
        let meta = metadata_of(request.get_ref())?;
        let active = self.active_tasks(&meta).await? as f64 > meta.activation_tasks;
        Ok(Response::new(IsActiveResponse { result: active }))
    }

    type StreamIsActiveStream = ActiveStream;

    async fn stream_is_active(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<Self::StreamIsActiveStream>, Status> {
        count_call("StreamIsActive");
        let meta = metadata_of(request.get_ref())?;
        let (tx, rx) = mpsc::channel(4);
        let service = self.clone();
        tokio::spawn(async move {
            metrics::gauge!("flowforge_scaler_streams").increment(1.0);
            service.push_activity(meta, tx).await;
            metrics::gauge!("flowforge_scaler_streams").decrement(1.0);
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get_metric_spec(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<GetMetricSpecResponse>, Status> {
        count_call("GetMetricSpec");
        let meta = metadata_of(request.get_ref())?;
        Ok(Response::new(GetMetricSpecResponse {
            metric_specs: vec![MetricSpec {
                metric_name: meta.metric_name(),
                target_size: meta.target_tasks_per_worker.ceil() as i64,
                target_size_float: meta.target_tasks_per_worker,
            }],
        }))
    }

    async fn get_metrics(
        &self,
        request: Request<GetMetricsRequest>,
    ) -> Result<Response<GetMetricsResponse>, Status> {
        count_call("GetMetrics");
        let request = request.into_inner();
        let so = request
            .scaled_object_ref
            .ok_or_else(|| Status::invalid_argument("scaledObjectRef is required"))?;
        let meta = metadata_of(&so)?;
        let active = self.active_tasks(&meta).await?;
        // One series per ScaledObject (a handful per cluster): what KEDA was last told.
        metrics::gauge!(
            "flowforge_scaler_metric_value",
            "scaled_object" => format!("{}/{}", so.namespace, so.name)
        )
        .set(active as f64);
        Ok(Response::new(GetMetricsResponse {
            metric_values: vec![MetricValue {
                metric_name: meta.metric_name(),
                metric_value: active,
                metric_value_float: active as f64,
            }],
        }))
    }
}

impl ScalerService {
    /// One KEDA stream: the current state at once, then every change. While idle, every
    /// notification triggers a check (that is the push); while active, the state is re-checked
    /// every `stream_poll` to see the queue set go idle.
    async fn push_activity(
        self,
        meta: ScalerMetadata,
        tx: mpsc::Sender<Result<IsActiveResponse, Status>>,
    ) {
        let mut changes = self.changes.clone();
        let mut last: Option<bool> = None;
        loop {
            // Mark what has been seen before reading: a notification during the read triggers
            // another read, so none is missed.
            changes.borrow_and_update();
            // An error is logged; the next change or poll retries.
            if let Ok(n) = self.active_tasks(&meta).await {
                let active = n as f64 > meta.activation_tasks;
                if last != Some(active) {
                    if active {
                        metrics::counter!("flowforge_scaler_activations_pushed_total").increment(1);
                    }
                    if tx
                        .send(Ok(IsActiveResponse { result: active }))
                        .await
                        .is_err()
                    {
                        return; // KEDA closed the stream
                    }
                    last = Some(active);
                }
            }
            let idle = last != Some(true);
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tx.closed() => return,
                r = changes.changed(), if idle => if r.is_err() { return },
                _ = tokio::time::sleep(self.stream_poll) => {}
            }
        }
    }
}
