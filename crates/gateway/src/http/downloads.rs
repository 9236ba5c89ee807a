//! `GET /audit/export` and `GET /exports/{id}`: downloads with the request's credentials
//! (the [`Identified`] extractor decides them as for GraphQL).

use super::HttpState;
use super::request::Identified;
use axum::extract::State;
use axum::http::HeaderValue;

pub(super) async fn audit_export(
    State(state): State<HttpState>,
    crate::export::ExportQuery(params): crate::export::ExportQuery<crate::export::ExportParams>,
    identified: Identified,
) -> axum::response::Response {
    let response = crate::export::export(state.app.clone(), identified.context, params).await;
    with_request_id(response, &identified.request_id)
}

pub(super) async fn data_export_download(
    State(state): State<HttpState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    identified: Identified,
) -> axum::response::Response {
    let response = crate::export::data_export(state.app.clone(), identified.context, &id).await;
    with_request_id(response, &identified.request_id)
}

/// The response, answering its request id.
fn with_request_id(
    mut response: axum::response::Response,
    request_id: &str,
) -> axum::response::Response {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
