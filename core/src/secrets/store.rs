//! Reading a secret from its source: a JSON file, or AWS Secrets Manager.
//!
//! Both answer two questions: which version holds each stage now ([`Store::versions`], cheap:
//! `DescribeSecret`, or reading a small file), and what a stage's value is ([`Store::fetch`]:
//! `GetSecretValue` for that stage, always named explicitly). A file has one stage, current.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::Client;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::SecretSource;

/// A version stage of a rotating secret (the staging labels of Secrets Manager).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The value in use (`AWSCURRENT`).
    Current,
    /// The value before the last rotation (`AWSPREVIOUS`).
    Previous,
    /// A rotation in progress: written, maybe not yet set on the database (`AWSPENDING`).
    Pending,
}

impl Stage {
    pub fn label(self) -> &'static str {
        match self {
            Stage::Current => "AWSCURRENT",
            Stage::Previous => "AWSPREVIOUS",
            Stage::Pending => "AWSPENDING",
        }
    }
}

/// One version of a secret's raw value.
pub struct Fetched {
    /// Identity of the version (Secrets Manager's VersionId, or a digest of a file's content).
    /// Only compared, never shown.
    pub version: String,
    /// How the version is shown in logs and metrics: the VersionId, or the file's modification
    /// time. Never derived from the value.
    pub label: String,
    pub value: SecretString,
    /// When this version was written (Secrets Manager's CreatedDate, a file's mtime).
    pub written: SystemTime,
}

/// Which version holds each stage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Versions {
    pub current: Option<String>,
    pub previous: Option<String>,
    pub pending: Option<String>,
}

impl Versions {
    pub fn of(&self, stage: Stage) -> Option<&str> {
        match stage {
            Stage::Current => self.current.as_deref(),
            Stage::Previous => self.previous.as_deref(),
            Stage::Pending => self.pending.as_deref(),
        }
    }
}

/// Why reading a secret failed; the kind is the `result` label of the refresh metric.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The store did not answer (network, timeout, throttling, a 5xx).
    #[error("secret store unreachable: {0}")]
    Unreachable(String),
    /// The store answered no (not found, access denied, a deleted or misconfigured secret).
    #[error("secret store refused: {0}")]
    Refused(String),
    /// The value is not what it should be (not JSON, a missing field, no AWSCURRENT).
    #[error("invalid secret value: {0}")]
    Invalid(String),
}

impl FetchError {
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::Unreachable(_) => "unreachable",
            FetchError::Refused(_) => "refused",
            FetchError::Invalid(_) => "invalid",
        }
    }
}

/// A secret's source, ready to read.
pub struct Store {
    inner: Inner,
}

enum Inner {
    File(PathBuf),
    Aws {
        id: String,
        client: OnceCell<Client>,
    },
}

impl Store {
    pub fn new(source: &SecretSource) -> Self {
        let inner = match source {
            SecretSource::File(path) => Inner::File(path.clone()),
            SecretSource::AwsSecretsManager(id) => Inner::Aws {
                id: id.clone(),
                client: OnceCell::new(),
            },
        };
        Store { inner }
    }

    /// Whether the source has version stages beyond the current one.
    pub fn has_stages(&self) -> bool {
        matches!(self.inner, Inner::Aws { .. })
    }

    /// Which version holds each stage, without reading any value from Secrets Manager.
    pub async fn versions(&self) -> Result<Versions, FetchError> {
        match &self.inner {
            Inner::File(path) => {
                let (content, _) = read_file(path).await?;
                Ok(Versions {
                    current: Some(file_version(&content)),
                    ..Versions::default()
                })
            }
            Inner::Aws { id, .. } => {
                let out = self
                    .client()
                    .await
                    .describe_secret()
                    .secret_id(id)
                    .send()
                    .await
                    .map_err(classify)?;
                Ok(stages_of(out.version_ids_to_stages()))
            }
        }
    }

    /// The value of `stage`; `None` if no version holds it.
    pub async fn fetch(&self, stage: Stage) -> Result<Option<Fetched>, FetchError> {
        match &self.inner {
            Inner::File(path) => {
                if stage != Stage::Current {
                    return Ok(None);
                }
                let (content, modified) = read_file(path).await?;
                Ok(Some(Fetched {
                    version: file_version(&content),
                    label: format!("mtime:{}", humantime::format_rfc3339_millis(modified)),
                    value: SecretString::from(content),
                    written: modified,
                }))
            }
            Inner::Aws { id, .. } => {
                let result = self
                    .client()
                    .await
                    .get_secret_value()
                    .secret_id(id)
                    .version_stage(stage.label())
                    .send()
                    .await;
                let out = match result {
                    Ok(out) => out,
                    Err(SdkError::ServiceError(e))
                        if stage != Stage::Current && e.err().is_resource_not_found_exception() =>
                    {
                        return Ok(None)
                    }
                    Err(e) => return Err(classify(e)),
                };
                let version = out
                    .version_id()
                    .ok_or_else(|| {
                        FetchError::Invalid("GetSecretValue returned no VersionId".into())
                    })?
                    .to_owned();
                let Some(value) = out.secret_string() else {
                    return Err(FetchError::Invalid(format!(
                        "version {version} has no SecretString (binary secrets are not supported)"
                    )));
                };
                let written = out
                    .created_date()
                    .and_then(|d| SystemTime::try_from(*d).ok())
                    .unwrap_or_else(SystemTime::now);
                Ok(Some(Fetched {
                    label: version.clone(),
                    version,
                    value: SecretString::from(value.to_owned()),
                    written,
                }))
            }
        }
    }

    async fn client(&self) -> &Client {
        let Inner::Aws { client, .. } = &self.inner else {
            unreachable!("only Secrets Manager sources have a client")
        };
        client.get_or_init(aws_client).await
    }
}

/// A Secrets Manager client from the SDK's standard configuration chain (environment, profile,
/// web identity for IRSA, container and instance metadata), over rustls with ring. Calls are
/// bounded in time, so a store that hangs counts as unreachable instead of stalling refreshes.
async fn aws_client() -> Client {
    use aws_config::timeout::TimeoutConfig;
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(12))
                .build(),
        )
        .load()
        .await;
    Client::new(&config)
}

fn classify<E>(err: SdkError<E, HttpResponse>) -> FetchError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    let message = format!("{}", DisplayErrorContext(&err));
    match &err {
        // Throttling and server errors pass; anything else the service says is its answer.
        SdkError::ServiceError(service)
            if service.raw().status().as_u16() >= 500
                || service
                    .err()
                    .code()
                    .is_some_and(|c| c.contains("Throttling")) =>
        {
            FetchError::Unreachable(message)
        }
        SdkError::ServiceError(_) | SdkError::ConstructionFailure(_) => {
            FetchError::Refused(message)
        }
        _ => FetchError::Unreachable(message),
    }
}

fn stages_of(map: Option<&HashMap<String, Vec<String>>>) -> Versions {
    let mut versions = Versions::default();
    for (version, stages) in map.into_iter().flatten() {
        for stage in stages {
            let slot = match stage.as_str() {
                "AWSCURRENT" => &mut versions.current,
                "AWSPREVIOUS" => &mut versions.previous,
                "AWSPENDING" => &mut versions.pending,
                _ => continue,
            };
            *slot = Some(version.clone());
        }
    }
    versions
}

async fn read_file(path: &PathBuf) -> Result<(String, SystemTime), FetchError> {
    let fail = |e: std::io::Error| {
        let message = format!("cannot read {}: {e}", path.display());
        if e.kind() == std::io::ErrorKind::NotFound
            || e.kind() == std::io::ErrorKind::PermissionDenied
        {
            FetchError::Refused(message)
        } else {
            FetchError::Unreachable(message)
        }
    };
    let content = tokio::fs::read_to_string(path).await.map_err(fail)?;
    let modified = tokio::fs::metadata(path)
        .await
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| SystemTime::now());
    Ok((content, modified))
}

/// A file's version is a digest of its content: kept in memory to notice changes, never shown.
fn file_version(content: &str) -> String {
    Sha256::digest(content.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_read_from_describe_secret() {
        let mut map = HashMap::new();
        map.insert("v1".to_owned(), vec!["AWSPREVIOUS".to_owned()]);
        map.insert(
            "v2".to_owned(),
            vec!["AWSCURRENT".to_owned(), "custom".to_owned()],
        );
        map.insert("v3".to_owned(), vec!["AWSPENDING".to_owned()]);
        let v = stages_of(Some(&map));
        assert_eq!(v.of(Stage::Current), Some("v2"));
        assert_eq!(v.of(Stage::Previous), Some("v1"));
        assert_eq!(v.of(Stage::Pending), Some("v3"));
        assert_eq!(stages_of(None), Versions::default());
    }

    #[tokio::test]
    async fn files_have_one_stage_and_a_content_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        std::fs::write(&path, r#"{"tokens":["a"]}"#).unwrap();
        let store = Store::new(&SecretSource::File(path.clone()));
        let v1 = store.versions().await.unwrap();
        let fetched = store.fetch(Stage::Current).await.unwrap().unwrap();
        assert_eq!(v1.current.as_deref(), Some(fetched.version.as_str()));
        assert!(fetched.label.starts_with("mtime:"), "{}", fetched.label);
        assert!(store.fetch(Stage::Previous).await.unwrap().is_none());
        std::fs::write(&path, r#"{"tokens":["b"]}"#).unwrap();
        assert_ne!(store.versions().await.unwrap(), v1);
        std::fs::remove_file(&path).unwrap();
        let err = store.versions().await.unwrap_err();
        assert_eq!(err.kind(), "refused", "{err}");
    }
}
