use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::parse_payload;
use crate::{Handler, HandlerError, TaskContext};

/// Hosts the `http` kind may call (exact, case-insensitive host names or IP literals).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    hosts: Vec<String>,
}

impl AllowList {
    pub fn new(hosts: impl IntoIterator<Item = impl Into<String>>) -> Self {
        AllowList {
            hosts: hosts
                .into_iter()
                .map(|h| h.into().trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
        }
    }

    pub fn allows(&self, host: &str) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        self.hosts
            .iter()
            .any(|h| h.trim_start_matches('[').trim_end_matches(']') == host)
    }
}

/// `http`: calls a webhook. Payload:
/// `{"url": "...", "method": "POST", "headers": {"k": "v"}, "body": <JSON or string>, "timeout_ms": 10000}`.
/// Only `http`/`https` URLs whose host is on the allow-list; redirects are not followed (they
/// could leave the allow-list). 2xx succeeds; 408, 429, 5xx and network errors are retried; other
/// statuses fail permanently.
pub struct Http {
    allow: AllowList,
    client: reqwest::Client,
}

impl Http {
    pub fn new(allow: AllowList) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("flowforge-worker/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("static HTTP client configuration is valid");
        Http { allow, client }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    url: String,
    #[serde(default = "default_method")]
    method: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<serde_json::Value>,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
}

fn default_method() -> String {
    "POST".into()
}

fn default_timeout_ms() -> u64 {
    10_000
}

#[async_trait::async_trait]
impl Handler for Http {
    async fn run(&self, task: &TaskContext) -> Result<(), HandlerError> {
        let p: Payload = parse_payload(task)?;
        let url = reqwest::Url::parse(&p.url).map_err(|e| HandlerError::bad_payload("http", e))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HandlerError::permanent(format!(
                "scheme {:?} is not allowed",
                url.scheme()
            )));
        }
        let host = url.host_str().unwrap_or_default();
        if !self.allow.allows(host) {
            return Err(HandlerError::permanent(format!(
                "host {host:?} is not on the allow-list (FLOWFORGE_HTTP_ALLOW_HOSTS)"
            )));
        }
        let method = reqwest::Method::from_bytes(p.method.to_ascii_uppercase().as_bytes())
            .map_err(|e| HandlerError::bad_payload("http", e))?;
        let mut request = self
            .client
            .request(method, url)
            .timeout(Duration::from_millis(p.timeout_ms));
        for (k, v) in &p.headers {
            request = request.header(k, v);
        }
        request = match p.body {
            None | Some(serde_json::Value::Null) => request,
            Some(serde_json::Value::String(s)) => request.body(s),
            Some(json) => request.json(&json),
        };
        let response = tokio::select! {
            r = request.send() => r,
            _ = task.cancel.cancelled() => return Err(HandlerError::retryable("webhook call interrupted")),
        };
        let response =
            response.map_err(|e| HandlerError::retryable(format!("webhook call failed: {e}")))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
            Err(HandlerError::retryable(format!(
                "webhook answered {status}"
            )))
        } else {
            Err(HandlerError::permanent(format!(
                "webhook answered {status}"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AllowList;

    #[test]
    fn allow_list_matches_hosts_exactly_and_case_insensitively() {
        let allow = AllowList::new(["Hooks.Example.com", "127.0.0.1", "[::1]"]);
        assert!(allow.allows("hooks.example.com"));
        assert!(allow.allows("127.0.0.1"));
        assert!(allow.allows("[::1]"));
        assert!(!allow.allows("evil.hooks.example.com"));
        assert!(!allow.allows("example.com"));
        assert!(!AllowList::default().allows("127.0.0.1"));
    }
}
