//! HTTP: `POST /graphql` (single or batched), `GET /graphql` (queries only), GraphiQL at
//! `/`, `/healthz` and `/readyz`, `GET /audit/export`, `POST /usage/events` (batch usage
//! ingestion), `POST /webhooks/stripe` and, when configured, `GET /metrics`. Authentication and the active organization are
//! resolved here, once per request, into a `RequestContext`.

use crate::config::{Introspection, TrustedDocumentsOnly};
use crate::context::{Authentication, RequestContext};
use crate::error::{ApiError, ensure_code, request_error};
use crate::graphql::AppSchema;
use crate::graphql::admission::{self, CostModel, Refusal};
use crate::graphql::ids::{GlobalId, NodeKind};
use crate::graphql::loaders::Loaders;
use crate::rate_limit::{RateLimits, Subject};
use crate::startup::AppState;
use crate::wire::{Form, Submitted, WireBatch, WireRequest};
use async_graphql::parser::types::OperationType;
use async_graphql::{BatchResponse, Request, Response, ServerError};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use kernel::{ErrorCode, OrgId, Principal, RequestMeta};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tenancy::ClientInfo;
use tracing::Instrument;

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

/// Runs the request on a task of its own, to its end or to `deadline`. A client that hangs
/// up drops only the wait for the answer, not the work: a mutation it abandoned commits
/// completely (with its audit event) or rolls back completely, never stopped half-way
/// between two statements. At the deadline the task is aborted, which rolls its
/// transaction back and returns its connection, and the client gets `TIMEOUT`.
/// `/metrics` by itself, for an address of its own (`METRICS_BIND_ADDR`): no token.
pub fn metrics_only(app: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(app)
}

async fn metrics(State(app): State<AppState>) -> axum::response::Response {
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
async fn metrics_with_token(
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

/// What [`run_to_completion`] needs: the deadline, and where it counts requests.
#[derive(Clone)]
struct Completion {
    deadline: Duration,
    metrics: Arc<crate::metrics::Metrics>,
}

async fn run_to_completion(
    State(Completion { deadline, metrics }): State<Completion>,
    mut request: axum::extract::Request,
    next: Next,
) -> axum::response::Response {
    // The handler and this layer name the request alike, in the answer and in the log.
    let request_id = request_id(request.headers());
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        request.headers_mut().insert("x-request-id", value);
    }
    let started = std::time::Instant::now();
    let method = request.method().clone();
    // The path only: a query string may carry variables (personal data).
    let path = request.uri().path().to_owned();
    // The route's template (a bounded set), never the concrete path, labels the metric.
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    // The request's span: ids, the method and the route's template, never the path.
    let span = tracing::info_span!(
        "http.request",
        otel.kind = "server",
        request_id = %request_id,
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
    );
    let trace = crate::trace_context::join(&span, request.headers());
    let statements = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut task = tokio::spawn(
        kernel::count_statements(statements.clone(), next.run(request)).instrument(span.clone()),
    );
    let response = match tokio::time::timeout(deadline, &mut task).await {
        Ok(Ok(response)) => response,
        Ok(Err(failure)) => {
            tracing::error!(request_id = %request_id, error = %failure, "request task failed");
            reject(
                &request_id,
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "internal error".into(),
            )
        }
        Err(_) => {
            task.abort();
            tracing::warn!(
                request_id = %request_id,
                deadline_ms = deadline.as_millis(),
                "request stopped at its deadline"
            );
            reject(
                &request_id,
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Timeout,
                format!(
                    "the request ran longer than {} ms and was stopped; what it had not committed was rolled back",
                    deadline.as_millis()
                ),
            )
        }
    };
    span.record("http.response.status_code", response.status().as_u16());
    drop(span);
    // One line per request, with ids and codes only (never names, emails, addresses,
    // variables or documents).
    let outcome = response.extensions().get::<GraphqlOutcome>();
    let took = started.elapsed();
    metrics.response(route, response.status().as_u16());
    if let Some(outcome) = outcome {
        metrics.graphql_request(
            &outcome.pairs(),
            took,
            statements.load(std::sync::atomic::Ordering::Relaxed),
        );
    }
    tracing::info!(
        request_id = %request_id,
        trace_id = %trace,
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        duration_ms = took.as_millis() as u64,
        operations = outcome.map_or("", |o| o.operations.as_str()),
        outcome = outcome.map_or("", |o| o.codes.as_str()),
        "request"
    );
    response
}

/// What a GraphQL answer was, for the request's log line: the operations' names
/// (`-` for an unnamed one) and each one's outcome (`OK` or its first error's code).
#[derive(Clone, Debug, Default)]
struct GraphqlOutcome {
    operations: String,
    codes: String,
}

impl GraphqlOutcome {
    /// Each operation's name and outcome (`-` for a name not known: a request refused
    /// before its operations were read).
    fn pairs(&self) -> Vec<(String, String)> {
        let mut names = self.operations.split(',').filter(|n| !n.is_empty());
        self.codes
            .split(',')
            .filter(|c| !c.is_empty())
            .map(|code| (names.next().unwrap_or("-").to_owned(), code.to_owned()))
            .collect()
    }
}

/// Stripe's webhook: verified by signature and timestamp, deduplicated by event id, and
/// acted on only after re-reading the payment from Stripe (events arrive at least once
/// and out of order). 2xx tells Stripe to stop retrying; 5xx asks it to retry.
async fn stripe_webhook(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let app = &state.app;
    let Some(secret) = app.stripe_webhook_secret.as_deref() else {
        return (StatusCode::NOT_FOUND, "webhooks are not configured").into_response();
    };
    let signature = headers
        .get("Stripe-Signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if let Err(e) = stripe_provider::verify_signature(
        &body,
        signature,
        secret,
        app.clock.now(),
        chrono::Duration::minutes(5),
    ) {
        return (StatusCode::BAD_REQUEST, e.to_string()).into_response();
    }
    let event = match stripe_provider::WebhookEvent::parse(&body) {
        Ok(event) => event,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let relevant = matches!(
        event.kind.as_str(),
        "payment_intent.succeeded" | "payment_intent.payment_failed"
    );
    let (Some(org), Some(invoice), true) = (event.organization_id, event.invoice_id, relevant)
    else {
        return (StatusCode::OK, "ignored").into_response();
    };
    // The event says what happened then; the payment's state now decides.
    let outcome = match app.payments.status(&event.object_id).await {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::warn!(error = %e, event = %event.id, "could not re-read a payment");
            return (StatusCode::SERVICE_UNAVAILABLE, "retry later").into_response();
        }
    };
    let handled = async {
        let tx = app.tenancy.system_tx(OrgId::from_uuid(org)).await?;
        if !billing::payments::claim_webhook_event(
            &tx,
            "stripe",
            &event.id,
            &event.kind,
            app.clock.now(),
        )
        .await?
        {
            return anyhow::Ok(false);
        }
        match app
            .subscriptions
            .record_charge(&tx, invoice, &outcome, "stripe", None)
            .await
        {
            // Not one of ours (another environment sharing the account): nothing to do.
            Err(billing::Error::NotFound(_)) => return anyhow::Ok(false),
            other => other?,
        }
        tx.commit().await?;
        anyhow::Ok(true)
    };
    match handled.await {
        Ok(true) => (StatusCode::OK, "handled").into_response(),
        Ok(false) => (StatusCode::OK, "duplicate").into_response(),
        Err(e) => {
            tracing::error!(error = ?e, event = %event.id, "webhook failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "retry later").into_response()
        }
    }
}

/// GraphiQL's page: the editor built into the binary (`crates/gateway/graphiql`), nothing
/// loaded from elsewhere, which the Content-Security-Policy holds it to.
const GRAPHIQL_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Platform GraphiQL</title>
<link rel="stylesheet" href="/graphiql/graphiql.css">
<style>body { margin: 0; } #graphiql { height: 100dvh; }</style>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script src="/graphiql/graphiql.js"></script>
</body>
</html>
"#;

/// Only the platform's own origin: scripts, styles, requests, images and fonts (the
/// editor's fonts are inline `data:`). Styles may also be inline: the editor inserts its
/// own style elements as it runs; scripts may not. No framing.
const GRAPHIQL_CSP: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; \
    font-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

async fn graphiql() -> impl IntoResponse {
    (
        [
            (header::CONTENT_SECURITY_POLICY, GRAPHIQL_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Html(GRAPHIQL_PAGE),
    )
}

/// The GraphiQL bundle's files, as built by `crates/gateway/graphiql/build.sh`.
async fn graphiql_asset(
    axum::extract::Path(file): axum::extract::Path<String>,
) -> axum::response::Response {
    let (body, media): (&'static [u8], &str) = match file.as_str() {
        "graphiql.js" => (
            include_bytes!("../graphiql/assets/graphiql.js"),
            "text/javascript; charset=utf-8",
        ),
        "graphiql.css" => (
            include_bytes!("../graphiql/assets/graphiql.css"),
            "text/css; charset=utf-8",
        ),
        "THIRD_PARTY_LICENSES.txt" => (
            include_bytes!("../graphiql/assets/THIRD_PARTY_LICENSES.txt"),
            "text/plain; charset=utf-8",
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, media),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    match state.app.db.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

async fn audit_export(
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

async fn data_export_download(
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

async fn graphql_post(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let request_id = request_id(&headers);
    let batch = match WireBatch::from_json(&body) {
        Ok(batch) => batch,
        Err(e) => {
            return reject(
                &request_id,
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                format!("the body is not a GraphQL request: {e}"),
            );
        }
    };
    if let WireBatch::Batch(requests) = &batch
        && requests.len() > MAX_BATCH
    {
        return reject(
            &request_id,
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            format!("a batch may hold at most {MAX_BATCH} operations"),
        );
    }
    let operations = Operations::admit(&state, batch, Method::Post);
    execute(state, peer, headers, request_id, operations).await
}

/// The mutation `POST /usage/events` runs: the same validation, permission, idempotency,
/// audit and answer as calling `recordUsage` over GraphQL.
const INGEST: &str = "mutation IngestUsage($events: [UsageEventInput!]!) { \
    recordUsage(input: {events: $events}) { stored replayed } }";

/// Batch ingestion for partners and the organization's own systems: `{"events": [...]}`
/// (up to 1,000, each as `UsageEventInput`), with the same credentials and
/// `X-Organization-Id` as GraphQL; answered with `recordUsage`'s GraphQL answer.
async fn usage_events(
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

async fn graphql_get(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> axum::response::Response {
    let request_id = request_id(&headers);
    let request = match WireRequest::from_query_string(query.as_deref().unwrap_or_default()) {
        Ok(request) => request,
        Err(e) => {
            return reject(
                &request_id,
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                e,
            );
        }
    };
    let mut operations = Operations::admit(&state, WireBatch::Single(request), Method::Get);
    // A document sent by id is known only once resolved: see `prepare`.
    if operations
        .items
        .iter_mut()
        .any(|item| item.as_mut().is_ok_and(|s| is_mutation(&mut s.request)))
    {
        return reject(
            &request_id,
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::BadRequest,
            "mutations are only accepted over POST".into(),
        );
    }
    execute(state, peer, headers, request_id, operations).await
}

/// The operations of one HTTP request, each admitted (scanned, parsed once, its cost
/// within the budget) or refused with a coded error: before authentication, so that a
/// refused document costs no SQL statement. A document sent by id alone is admitted once
/// it is found (see [`prepare`]).
struct Operations {
    items: Vec<Result<Submitted, ServerError>>,
    batch: bool,
    method: Method,
}

/// The HTTP method a request came with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

impl Operations {
    fn admit(state: &HttpState, batch: WireBatch, method: Method) -> Self {
        let admit_one = |request: WireRequest| {
            let Submitted { request, form } = request.into_submitted()?;
            let request = match form {
                Form::ById(_) => request,
                Form::Text | Form::TextWithId(_) | Form::Own => admit_text(state, request, None)?,
            };
            Ok(Submitted { request, form })
        };
        match batch {
            WireBatch::Single(request) => Self {
                items: vec![admit_one(request)],
                batch: false,
                method,
            },
            WireBatch::Batch(requests) => Self {
                items: requests.into_iter().map(admit_one).collect(),
                batch: true,
                method,
            },
        }
    }
}

/// Admits a request's text: scanned, costed, parsed (once: `parsed` when the caller has
/// its parse, else the process's parse of the same text) and its strings checked.
fn admit_text(
    state: &HttpState,
    mut request: Request,
    parsed: Option<async_graphql::parser::types::ExecutableDocument>,
) -> Result<Request, ServerError> {
    let parse = |query: &str| {
        state
            .parsed
            .parse(query)
            .map_err(|e| Refusal::Parse(ServerError::from(e).message).into_server_error())
    };
    match admission::admit(&request.query, &request.variables, &state.costs) {
        Ok(_) => {}
        // Not a document the outline reader knows: the parser says what is wrong. One it
        // reads all the same has an unknown cost, so it is refused too (and the reader
        // needs a look).
        Err(Refusal::Unreadable) => {
            parse(&request.query)?;
            tracing::warn!("a document the parser accepts could not be costed");
            return Err(Refusal::Unreadable.into_server_error());
        }
        Err(refused) => return Err(refused.into_server_error()),
    }
    // Parsed once, for execution too (and kept for the next request that sends the same
    // text).
    let document = match parsed {
        Some(document) => document,
        None => parse(&request.query)?,
    };
    admission::check_strings(&document, &request.variables)
        .map_err(admission::BadString::into_server_error)?;
    // Executed as parsed here: the text is not parsed twice.
    request.set_parsed_query(document);
    Ok(request)
}

/// Whether the operation the request would run is a mutation (its document is parsed).
fn is_mutation(request: &mut Request) -> bool {
    let operation_name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return false;
    };
    let selected = match &operation_name {
        Some(name) => document
            .operations
            .iter()
            .find(|(op_name, _)| op_name.map(|n| n.as_str()) == Some(name.as_str()))
            .map(|(_, op)| op.node.ty),
        None => document.operations.iter().next().map(|(_, op)| op.node.ty),
    };
    selected == Some(OperationType::Mutation)
}

async fn execute(
    state: HttpState,
    peer: SocketAddr,
    headers: HeaderMap,
    request_id: String,
    mut operations: Operations,
) -> axum::response::Response {
    let span = tracing::info_span!(
        "http.graphql",
        request_id = %request_id,
        org.id = tracing::field::Empty,
        principal.id = tracing::field::Empty,
    );
    async move {
        if operations.items.iter().all(Result::is_err) {
            let refused = operations
                .items
                .into_iter()
                .filter_map(Result::err)
                .map(|error| Response::from_errors(vec![error]));
            let response = if operations.batch {
                BatchResponse::Batch(refused.collect())
            } else {
                BatchResponse::Single(refused.into_iter().next().unwrap_or_default())
            };
            return respond(&request_id, StatusCode::OK, response);
        }
        let idempotency_key = match crate::idempotency::key_of(&headers) {
            Ok(Some(_)) if operations.batch => {
                return reject(
                    &request_id,
                    StatusCode::BAD_REQUEST,
                    ErrorCode::BadRequest,
                    "Idempotency-Key applies to one operation, not to a batch".into(),
                );
            }
            Ok(key) => key,
            Err(why) => {
                return reject(
                    &request_id,
                    StatusCode::BAD_REQUEST,
                    ErrorCode::BadRequest,
                    why.into(),
                );
            }
        };
        let context = match request_context(&state.app, peer, &headers, request_id.clone()).await {
            Ok(context) => context,
            Err(error) => {
                return respond(
                    &request_id,
                    StatusCode::OK,
                    BatchResponse::Single(Response::from_errors(vec![error])),
                );
            }
        };
        let span = tracing::Span::current();
        if let Some(org) = context.org {
            span.record("org.id", tracing::field::display(org));
        }
        if let Some(principal) = context.claimed_principal() {
            span.record("principal.id", tracing::field::display(principal.subject()));
        }
        // Each operation runs with its own request facts, which the audit trail reads.
        let method = operations.method;
        let (state, context) = (&state, &context);
        let run = |submitted: Submitted| {
            let meta = RequestMeta {
                principal: context.claimed_principal(),
                impersonator: None,
                request_id: Some(request_id.clone()),
                operation: submitted.request.operation_name.clone(),
                ip: context.client.ip.clone(),
                user_agent: context.client.user_agent.clone(),
            };
            // Fresh units of work and loaders per operation: never shared between
            // operations, requests or callers.
            let units = crate::unit::OperationUnits::default();
            let tasks = crate::graphql::tasks::OperationTasks::default();
            let loaders = Loaders::new(
                &state.app,
                context.caller().ok(),
                &context.turn,
                &units,
                &tasks,
            );
            let idempotency_key = idempotency_key.clone();
            kernel::request::scope(meta, async move {
                // The document found, the caller's right to run it settled and an API
                // key's call metered; or why not.
                let (mut request, introspects) =
                    match prepare(state, context, submitted, method).await {
                        Ok(prepared) => prepared,
                        Err(refused) => return Response::from_errors(vec![refused]),
                    };
                // A mutation sent with an Idempotency-Key: an earlier answer, or a claim
                // its write makes.
                let claim = match idempotency_key {
                    Some(key) if is_mutation(&mut request) => {
                        match idempotent(state, context, &mut request, key).await {
                            Ok(crate::idempotency::Earlier::Replay(answer)) => return *answer,
                            Ok(crate::idempotency::Earlier::New(claim)) => Some(claim),
                            Err(refused) => return Response::from_errors(vec![refused]),
                        }
                    }
                    _ => None,
                };
                let mut request = request
                    .data(context.clone())
                    .data(loaders)
                    .data(units.clone());
                if let Some(claim) = &claim {
                    request = request.data(claim.clone());
                }
                // One that asks was let through by `prepare`; one that does not ask gets
                // none either (should the walk ever miss a way of asking).
                if !introspects && state.introspection != Introspection::All {
                    request = request.disable_introspection();
                }
                let mut response = tasks.run(state.schema.execute(request)).await;
                // The operation's reads end with it (its loaders are done by now).
                units.finish().await;
                add_missing_codes(&mut response);
                match (&claim, context.caller()) {
                    (Some(claim), Ok(caller)) => {
                        crate::idempotency::settle(&state.app, caller, claim, response).await
                    }
                    _ => response,
                }
            })
        };
        // The operations' names for the log: as sent, or as the document names its one
        // operation (a document sent by id alone is not read yet: `-`).
        let names = operations
            .items
            .iter_mut()
            .map(|item| match item {
                Ok(submitted) if matches!(submitted.form, Form::ById(_)) => "-".to_owned(),
                Ok(submitted) => {
                    let request = &mut submitted.request;
                    let named = match request.operation_name.clone() {
                        Some(given) => Some(given),
                        None => request.parsed_query().ok().and_then(|document| {
                            document.operations.iter().next()?.0.map(|n| n.to_string())
                        }),
                    };
                    loggable_name(named.as_deref()).to_owned()
                }
                Err(_) => "-".to_owned(),
            })
            .collect::<Vec<_>>()
            .join(",");
        let mut responses = Vec::with_capacity(operations.items.len());
        for item in operations.items {
            responses.push(match item {
                Ok(request) => run(request).await,
                Err(refused) => Response::from_errors(vec![refused]),
            });
        }
        let response = if operations.batch {
            BatchResponse::Batch(responses)
        } else {
            BatchResponse::Single(responses.into_iter().next().unwrap_or_default())
        };
        let mut http = respond(&request_id, StatusCode::OK, response);
        if let Some(outcome) = http.extensions_mut().get_mut::<GraphqlOutcome>() {
            outcome.operations = names;
        }
        http
    }
    .instrument(span)
    .await
}

/// An operation's name as the log may show it: a GraphQL name, or `?` (the field is
/// the client's to fill, and could hold anything, personal data included).
fn loggable_name(name: Option<&str>) -> &str {
    match name {
        None => "-",
        Some(name)
            if !name.is_empty()
                && name.len() <= 64
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            name
        }
        Some(_) => "?",
    }
}

/// Whether the operation's document asks the schema about itself (`__schema`, `__type`:
/// fields of the query root, reached directly or through fragments on it).
fn asks_for_introspection(request: &mut Request) -> bool {
    use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
    fn asks<'a>(
        document: &'a ExecutableDocument,
        set: &'a SelectionSet,
        seen: &mut std::collections::HashSet<&'a str>,
    ) -> bool {
        set.items.iter().any(|item| match &item.node {
            Selection::Field(field) => {
                matches!(field.node.name.node.as_str(), "__schema" | "__type")
            }
            Selection::InlineFragment(inline) => {
                asks(document, &inline.node.selection_set.node, seen)
            }
            Selection::FragmentSpread(spread) => {
                let name = &spread.node.fragment_name.node;
                // Each fragment is walked once (a cycle is refused by validation later;
                // here it just ends the walk).
                if !seen.insert(name.as_str()) {
                    return false;
                }
                document
                    .fragments
                    .get(name)
                    .is_some_and(|fragment| asks(document, &fragment.node.selection_set.node, seen))
            }
        })
    }
    let Ok(document) = request.parsed_query() else {
        return false;
    };
    document.operations.iter().any(|(_, operation)| {
        asks(
            document,
            &operation.node.selection_set.node,
            &mut std::collections::HashSet::new(),
        )
    })
}

/// Whether the caller may introspect under `policy`: `UNAUTHENTICATED` without valid
/// credentials where signing in is required, `FORBIDDEN` (`reason =
/// "INTROSPECTION_DISABLED"`) where it is off.
async fn may_introspect(
    app: &AppState,
    context: &RequestContext,
    policy: Introspection,
) -> Result<(), ServerError> {
    match policy {
        Introspection::All => Ok(()),
        Introspection::Off => Err(introspection_refused()),
        Introspection::SignedIn => match context.verified_principal(&app.tenancy).await {
            Ok(_) => Ok(()),
            Err(tenancy::Error::InvalidToken) => Err(request_error(
                ErrorCode::Unauthenticated,
                "log in (or use an API key) to introspect the schema",
            )),
            Err(e) => Err(server_error(e.into())),
        },
    }
}

/// Settles what one operation runs and whether its caller may: the document found (by
/// id: the platform's or the organization's trusted documents, or a text an APQ client
/// registered) and admitted, refused where the caller may run trusted documents only
/// and sent text, introspection allowed or refused, and an API key's call metered.
/// Answers the request and whether its document introspects.
///
/// An API key does all of it in one transaction of its organization: entering checks the
/// key (secret, revocation, expiry), the key's restriction and its organization's
/// documents are read there, and the call is recorded as `api_calls` usage (refused with
/// `LIMIT_EXCEEDED` past a hard quota) before the operation runs. Never skipped: a call
/// that cannot be metered is not served, and a refused call is not metered.
async fn prepare(
    state: &HttpState,
    context: &RequestContext,
    Submitted { request, form }: Submitted,
    method: Method,
) -> Result<(Request, bool), ServerError> {
    let app = &state.app;
    let tenancy_error = |e: tenancy::Error| server_error(e.into());
    let key_call = match (context.caller().ok(), context.org) {
        (Some(caller), Some(org)) => match caller.claimed() {
            Principal::ApiKey { key, .. } => Some((caller, org, key)),
            Principal::User(_) => None,
        },
        _ => None,
    };
    if let Some((caller, org, key)) = key_call {
        // Over its rate: refused before anything runs or is metered (before its
        // organization is even entered, once the plan's rate is known here).
        let cached_rates = state.rate_limits.plan_rates(org);
        if let Some(per_minute) = cached_rates.and_then(|rates| rates.per_api_key) {
            within_rate(state, Subject::ApiKey(key.as_uuid()), per_minute).await?;
        }
        let (tx, _) = app
            .tenancy
            .enter(caller, org, kernel::TxMode::Write)
            .await
            .map_err(tenancy_error)?;
        app.tenancy
            .note_key_use(&tx, caller)
            .await
            .map_err(tenancy_error)?;
        if cached_rates.is_none() {
            // Read once a minute per organization, in the transaction already open.
            let plan = app
                .subscriptions
                .request_rates(&tx)
                .await
                .map_err(|e| server_error(e.into()))?;
            let rates = state.rate_limits.keep_plan_rates(org, plan);
            if let Some(per_minute) = rates.per_api_key {
                within_rate(state, Subject::ApiKey(key.as_uuid()), per_minute).await?;
            }
        }
        let trusted_only = match app.persisted.key_policy(key) {
            Some(known) => known,
            None => {
                let read = app
                    .tenancy
                    .key_runs_trusted_documents_only(&tx, key)
                    .await
                    .map_err(tenancy_error)?;
                app.persisted.keep_key_policy(key, read);
                read
            }
        };
        let lookup = OrgLookup::In(&tx);
        let apq_scope = Some(key.as_uuid());
        let mut request = resolve(state, request, form, (apq_scope, trusted_only), lookup).await?;
        only_queries_over_get(&mut request, method)?;
        let introspects = asks_for_introspection(&mut request);
        // Entering verified the key: `signed-in` lets it introspect, unless it is
        // restricted to trusted documents (its integration has no need to).
        if introspects && (trusted_only || state.introspection == Introspection::Off) {
            return Err(introspection_refused());
        }
        app.subscriptions
            .meter_api_call(&tx, uuid::Uuid::now_v7())
            .await
            .map_err(|e| server_error(e.into()))?;
        tx.commit().await.map_err(|e| server_error(e.into()))?;
        return Ok((request, introspects));
    }
    // A person's rate is the server's: they act across organizations, and the one a
    // request names is not checked yet (its plan must not choose the rate). The token's
    // signature is checked, so the id is theirs.
    if let Some(caller) = context.caller().ok()
        && let Principal::User(user) = caller.claimed()
        && let Some(per_minute) = state.rate_limits.defaults().per_user
    {
        within_rate(state, Subject::User(user.as_uuid()), per_minute).await?;
    }
    let (trusted_only, lookup) = match (&context.auth, context.org) {
        (Authentication::Caller(caller), Some(org)) => {
            (state.trusted_only.users, OrgLookup::Enter(caller, org))
        }
        (Authentication::Caller(_), None) => (state.trusted_only.users, OrgLookup::None),
        _ => (state.trusted_only.anonymous, OrgLookup::None),
    };
    // Texts an APQ client registered are the caller's own (a token's signature is
    // checked, so its id is the caller's); an anonymous caller's are everyone's.
    let apq_scope = context.caller().ok().map(|caller| caller.claimed().id());
    let mut request = resolve(state, request, form, (apq_scope, trusted_only), lookup).await?;
    only_queries_over_get(&mut request, method)?;
    let introspects = asks_for_introspection(&mut request);
    if introspects {
        if trusted_only {
            return Err(introspection_refused());
        }
        may_introspect(app, context, state.introspection).await?;
    }
    Ok((request, introspects))
}

/// The earlier request with the caller's Idempotency-Key, or a claim for this one: a key
/// belongs to an organization and a caller, so both are needed.
async fn idempotent(
    state: &HttpState,
    context: &RequestContext,
    request: &mut Request,
    key: String,
) -> Result<crate::idempotency::Earlier, ServerError> {
    let refused = |message: String| Err(request_error(ErrorCode::BadRequest, message));
    let operation_name = request.operation_name.clone();
    if let Ok(document) = request.parsed_query() {
        for field in root_fields(document, operation_name.as_deref()) {
            if let Some((_, why)) = crate::idempotency::NOT_IDEMPOTENT_MUTATIONS
                .iter()
                .find(|(name, _)| *name == field)
            {
                return refused(format!(
                    "Idempotency-Key is not accepted with {field}: {why}"
                ));
            }
            if field != "__typename" && !crate::idempotency::IDEMPOTENT_MUTATIONS.contains(&field) {
                return refused(format!("Idempotency-Key is not accepted with {field}"));
            }
        }
    }
    let (Ok(caller), Some(org)) = (context.caller(), context.org) else {
        return Err(request_error(
            ErrorCode::BadRequest,
            "Idempotency-Key applies to mutations in an organization: send it with credentials \
             and X-Organization-Id (an API key names its own)",
        ));
    };
    let fingerprint = crate::idempotency::fingerprint(request);
    crate::idempotency::look_up(&state.app, caller, org, key, fingerprint)
        .await
        .map_err(server_error)
}

/// `RATE_LIMITED` (with `retryAfterSeconds`) when `subject` is over `per_minute`.
async fn within_rate(
    state: &HttpState,
    subject: Subject,
    per_minute: std::num::NonZeroU32,
) -> Result<(), ServerError> {
    let Err(wait) = state.rate_limits.check(subject, per_minute).await else {
        return Ok(());
    };
    let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    let mut refused = request_error(
        ErrorCode::RateLimited,
        format!("more than {per_minute} requests a minute; retry in {seconds} s"),
    );
    if let Some(ext) = refused.extensions.as_mut() {
        ext.set("retryAfterSeconds", seconds);
    }
    Err(refused)
}

/// The names of the root fields the operation selects (through fragments too).
fn root_fields<'a>(
    document: &'a async_graphql::parser::types::ExecutableDocument,
    operation_name: Option<&str>,
) -> Vec<&'a str> {
    use async_graphql::parser::types::{Selection, SelectionSet};
    fn walk<'a>(
        document: &'a async_graphql::parser::types::ExecutableDocument,
        set: &'a SelectionSet,
        seen: &mut Vec<&'a str>,
        names: &mut Vec<&'a str>,
    ) {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => names.push(field.node.name.node.as_str()),
                Selection::InlineFragment(inline) => {
                    walk(document, &inline.node.selection_set.node, seen, names)
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    if seen.contains(&name) {
                        continue;
                    }
                    seen.push(name);
                    if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node)
                    {
                        walk(document, &fragment.node.selection_set.node, seen, names);
                    }
                }
            }
        }
    }
    let operation = document
        .operations
        .iter()
        .find(|(name, _)| match operation_name {
            Some(wanted) => name.map(|n| n.as_str()) == Some(wanted),
            None => true,
        });
    let mut names = Vec::new();
    if let Some((_, operation)) = operation {
        walk(
            document,
            &operation.node.selection_set.node,
            &mut Vec::new(),
            &mut names,
        );
    }
    names
}

/// Where an organization's trusted documents are read: in the caller's transaction
/// already open (an API key's), by entering the organization (a person: membership and
/// session checked), or nowhere (no caller, or no organization named).
enum OrgLookup<'a> {
    In(&'a kernel::TenantTx),
    Enter(&'a tenancy::Caller, OrgId),
    None,
}

/// The request with its document, as `form` names it, admitted.
async fn resolve(
    state: &HttpState,
    mut request: Request,
    form: Form,
    (scope, trusted_only): (Option<uuid::Uuid>, bool),
    lookup: OrgLookup<'_>,
) -> Result<Request, ServerError> {
    let persisted = &state.app.persisted;
    match form {
        Form::Own => Ok(request),
        Form::Text if trusted_only => Err(not_in_list()),
        Form::Text => Ok(request),
        Form::TextWithId(hash) => {
            if trusted_only {
                // Runs if it is a trusted document (the id was checked against the text).
                if find_trusted(state, hash, lookup).await?.is_none() {
                    return Err(not_in_list());
                }
            } else {
                // An APQ client registering its text for this caller's scope.
                persisted.keep_automatic(scope, hash, &request.query);
            }
            Ok(request)
        }
        Form::ById(hash) => {
            // A caller who may send text may have registered it by APQ: the same text
            // as any trusted document with this id (the id is its hash), found without
            // a statement.
            if !trusted_only && let Some(text) = persisted.automatic(scope, hash) {
                request.query = text.to_string();
                return admit_text(state, request, None);
            }
            match find_trusted(state, hash, lookup).await? {
                Some(trusted) => {
                    request.query = trusted.text.clone();
                    admit_text(state, request, Some(trusted.parsed.clone()))
                }
                None => Err(request_error(
                    ErrorCode::PersistedQueryNotFound,
                    format!(
                        "no document {hash} is known here: send its text with its id (APQ), \
                         or register it as a trusted document"
                    ),
                )),
            }
        }
    }
}

/// The trusted document `hash` the caller may run: the platform's, or its
/// organization's, kept parsed after it is first read. An organization's is looked for
/// only once the caller is known to be its (its transaction entered): a kept one is
/// never handed to a caller who merely names the organization.
async fn find_trusted(
    state: &HttpState,
    hash: tenancy::DocumentHash,
    lookup: OrgLookup<'_>,
) -> Result<Option<Arc<admission::Trusted>>, ServerError> {
    let app = &state.app;
    let persisted = &app.persisted;
    if let Some(kept) = persisted.trusted(None, hash) {
        return Ok(Some(kept));
    }
    // An API key's organization is entered already: its kept documents cost nothing.
    if let OrgLookup::In(tx) = &lookup
        && let Some(kept) = persisted.trusted(Some(tx.org_id()), hash)
    {
        return Ok(Some(kept));
    }
    let tenancy_error = |e: tenancy::Error| server_error(e.into());
    let platform = match &lookup {
        OrgLookup::In(tx) => app.tenancy.platform_trusted_document(tx.conn(), hash).await,
        _ => {
            app.tenancy
                .platform_trusted_document(app.db.conn(), hash)
                .await
        }
    }
    .map_err(tenancy_error)?;
    let of_org = |tx: &kernel::TenantTx| persisted.trusted(Some(tx.org_id()), hash);
    let (scope, text) = match (platform, lookup) {
        (Some(text), _) => (None, text),
        (None, OrgLookup::In(tx)) => {
            match app
                .tenancy
                .live_trusted_document(tx, hash)
                .await
                .map_err(tenancy_error)?
            {
                Some(document) => (Some(document.org_id), document.body),
                None => return Ok(None),
            }
        }
        (None, OrgLookup::Enter(caller, org)) => {
            // Entering checks the person's membership (and session).
            let (tx, _) = app
                .tenancy
                .enter(caller, org, kernel::TxMode::Read)
                .await
                .map_err(tenancy_error)?;
            if let Some(kept) = of_org(&tx) {
                return Ok(Some(kept));
            }
            let found = app
                .tenancy
                .live_trusted_document(&tx, hash)
                .await
                .map_err(tenancy_error)?;
            match found {
                Some(document) => (Some(document.org_id), document.body),
                None => return Ok(None),
            }
        }
        (None, OrgLookup::None) => return Ok(None),
    };
    persisted
        .keep_trusted(scope, hash, text)
        .map(Some)
        .map_err(|e| Refusal::Parse(ServerError::from(e).message).into_server_error())
}

/// `PERSISTED_QUERY_NOT_IN_LIST`: the caller sent text but may run trusted documents only.
fn not_in_list() -> ServerError {
    request_error(
        ErrorCode::PersistedQueryNotInList,
        "this caller may run trusted documents only: send `documentId` (`sha256:<hex>`) of a \
         document its organization registered, not the text",
    )
}

/// `FORBIDDEN` with `reason = "INTROSPECTION_DISABLED"`.
fn introspection_refused() -> ServerError {
    let mut refused = request_error(
        ErrorCode::Forbidden,
        "introspection is turned off for this caller; the schema is published as `schema.graphql`",
    );
    if let Some(ext) = refused.extensions.as_mut() {
        ext.set("reason", "INTROSPECTION_DISABLED");
    }
    refused
}

/// Refuses a mutation over GET (a document sent by id is known only once found).
fn only_queries_over_get(request: &mut Request, method: Method) -> Result<(), ServerError> {
    if method == Method::Get && is_mutation(request) {
        return Err(request_error(
            ErrorCode::BadRequest,
            "mutations are only accepted over POST",
        ));
    }
    Ok(())
}

/// An error outside any field, with its code and extensions.
pub(crate) fn server_error(error: crate::error::ApiError) -> ServerError {
    let error = async_graphql::Error::from(error);
    let mut server = ServerError::new(error.message, None);
    server.extensions = error.extensions;
    server
}

/// Authentication and the active organization. A bad `X-Organization-Id` fails the
/// whole request; bad credentials only fail the operations that need a caller.
async fn request_context(
    app: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    request_id: String,
) -> Result<RequestContext, ServerError> {
    let auth = match bearer(headers) {
        None => Authentication::Anonymous,
        Some(credential) => match app.tenancy.authenticate(credential).await {
            Ok(caller) => Authentication::Caller(caller),
            Err(tenancy::Error::InvalidToken) => Authentication::Invalid,
            Err(e) => return Err(server_error(e.into())),
        },
    };
    let header_org = match headers.get("x-organization-id") {
        None => None,
        Some(value) => {
            let decoded = value.to_str().ok().and_then(|v| {
                GlobalId::expect(
                    "X-Organization-Id",
                    &v.trim().into(),
                    NodeKind::Organization,
                )
                .ok()
            });
            match decoded {
                Some(id) => Some(OrgId::from_uuid(id.id)),
                None => {
                    return Err(request_error(
                        ErrorCode::BadUserInput,
                        "X-Organization-Id is not an organization id issued by this API",
                    ));
                }
            }
        }
    };
    let key_org = match &auth {
        Authentication::Caller(caller) => match caller.claimed() {
            Principal::ApiKey { org, .. } => Some(org),
            Principal::User(_) => None,
        },
        _ => None,
    };
    // A key acts in its own organization only: naming another one is refused before any
    // resolver runs (and before metering, which counts the key's own organization).
    if let (Some(key_org), Some(header_org)) = (key_org, header_org)
        && key_org != header_org
    {
        return Err(server_error(ApiError::WrongPrincipal(
            "this API key belongs to another organization than X-Organization-Id names",
        )));
    }
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok(RequestContext {
        auth,
        org: header_org.or(key_org),
        request_id,
        decisions: Default::default(),
        turn: kernel::RequestTurn::default(),
        client: ClientInfo {
            ip: Some(peer.ip().to_string()),
            user_agent,
        },
    })
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credential) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credential.trim())
}

fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.chars().all(|c| c.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// Errors that reached the response without a code came from async-graphql's input
/// coercion (a variable of the wrong type) or from somewhere unforeseen.
fn add_missing_codes(response: &mut Response) {
    for error in &mut response.errors {
        let fallback = if error.message.starts_with("Failed to parse")
            || error.message.starts_with("Invalid value for argument")
        {
            ErrorCode::BadUserInput
        } else {
            ErrorCode::Internal
        };
        ensure_code(error, fallback);
    }
}

fn reject(
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
async fn graphql_response_media(
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

fn respond(
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
