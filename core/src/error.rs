//! The one error type of the core crate.

/// Errors of the core library. Callers map them to HTTP statuses or exit codes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database could not be reached (connection refused, pool exhausted, server restarting).
    /// Retrying later is expected to succeed.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// Any other database error: a bug or a schema mismatch.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// A task was not in the state an operation needs (cancel of a running task, retry of a queued one).
    #[error("task {id} is {status}: {action} needs {needs}")]
    Conflict {
        id: uuid::Uuid,
        status: String,
        action: &'static str,
        needs: &'static str,
    },
    /// No task with this id is retained.
    #[error("no task with id {0}")]
    NotFound(uuid::Uuid),
    /// A secret could not be read or parsed.
    #[error("secret {source_name}: {reason}")]
    Secret { source_name: String, reason: String },
    /// The schema migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        if is_unavailable(&err) {
            Error::Unavailable(err)
        } else {
            Error::Database(err)
        }
    }
}

/// Whether a database error means "the server is not reachable right now" rather than a bug.
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => {
            // Class 08: connection exception; 57P01..57P03: admin shutdown, crash shutdown,
            // cannot connect now (starting up / shutting down); 53300: too many connections;
            // 28P01 / 28000: credentials rejected (a rotated password not yet picked up).
            let code = db.code();
            let code = code.as_deref().unwrap_or("");
            code.starts_with("08")
                || matches!(
                    code,
                    "57P01" | "57P02" | "57P03" | "53300" | "28P01" | "28000"
                )
        }
        _ => false,
    }
}

impl Error {
    /// Whether retrying the operation later can succeed.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable(_))
    }
}
