//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong reading the spec, generating or reading the generated files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A YAML file does not parse (or does not have the expected shape).
    #[error("{path}: {source}")]
    Yaml {
        path: PathBuf,
        #[source]
        source: serde_norway::Error,
    },
    /// A JSON file does not parse.
    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The spec (or the test cases) parsed but says something that cannot be generated.
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    /// A query in a committed file cannot be turned into something Prometheus or Loki runs.
    #[error("{source_name}: {message}")]
    Query {
        source_name: String,
        message: String,
    },
    /// Committed generated files differ from what `generate` writes.
    #[error(
        "generated files are stale: {}; run `cargo run -p flowforge-slo -- generate` and commit the result",
        .0.join(", ")
    )]
    Stale(Vec<String>),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
