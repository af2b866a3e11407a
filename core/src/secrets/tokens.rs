//! API bearer tokens: the accepted set, and the handle that keeps it current.
//!
//! Tokens are kept only as SHA-256 digests and compared in constant time. Tokens of the current
//! version are accepted as soon as this process sees it; an unknown token triggers one
//! rate-limited check of the store, so a client holding a just-rotated token is not refused
//! for a whole refresh period. Tokens of the previous version stay valid for a grace window
//! counted from the moment the current version took over.

use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

use super::{SecretSource, WatchSettings, Watched};

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

impl TokenSet {
    /// Parses `{"tokens":["...", ...]}`. Empty tokens are refused; at least one is required.
    /// Errors say what is wrong and where, never what the value is.
    pub fn parse(json: &SecretString) -> Result<Self, String> {
        let doc: serde_json::Value = serde_json::from_str(json.expose_secret())
            .map_err(|e| format!("not JSON (line {}, column {})", e.line(), e.column()))?;
        let shape = r#"expected {"tokens":["<token>", ...]}"#;
        let tokens = doc
            .get("tokens")
            .and_then(|t| t.as_array())
            .ok_or_else(|| shape.to_owned())?;
        if tokens.is_empty() {
            return Err("the token list is empty".into());
        }
        let mut digests = Vec::with_capacity(tokens.len());
        for (i, t) in tokens.iter().enumerate() {
            let t = t
                .as_str()
                .ok_or_else(|| format!("tokens[{i}] is not a string; {shape}"))?;
            if t.trim().is_empty() {
                return Err(format!("tokens[{i}] is empty"));
            }
            digests.push(digest(t.trim()));
        }
        Ok(TokenSet { digests })
    }

    /// Whether `token` is accepted. Compares against every token in constant time, so timing
    /// tells nothing about which token (or how much of one) matched.
    pub fn verify(&self, token: &str) -> bool {
        self.matches(&digest(token)).into()
    }

    fn matches(&self, candidate: &[u8; 32]) -> subtle::Choice {
        self.digests
            .iter()
            .fold(subtle::Choice::from(0), |found, d| {
                found | d.ct_eq(candidate)
            })
    }

    /// A stable, non-reversible label for a token (rate-limit keys, logs): a digest prefix.
    pub fn label(token: &str) -> String {
        let d = digest(token);
        d[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// How a presented token fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A token of the current version.
    Current,
    /// A token of the previous version, within its grace window.
    Previous,
    /// Not a token of either version (or of a previous version past its grace window).
    Rejected,
    /// No token set has been loaded yet; the reason says why.
    NotLoaded(String),
}

/// Unknown tokens trigger at most one check of the store per this period, so clients that got
/// a just-rotated token are accepted at once, while a flood of bad tokens costs next to nothing.
const UNKNOWN_TOKEN_CHECK_GAP: Duration = Duration::from_secs(5);

/// An unknown token waits at most this long for the look at the store (a store that hangs
/// must not hold 401 answers).
const UNKNOWN_TOKEN_CHECK_WAIT: Duration = Duration::from_secs(1);

/// A request that arrives before the first load (a process just started) waits this long for
/// it before it is refused with 503.
const FIRST_LOAD_WAIT: Duration = Duration::from_secs(2);

/// The API tokens secret, kept current in the background.
#[derive(Clone)]
pub struct ApiTokens {
    watched: Watched<TokenSet>,
    grace: Duration,
}

impl ApiTokens {
    /// Starts watching `source`; tokens of the previous version stay valid for `grace`.
    pub fn start(
        source: SecretSource,
        refresh: Duration,
        grace: Duration,
        stop: CancellationToken,
    ) -> Self {
        let watched = Watched::start(
            "api_tokens",
            source,
            TokenSet::parse,
            WatchSettings {
                refresh,
                keep_previous: true,
                ..WatchSettings::default()
            },
            stop,
        );
        ApiTokens { watched, grace }
    }

    /// Checks `token`: the current tokens, then (within the grace window) the previous ones,
    /// both in constant time; an unknown token first gets one (rate-limited) look at the store.
    pub async fn verify(&self, token: &str) -> Verdict {
        let candidate = digest(token);
        if self.watched.snapshot().is_none() {
            self.watched.wait_loaded(FIRST_LOAD_WAIT).await;
        }
        match self.check(&candidate) {
            Verdict::Rejected => {
                let look = self.watched.refresh_now(UNKNOWN_TOKEN_CHECK_GAP);
                match tokio::time::timeout(UNKNOWN_TOKEN_CHECK_WAIT, look).await {
                    Ok(true) => self.check(&candidate),
                    _ => Verdict::Rejected,
                }
            }
            verdict => verdict,
        }
    }

    fn check(&self, candidate: &[u8; 32]) -> Verdict {
        let Some(snapshot) = self.watched.snapshot() else {
            return Verdict::NotLoaded(self.not_ready_reason().unwrap_or_default());
        };
        let current = snapshot.current.value.matches(candidate);
        let in_grace = SystemTime::now() < snapshot.since + self.grace;
        let previous = match &snapshot.previous {
            Some(p) if in_grace => p.value.matches(candidate),
            _ => subtle::Choice::from(0),
        };
        if current.into() {
            Verdict::Current
        } else if previous.into() {
            Verdict::Previous
        } else {
            Verdict::Rejected
        }
    }

    /// Why no token is accepted yet, or `None` once the tokens are loaded.
    pub fn not_ready_reason(&self) -> Option<String> {
        self.watched.not_ready_reason()
    }

    /// The underlying watched secret (metrics, readiness, tests).
    pub fn watched(&self) -> &Watched<TokenSet> {
        &self.watched
    }

    /// Waits until the tokens are loaded, up to `timeout`.
    pub async fn wait_loaded(&self, timeout: Duration) -> bool {
        self.watched.wait_loaded(timeout).await
    }
}

impl std::fmt::Debug for ApiTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiTokens")
            .field("source", self.watched.source())
            .field("grace", &self.grace)
            .finish()
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
        let set = TokenSet::parse(&secret(r#"{"tokens":["alpha","beta"]}"#)).unwrap();
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
            r#"{"tokens":"s3cr3t"}"#,
            r#"{"tokens":["ok", 5, "s3cr3t"]}"#,
            r#"{"tokens":["s3cr3t""#,
            "s3cr3t",
        ] {
            let err = TokenSet::parse(&secret(bad)).unwrap_err();
            assert!(!err.contains("s3cr3t"), "error leaks the value: {err}");
        }
    }

    #[tokio::test]
    async fn previous_tokens_last_for_the_grace_window_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        std::fs::write(&path, r#"{"tokens":["old"]}"#).unwrap();
        let stop = CancellationToken::new();
        let tokens = ApiTokens::start(
            SecretSource::File(path.clone()),
            Duration::from_secs(3600),
            Duration::from_secs(3),
            stop.clone(),
        );
        assert!(tokens.wait_loaded(Duration::from_secs(10)).await);
        assert_eq!(tokens.verify("old").await, Verdict::Current);
        std::fs::write(&path, r#"{"tokens":["new"]}"#).unwrap();
        // The unknown token makes the API look at the store at once.
        assert_eq!(tokens.verify("new").await, Verdict::Current);
        assert_eq!(tokens.verify("old").await, Verdict::Previous);
        assert_eq!(tokens.verify("other").await, Verdict::Rejected);
        tokio::time::sleep(Duration::from_millis(3200)).await;
        assert_eq!(tokens.verify("old").await, Verdict::Rejected);
        assert_eq!(tokens.verify("new").await, Verdict::Current);
        stop.cancel();
    }

    #[tokio::test]
    async fn nothing_is_accepted_before_the_tokens_load() {
        let dir = tempfile::tempdir().unwrap();
        let stop = CancellationToken::new();
        let tokens = ApiTokens::start(
            SecretSource::File(dir.path().join("missing.json")),
            Duration::from_secs(3600),
            Duration::from_secs(60),
            stop.clone(),
        );
        match tokens.verify("anything").await {
            Verdict::NotLoaded(reason) => assert!(reason.contains("api_tokens"), "{reason}"),
            other => panic!("expected NotLoaded, got {other:?}"),
        }
        stop.cancel();
    }
}
