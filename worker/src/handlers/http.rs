use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

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
///
/// Errors (stored in `last_error` and logged) name the target by its origin only
/// (`https://hooks.example.com:8443`): a webhook URL's path, query and user info can carry
/// tokens.
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
        let p: Payload = task.parse_payload()?;
        // url's parse errors describe the problem ("invalid port number"), never the URL.
        let url = reqwest::Url::parse(&p.url)
            .map_err(|e| HandlerError::bad_payload(&task.kind, format_args!("payload.url: {e}")))?;
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
            .map_err(|e| {
                HandlerError::bad_payload(&task.kind, format_args!("payload.method: {e}"))
            })?;
        let target = url.origin().ascii_serialization();
        let mut request = self
            .client
            .request(method, url.clone())
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
        let response = response.map_err(|e| {
            HandlerError::retryable(format!(
                "webhook call to {target} failed: {}",
                describe_request_error(e, &url)
            ))
        })?;
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

/// A failed call, with its causes ("error sending request: client error (Connect): tcp connect
/// error: Connection refused (os error 111)") and without the URL: reqwest's own message ends with
/// the full URL, query string included. Anything of the URL's that a cause might still quote is
/// blanked out too.
fn describe_request_error(err: reqwest::Error, url: &reqwest::Url) -> String {
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    let secrets = [
        Some(url.as_str()),
        Some(url.path()).filter(|p| *p != "/"),
        url.query(),
        url.password(),
        url.fragment(),
    ];
    for secret in secrets.into_iter().flatten().filter(|s| !s.is_empty()) {
        text = text.replace(secret, "[redacted]");
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tokio_util::sync::CancellationToken;

    use super::{AllowList, Http};
    use crate::{Handler, HandlerError, TaskContext};

    /// Must never reach an error message.
    const MARKER: &str = "MARKER-b41d0e";

    fn task(payload: serde_json::Value) -> TaskContext {
        TaskContext {
            id: uuid::Uuid::nil(),
            queue: "default".into(),
            kind: "http".into(),
            payload,
            attempt: 1,
            max_attempts: 3,
            cancel: CancellationToken::new(),
        }
    }

    async fn call(url: &str) -> HandlerError {
        let err = Http::new(AllowList::new(["127.0.0.1"]))
            .run(&task(json!({"url": url})))
            .await
            .expect_err("the call fails");
        assert!(
            !err.message.contains(MARKER),
            "the error quotes the URL: {:?}",
            err.message
        );
        err
    }

    /// A webhook URL whose path, query, user info and fragment all carry the marker.
    fn secret_url(port: u16) -> String {
        let user_info = format!("hook:pw-{MARKER}");
        format!("http://{user_info}@127.0.0.1:{port}/hooks/{MARKER}?token={MARKER}#{MARKER}")
    }

    #[tokio::test]
    async fn refused_connection_is_reported_without_the_url() {
        // A loopback port with nothing listening on it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("an ephemeral port")
            .port();
        let url = secret_url(port);
        // reqwest's own message carries the whole URL: what the handler must not pass on.
        let raw = reqwest::Client::new()
            .post(&url)
            .send()
            .await
            .expect_err("nothing listens");
        assert!(
            raw.to_string().contains(&format!("token={MARKER}")),
            "{raw}"
        );

        let err = call(&url).await;
        assert!(err.retryable, "a network error is retried: {err:?}");
        assert!(
            err.message
                .starts_with(&format!("webhook call to http://127.0.0.1:{port} failed: ")),
            "names the target by its origin: {:?}",
            err.message
        );
        assert!(
            err.message.contains("Connection refused"),
            "keeps the cause: {:?}",
            err.message
        );
    }

    #[tokio::test]
    async fn dropped_connection_is_reported_without_the_url() {
        // A real loopback server that hangs up without answering.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port");
        let port = listener.local_addr().expect("bound").port();
        let server = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                drop(socket);
            }
        });
        let err = call(&secret_url(port)).await;
        assert!(err.retryable, "a network error is retried: {err:?}");
        assert!(
            err.message
                .starts_with(&format!("webhook call to http://127.0.0.1:{port} failed: ")),
            "{:?}",
            err.message
        );
        server.abort();
    }

    #[tokio::test]
    async fn malformed_url_and_method_are_reported_without_them() {
        let err = call(&format!("http://127.0.0.1:99999/?token={MARKER}")).await;
        assert!(!err.retryable);
        assert_eq!(
            err.message,
            "invalid payload for kind \"http\": payload.url: invalid port number"
        );
        let err = Http::new(AllowList::new(["127.0.0.1"]))
            .run(&task(json!({
                "url": "http://127.0.0.1:1/",
                "method": format!("{MARKER} X"),
            })))
            .await
            .expect_err("not a method");
        assert!(!err.message.contains(MARKER), "{:?}", err.message);
        assert_eq!(
            err.message,
            "invalid payload for kind \"http\": payload.method: invalid HTTP method"
        );
    }

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
