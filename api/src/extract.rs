//! Extractors whose rejections are problems: a 400, 413, 415 or 422 with a useful message, never
//! a plain-text body.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::problem::{ApiError, FieldError};

/// A JSON body: `application/json` (or `+json`) content type, within the body limit, syntactically
/// valid (400 otherwise), and of the right shape (422 with the offending field otherwise).
pub struct ValidJson<T>(pub T);

impl<T, S> FromRequest<S> for ValidJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_json(content_type) {
            return Err(ApiError::UnsupportedMediaType(if content_type.is_empty() {
                "missing Content-Type: send application/json".into()
            } else {
                format!("Content-Type {content_type:?} is not supported: send application/json")
            }));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| match rejection {
                BytesRejection::FailedToBufferBody(ref e)
                    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
                {
                    ApiError::PayloadTooLarge(
                        "the request body is larger than this route accepts".into(),
                    )
                }
                other => ApiError::MalformedJson(format!(
                    "could not read the request body: {}",
                    other.body_text()
                )),
            })?;
        parse_json(&bytes).map(ValidJson)
    }
}

/// Parses a JSON document, telling syntax errors (400) from shape errors (422, with the path).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: Result<T, (String, serde_json::Error)> = serde_path_to_error::deserialize(&mut de)
        .map_err(|err| (err.path().to_string(), err.into_inner()))
        .and_then(|v| de.end().map(|()| v).map_err(|e| (".".to_owned(), e)));
    value.map_err(|(path, inner)| match inner.classify() {
        serde_json::error::Category::Data => {
            // A shape error may only have been met before a syntax error further on: a broken
            // document is a 400 whatever else is wrong with it.
            if let Err(syntax) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                return ApiError::MalformedJson(format!("the body is not valid JSON: {syntax}"));
            }
            let message = strip_position(&inner.to_string());
            ApiError::Validation(vec![FieldError::new(field_path(&path, &message), message)])
        }
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            ApiError::MalformedJson(format!("the body is not valid JSON: {inner}"))
        }
        serde_json::error::Category::Io => {
            ApiError::MalformedJson(format!("could not read the body: {inner}"))
        }
    })
}

/// The path of the offending field. serde reports a missing field at its parent's path, so the
/// field's own name is appended.
fn field_path(path: &str, message: &str) -> String {
    let parent = if path == "." { "" } else { path };
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (parent, missing) {
        ("", Some(field)) => field.to_owned(),
        (parent, Some(field)) => format!("{parent}.{field}"),
        ("", None) => "body".to_owned(),
        (parent, None) => parent.to_owned(),
    }
}

/// serde_json appends " at line L column C"; the field path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

fn is_json(content_type: &str) -> bool {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// A task id in the path. Anything that is not a UUID names no task: 404.
pub struct TaskId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for TaskId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(raw)) => raw.parse::<Uuid>().map(TaskId).map_err(|_| {
                ApiError::NotFound(format!("no task with id {raw:?}: task ids are UUIDs"))
            }),
            Err(rejection) => Err(path_problem(rejection)),
        }
    }
}

fn path_problem(rejection: PathRejection) -> ApiError {
    ApiError::NotFound(rejection.body_text())
}

/// Query parameters; an unknown or mistyped parameter is a 422 naming it.
pub struct ValidQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ValidQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ValidQuery(q))
            .map_err(|rejection: QueryRejection| {
                let text = rejection.body_text();
                let message = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                // axum reports "<parameter>: <problem>" when it knows the parameter.
                let (field, message) = match message.split_once(": ") {
                    Some((name, rest)) if !name.contains(' ') => (name, rest),
                    _ => ("query", message),
                };
                ApiError::Validation(vec![FieldError::new(field, message)])
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        queue: String,
        items: Vec<Item>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        n: i16,
    }

    #[test]
    fn syntax_errors_are_400_and_shape_errors_are_422_with_the_path() {
        assert!(matches!(
            parse_json::<Doc>(b"{\"queue\": "),
            Err(ApiError::MalformedJson(_))
        ));
        assert!(matches!(
            parse_json::<Doc>(b"{} trailing"),
            Err(ApiError::MalformedJson(_))
        ));
        match parse_json::<Doc>(br#"{"queue":"q","items":[{"n":1},{"n":"x"}]}"#) {
            Err(ApiError::Validation(errors)) => assert_eq!(errors[0].field, "items[1].n"),
            other => panic!("expected a validation error, got {other:?}"),
        }
        match parse_json::<Doc>(br#"{"queue":"q","items":[],"extra":1}"#) {
            Err(ApiError::Validation(errors)) => {
                assert!(errors[0].message.contains("extra"), "{errors:?}")
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
        assert!(matches!(
            parse_json::<Doc>(br#"{"queue": 5, "items": "#),
            Err(ApiError::MalformedJson(_))
        ));
        match parse_json::<Doc>(br#"{"items":[]}"#) {
            Err(ApiError::Validation(errors)) => assert_eq!(errors[0].field, "queue"),
            other => panic!("expected a validation error, got {other:?}"),
        }
        match parse_json::<Doc>(br#"{"queue":"q","items":[{}]}"#) {
            Err(ApiError::Validation(errors)) => assert_eq!(errors[0].field, "items[0].n"),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn json_content_types_are_recognised() {
        assert!(is_json("application/json"));
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json(""));
    }
}
