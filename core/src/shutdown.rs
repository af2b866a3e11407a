//! Shutdown in one place: the signal, and readiness that turns off first.

use std::sync::atomic::{AtomicBool, Ordering};

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received: shutting down"),
        _ = terminate => tracing::info!("SIGTERM received: shutting down"),
    }
}

/// Resolves when standard input, a pipe, reaches end of file (or fails): the parent holding the
/// pipe's other end has closed it or is gone, whether it exited, crashed or was killed.
///
/// The pipe is read through the reactor (non-blocking), not on a blocking thread: a blocking
/// read of a pipe that stays open would keep the runtime, and so the process, from exiting. If
/// stdin is not a pipe this never resolves (and says so once).
pub async fn stdin_closed() {
    use std::os::fd::AsFd as _;
    use tokio::io::AsyncReadExt as _;
    let pipe = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(tokio::net::unix::pipe::Receiver::from_file);
    let mut pipe = match pipe {
        Ok(pipe) => pipe,
        Err(err) => {
            tracing::warn!(error = %err, "standard input is not a pipe: not watching it for end of file");
            return std::future::pending().await;
        }
    };
    let mut buf = [0u8; 64];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    tracing::info!("standard input closed: shutting down");
}

/// [`shutdown_signal`], or also the end of stdin ([`stdin_closed`]) when `stdin_eof` is set.
pub async fn stop_requested(stdin_eof: bool) {
    if stdin_eof {
        tokio::select! {
            _ = shutdown_signal() => {}
            _ = stdin_closed() => {}
        }
    } else {
        shutdown_signal().await;
    }
}

/// Whether the process should receive traffic. Kept in app state, never global.
#[derive(Debug, Default)]
pub struct Readiness {
    draining: AtomicBool,
}

impl Readiness {
    /// From now on `/readyz` answers 503, so load balancers and KEDA stop sending work.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}
