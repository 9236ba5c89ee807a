//! The delivery log: what was sent where and how it went, and redelivery on request.

use super::endpoints::find_endpoint;
use super::{DELIVER, Webhooks};
use crate::entity::{webhook_delivery, webhook_message};
use crate::error::{Error, Result};
use crate::model::{Delivery, DeliveryStatus};
use audit::NewEvent;
use authz::{Action, Permit, ResourceType};
use chrono::{DateTime, Utc};
use kernel::page::keyset_in;
use kernel::{ListOrder, Page, PageRequest, TenantTx};
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use uuid::Uuid;

/// The event types of messages, by id.
pub(super) async fn message_types(
    tx: &TenantTx,
    ids: impl IntoIterator<Item = Uuid>,
) -> Result<Vec<(Uuid, String)>> {
    let ids: Vec<Uuid> = ids.into_iter().collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(tx
        .select::<webhook_message::Entity>()
        .filter(webhook_message::Column::Id.is_in(ids))
        .all(tx.conn())
        .await?
        .into_iter()
        .map(|m| (m.id, m.event_type))
        .collect())
}

pub(super) fn delivery_from_row(
    row: webhook_delivery::Model,
    types: &[(Uuid, String)],
) -> Result<Delivery> {
    let status = DeliveryStatus::parse(&row.status)
        .ok_or_else(|| Error::Corrupt(format!("delivery {}: status", row.id)))?;
    let event_type = types
        .iter()
        .find(|(id, _)| *id == row.message_id)
        .map(|(_, t)| t.clone())
        .ok_or_else(|| Error::Corrupt(format!("delivery {} without its message", row.id)))?;
    Ok(Delivery {
        id: row.id,
        endpoint_id: row.endpoint_id,
        message_id: row.message_id,
        event_type,
        status,
        attempts: row.attempts,
        next_attempt_at: row.next_attempt_at,
        response_status: row.response_status,
        latency_ms: row.latency_ms,
        response_excerpt: row.response_excerpt,
        last_error: row.last_error,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

impl Webhooks {
    /// One page of the delivery log (of one endpoint, or all), newest first.
    pub async fn deliveries(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        endpoint: Option<Uuid>,
        page: &PageRequest,
    ) -> Result<Page<Delivery>> {
        permit.ensure(tx, ResourceType::Webhook, Action::Read, endpoint)?;
        let mut select = tx.select::<webhook_delivery::Entity>();
        if let Some(endpoint) = endpoint {
            select = select.filter(webhook_delivery::Column::EndpointId.eq(endpoint));
        }
        let rows = keyset_in(
            select,
            webhook_delivery::Column::Id,
            page,
            ListOrder::NewestFirst,
        )
        .all(tx.conn())
        .await?;
        let page = Page::from_overfetch(rows, page);
        let types = message_types(tx, page.items.iter().map(|d| d.message_id)).await?;
        Ok(Page {
            items: page
                .items
                .into_iter()
                .map(|row| delivery_from_row(row, &types))
                .collect::<Result<_>>()?,
            has_previous: page.has_previous,
            has_next: page.has_next,
        })
    }

    /// Sends a delivery's message to its endpoint again, as a new delivery (same
    /// `webhook-id`, so a receiver that has it already can tell).
    #[tracing::instrument(name = "webhooks.redeliver", skip_all, err(level = "debug"))]
    pub async fn redeliver(&self, tx: &TenantTx, permit: &Permit, id: Uuid) -> Result<Delivery> {
        permit.ensure(tx, ResourceType::Webhook, Action::Update, None)?;
        let original = tx
            .select::<webhook_delivery::Entity>()
            .filter(webhook_delivery::Column::Id.eq(id))
            .one(tx.conn())
            .await?
            .ok_or(Error::NotFound {
                entity: "webhook delivery",
            })?;
        let endpoint = find_endpoint(tx, original.endpoint_id).await?;
        if !endpoint.enabled {
            return Err(Error::invalid(
                "deliveryId",
                "its endpoint is disabled: enable it first",
            ));
        }
        let row = self
            .new_delivery(tx, original.endpoint_id, original.message_id)
            .await?;
        self.audit
            .record(
                tx,
                NewEvent::new(
                    "webhook_delivery.redelivered",
                    "webhook_delivery",
                    Some(row.id),
                )
                .change("redelivery_of", None::<String>, Some(id.to_string())),
            )
            .await?;
        let types = message_types(tx, [row.message_id]).await?;
        delivery_from_row(row, &types)
    }

    pub(super) async fn new_delivery(
        &self,
        tx: &TenantTx,
        endpoint_id: Uuid,
        message_id: Uuid,
    ) -> Result<webhook_delivery::Model> {
        let now = self.clock.now();
        let row = webhook_delivery::Entity::insert(webhook_delivery::ActiveModel {
            organization_id: Set(tx.org_id().as_uuid()),
            id: Set(Uuid::now_v7()),
            endpoint_id: Set(endpoint_id),
            message_id: Set(message_id),
            status: Set(DeliveryStatus::Pending.as_str().to_owned()),
            attempts: Set(0),
            next_attempt_at: Set(Some(now)),
            response_status: Set(None),
            latency_ms: Set(None),
            response_excerpt: Set(None),
            last_error: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_with_returning(tx.conn())
        .await?;
        self.enqueue_attempt(tx, row.id, 1, now).await?;
        Ok(row)
    }

    pub(super) async fn enqueue_attempt(
        &self,
        tx: &TenantTx,
        delivery: Uuid,
        attempt: i32,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let mut job = jobs::NewJob::new(
            DELIVER,
            json!({
                "organization_id": tx.org_id().as_uuid(),
                "delivery_id": delivery,
                "attempt": attempt,
            }),
        )
        .unique(format!("{delivery}:{attempt}"));
        job.run_at = Some(at);
        // The attempt's own failures (the receiver's) are the delivery's and never fail
        // the job; the job is retried (default attempts, about ten minutes of backoff)
        // when its worker died or the database failed. A delivery whose job died anyway
        // is closed as failed by `forget_before` (the retention run).
        self.jobs.enqueue(tx.conn(), job).await?;
        let jobs = self.jobs.clone();
        tx.after_commit(move || jobs.wake());
        Ok(())
    }
}
