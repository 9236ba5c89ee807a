//! `POST /webhooks/stripe`: Stripe's payment events.

use super::HttpState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use billing::ProviderEvent;
use kernel::{InvoiceId, OrgId};

/// Stripe's webhook: verified by signature and timestamp, deduplicated by event id, and
/// acted on only after re-reading the payment from Stripe (events arrive at least once
/// and out of order). 2xx tells Stripe to stop retrying; 5xx asks it to retry.
pub(super) async fn stripe_webhook(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let app = &state.app;
    let Some(secret) = app
        .stripe_webhook_secret
        .as_ref()
        .map(secrecy::ExposeSecret::expose_secret)
    else {
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
        let recorded = app
            .subscriptions
            .record_provider_event(
                &tx,
                "stripe",
                (&event.id, &event.kind),
                InvoiceId::from_uuid(invoice),
                &outcome,
            )
            .await?;
        if recorded == ProviderEvent::Handled {
            tx.commit().await?;
        }
        anyhow::Ok(recorded)
    };
    match handled.await {
        Ok(ProviderEvent::Handled) => (StatusCode::OK, "handled").into_response(),
        Ok(ProviderEvent::Duplicate) => (StatusCode::OK, "duplicate").into_response(),
        Ok(ProviderEvent::NotOurs) => (StatusCode::OK, "ignored").into_response(),
        Err(e) => {
            tracing::error!(error = ?e, event = %event.id, "webhook failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "retry later").into_response()
        }
    }
}
