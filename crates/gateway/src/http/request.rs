//! The request's identity: its id, its credentials and the organization it names.

use crate::context::{Authentication, RequestContext};
use crate::error::{ApiError, request_error, server_error};
use crate::graphql::ids::{GlobalId, NodeKind};
use crate::startup::AppState;
use async_graphql::ServerError;
use axum::http::{HeaderMap, header};
use kernel::{ErrorCode, OrgId, Principal};
use std::net::SocketAddr;
use tenancy::ClientInfo;

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
