//! Secrets that rotate while the process runs.
//!
//! A secret is named by its source: `file:PATH` (a JSON file, the embedded default) or
//! `aws-sm:ID` (AWS Secrets Manager, by name or ARN; the SDK's standard configuration chain,
//! including IRSA and `AWS_ENDPOINT_URL_SECRETS_MANAGER`). [`store`] reads a source,
//! [`watch`] keeps the parsed value current (cheap periodic checks, single-flight forced
//! refreshes, last good value kept when the store fails, metrics), and the two secrets
//! FlowForge uses are in [`tokens`] (API bearer tokens, with a grace window for the previous
//! version) and [`rds`] (database credentials in the RDS rotation format).

pub mod rds;
pub mod store;
pub mod tokens;
pub mod watch;

use std::path::PathBuf;

pub use rds::DbSecret;
pub use store::Stage;
pub use tokens::{ApiTokens, TokenSet, Verdict};
pub use watch::{Snapshot, Versioned, WatchSettings, Watched};

/// Where a secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A JSON file on disk, re-read when it changes.
    File(PathBuf),
    /// An AWS Secrets Manager secret: its name or ARN.
    AwsSecretsManager(String),
}

impl std::str::FromStr for SecretSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some(("file", path)) if !path.trim().is_empty() => {
                Ok(SecretSource::File(PathBuf::from(path)))
            }
            Some(("aws-sm", id)) if !id.trim().is_empty() => {
                Ok(SecretSource::AwsSecretsManager(id.trim().to_owned()))
            }
            _ => Err(format!(
                "{s:?}: expected file:PATH or aws-sm:SECRET_NAME_OR_ARN"
            )),
        }
    }
}

impl std::fmt::Display for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::File(p) => write!(f, "file:{}", p.display()),
            SecretSource::AwsSecretsManager(id) => write!(f, "aws-sm:{id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_from_their_names() {
        assert_eq!(
            "file:/run/tokens.json".parse::<SecretSource>().unwrap(),
            SecretSource::File("/run/tokens.json".into())
        );
        assert_eq!(
            "aws-sm:arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf"
                .parse::<SecretSource>()
                .unwrap(),
            SecretSource::AwsSecretsManager(
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf".into()
            )
        );
        assert_eq!(
            "aws-sm:flowforge/prod/db"
                .parse::<SecretSource>()
                .unwrap()
                .to_string(),
            "aws-sm:flowforge/prod/db"
        );
        for bad in ["/run/tokens.json", "file:", "aws-sm:", "vault:x"] {
            let err = bad.parse::<SecretSource>().unwrap_err();
            assert!(err.contains("expected file:PATH"), "{err}");
        }
    }
}
