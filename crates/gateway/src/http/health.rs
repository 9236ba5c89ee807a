//! `/healthz` (the process answers) and `/readyz` (and reaches its database).

use super::HttpState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

pub(super) async fn healthz() -> &'static str {
    "ok"
}

pub(super) async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    match state.app.db.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}
