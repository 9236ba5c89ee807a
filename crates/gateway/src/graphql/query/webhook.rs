//! The catalog of webhook event types (endpoints and deliveries are listed on their
//! organization).

use crate::graphql::types::webhook::WebhookEventType;
use async_graphql::Object;

#[derive(Default)]
pub struct WebhooksQuery;

#[Object]
impl WebhooksQuery {
    /// Every event type a webhook endpoint can subscribe to.
    async fn webhook_event_types(&self) -> Vec<WebhookEventType> {
        webhooks::catalog::CATALOG
            .iter()
            .map(|t| WebhookEventType {
                name: t.name,
                description: t.description,
            })
            .collect()
    }
}
