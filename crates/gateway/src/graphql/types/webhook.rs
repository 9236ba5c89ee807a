//! Outbound webhooks: an organization's endpoints, their delivery log, and the catalog
//! of event types.

use crate::graphql::ids::{GlobalId, NodeKind};
use async_graphql::{Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use kernel::OrgId;

/// Where an organization's integration receives its events. The signing secret is only
/// ever shown by `createWebhookEndpoint` and `rotateWebhookEndpointSecret`.
pub struct WebhookEndpoint {
    /// The organization.
    pub org: OrgId,
    /// The endpoint.
    pub endpoint: webhooks::Endpoint,
}

#[Object]
impl WebhookEndpoint {
    /// Global id.
    async fn id(&self) -> ID {
        GlobalId::scoped(NodeKind::WebhookEndpoint, self.org, self.endpoint.id)
    }

    /// Where deliveries are POSTed.
    async fn url(&self) -> &str {
        &self.endpoint.url
    }

    /// What it is for.
    async fn description(&self) -> &str {
        &self.endpoint.description
    }

    /// The event types it receives (names from `webhookEventTypes`).
    async fn event_types(&self) -> &[String] {
        &self.endpoint.event_types
    }

    /// Whether deliveries are made.
    async fn enabled(&self) -> bool {
        self.endpoint.enabled
    }

    /// `FAILING` when the platform disabled it after five days of failed deliveries.
    async fn disabled_reason(&self) -> Option<&str> {
        self.endpoint.disabled_reason.as_deref()
    }

    /// Since when every delivery has failed (null: the last one succeeded).
    async fn failing_since(&self) -> Option<DateTime<Utc>> {
        self.endpoint.failing_since
    }

    /// Until when deliveries are also signed with the secret before the last rotation
    /// (null: only the current one signs).
    async fn previous_secret_signs_until(&self) -> Option<DateTime<Utc>> {
        self.endpoint.previous_secret_until
    }

    /// When made.
    async fn created_at(&self) -> DateTime<Utc> {
        self.endpoint.created_at
    }

    /// When last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.endpoint.updated_at
    }
}

/// Where a delivery stands.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookDeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// The endpoint answered 2xx.
    Succeeded,
    /// Every attempt failed, or the endpoint was disabled.
    Failed,
}

impl From<webhooks::DeliveryStatus> for WebhookDeliveryStatus {
    fn from(status: webhooks::DeliveryStatus) -> Self {
        match status {
            webhooks::DeliveryStatus::Pending => Self::Pending,
            webhooks::DeliveryStatus::Succeeded => Self::Succeeded,
            webhooks::DeliveryStatus::Failed => Self::Failed,
        }
    }
}

/// One event sent to one endpoint, and how its last attempt went.
pub struct WebhookDelivery {
    /// The organization.
    pub org: OrgId,
    /// The delivery.
    pub delivery: webhooks::Delivery,
}

#[Object]
impl WebhookDelivery {
    /// Global id (what `redeliverWebhook` takes).
    async fn id(&self) -> ID {
        GlobalId::scoped(NodeKind::WebhookDelivery, self.org, self.delivery.id)
    }

    /// The endpoint's global id.
    async fn endpoint_id(&self) -> ID {
        GlobalId::scoped(
            NodeKind::WebhookEndpoint,
            self.org,
            self.delivery.endpoint_id,
        )
    }

    /// The message's id: the `webhook-id` header and the payload's `id`, the same for
    /// every attempt and redelivery.
    async fn message_id(&self) -> String {
        self.delivery.message_id.to_string()
    }

    /// The event type.
    async fn event_type(&self) -> &str {
        &self.delivery.event_type
    }

    /// Where it stands.
    async fn status(&self) -> WebhookDeliveryStatus {
        self.delivery.status.into()
    }

    /// Attempts made.
    async fn attempts(&self) -> i32 {
        self.delivery.attempts
    }

    /// When the next attempt is due (pending only).
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        self.delivery.next_attempt_at
    }

    /// The last answer's HTTP status.
    async fn response_status(&self) -> Option<i32> {
        self.delivery.response_status
    }

    /// How long the last attempt took, in milliseconds.
    async fn latency_ms(&self) -> Option<i32> {
        self.delivery.latency_ms
    }

    /// The first bytes of the last answer's body.
    async fn response_excerpt(&self) -> Option<&str> {
        self.delivery.response_excerpt.as_deref()
    }

    /// Why the last attempt got no answer (refused address, timeout, connection).
    async fn error(&self) -> Option<&str> {
        self.delivery.last_error.as_deref()
    }

    /// When made.
    async fn created_at(&self) -> DateTime<Utc> {
        self.delivery.created_at
    }

    /// When last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.delivery.updated_at
    }
}

/// An event type endpoints can subscribe to.
#[derive(SimpleObject)]
pub struct WebhookEventType {
    /// Its name, as sent in the payload's `type`.
    pub name: &'static str,
    /// What it means.
    pub description: &'static str,
}
