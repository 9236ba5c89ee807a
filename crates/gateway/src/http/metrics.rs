//! `GET /metrics`: on an address of its own, or on the API's port behind a token.

use super::request::bearer;
use crate::startup::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

/// `/metrics` by itself, for an address of its own (`METRICS_BIND_ADDR`): no token.
pub fn metrics_only(app: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(app)
}

pub(super) async fn metrics(State(app): State<AppState>) -> axum::response::Response {
    match app.jobs.counts().await {
        Ok(counts) => app.metrics.jobs(&counts, app.clock.now()),
        Err(error) => tracing::warn!(%error, "reading the job queue for /metrics failed"),
    }
    let text = app
        .metrics
        .render(app.db.pool_connections(), app.authz.cache_usage());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// `/metrics` on the API's port: for the bearer of the metrics token only.
pub(super) async fn metrics_with_token(
    State((app, token)): State<(AppState, secrecy::SecretString)>,
    headers: HeaderMap,
) -> axum::response::Response {
    use secrecy::ExposeSecret;
    use sha2::{Digest, Sha256};
    // Digests are compared, not the texts: how long the comparison takes tells nothing
    // about how much of the token a guess got right.
    let given = Sha256::digest(bearer(&headers).unwrap_or_default().as_bytes());
    let expected = Sha256::digest(token.expose_secret().as_bytes());
    if given != expected {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "the metrics token is missing or wrong",
        )
            .into_response();
    }
    metrics(State(app)).await
}
