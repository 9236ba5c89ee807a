//! The request's identity: its id, its credentials and the organization it names.

use super::HttpState;
use super::respond::respond;
use crate::context::{Authentication, RequestContext};
use crate::error::{ApiError, request_error, server_error};
use crate::graphql::ids::{GlobalId, NodeKind};
use crate::startup::AppState;
use async_graphql::{BatchResponse, Response, ServerError};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, StatusCode, header};
use kernel::{ErrorCode, OrgId, Principal};
use std::net::SocketAddr;
use tenancy::ClientInfo;

/// The request's context, for a handler outside GraphQL (a download) as an axum
/// extractor: credentials and organization decided as for GraphQL. A bad
/// `X-Organization-Id`, or a credential check that failed (not merely a bad credential),
/// answers 400 with the error in GraphQL's shape. (The GraphQL handler builds its context
/// itself, after the checks that need no credentials: a refused document or a malformed
/// Idempotency-Key is answered before any credential is looked up.)
pub(super) struct Identified {
    /// The request's facts.
    pub context: RequestContext,
    /// Its id (`X-Request-Id` or a fresh one), answered on the response.
    pub request_id: String,
}

impl axum::extract::FromRequestParts<HttpState> for Identified {
    type Rejection = axum::response::Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &HttpState,
    ) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        let ConnectInfo(peer) = ConnectInfo::<SocketAddr>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let request_id = request_id(&parts.headers);
        match request_context(&state.app, peer, &parts.headers, request_id.clone()).await {
            Ok(context) => Ok(Self {
                context,
                request_id,
            }),
            Err(error) => Err(respond(
                &request_id,
                StatusCode::BAD_REQUEST,
                BatchResponse::Single(Response::from_errors(vec![error])),
            )),
        }
    }
}

/// Authentication and the active organization. A bad `X-Organization-Id` fails the
/// whole request; bad credentials only fail the operations that need a caller.
pub(super) async fn request_context(
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

pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credential) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credential.trim())
}

pub(super) fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.chars().all(|c| c.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}
