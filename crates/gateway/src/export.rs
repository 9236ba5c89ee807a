//! `GET /audit/export?format=jsonl|csv&from=&to=`: the active organization's audit
//! trail as JSON Lines or CSV, streamed page by page, for owners, admins and auditors.
//! The export itself is recorded before the first byte is sent.

use crate::context::{Authentication, RequestContext};
use crate::error::{ApiError, request_error};
use crate::startup::AppState;
use audit::{AuditEvent, EventFilter};
use authz::{Action, Resource, ResourceType};
use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use kernel::{ErrorCode, PageRequest, RequestMeta, TxMode};
use serde::Deserialize;
use serde_json::json;

/// Rows read per page while streaming.
const EXPORT_PAGE: u64 = 500;

/// Query parameters.
#[derive(Debug, Deserialize)]
pub struct ExportParams {
    format: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// An RFC 3339 instant, or the message saying which parameter is not one.
fn instant(field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, String> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| format!("`{field}` must be an RFC 3339 instant"))
        })
        .transpose()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    JsonLines,
    Csv,
}

/// A refusal with its own message, answered with the status of its code.
fn error(code: ErrorCode, message: &str) -> Response {
    crate::error::http_error(
        crate::error::http_status(code),
        request_error(code, message),
    )
}

/// The plan feature the export needs.
const AUDIT_EXPORT: &str = "audit_export";

/// Streams the export.
pub async fn export(app: AppState, context: RequestContext, params: ExportParams) -> Response {
    let format = match params.format.as_deref().unwrap_or("jsonl") {
        "jsonl" => Format::JsonLines,
        "csv" => Format::Csv,
        _ => {
            return error(ErrorCode::BadUserInput, "format must be jsonl or csv");
        }
    };
    let (from, to) = match (
        instant("from", params.from.as_deref()),
        instant("to", params.to.as_deref()),
    ) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(message), _) | (_, Err(message)) => {
            return error(ErrorCode::BadUserInput, &message);
        }
    };
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return error(ErrorCode::BadUserInput, "`to` must not be before `from`");
    }
    let Authentication::Caller(caller) = context.auth else {
        return error(ErrorCode::Unauthenticated, "authentication required");
    };
    let Some(org) = context.org else {
        return error(ErrorCode::BadUserInput, "send the X-Organization-Id header");
    };
    let filter = EventFilter {
        from,
        to,
        ..EventFilter::default()
    };
    let meta = RequestMeta {
        principal: Some(caller.claimed()),
        impersonator: None,
        request_id: Some(context.request_id.clone()),
        operation: Some("GET /audit/export".into()),
        ip: context.client.ip.clone(),
        user_agent: context.client.user_agent.clone(),
    };
    let format_name = if format == Format::Csv {
        "csv"
    } else {
        "jsonl"
    };
    let recorded = kernel::request::scope(meta, async {
        let (tx, actor) = app.tenancy.enter(&caller, org, TxMode::Write).await?;
        let permit = app
            .authz
            .check(
                &tx,
                actor.principal,
                Resource::of_type(ResourceType::Audit),
                Action::Export,
            )
            .await
            .map_err(tenancy::Error::from)?;
        // The plan decides whether the trail may leave the platform.
        if !app
            .limits
            .feature(&tx, AUDIT_EXPORT)
            .await
            .map_err(tenancy::Error::from)?
        {
            return Ok(None);
        }
        app.tenancy
            .record_audit_export(&tx, &permit, format_name, &filter)
            .await?;
        tx.commit().await?;
        Ok::<_, tenancy::Error>(Some(permit))
    })
    .await;
    let permit = match recorded {
        Ok(Some(permit)) => permit,
        Ok(None) => return ApiError::PlanFeature(AUDIT_EXPORT).into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };

    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        if format == Format::Csv {
            let _ = sender
                .send(Ok(Bytes::from(csv_row(&CSV_HEADER.map(String::from)))))
                .await;
        }
        let mut page = PageRequest {
            limit: EXPORT_PAGE,
            ..PageRequest::first_page()
        };
        loop {
            let read = async {
                let (tx, _) = app.tenancy.enter(&caller, org, TxMode::Read).await?;
                app.tenancy
                    .export_audit_events(&tx, &permit, &filter, &page)
                    .await
            };
            let events = match read.await {
                Ok(events) => events,
                Err(e) => {
                    tracing::error!(error = ?e, "audit export stopped");
                    let _ = sender
                        .send(Err(std::io::Error::other("export failed")))
                        .await;
                    return;
                }
            };
            let mut chunk = String::new();
            for event in &events.items {
                chunk.push_str(&match format {
                    Format::JsonLines => json_line(event),
                    Format::Csv => csv_row(&csv_fields(event)),
                });
            }
            if sender.send(Ok(Bytes::from(chunk))).await.is_err() {
                return;
            }
            match events.items.last() {
                Some(last) if events.has_next => page.after = Some(last.id),
                _ => return,
            }
        }
    });
    let content_type = match format {
        Format::JsonLines => "application/x-ndjson",
        Format::Csv => "text/csv; charset=utf-8",
    };
    let stream = tokio_stream_from(receiver);
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_DISPOSITION, "attachment"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

fn tokio_stream_from(
    mut receiver: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

fn json_line(event: &AuditEvent) -> String {
    let changes: Vec<_> = event
        .changes
        .iter()
        .map(|c| json!({ "field": c.field, "before": c.before, "after": c.after }))
        .collect();
    let mut line = json!({
        "seq": event.seq,
        "id": event.id,
        "occurredAt": event.occurred_at,
        "actorType": event.actor_type,
        "actorId": event.actor_id,
        "impersonatorId": event.impersonator_id,
        "action": event.action,
        "targetType": event.target_type,
        "targetId": event.target_id,
        "outcome": event.outcome,
        "changes": changes,
        "requestId": event.request_id,
        "operation": event.operation,
        "ip": event.ip,
        "userAgent": event.user_agent,
        "hash": event.hash,
    })
    .to_string();
    line.push('\n');
    line
}

const CSV_HEADER: [&str; 15] = [
    "seq",
    "id",
    "occurred_at",
    "actor_type",
    "actor_id",
    "impersonator_id",
    "action",
    "target_type",
    "target_id",
    "outcome",
    "changes",
    "request_id",
    "operation",
    "ip",
    "user_agent",
];

fn csv_fields(event: &AuditEvent) -> [String; 15] {
    let changes: Vec<_> = event
        .changes
        .iter()
        .map(|c| json!({ "field": c.field, "before": c.before, "after": c.after }))
        .collect();
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        event.seq.to_string(),
        event.id.to_string(),
        event.occurred_at.to_rfc3339(),
        event.actor_type.clone(),
        opt(&event.actor_id),
        opt(&event.impersonator_id),
        event.action.clone(),
        event.target_type.clone(),
        opt(&event.target_id),
        event.outcome.clone(),
        serde_json::Value::Array(changes).to_string(),
        opt(&event.request_id),
        opt(&event.operation),
        opt(&event.ip),
        opt(&event.user_agent),
    ]
}

/// One RFC 4180 row: fields with a comma, quote or line break are quoted, quotes
/// doubled. A leading `=`, `+`, `-`, `@`, `|`, tab or carriage return is prefixed with
/// `'` so spreadsheets do not run it as a formula (or a DDE command).
fn csv_row(fields: &[String]) -> String {
    let mut row = fields
        .iter()
        .map(|field| {
            let field = if field.starts_with(['=', '+', '-', '@', '|', '\t', '\r']) {
                format!("'{field}")
            } else {
                field.clone()
            };
            if field.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", field.replace('"', "\"\""))
            } else {
                field
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    row.push_str("\r\n");
    row
}

/// Re-exported for the router.
pub use axum::extract::Query as ExportQuery;

/// `GET /exports/{id}`: a prepared data export, streamed to whoever asked for it (anyone
/// else: `NOT_FOUND`, like an id that never existed), until it expires (`410`, `reason =
/// "EXPIRED"`); while it is prepared, `409`. Each download is recorded.
pub async fn data_export(app: AppState, context: RequestContext, id: &str) -> Response {
    let user = match context.verified_principal(&app.tenancy).await {
        Ok(kernel::Principal::User(user)) => user,
        Ok(kernel::Principal::ApiKey { .. }) | Err(tenancy::Error::InvalidToken) => {
            return error(
                ErrorCode::Unauthenticated,
                "log in as the person who asked for the export",
            );
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let not_found = || error(ErrorCode::NotFound, "data export not found");
    let Ok(id) = uuid::Uuid::parse_str(id) else {
        return not_found();
    };
    let export = match app.tenancy.data_export_for(user, id).await {
        Ok(export) => export,
        Err(e) => return ApiError::from(e).into_response(),
    };
    if export.expires_at <= app.clock.now() {
        return reasoned(
            StatusCode::GONE,
            ErrorCode::NotFound,
            "the export has expired; ask for a new one",
            "EXPIRED",
        );
    }
    if export.status != tenancy::ExportStatus::Ready {
        return reasoned(
            StatusCode::CONFLICT,
            ErrorCode::Conflict,
            "the export is not ready (see its status)",
            "NOT_READY",
        );
    }
    let file = match tokio::fs::File::open(crate::background::data_export::archive_path(
        &app, export.id,
    ))
    .await
    {
        Ok(file) => file,
        Err(e) => {
            tracing::error!(export.id = %export.id, error = ?e, "a ready export has no archive");
            return not_found();
        }
    };
    if let Err(e) = app.tenancy.record_export_download(&export).await {
        return ApiError::from(e).into_response();
    }
    let chunks = futures::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut buffer = vec![0u8; 64 * 1024];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(read) => {
                buffer.truncate(read);
                Some((Ok::<Bytes, std::io::Error>(Bytes::from(buffer)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"export-{}.zip\"", export.id),
            ),
        ],
        Body::from_stream(chunks),
    )
        .into_response()
}

/// An error with `extensions.reason`.
fn reasoned(status: StatusCode, code: ErrorCode, message: &str, reason: &str) -> Response {
    let mut error = request_error(code, message);
    if let Some(ext) = error.extensions.as_mut() {
        ext.set("reason", reason);
    }
    crate::error::http_error(status, error)
}

#[cfg(test)]
mod tests {
    use super::csv_row;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        let row = csv_row(&[
            "plain".into(),
            "a,b".into(),
            "say \"hi\"".into(),
            "=SUM(A1)".into(),
            "|calc".into(),
            "\t+1".into(),
        ]);
        assert_eq!(
            row,
            "plain,\"a,b\",\"say \"\"hi\"\"\",'=SUM(A1),'|calc,'\t+1\r\n"
        );
    }
}
