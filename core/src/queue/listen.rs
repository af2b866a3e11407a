//! Wake-ups: LISTEN for enqueue notifications, with reconnects.
//!
//! Notifications only save latency; whoever waits on them also polls, so a notification lost
//! while the connection was down costs at most one poll interval. After a reconnect every
//! subscriber is told ([`Event::Reconnected`]), because anything may have arrived meanwhile.
//! When the database credentials rotate, the LISTEN connection is reopened with the new ones
//! too.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::NOTIFY_CHANNEL;
use crate::db::Db;

/// What the listener saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A queue got new ready tasks.
    Notified(&'a str),
    /// The LISTEN connection was (re)opened: notifications may have been missed before it.
    Reconnected,
}

/// Listens on the enqueue channel until `stop` is cancelled, reconnecting with backoff (and on
/// a change of credentials), and hands every event to `on_event`.
pub fn spawn_listener(
    db: Db,
    stop: CancellationToken,
    on_event: impl Fn(Event<'_>) + Send + Sync + 'static,
) {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        let mut connected = false;
        loop {
            let attempt = tokio::select! {
                _ = stop.cancelled() => return,
                r = listen(&db, &on_event, &mut connected, &mut backoff) => r,
            };
            match attempt {
                Ok(()) => {
                    tracing::info!("database credentials changed; reopening the LISTEN connection");
                    backoff = Duration::ZERO;
                }
                Err(err) => {
                    if connected {
                        tracing::warn!(error = %err, "lost the LISTEN connection; reconnecting");
                    }
                }
            }
            connected = false;
            // Whatever happened, something may have been missed.
            on_event(Event::Reconnected);
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
        }
    });
}

/// Wakes its holder when any of a set of queues gets new tasks.
#[derive(Clone, Debug)]
pub struct Wakeups {
    notify: Arc<Notify>,
}

impl Wakeups {
    /// Listens for new tasks on `queues` (all queues if empty) until `stop` is cancelled.
    pub fn spawn(db: Db, queues: Vec<String>, stop: CancellationToken) -> Self {
        let notify = Arc::new(Notify::new());
        let wakeups = Wakeups {
            notify: notify.clone(),
        };
        let queues: HashSet<String> = queues.into_iter().collect();
        spawn_listener(db, stop, move |event| match event {
            Event::Notified(queue) => {
                if queues.is_empty() || queues.contains(queue) {
                    notify.notify_one();
                }
            }
            Event::Reconnected => {
                notify.notify_waiters();
                notify.notify_one();
            }
        });
        wakeups
    }

    /// Waits for the next wake-up. A wake-up that arrived since the last call is returned at once.
    pub async fn wait(&self) {
        self.notify.notified().await;
    }
}

/// Listens until the connection fails (`Err`) or the credentials change (`Ok`).
async fn listen(
    db: &Db,
    on_event: &(impl Fn(Event<'_>) + Send + Sync),
    connected: &mut bool,
    backoff: &mut Duration,
) -> crate::Result<()> {
    // Taking a connection through the handle first recovers rotated credentials if needed;
    // the listener then takes that fresh connection from the pool.
    let generation = db.credentials_generation();
    drop(db.acquire().await?);
    let mut listener = PgListener::connect_with(db.pool()).await?;
    listener.ignore_pool_close_event(true);
    listener.listen(NOTIFY_CHANNEL).await?;
    if !*connected {
        tracing::info!(channel = NOTIFY_CHANNEL, "listening for new tasks");
    }
    *connected = true;
    *backoff = Duration::from_millis(100);
    // Tasks may have been enqueued before LISTEN took effect.
    on_event(Event::Reconnected);
    let credentials_changed = db.credentials_changed(generation);
    tokio::pin!(credentials_changed);
    loop {
        let received = tokio::select! {
            r = listener.try_recv() => r?,
            _ = &mut credentials_changed => return Ok(()),
        };
        match received {
            Some(n) => on_event(Event::Notified(n.payload())),
            // The connection dropped; the next call would reconnect silently, but notifications
            // may have been lost in between, so report it and let the caller tell everyone.
            None => return Err(sqlx::Error::PoolClosed.into()),
        }
    }
}
