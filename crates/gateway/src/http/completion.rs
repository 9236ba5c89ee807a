//! Each request run on a task of its own to its end or its deadline, then logged, counted
//! and traced (one line, one span).

use super::request::request_id;
use super::respond::reject;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use kernel::ErrorCode;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// What [`run_to_completion`] needs: the deadline, and where it counts requests.
#[derive(Clone)]
pub(super) struct Completion {
    pub(super) deadline: Duration,
    pub(super) metrics: Arc<crate::metrics::Metrics>,
}

/// Runs the request on a task of its own, to its end or to `deadline`. A client that hangs
/// up drops only the wait for the answer, not the work: a mutation it abandoned commits
/// completely (with its audit event) or rolls back completely, never stopped half-way
/// between two statements. At the deadline the task is aborted, which rolls its
/// transaction back and returns its connection, and the client gets `TIMEOUT`.
pub(super) async fn run_to_completion(
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
pub(super) struct GraphqlOutcome {
    pub(super) operations: String,
    pub(super) codes: String,
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
