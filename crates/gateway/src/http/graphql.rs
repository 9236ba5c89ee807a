//! `POST /graphql` and `GET /graphql`: operations admitted before authentication, then
//! executed with the request's context.

use super::completion::GraphqlOutcome;
use super::prepare::{idempotent, prepare};
use super::request::{request_context, request_id};
use super::respond::{add_missing_codes, reject, respond};
use super::{HttpState, MAX_BATCH};
use crate::config::Introspection;
use crate::graphql::admission;
use crate::graphql::admission::Refusal;
use crate::graphql::loaders::Loaders;
use crate::wire::{Form, Submitted, WireBatch, WireRequest};
use async_graphql::parser::types::OperationType;
use async_graphql::{BatchResponse, Request, Response, ServerError};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use kernel::{ErrorCode, RequestMeta};
use std::net::SocketAddr;
use tracing::Instrument;

pub(super) async fn graphql_post(
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

pub(super) async fn graphql_get(
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
pub(super) struct Operations {
    pub(super) items: Vec<Result<Submitted, ServerError>>,
    pub(super) batch: bool,
    pub(super) method: Method,
}

/// The HTTP method a request came with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
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
pub(super) fn admit_text(
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
pub(super) fn is_mutation(request: &mut Request) -> bool {
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

pub(super) async fn execute(
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
                let prepared = match prepare(state, context, submitted, method).await {
                    Ok(prepared) => prepared,
                    Err(refused) => return Response::from_errors(vec![refused]),
                };
                let (mut request, introspects) = (prepared.request, prepared.introspects);
                if let Some((metered, actor)) = prepared.metered {
                    units.adopt(metered, actor).await;
                }
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
                // The operation's reads end with it (its loaders are done by now); an API
                // key's meter commits with them, or the call is not served.
                if let Err(error) = units.finish().await {
                    return Response::from_errors(vec![crate::error::server_error(error.into())]);
                }
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
