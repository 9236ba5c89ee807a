//! Answers: status, media type, request id and the outcome the log line reads.

use super::completion::GraphqlOutcome;
use crate::error::{ensure_code, request_error};
use async_graphql::{BatchResponse, Response};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::IntoResponse;
use kernel::ErrorCode;

/// Gives a code to the errors that reached the response without one. The schema has no
/// extension (an extension, even one that only watches parsing and validation, makes
/// async-graphql wrap every field's resolution in it: a boxed future, a registry look-up
/// and a type name formatted per field), so async-graphql's own errors are classified
/// here, by stage. A request error (no field resolved, no error on a path) was raised
/// before execution: the document's depth or directives (parsing; the text itself is
/// parsed before `execute`), its validation, or the operation's selection. An error on
/// a path came from async-graphql's input coercion (a variable of the wrong type) or
/// from somewhere unforeseen.
pub(super) fn add_missing_codes(response: &mut Response) {
    let before_execution = is_request_error(response);
    for error in &mut response.errors {
        let fallback = if before_execution {
            request_stage_code(&error.message)
        } else if error.message.starts_with("Failed to parse")
            || error.message.starts_with("Invalid value for argument")
        {
            ErrorCode::BadUserInput
        } else {
            ErrorCode::Internal
        };
        ensure_code(error, fallback);
    }
}

/// The code of an error async-graphql raised before executing: by its message, which is
/// all such an error carries.
fn request_stage_code(message: &str) -> ErrorCode {
    match message {
        "Query is nested too deep." => ErrorCode::QueryTooDeep,
        "Query is too complex." => ErrorCode::QueryTooComplex,
        m if m.starts_with("The recursion depth of the query")
            || m.starts_with("The number of directives") =>
        {
            ErrorCode::GraphqlParseFailed
        }
        _ => ErrorCode::GraphqlValidationFailed,
    }
}

pub(super) fn reject(
    request_id: &str,
    status: StatusCode,
    code: ErrorCode,
    message: String,
) -> axum::response::Response {
    let response = Response::from_errors(vec![request_error(code, message)]);
    respond(request_id, status, BatchResponse::Single(response))
}

/// Marks an answer that is a request error (see [`is_request_error`]).
#[derive(Clone, Copy)]
struct RequestError;

/// Whether the answer is a request error: refused before execution (unreadable,
/// invalid, over its budget, not admitted), with no field resolved. Such an answer has
/// no `data` entry (GraphQL spec, "Response"), and over `application/graphql-response+json`
/// a 4xx status.
fn is_request_error(response: &Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty())
}

/// The answer as JSON, without a `data` entry where it is a request error.
fn serialize(response: &BatchResponse) -> serde_json::Result<Vec<u8>> {
    let needs_editing = match response {
        BatchResponse::Single(single) => is_request_error(single),
        BatchResponse::Batch(batch) => batch.iter().any(is_request_error),
    };
    if !needs_editing {
        return serde_json::to_vec(response);
    }
    let without_data = |single: &Response| {
        let mut value = serde_json::to_value(single)?;
        if is_request_error(single)
            && let Some(object) = value.as_object_mut()
        {
            object.remove("data");
        }
        Ok::<_, serde_json::Error>(value)
    };
    match response {
        BatchResponse::Single(single) => serde_json::to_vec(&without_data(single)?),
        BatchResponse::Batch(batch) => serde_json::to_vec(
            &batch
                .iter()
                .map(without_data)
                .collect::<Result<Vec<_>, _>>()?,
        ),
    }
}

/// The media type of the GraphQL-over-HTTP specification.
const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// Answers in `application/graphql-response+json` a client that accepts it (GraphQL over
/// HTTP): a request error then has a 4xx status (400 unless a more precise one was
/// given), everything else as over `application/json`. Other clients get
/// `application/json` and, for request errors, 200 (what they have always had).
pub(super) async fn graphql_response_media(
    request: axum::extract::Request,
    next: Next,
) -> axum::response::Response {
    let accepts = request
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default();
            let refused = parts.any(|param| {
                param
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media.eq_ignore_ascii_case(GRAPHQL_RESPONSE_JSON) && !refused
        });
    let mut response = next.run(request).await;
    let is_graphql_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes() == b"application/json");
    if !accepts || !is_graphql_json {
        return response;
    }
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/graphql-response+json; charset=utf-8"),
    );
    if response.extensions().get::<RequestError>().is_some() && response.status() == StatusCode::OK
    {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    response
}

pub(super) fn respond(
    request_id: &str,
    status: StatusCode,
    response: BatchResponse,
) -> axum::response::Response {
    let responses = match &response {
        BatchResponse::Single(single) => std::slice::from_ref(single),
        BatchResponse::Batch(batch) => batch.as_slice(),
    };
    // A refusal to retry later says when, in the status and `Retry-After`, for proxies and
    // clients that retry on their own: 503 when the database was unavailable, 429 when
    // the caller was throttled.
    let mut retry: Option<(StatusCode, u64)> = None;
    // Not for a replayed answer (its change committed: a retry changes nothing), nor for
    // a batch of which some operation ran (a client retrying the batch would repeat it).
    let replayed = responses
        .iter()
        .any(|r| r.http_headers.contains_key(crate::idempotency::REPLAYED));
    let some_ran = responses.len() > 1 && !responses.iter().all(is_request_error);
    for ext in responses
        .iter()
        .filter(|_| !replayed && !some_ran)
        .flat_map(|r| &r.errors)
        .filter_map(|e| e.extensions.as_ref())
    {
        let code = match ext.get("code") {
            Some(async_graphql::Value::String(code)) => code.as_str(),
            _ => continue,
        };
        let after = match ext.get("retryAfterSeconds") {
            Some(async_graphql::Value::Number(n)) => n.as_u64().unwrap_or(1),
            _ => crate::error::RETRY_AFTER_SECS,
        };
        let status = if code == ErrorCode::ServiceUnavailable.as_str() {
            StatusCode::SERVICE_UNAVAILABLE
        } else if code == ErrorCode::RateLimited.as_str() {
            StatusCode::TOO_MANY_REQUESTS
        } else {
            continue;
        };
        let later = retry.map_or(after, |(_, seen)| seen.max(after));
        retry = Some((retry.map_or(status, |(seen, _)| seen.max(status)), later));
    }
    // Text from a caller who may run trusted documents only is a client error whatever
    // the media (clients of persisted queries look for the 400).
    let text_refused = responses
        .iter()
        .flat_map(|r| &r.errors)
        .filter_map(|e| e.extensions.as_ref()?.get("code"))
        .any(|code| {
            matches!(code, async_graphql::Value::String(code)
                if code == ErrorCode::PersistedQueryNotInList.as_str())
        });
    let status = match retry {
        Some((status, _)) => status,
        None if text_refused && status == StatusCode::OK => StatusCode::BAD_REQUEST,
        None => status,
    };
    let request_error =
        matches!(&response, BatchResponse::Single(single) if is_request_error(single));
    let extra_headers = match &response {
        BatchResponse::Single(single) => single.http_headers.clone(),
        BatchResponse::Batch(_) => HeaderMap::new(),
    };
    let body = serialize(&response).unwrap_or_else(|_| b"{\"errors\":[{\"message\":\"internal error\",\"extensions\":{\"code\":\"INTERNAL\"}}]}".to_vec());
    let mut http = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if request_error {
        http.extensions_mut().insert(RequestError);
    }
    let codes = responses
        .iter()
        .map(|r| {
            r.errors
                .first()
                .and_then(|e| e.extensions.as_ref()?.get("code").cloned())
                .map_or_else(
                    || "OK".to_owned(),
                    |code| match code {
                        async_graphql::Value::String(code) => code,
                        other => other.to_string(),
                    },
                )
        })
        .collect::<Vec<_>>()
        .join(",");
    http.extensions_mut().insert(GraphqlOutcome {
        operations: String::new(),
        codes,
    });
    if let Ok(value) = HeaderValue::from_str(request_id) {
        http.headers_mut().insert("x-request-id", value);
    }
    if let Some((_, after)) = retry {
        http.headers_mut().insert(header::RETRY_AFTER, after.into());
    }
    http.headers_mut().extend(extra_headers);
    http
}
