//! Stripe as a [`billing::PaymentProvider`]: an invoice is charged by creating and
//! confirming a PaymentIntent (`POST /v1/payment_intents`, with the attempt's idempotency
//! key, so a retried request charges once), and an earlier charge is re-read with
//! `GET /v1/payment_intents/{id}`. Incoming webhooks are verified here
//! ([`verify_signature`]: HMAC-SHA256 of `"{timestamp}.{body}"` with the endpoint secret,
//! within a tolerance of the timestamp) and read ([`WebhookEvent`]).
//!
//! Tests run it against a local mock server (wiremock); `base_url` is the API's address.

use billing::{ChargeOutcome, ChargeRequest, PaymentProvider, ProviderFuture};
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// Stripe's API.
#[derive(Debug, Clone)]
pub struct StripeProvider {
    base_url: String,
    secret_key: String,
    http: reqwest::Client,
}

#[derive(Debug, Deserialize)]
struct PaymentIntent {
    id: String,
    status: String,
    #[serde(default)]
    last_payment_error: Option<ApiErrorBody>,
}

#[derive(Debug, Deserialize)]
struct ApiErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    code: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorEnvelope {
    error: ApiErrorBody,
}

fn outcome(intent: PaymentIntent) -> ChargeOutcome {
    match intent.status.as_str() {
        "succeeded" => ChargeOutcome::Paid(intent.id),
        "processing" | "requires_capture" => ChargeOutcome::Pending,
        other => ChargeOutcome::Failed(
            intent
                .last_payment_error
                .and_then(|e| e.message.or(e.code))
                .unwrap_or_else(|| format!("payment intent {}: {other}", intent.id)),
        ),
    }
}

fn provider_error(e: impl std::fmt::Display) -> billing::Error {
    billing::Error::Provider(e.to_string())
}

impl StripeProvider {
    /// A provider calling the API at `base_url` (`https://api.stripe.com`) with
    /// `secret_key`.
    pub fn new(base_url: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            secret_key: secret_key.into(),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
        }
    }

    async fn answer(&self, response: reqwest::Response) -> billing::Result<ChargeOutcome> {
        let status = response.status();
        if status.is_success() {
            let intent: PaymentIntent = response.json().await.map_err(provider_error)?;
            return Ok(outcome(intent));
        }
        // 402: the card was declined; the charge failed (a dunning matter). Anything
        // else is the provider failing, retried on the next run without counting.
        let body = response.text().await.map_err(provider_error)?;
        if status == reqwest::StatusCode::PAYMENT_REQUIRED {
            let reason = serde_json::from_str::<ErrorEnvelope>(&body)
                .ok()
                .and_then(|e| e.error.message.or(e.error.code))
                .unwrap_or_else(|| "card declined".to_owned());
            return Ok(ChargeOutcome::Failed(reason));
        }
        Err(billing::Error::Provider(format!("HTTP {status}: {body}")))
    }
}

impl PaymentProvider for StripeProvider {
    fn name(&self) -> &'static str {
        "stripe"
    }

    fn charges_automatically(&self) -> bool {
        true
    }

    fn charge(&self, request: ChargeRequest) -> ProviderFuture<'_> {
        Box::pin(async move {
            let (amount, currency) = billing::payments::provider_amount(request.amount);
            let form = [
                ("amount", amount.to_string()),
                ("currency", currency),
                ("confirm", "true".to_owned()),
                ("off_session", "true".to_owned()),
                ("description", request.invoice_number.clone()),
                ("metadata[invoice_id]", request.invoice_id.to_string()),
                (
                    "metadata[organization_id]",
                    request.organization_id.to_string(),
                ),
            ];
            let response = self
                .http
                .post(format!("{}/v1/payment_intents", self.base_url))
                .bearer_auth(&self.secret_key)
                .header("Idempotency-Key", &request.idempotency_key)
                .form(&form)
                .send()
                .await
                .map_err(provider_error)?;
            self.answer(response).await
        })
    }

    fn status(&self, reference: &str) -> ProviderFuture<'_> {
        let reference = reference.to_owned();
        Box::pin(async move {
            if !reference
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(billing::Error::Provider(format!(
                    "not a payment intent id: {reference}"
                )));
            }
            let response = self
                .http
                .get(format!("{}/v1/payment_intents/{reference}", self.base_url))
                .bearer_auth(&self.secret_key)
                .send()
                .await
                .map_err(provider_error)?;
            self.answer(response).await
        })
    }
}

/// Why a webhook was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    /// No or a malformed `Stripe-Signature` header.
    #[error("malformed Stripe-Signature header")]
    Malformed,
    /// No signature matches the body.
    #[error("signature does not match")]
    Mismatch,
    /// The timestamp is outside the tolerance (a replay).
    #[error("timestamp outside the tolerance")]
    Stale,
    /// The body is not an event.
    #[error("not a Stripe event: {0}")]
    Body(String),
}

/// Checks a `Stripe-Signature` header (`t=…,v1=…[,v1=…]`) against `payload`: one `v1`
/// must be the HMAC-SHA256 of `"{t}.{payload}"` under `secret`, and `t` within
/// `tolerance` of `now`. Compared in constant time.
pub fn verify_signature(
    payload: &[u8],
    header: &str,
    secret: &str,
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<(), WebhookError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => {
                signatures.push(hex::decode(sig).map_err(|_| WebhookError::Malformed)?)
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(WebhookError::Malformed)?;
    if signatures.is_empty() {
        return Err(WebhookError::Malformed);
    }
    let matches = signatures.iter().any(|signature| {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
            return false;
        };
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload);
        mac.verify_slice(signature).is_ok()
    });
    if !matches {
        return Err(WebhookError::Mismatch);
    }
    if (now.timestamp() - timestamp).abs() > tolerance.num_seconds() {
        return Err(WebhookError::Stale);
    }
    Ok(())
}

/// The header a sender computes for `payload` at `timestamp` (tests and tools).
pub fn sign(payload: &[u8], secret: &str, timestamp: i64) -> String {
    // HMAC takes keys of any length: this does not fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// What the platform reads of a webhook event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// Stripe's event id (deduplication key).
    pub id: String,
    /// `payment_intent.succeeded`, `payment_intent.payment_failed`, …
    pub kind: String,
    /// The payment intent's id.
    pub object_id: String,
    /// The invoice it paid (from the charge's metadata).
    pub invoice_id: Option<uuid::Uuid>,
    /// The organization.
    pub organization_id: Option<uuid::Uuid>,
}

impl WebhookEvent {
    /// Reads an event body.
    pub fn parse(payload: &[u8]) -> Result<Self, WebhookError> {
        #[derive(Deserialize)]
        struct Metadata {
            invoice_id: Option<String>,
            organization_id: Option<String>,
        }
        #[derive(Deserialize)]
        struct Object {
            id: String,
            metadata: Option<Metadata>,
        }
        #[derive(Deserialize)]
        struct Data {
            object: Object,
        }
        #[derive(Deserialize)]
        struct Event {
            id: String,
            #[serde(rename = "type")]
            kind: String,
            data: Data,
        }
        let event: Event =
            serde_json::from_slice(payload).map_err(|e| WebhookError::Body(e.to_string()))?;
        let metadata = event.data.object.metadata;
        let id = |v: Option<String>| v.and_then(|s| uuid::Uuid::parse_str(&s).ok());
        Ok(Self {
            id: event.id,
            kind: event.kind,
            object_id: event.data.object.id,
            invoice_id: id(metadata.as_ref().and_then(|m| m.invoice_id.clone())),
            organization_id: id(metadata.and_then(|m| m.organization_id)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{body_string_contains, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn request() -> ChargeRequest {
        ChargeRequest {
            organization_id: uuid::Uuid::nil(),
            invoice_id: billing::InvoiceId::from_uuid(uuid::Uuid::from_u128(7)),
            invoice_number: "INV-000007".into(),
            amount: billing::Money::from_minor(1279, billing::Currency::parse("USD").unwrap()),
            idempotency_key: "inv-7-1".into(),
            attempt: 1,
        }
    }

    #[tokio::test]
    async fn a_charge_posts_the_amount_in_minor_units_with_its_idempotency_key() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/payment_intents"))
            .and(header("Idempotency-Key", "inv-7-1"))
            .and(header("Authorization", "Bearer sk_test"))
            .and(body_string_contains("amount=1279"))
            .and(body_string_contains("currency=usd"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({"id": "pi_1", "status": "succeeded"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let stripe = StripeProvider::new(server.uri(), "sk_test");
        assert_eq!(
            stripe.charge(request()).await.unwrap(),
            ChargeOutcome::Paid("pi_1".into())
        );
    }

    #[tokio::test]
    async fn a_declined_card_is_a_failed_charge_and_a_server_error_is_an_error() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(402).set_body_json(serde_json::json!({
                "error": {"type": "card_error", "code": "card_declined", "message": "Your card was declined."}
            })))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(500))
            .mount(&server)
            .await;
        let stripe = StripeProvider::new(server.uri(), "sk_test");
        assert_eq!(
            stripe.charge(request()).await.unwrap(),
            ChargeOutcome::Failed("Your card was declined.".into())
        );
        assert!(stripe.charge(request()).await.is_err());
    }

    #[test]
    fn signatures_are_checked_for_body_secret_and_age() {
        let body = br#"{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","metadata":{"invoice_id":"00000000-0000-0000-0000-000000000007"}}}}"#;
        let now = DateTime::parse_from_rfc3339("2027-01-10T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let header = sign(body, "whsec", now.timestamp());
        let five = Duration::minutes(5);
        assert_eq!(verify_signature(body, &header, "whsec", now, five), Ok(()));
        assert_eq!(
            verify_signature(body, &header, "other", now, five),
            Err(WebhookError::Mismatch)
        );
        let mut changed = body.to_vec();
        changed[10] = b'X';
        assert_eq!(
            verify_signature(&changed, &header, "whsec", now, five),
            Err(WebhookError::Mismatch)
        );
        assert_eq!(
            verify_signature(body, &header, "whsec", now + Duration::minutes(6), five),
            Err(WebhookError::Stale)
        );
        assert_eq!(
            verify_signature(body, "v1=zz", "whsec", now, five),
            Err(WebhookError::Malformed)
        );
        let event = WebhookEvent::parse(body).unwrap();
        assert_eq!(event.kind, "payment_intent.succeeded");
        assert_eq!(event.invoice_id, Some(uuid::Uuid::from_u128(7)));
    }
}
