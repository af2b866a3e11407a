//! Secret sources and the API token set.
//!
//! A source is named `file:PATH` (a JSON file) or `aws-sm:ID` (AWS Secrets Manager; added with
//! runtime rotation). Tokens are kept only as SHA-256 digests and compared in constant time.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{Error, Result};

/// Where a secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A JSON file on disk.
    File(PathBuf),
}

impl std::str::FromStr for SecretSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some(("file", path)) if !path.is_empty() => Ok(SecretSource::File(PathBuf::from(path))),
            Some(("aws-sm", _)) => Err(format!(
                "{s:?}: the aws-sm: source is not available in this build yet; use file:PATH"
            )),
            _ => Err(format!("{s:?}: expected file:PATH")),
        }
    }
}

impl std::fmt::Display for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

impl SecretSource {
    /// Reads the secret's current value.
    pub async fn read(&self) -> Result<SecretString> {
        match self {
            SecretSource::File(path) => tokio::fs::read_to_string(path)
                .await
                .map(SecretString::from)
                .map_err(|e| Error::Secret {
                    source_name: self.to_string(),
                    reason: format!("cannot read: {e}"),
                }),
        }
    }
}

/// The accepted API bearer tokens.
#[derive(Clone)]
pub struct TokenSet {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenSet({} tokens)", self.digests.len())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensJson {
    tokens: Vec<SecretString>,
}

impl TokenSet {
    /// Parses `{"tokens":["...", ...]}`. Empty tokens are refused; at least one is required.
    pub fn parse(json: &SecretString, source_name: &str) -> Result<Self> {
        let fail = |reason: String| Error::Secret {
            source_name: source_name.to_owned(),
            reason,
        };
        // serde's message never contains the value, only its position.
        let parsed: TokensJson = serde_json::from_str(json.expose_secret())
            .map_err(|e| fail(format!("expected {{\"tokens\":[\"...\"]}}: {e}")))?;
        if parsed.tokens.is_empty() {
            return Err(fail("the token list is empty".into()));
        }
        if parsed
            .tokens
            .iter()
            .any(|t| t.expose_secret().trim().is_empty())
        {
            return Err(fail("a token is empty".into()));
        }
        Ok(TokenSet {
            digests: parsed
                .tokens
                .iter()
                .map(|t| digest(t.expose_secret()))
                .collect(),
        })
    }

    /// Loads the token set from `source`.
    pub async fn load(source: &SecretSource) -> Result<Self> {
        let raw = source.read().await?;
        Self::parse(&raw, &source.to_string())
    }

    /// Whether `token` is accepted. Compares against every token in constant time, so timing
    /// tells nothing about which token (or how much of one) matched.
    pub fn verify(&self, token: &str) -> bool {
        let candidate = digest(token);
        self.digests
            .iter()
            .fold(subtle::Choice::from(0), |found, d| {
                found | d.ct_eq(&candidate)
            })
            .into()
    }

    /// A stable, non-reversible label for a token (rate-limit keys, logs): a digest prefix.
    pub fn label(token: &str) -> String {
        let d = digest(token);
        d[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn verifies_listed_tokens_only() {
        let set = TokenSet::parse(&secret(r#"{"tokens":["alpha","beta"]}"#), "t").unwrap();
        assert!(set.verify("alpha"));
        assert!(set.verify("beta"));
        assert!(!set.verify("gamma"));
        assert!(!set.verify(""));
        assert!(!set.verify("alph"));
    }

    #[test]
    fn refuses_malformed_token_documents_without_echoing_them() {
        for bad in [
            r#"{"tokens":[]}"#,
            r#"{"tokens":[" "]}"#,
            r#"{"tokenz":["s3cr3t"]}"#,
            "s3cr3t",
        ] {
            let err = TokenSet::parse(&secret(bad), "file:x")
                .unwrap_err()
                .to_string();
            assert!(!err.contains("s3cr3t"), "error leaks the value: {err}");
        }
    }

    #[test]
    fn sources_parse_from_their_names() {
        assert_eq!(
            "file:/run/tokens.json".parse::<SecretSource>().unwrap(),
            SecretSource::File("/run/tokens.json".into())
        );
        assert!("/run/tokens.json".parse::<SecretSource>().is_err());
        assert!("file:".parse::<SecretSource>().is_err());
    }
}
