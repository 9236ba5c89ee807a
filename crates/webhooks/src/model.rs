//! What the service hands out and takes in.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// An organization's webhook endpoint (its secret is shown only when made or rotated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Its id.
    pub id: Uuid,
    /// Where deliveries go.
    pub url: String,
    /// What it is for.
    pub description: String,
    /// The event types it receives.
    pub event_types: Vec<String>,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// Why it was disabled by the platform (`FAILING`), if it was.
    pub disabled_reason: Option<String>,
    /// Since when every delivery has failed, if they have.
    pub failing_since: Option<DateTime<Utc>>,
    /// Until when the secret before the last rotation still signs too.
    pub previous_secret_until: Option<DateTime<Utc>>,
    /// When made.
    pub created_at: DateTime<Utc>,
    /// When last changed.
    pub updated_at: DateTime<Utc>,
}

/// Input of [`crate::Webhooks::create_endpoint`].
#[derive(Debug, Clone)]
pub struct NewEndpoint<'a> {
    /// `https://…`.
    pub url: &'a str,
    /// Names from the catalog.
    pub event_types: &'a [String],
    /// What it is for.
    pub description: &'a str,
}

/// Input of [`crate::Webhooks::update_endpoint`]: what changes (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct EndpointChange {
    /// A new URL.
    pub url: Option<String>,
    /// New event types.
    pub event_types: Option<Vec<String>>,
    /// A new description.
    pub description: Option<String>,
    /// Enable (clears a failure streak) or disable.
    pub enabled: Option<bool>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// A 2xx answer came back.
    Succeeded,
    /// Every attempt failed, or its endpoint went away or was disabled.
    Failed,
}

impl DeliveryStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    /// From storage.
    pub fn parse(stored: &str) -> Option<Self> {
        [Self::Pending, Self::Succeeded, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == stored)
    }
}

/// One message to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Its id.
    pub id: Uuid,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// The message (its id is `webhook-id`).
    pub message_id: Uuid,
    /// The message's event type.
    pub event_type: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: i32,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The last answer's HTTP status.
    pub response_status: Option<i32>,
    /// The last attempt's duration in milliseconds.
    pub latency_ms: Option<i32>,
    /// The last answer's first bytes.
    pub response_excerpt: Option<String>,
    /// Why the last attempt got no answer.
    pub last_error: Option<String>,
    /// When made.
    pub created_at: DateTime<Utc>,
    /// When last changed.
    pub updated_at: DateTime<Utc>,
}

/// A delivery ready to send: what its attempt needs, read in a short transaction so no
/// transaction is open while the request is out.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The delivery.
    pub delivery_id: Uuid,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// Which attempt this is (1-based).
    pub attempt: i32,
    /// Where to.
    pub url: String,
    /// The HMAC keys: the current secret's, then the previous one's while it still signs.
    pub keys: Vec<Vec<u8>>,
    /// `webhook-id`.
    pub message_id: Uuid,
    /// The body.
    pub payload: String,
}

/// How an attempt went, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Where the delivery stands after it.
    pub status: DeliveryStatus,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Whether the endpoint was disabled by this failure.
    pub endpoint_disabled: bool,
}
