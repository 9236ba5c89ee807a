//! `POST /usage/events`: batch usage ingestion, run as the `recordUsage` mutation.

use super::HttpState;
use super::graphql::{Method, Operations, admit_text, execute};
use super::request::request_id;
use super::respond::reject;
use crate::wire::{Form, Submitted};
use async_graphql::Request;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use kernel::ErrorCode;
use std::net::SocketAddr;

/// The mutation `POST /usage/events` runs: the same validation, permission, idempotency,
/// audit and answer as calling `recordUsage` over GraphQL.
const INGEST: &str = "mutation IngestUsage($events: [UsageEventInput!]!) { \
    recordUsage(input: {events: $events}) { stored replayed } }";

/// Batch ingestion for partners and the organization's own systems: `{"events": [...]}`
/// (up to 1,000, each as `UsageEventInput`), with the same credentials and
/// `X-Organization-Id` as GraphQL; answered with `recordUsage`'s GraphQL answer.
pub(super) async fn usage_events(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let request_id = request_id(&headers);
    let events = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(mut body))
            if body.get("events").is_some_and(|e| e.is_array()) =>
        {
            body.remove("events").unwrap_or_default()
        }
        _ => {
            return reject(
                &request_id,
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                "the body must be {\"events\": [...]}".into(),
            );
        }
    };
    let request = Request::new(INGEST)
        .operation_name("IngestUsage")
        .variables(async_graphql::Variables::from_json(
            serde_json::json!({ "events": events }),
        ));
    let operations = Operations {
        items: vec![admit_text(&state, request, None).map(|request| Submitted {
            request,
            form: Form::Own,
        })],
        batch: false,
        method: Method::Post,
    };
    execute(state, peer, headers, request_id, operations).await
}
