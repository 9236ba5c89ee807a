//! `GET /audit/export` and `GET /exports/{id}`: downloads with the request's credentials.

use super::HttpState;
use super::request::{request_context, request_id};
use super::respond::respond;
use crate::context::RequestContext;
use crate::startup::AppState;
use async_graphql::{BatchResponse, Response};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use std::net::SocketAddr;

pub(super) async fn audit_export(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    crate::export::ExportQuery(params): crate::export::ExportQuery<crate::export::ExportParams>,
) -> axum::response::Response {
    with_request_context(&state, peer, &headers, |app, context| {
        crate::export::export(app, context, params)
    })
    .await
}

pub(super) async fn data_export_download(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> axum::response::Response {
    with_request_context(&state, peer, &headers, |app, context| async move {
        crate::export::data_export(app, context, &id).await
    })
    .await
}

/// Runs a non-GraphQL handler with the request's context (credentials and organization
/// decided as for GraphQL), answering its request id.
async fn with_request_context<F, Fut>(
    state: &HttpState,
    peer: SocketAddr,
    headers: &HeaderMap,
    handler: F,
) -> axum::response::Response
where
    F: FnOnce(AppState, RequestContext) -> Fut,
    Fut: std::future::Future<Output = axum::response::Response>,
{
    let request_id = request_id(headers);
    let context = match request_context(&state.app, peer, headers, request_id.clone()).await {
        Ok(context) => context,
        Err(error) => {
            return respond(
                &request_id,
                StatusCode::BAD_REQUEST,
                BatchResponse::Single(Response::from_errors(vec![error])),
            );
        }
    };
    let mut response = handler(state.app.clone(), context).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
