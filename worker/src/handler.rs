//! What a task kind implements, and how kinds are found.

use std::collections::HashMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Everything a handler knows about the attempt it runs.
#[derive(Debug, Clone)]
pub struct TaskContext {
    pub id: Uuid,
    pub queue: String,
    pub kind: String,
    pub payload: serde_json::Value,
    /// This attempt's number, starting at 1.
    pub attempt: i32,
    pub max_attempts: i32,
    /// Cancelled when the attempt must stop early (shutdown past its grace period, lost lease).
    /// Long-running handlers should watch it; the runner also drops the handler's future.
    pub cancel: CancellationToken,
}

/// A failed attempt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    pub message: String,
    /// `false` sends the task straight to the dead tasks (for example a malformed payload that no
    /// retry can fix).
    pub retryable: bool,
}

impl HandlerError {
    /// A failure worth retrying (after backoff, while attempts remain).
    pub fn retryable(message: impl Into<String>) -> Self {
        HandlerError {
            message: message.into(),
            retryable: true,
        }
    }

    /// A failure no retry can fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        HandlerError {
            message: message.into(),
            retryable: false,
        }
    }

    /// A payload that does not match what the kind expects. `problem` ends up in logs and in the
    /// task's `last_error`, which never carry payloads: it must say what is wrong (the field, the
    /// expected type) without quoting the value. Do not pass a `serde_json::Error` (its message
    /// quotes the offending value): parse with [`TaskContext::parse_payload`], which does this.
    pub fn bad_payload(kind: &str, problem: impl std::fmt::Display) -> Self {
        Self::permanent(format!("invalid payload for kind {kind:?}: {problem}"))
    }
}

impl TaskContext {
    /// Parses the payload into `T`, or fails the task permanently with an error that names the
    /// field and what is wrong with it (`payload.ms: invalid type: string, expected u64`), never
    /// the value.
    pub fn parse_payload<T: serde::de::DeserializeOwned>(&self) -> Result<T, HandlerError> {
        serde_path_to_error::deserialize(&self.payload).map_err(|err| {
            HandlerError::bad_payload(
                &self.kind,
                format_args!(
                    "{}: {}",
                    payload_path(err.path()),
                    describe_json_error(err.inner())
                ),
            )
        })
    }
}

/// `payload`, `payload.headers.Accept`, `payload.items[2].id`.
fn payload_path(path: &serde_path_to_error::Path) -> String {
    let path = path.to_string();
    match path.as_str() {
        "." => "payload".to_owned(),
        p if p.starts_with('[') => format!("payload{p}"),
        p => format!("payload.{p}"),
    }
}

/// What is wrong, from a serde_json error, without the value it may quote.
///
/// serde_json's messages quote the offending value for `invalid type`, `invalid value` and
/// `unknown variant` errors (`invalid type: string "...", expected u64`), and a type's own
/// `Deserialize` may put anything in a custom message. Those are rebuilt from their value-free
/// parts (what kind of value was found, what was expected); messages of unknown shape become a
/// plain "invalid value". Field names (`missing field`, `unknown field`) are kept: they are the
/// payload's structure, not its values. Syntax errors never quote the input; their position is
/// kept.
fn describe_json_error(err: &serde_json::Error) -> String {
    use serde_json::error::Category;

    let full = err.to_string();
    let message = match err.line() {
        0 => full.as_str(),
        line => full
            .strip_suffix(&format!(" at line {line} column {}", err.column()))
            .unwrap_or(&full),
    };
    let problem = match err.classify() {
        Category::Io => return "the payload could not be read".to_owned(),
        Category::Syntax | Category::Eof => message.to_owned(),
        Category::Data => describe_data_error(message),
    };
    match err.line() {
        0 => problem,
        line => format!("{problem} at line {line} column {}", err.column()),
    }
}

fn describe_data_error(message: &str) -> String {
    // serde's own messages; everything after the last ", expected " comes from the code (the
    // visitor's description of what it wanted), everything before it may come from the payload.
    let expected = |rest: &str| {
        rest.rfind(", expected ")
            .map(|i| rest[i + ", expected ".len()..].to_owned())
    };
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        return match expected(rest) {
            Some(exp) => format!("invalid type: {}, expected {exp}", unexpected_kind(rest)),
            None => "invalid type".to_owned(),
        };
    }
    if let Some(rest) = message.strip_prefix("invalid value: ") {
        return match expected(rest) {
            Some(exp) => format!("invalid value: {}, expected {exp}", unexpected_kind(rest)),
            None => "invalid value".to_owned(),
        };
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        if rest.ends_with(", there are no variants") {
            return "unknown variant, there are no variants".to_owned();
        }
        return match expected(rest) {
            Some(exp) => format!("unknown variant, expected {exp}"),
            None => "unknown variant".to_owned(),
        };
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        // "unknown field `name`, expected ..." or "unknown field `name`, there are no fields".
        let end = ["`, expected ", "`, there are no fields"]
            .iter()
            .filter_map(|sep| rest.rfind(sep))
            .max();
        return match end {
            Some(end) => format!("unknown field `{}`{}", &rest[..end], &rest[end + 1..]),
            None => "unknown field".to_owned(),
        };
    }
    // Value-free by construction: a field name from the code, or a length.
    if ["missing field `", "duplicate field `", "invalid length "]
        .iter()
        .any(|p| message.starts_with(p))
    {
        return message.to_owned();
    }
    "invalid value".to_owned()
}

/// The kind of value serde found, from its `Unexpected` description (`string "..."`, ``integer
/// `5` ``, `map`, ...), without the value.
fn unexpected_kind(description: &str) -> &'static str {
    const KINDS: [(&str, &str); 18] = [
        ("boolean", "boolean"),
        ("integer", "integer"),
        ("floating point", "floating point number"),
        ("character", "character"),
        ("string", "string"),
        ("byte array", "byte array"),
        ("null", "null"),
        ("unit value", "null"),
        ("Option value", "option"),
        ("newtype struct", "newtype struct"),
        ("sequence", "array"),
        ("map", "object"),
        ("enum", "enum"),
        ("unit variant", "unit variant"),
        ("newtype variant", "newtype variant"),
        ("tuple variant", "tuple variant"),
        ("struct variant", "struct variant"),
        ("unit", "null"),
    ];
    KINDS
        .iter()
        .find(|(prefix, _)| {
            description
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', ',']))
        })
        .map_or("value", |(_, kind)| kind)
}

/// A task kind.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn run(&self, task: &TaskContext) -> Result<(), HandlerError>;
}

/// Handlers by kind name.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<String, Arc<dyn Handler>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` for `kind`, replacing any earlier one.
    pub fn register(&mut self, kind: impl Into<String>, handler: impl Handler) -> &mut Self {
        self.handlers.insert(kind.into(), Arc::new(handler));
        self
    }

    pub fn get(&self, kind: &str) -> Option<&Arc<dyn Handler>> {
        self.handlers.get(kind)
    }

    /// Registered kinds, sorted.
    pub fn kinds(&self) -> Vec<&str> {
        let mut kinds: Vec<&str> = self.handlers.keys().map(String::as_str).collect();
        kinds.sort_unstable();
        kinds
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    /// A value that must never reach an error message.
    const MARKER: &str = "MARKER-7f3c1a-not-for-logs";

    fn task(payload: serde_json::Value) -> TaskContext {
        TaskContext {
            id: Uuid::nil(),
            queue: "default".into(),
            kind: "test".into(),
            payload,
            attempt: 1,
            max_attempts: 1,
            cancel: CancellationToken::new(),
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Payload {
        ms: u64,
        #[serde(default)]
        mode: Option<Mode>,
        #[serde(default)]
        headers: std::collections::BTreeMap<String, String>,
        #[serde(default)]
        items: Vec<Item>,
        #[serde(default)]
        letter: Option<char>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Fast,
        Slow,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Item {
        id: u32,
    }

    /// The error message for `payload`, checked to be a permanent failure without the marker.
    fn error_for(payload: serde_json::Value) -> String {
        let err = task(payload.clone())
            .parse_payload::<Payload>()
            .expect_err("the payload does not match");
        assert!(!err.retryable, "a bad payload is permanent: {err:?}");
        assert!(
            !err.message.contains(MARKER) && !err.message.contains("MARKER"),
            "the error quotes the payload: {:?} for {payload}",
            err.message
        );
        assert!(
            err.message
                .starts_with("invalid payload for kind \"test\": "),
            "{:?}",
            err.message
        );
        err.message
    }

    #[test]
    fn wrong_type_names_the_field_and_types_not_the_value() {
        let message = error_for(json!({"ms": MARKER}));
        assert!(
            message.ends_with("payload.ms: invalid type: string, expected u64"),
            "{message:?}"
        );
        // serde_json itself would have quoted it: the reason for all this.
        let raw = serde_json::from_value::<Payload>(json!({"ms": MARKER})).unwrap_err();
        assert!(raw.to_string().contains(MARKER));
    }

    #[test]
    fn nested_and_map_fields_are_named_by_path() {
        let message = error_for(json!({"ms": 1, "headers": {"X-Token": 7_123_456_789u64}}));
        assert!(
            message.ends_with("payload.headers.X-Token: invalid type: integer, expected a string"),
            "{message:?}"
        );
        let message = error_for(json!({"ms": 1, "items": [{"id": 1}, {"id": MARKER}]}));
        assert!(
            message.ends_with("payload.items[1].id: invalid type: string, expected u32"),
            "{message:?}"
        );
        let message = error_for(json!({"ms": 1, "items": [{"id": 1}, {"id": -5}]}));
        assert!(
            message.ends_with("payload.items[1].id: invalid value: integer, expected u32"),
            "{message:?}"
        );
    }

    #[test]
    fn invalid_values_and_variants_are_described_without_them() {
        let message = error_for(json!({"ms": 1, "letter": MARKER}));
        assert!(
            message.ends_with("payload.letter: invalid value: string, expected a character"),
            "{message:?}"
        );
        let message = error_for(json!({"ms": 1, "mode": MARKER}));
        assert!(
            message.ends_with("payload.mode: unknown variant, expected `fast` or `slow`"),
            "{message:?}"
        );
        // A value that looks like the end of serde's message changes nothing.
        let tricky = format!("x`, expected {MARKER}");
        let message = error_for(json!({"ms": 1, "mode": tricky}));
        assert!(
            message.ends_with("payload.mode: unknown variant, expected `fast` or `slow`"),
            "{message:?}"
        );
        let message = error_for(json!({"ms": tricky}));
        assert!(
            message.ends_with("payload.ms: invalid type: string, expected u64"),
            "{message:?}"
        );
        let message = error_for(json!({"ms": 1.5}));
        assert!(
            message.ends_with("payload.ms: invalid type: floating point number, expected u64"),
            "{message:?}"
        );
    }

    #[test]
    fn structure_errors_keep_field_names() {
        let message = error_for(json!({}));
        assert!(
            message.ends_with("payload: missing field `ms`"),
            "{message:?}"
        );
        let message = error_for(json!({"ms": 1, "msx": MARKER}));
        assert!(
            message.ends_with(
                "payload.msx: unknown field `msx`, expected one of \
                 `ms`, `mode`, `headers`, `items`, `letter`"
            ),
            "{message:?}"
        );
        let message = error_for(json!(MARKER));
        assert!(
            message.ends_with("payload: invalid type: string, expected struct Payload"),
            "{message:?}"
        );
        // serde reads a struct from an array too, field by field.
        let message = error_for(json!([MARKER]));
        assert!(
            message.ends_with("payload[0]: invalid type: string, expected u64"),
            "{message:?}"
        );
        let message = error_for(json!(null));
        assert!(
            message.ends_with("payload: invalid type: null, expected struct Payload"),
            "{message:?}"
        );
    }

    #[test]
    fn custom_messages_of_unknown_shape_are_withheld() {
        #[derive(Debug)]
        struct Picky;
        impl<'de> Deserialize<'de> for Picky {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Err(serde::de::Error::custom(format!("cannot use {s}")))
            }
        }
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct WithPicky {
            picky: Picky,
        }
        let err = task(json!({"picky": MARKER}))
            .parse_payload::<WithPicky>()
            .expect_err("Picky refuses everything");
        assert_eq!(
            err.message,
            "invalid payload for kind \"test\": payload.picky: invalid value"
        );
    }

    #[test]
    fn syntax_errors_keep_their_position() {
        let err = serde_json::from_str::<serde_json::Value>("{\"a\": [1, 2}").unwrap_err();
        assert_eq!(
            describe_json_error(&err),
            "expected `,` or `]` at line 1 column 12"
        );
        let err =
            serde_json::from_str::<Payload>(&format!("{{\"ms\": \"{MARKER}\"}}")).unwrap_err();
        let described = describe_json_error(&err);
        assert!(!described.contains(MARKER), "{described:?}");
        assert!(
            described.starts_with("invalid type: string, expected u64 at line 1"),
            "{described:?}"
        );
    }

    #[test]
    fn a_good_payload_parses() {
        let p: Payload = task(json!({"ms": 5, "mode": "fast"}))
            .parse_payload()
            .expect("valid payload");
        assert_eq!(p.ms, 5);
    }
}
