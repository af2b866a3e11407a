//! Wake-ups: LISTEN for enqueue notifications, with reconnects.
//!
//! Notifications only save latency; whoever waits on [`Wakeups`] also polls, so a notification
//! lost while the connection was down costs at most one poll interval. After a reconnect every
//! subscriber is woken anyway, because anything may have arrived meanwhile.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::NOTIFY_CHANNEL;

/// Wakes its holder when any of a set of queues gets new tasks.
#[derive(Clone, Debug)]
pub struct Wakeups {
    notify: Arc<Notify>,
}

impl Wakeups {
    /// Listens for new tasks on `queues` (all queues if empty) until `stop` is cancelled.
    pub fn spawn(pool: PgPool, queues: Vec<String>, stop: CancellationToken) -> Self {
        let notify = Arc::new(Notify::new());
        let wakeups = Wakeups {
            notify: notify.clone(),
        };
        let queues: HashSet<String> = queues.into_iter().collect();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            let mut connected = false;
            loop {
                let attempt = tokio::select! {
                    _ = stop.cancelled() => return,
                    r = listen(&pool, &queues, &notify, &mut connected, &mut backoff) => r,
                };
                if let Err(err) = attempt {
                    if connected {
                        tracing::warn!(error = %err, "lost the LISTEN connection; reconnecting");
                        connected = false;
                    }
                }
                // Whatever happened, something may have been missed: let subscribers poll.
                notify.notify_waiters();
                notify.notify_one();
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        });
        wakeups
    }

    /// Waits for the next wake-up. A wake-up that arrived since the last call is returned at once.
    pub async fn wait(&self) {
        self.notify.notified().await;
    }
}

async fn listen(
    pool: &PgPool,
    queues: &HashSet<String>,
    notify: &Notify,
    connected: &mut bool,
    backoff: &mut Duration,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.ignore_pool_close_event(true);
    listener.listen(NOTIFY_CHANNEL).await?;
    if !*connected {
        tracing::info!(channel = NOTIFY_CHANNEL, "listening for new tasks");
    }
    *connected = true;
    *backoff = Duration::from_millis(100);
    // Tasks may have been enqueued before LISTEN took effect.
    notify.notify_one();
    loop {
        match listener.try_recv().await? {
            Some(n) => {
                if queues.is_empty() || queues.contains(n.payload()) {
                    notify.notify_one();
                }
            }
            // The connection dropped; the next call would reconnect silently, but notifications
            // may have been lost in between, so report it and let the caller wake everyone.
            None => return Err(sqlx::Error::PoolClosed),
        }
    }
}
