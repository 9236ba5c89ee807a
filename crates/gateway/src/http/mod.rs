//! HTTP: `POST /graphql` (single or batched), `GET /graphql` (queries only), GraphiQL at
//! `/`, `/healthz` and `/readyz`, `GET /audit/export`, `POST /usage/events` (batch usage
//! ingestion), `POST /webhooks/stripe` and, when configured, `GET /metrics`.
//! Authentication and the active organization are resolved once per request, into a
//! `RequestContext` (`request.rs`). One file per room: the router and the shared state
//! here, one file per endpoint family, and the GraphQL path in `graphql.rs` (admission and
//! execution) and `prepare.rs` (what each operation may run).

mod completion;
mod downloads;
mod graphiql;
mod graphql;
mod health;
mod metrics;
mod prepare;
mod request;
mod respond;
mod stripe;
mod usage;

use self::completion::{Completion, run_to_completion};
use self::downloads::{audit_export, data_export_download};
use self::graphiql::{graphiql, graphiql_asset};
use self::graphql::{graphql_get, graphql_post};
use self::health::{healthz, readyz};
pub use self::metrics::metrics_only;
use self::metrics::metrics_with_token;
use self::respond::graphql_response_media;
use self::stripe::stripe_webhook;
use self::usage::usage_events;
use crate::config::{Introspection, TrustedDocumentsOnly};
use crate::graphql::admission::CostModel;
use crate::graphql::{AppSchema, admission};
use crate::rate_limit::RateLimits;
use crate::startup::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::routing::get;
use std::sync::Arc;
use std::time::Duration;

/// Most operations one batched request may carry.
pub const MAX_BATCH: usize = 10;
/// Largest request body accepted.
const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
struct HttpState {
    app: AppState,
    schema: AppSchema,
    /// What documents cost, read from the schema once.
    costs: Arc<CostModel>,
    /// Documents parsed before, by text.
    parsed: Arc<admission::ParsedDocuments>,
    /// Who may introspect the schema.
    introspection: Introspection,
    /// Callers who may run trusted documents only, by setting (API keys: by key).
    trusted_only: TrustedOnly,
    /// Requests a minute per API key and per person.
    rate_limits: Arc<RateLimits>,
}

/// Which callers may run trusted documents only, besides restricted keys.
#[derive(Debug, Clone, Copy, Default)]
struct TrustedOnly {
    anonymous: bool,
    users: bool,
}

/// How the HTTP surface meets clients: browsers of other origins, and tools that ask the
/// schema about itself.
#[derive(Debug, Clone)]
pub struct Surface {
    /// How long a request may run (see [`run_to_completion`]).
    pub request_timeout: Duration,
    /// Origins whose pages may call the API (CORS); empty: none.
    pub cors_allowed_origins: Vec<String>,
    /// Who may introspect the schema.
    pub introspection: Introspection,
    /// Callers who may run trusted documents only, besides restricted API keys.
    pub trusted_documents_only: Vec<TrustedDocumentsOnly>,
    /// Requests a minute per API key and per person.
    pub rate_limits: Arc<RateLimits>,
    /// The bearer token that opens `/metrics` on this router; none: no such route.
    pub metrics_token: Option<secrecy::SecretString>,
}

impl Default for Surface {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            cors_allowed_origins: Vec::new(),
            introspection: Introspection::All,
            trusted_documents_only: Vec::new(),
            rate_limits: Arc::new(RateLimits::unlimited()),
            metrics_token: None,
        }
    }
}

/// The router: [`routes`], each request run to completion or its deadline, and answered
/// to browsers of the allowed origins.
pub fn router(app: AppState, schema: AppSchema, surface: &Surface) -> Router {
    let completion = Completion {
        deadline: surface.request_timeout,
        metrics: app.metrics.clone(),
    };
    let mut router = routes(app.clone(), schema, surface);
    if let Some(token) = &surface.metrics_token {
        router = router.merge(
            Router::new()
                .route("/metrics", get(metrics_with_token))
                .with_state((app, token.clone())),
        );
    }
    let router = router.layer(axum::middleware::from_fn_with_state(
        completion,
        run_to_completion,
    ));
    match cors(&surface.cors_allowed_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// CORS for `origins`: their pages may send GraphQL requests with credentials in the
/// `Authorization` header (never cookies: the API has none) and read the answer's request
/// id and `Retry-After`. Preflights are answered here, cached by browsers for ten
/// minutes; another origin gets no CORS header, so its browser withholds the answer.
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{Method, header::HeaderName};
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        tower_http::cors::CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                HeaderName::from_static("x-organization-id"),
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("traceparent"),
                HeaderName::from_static("tracestate"),
                HeaderName::from_static("idempotency-key"),
            ])
            .expose_headers([
                HeaderName::from_static("x-request-id"),
                header::RETRY_AFTER,
                HeaderName::from_static(crate::idempotency::REPLAYED),
            ])
            .max_age(Duration::from_secs(600)),
    )
}

/// The routes as they are, without [`run_to_completion`]: a dropped future stops them
/// wherever it is (the end-to-end tests drop them at every statement on purpose).
pub fn routes(app: AppState, schema: AppSchema, surface: &Surface) -> Router {
    Router::new()
        .route("/", get(graphiql))
        .route("/graphiql/{file}", get(graphiql_asset))
        .route(
            "/graphql",
            get(graphql_get)
                .post(graphql_post)
                .layer(axum::middleware::from_fn(graphql_response_media)),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/audit/export", get(audit_export))
        .route("/exports/{id}", get(data_export_download))
        .route("/webhooks/stripe", axum::routing::post(stripe_webhook))
        .route("/usage/events", axum::routing::post(usage_events))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(HttpState {
            costs: Arc::new(CostModel::from_sdl(&schema.sdl())),
            parsed: Arc::default(),
            introspection: surface.introspection,
            rate_limits: surface.rate_limits.clone(),
            trusted_only: TrustedOnly {
                anonymous: surface
                    .trusted_documents_only
                    .contains(&TrustedDocumentsOnly::Anonymous),
                users: surface
                    .trusted_documents_only
                    .contains(&TrustedDocumentsOnly::Users),
            },
            app,
            schema,
        })
}
