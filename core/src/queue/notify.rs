//! Wake-up notifications, sent after the enqueue commits, never inside it.
//!
//! PostgreSQL serialises the commits of every transaction that issued a NOTIFY (each holds a
//! global lock through its WAL flush), which would cap enqueue throughput at one durable commit at
//! a time. So enqueues commit without NOTIFY, and a background task per process then sends one
//! NOTIFY per queue in a tiny transaction of its own, committed asynchronously (a notification
//! lives in memory only; there is nothing to make durable). Queues touched while a send is in
//! flight are coalesced into the next one. A notification lost in a crash costs a poll interval
//! of latency, never a task: listeners also poll.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use crate::db::{with_retry, Db};
use tokio::sync::Notify;

use super::NOTIFY_CHANNEL;

/// Sends coalesced wake-ups for queues that got new ready tasks.
#[derive(Debug, Clone)]
pub struct Notifier {
    pending: Arc<Mutex<BTreeSet<String>>>,
    signal: Arc<Notify>,
}

impl Notifier {
    /// Starts the sending task; it ends when every clone of the notifier is dropped.
    pub fn spawn(db: Db) -> Self {
        let notifier = Notifier {
            pending: Arc::default(),
            signal: Arc::new(Notify::new()),
        };
        let pending = Arc::downgrade(&notifier.pending);
        let signal = notifier.signal.clone();
        tokio::spawn(async move {
            loop {
                signal.notified().await;
                let Some(pending) = pending.upgrade() else {
                    return;
                };
                let queues: Vec<String> =
                    std::mem::take(&mut *pending.lock().expect("notifier lock"))
                        .into_iter()
                        .collect();
                drop(pending);
                if queues.is_empty() {
                    continue;
                }
                if let Err(err) = send(&db, &queues).await {
                    tracing::debug!(error = %err, "wake-up notification not sent; listeners will poll");
                }
            }
        });
        notifier
    }

    /// Schedules a wake-up for `queue`.
    pub fn notify(&self, queue: &str) {
        let mut pending = self.pending.lock().expect("notifier lock");
        if !pending.contains(queue) {
            pending.insert(queue.to_owned());
        }
        drop(pending);
        self.signal.notify_one();
    }
}

async fn send(db: &Db, queues: &[String]) -> crate::Result<()> {
    // set_config(..., true) lasts until the end of this statement's implicit transaction, so its
    // commit does not wait for a WAL flush.
    with_retry!(db, |conn| {
        sqlx::query(
        "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, q) FROM unnest($2::text[]) AS q",
    )
    .bind(NOTIFY_CHANNEL)
    .bind(queues)
        .execute(conn)
        .await
    })?;
    Ok(())
}
