//! [`Webhooks`]: endpoints (admins), the fan-out from the audit trail, and deliveries.

use crate::catalog::{self, EventType};
use crate::egress::{self, EgressPolicy};
use crate::entity::{webhook_delivery, webhook_endpoint, webhook_message};
use crate::error::{Error, Result};
use crate::model::{
    Attempt, Delivery, DeliveryStatus, Endpoint, EndpointChange, NewEndpoint, Prepared,
};
use crate::signing;
use audit::{AuditLog, FeedEvent, NewEvent};
use authz::{Action, Permit, ResourceType};
use chrono::{DateTime, Duration, SecondsFormat, SubsecRound, Utc};
use kernel::page::keyset_in;
use kernel::{Backend, Db, ListOrder, OrgId, Page, PageRequest, SharedClock, TenantTx};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QuerySelect, Statement,
};
use serde_json::{Value as Json, json};
use std::sync::Arc;
use uuid::Uuid;

/// The job kind of one delivery attempt (`{"organization_id", "delivery_id", "attempt"}`).
pub const DELIVER: &str = "webhook.deliver";

/// How long to wait after failed attempt n (1-based) before attempt n + 1: eight
/// attempts over about 33 hours, each wait times a jitter factor in [0.9, 1.1].
pub const RETRY_SCHEDULE: [Duration; 7] = [
    Duration::seconds(5),
    Duration::minutes(5),
    Duration::minutes(30),
    Duration::hours(2),
    Duration::hours(5),
    Duration::hours(10),
    Duration::hours(10),
];

/// How long the secret before a rotation still signs deliveries (beside the new one).
pub const PREVIOUS_SECRET_SIGNS: Duration = Duration::hours(24);

/// How long past its due time a pending delivery may wait before it counts as lost.
const STUCK_AFTER: Duration = Duration::days(1);

/// How long the delivery log (and the messages it sent) is kept.
pub const DELIVERY_LOG_KEPT: Duration = Duration::days(30);

/// An endpoint whose every delivery has failed for this long is disabled.
pub const DISABLE_AFTER: Duration = Duration::days(5);

/// Endpoints per organization.
const MAX_ENDPOINTS: u64 = 20;

/// Characters of a description.
const MAX_DESCRIPTION_CHARS: usize = 500;

/// Characters of a response kept.
const EXCERPT_CHARS: usize = 512;

/// Events read from the trail per fan-out transaction.
pub const FAN_OUT_BATCH: u64 = 200;

/// What `data` of a message is, for an event of the trail: the gateway renders it (it
/// knows the global ids).
pub type RenderData = dyn Fn(&FeedEvent) -> Json + Send + Sync;

/// What one fan-out transaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FanOut {
    /// Events read from the trail (a full batch: there may be more).
    pub events: usize,
    /// Deliveries made.
    pub deliveries: usize,
}

impl FanOut {
    /// Whether another batch may be waiting.
    pub fn more(&self) -> bool {
        self.events as u64 >= FAN_OUT_BATCH
    }
}

/// The webhooks service.
#[derive(Debug, Clone)]
pub struct Webhooks {
    audit: AuditLog,
    jobs: jobs::Jobs,
    clock: SharedClock,
    egress: Arc<EgressPolicy>,
}

impl Webhooks {
    /// The service, recording in `audit`, enqueueing on `jobs`, sending under `egress`.
    pub fn new(
        audit: AuditLog,
        jobs: jobs::Jobs,
        clock: SharedClock,
        egress: EgressPolicy,
    ) -> Self {
        Self {
            audit,
            jobs,
            clock,
            egress: Arc::new(egress),
        }
    }

    /// Where deliveries may go.
    pub fn egress(&self) -> &EgressPolicy {
        &self.egress
    }

    // ---- endpoints (the organization's admins) ----

    /// Makes an endpoint; returns it with its secret (shown only now).
    #[tracing::instrument(name = "webhooks.create_endpoint", skip_all, err(level = "debug"))]
    pub async fn create_endpoint(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        new: NewEndpoint<'_>,
    ) -> Result<(Endpoint, String)> {
        permit.ensure(tx, ResourceType::Webhook, Action::Create, None)?;
        let url = self.checked_url(new.url)?;
        let event_types = checked_event_types(new.event_types)?;
        let description = checked_description(new.description)?;
        // Concurrent creations in one organization count one after the other.
        tx.lock(&format!("webhook_endpoints:{}", tx.org_id()))
            .await?;
        let held = tx
            .select::<webhook_endpoint::Entity>()
            .count(tx.conn())
            .await?;
        if held >= MAX_ENDPOINTS {
            return Err(Error::TooMany {
                what: "webhook endpoints",
                max: MAX_ENDPOINTS,
            });
        }
        let now = self.clock.now();
        let secret = signing::new_secret();
        let row = webhook_endpoint::Entity::insert(webhook_endpoint::ActiveModel {
            organization_id: Set(tx.org_id().as_uuid()),
            id: Set(Uuid::now_v7()),
            url: Set(url),
            description: Set(description),
            event_types: Set(Json::from(event_types).to_string()),
            secret: Set(secret.clone()),
            previous_secret: Set(None),
            previous_secret_until: Set(None),
            enabled: Set(true),
            disabled_reason: Set(None),
            failing_since: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_with_returning(tx.conn())
        .await?;
        // The organization's events are followed from here on (an existing cursor stays:
        // an endpoint only receives events from its own creation on).
        let head = self.audit.head_seq(tx).await?;
        tx.conn()
            .execute_raw(tx.statement(
                "INSERT INTO webhook_cursors (organization_id, last_seq, updated_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (organization_id) DO NOTHING",
                vec![tx.org_id().as_uuid().into(), head.into(), now.into()],
            ))
            .await?;
        let endpoint = endpoint_from_row(row)?;
        self.audit
            .record(
                tx,
                NewEvent::new(
                    "webhook_endpoint.created",
                    "webhook_endpoint",
                    Some(endpoint.id),
                )
                .change("url", None::<String>, Some(redacted(&endpoint.url)))
                .change(
                    "event_types",
                    None::<Vec<String>>,
                    Some(endpoint.event_types.clone()),
                ),
            )
            .await?;
        Ok((endpoint, secret))
    }

    /// Changes an endpoint. Enabling it again clears its failure streak.
    #[tracing::instrument(name = "webhooks.update_endpoint", skip_all, err(level = "debug"))]
    pub async fn update_endpoint(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        id: Uuid,
        change: EndpointChange,
    ) -> Result<Endpoint> {
        permit.ensure(tx, ResourceType::Webhook, Action::Update, Some(id))?;
        let row = find_endpoint(tx, id).await?;
        let before = endpoint_from_row(row.clone())?;
        let mut update = row.into_active_model();
        let mut event = NewEvent::new("webhook_endpoint.updated", "webhook_endpoint", Some(id));
        if let Some(url) = change.url {
            let url = self.checked_url(&url)?;
            event = event.change("url", Some(redacted(&before.url)), Some(redacted(&url)));
            update.url = Set(url);
            // A new receiver starts without the old one's failures.
            update.failing_since = Set(None);
        }
        if let Some(types) = change.event_types {
            let types = checked_event_types(&types)?;
            event = event.change(
                "event_types",
                Some(before.event_types.clone()),
                Some(types.clone()),
            );
            update.event_types = Set(Json::from(types).to_string());
        }
        if let Some(description) = change.description {
            let description = checked_description(&description)?;
            // Free text an admin wrote (it may name people): the trail says it changed,
            // not what it says.
            event = event.change("description_changed", None::<bool>, Some(true));
            update.description = Set(description);
        }
        if let Some(enabled) = change.enabled {
            event = event.change("enabled", Some(before.enabled), Some(enabled));
            update.enabled = Set(enabled);
            if enabled {
                update.disabled_reason = Set(None);
                update.failing_since = Set(None);
            }
        }
        update.updated_at = Set(self.clock.now());
        let row = update.update(tx.conn()).await?;
        self.audit.record(tx, event).await?;
        endpoint_from_row(row)
    }

    /// Deletes an endpoint and its delivery log; its pending deliveries are not made.
    /// With the last endpoint the organization's events stop being followed.
    #[tracing::instrument(name = "webhooks.delete_endpoint", skip_all, err(level = "debug"))]
    pub async fn delete_endpoint(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        id: Uuid,
    ) -> Result<Endpoint> {
        permit.ensure(tx, ResourceType::Webhook, Action::Delete, Some(id))?;
        let row = find_endpoint(tx, id).await?;
        let endpoint = endpoint_from_row(row)?;
        webhook_delivery::Entity::delete_many()
            .filter(webhook_delivery::Column::OrganizationId.eq(tx.org_id().as_uuid()))
            .filter(webhook_delivery::Column::EndpointId.eq(id))
            .exec(tx.conn())
            .await?;
        webhook_endpoint::Entity::delete_many()
            .filter(webhook_endpoint::Column::OrganizationId.eq(tx.org_id().as_uuid()))
            .filter(webhook_endpoint::Column::Id.eq(id))
            .exec(tx.conn())
            .await?;
        // The last one gone: the organization is no longer followed (its messages, which
        // no delivery names any more, go with the cursor). Creations take the same turn.
        tx.lock(&format!("webhook_endpoints:{}", tx.org_id()))
            .await?;
        let left = tx
            .select::<webhook_endpoint::Entity>()
            .count(tx.conn())
            .await?;
        if left == 0 {
            for sql in [
                "DELETE FROM webhook_messages WHERE organization_id = $1",
                "DELETE FROM webhook_cursors WHERE organization_id = $1",
            ] {
                tx.conn()
                    .execute_raw(tx.statement(sql, vec![tx.org_id().as_uuid().into()]))
                    .await?;
            }
        }
        self.audit
            .record(
                tx,
                NewEvent::new("webhook_endpoint.deleted", "webhook_endpoint", Some(id)).change(
                    "url",
                    Some(redacted(&endpoint.url)),
                    None::<String>,
                ),
            )
            .await?;
        Ok(endpoint)
    }

    /// Gives an endpoint a new secret; returns it. For [`PREVIOUS_SECRET_SIGNS`] after,
    /// deliveries carry a signature with the previous secret too, so a receiver can
    /// switch without losing a message.
    #[tracing::instrument(name = "webhooks.rotate_secret", skip_all, err(level = "debug"))]
    pub async fn rotate_secret(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        id: Uuid,
    ) -> Result<(Endpoint, String)> {
        permit.ensure(tx, ResourceType::Webhook, Action::Update, Some(id))?;
        let row = find_endpoint(tx, id).await?;
        let secret = signing::new_secret();
        let now = self.clock.now();
        let previous = row.secret.clone();
        let mut update = row.into_active_model();
        update.secret = Set(secret.clone());
        update.previous_secret = Set(Some(previous));
        update.previous_secret_until = Set(Some(now + PREVIOUS_SECRET_SIGNS));
        update.updated_at = Set(now);
        let row = update.update(tx.conn()).await?;
        self.audit
            .record(
                tx,
                NewEvent::new(
                    "webhook_endpoint.secret_rotated",
                    "webhook_endpoint",
                    Some(id),
                ),
            )
            .await?;
        Ok((endpoint_from_row(row)?, secret))
    }

    /// One page of the organization's endpoints, oldest first.
    pub async fn endpoints(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        page: &PageRequest,
    ) -> Result<Page<Endpoint>> {
        permit.ensure(tx, ResourceType::Webhook, Action::Read, None)?;
        let rows = keyset_in(
            tx.select::<webhook_endpoint::Entity>(),
            webhook_endpoint::Column::Id,
            page,
            ListOrder::OldestFirst,
        )
        .all(tx.conn())
        .await?;
        let page = Page::from_overfetch(rows, page);
        Ok(Page {
            items: page
                .items
                .into_iter()
                .map(endpoint_from_row)
                .collect::<Result<_>>()?,
            has_previous: page.has_previous,
            has_next: page.has_next,
        })
    }

    /// The organization's endpoint `id`.
    pub async fn endpoint(&self, tx: &TenantTx, permit: &Permit, id: Uuid) -> Result<Endpoint> {
        permit.ensure(tx, ResourceType::Webhook, Action::Read, Some(id))?;
        endpoint_from_row(find_endpoint(tx, id).await?)
    }

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

    async fn new_delivery(
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

    async fn enqueue_attempt(
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

    // ---- the fan-out (background, as the system) ----

    /// The organizations whose events are followed (those that have had an endpoint):
    /// their ids only, across tenants (on PostgreSQL through a definer function, since
    /// the cursors are tenant rows).
    pub async fn followed_organizations(db: &Db) -> Result<Vec<OrgId>> {
        let sql = match db.backend() {
            Backend::Postgres => "SELECT * FROM webhook_followed_organizations()",
            Backend::Sqlite => {
                "SELECT organization_id FROM webhook_cursors ORDER BY organization_id"
            }
        };
        let backend = db.conn().get_database_backend();
        let rows = db
            .conn()
            .query_all_raw(Statement::from_string(backend, sql))
            .await?;
        rows.iter()
            .map(|row| Ok(OrgId::from_uuid(row.try_get_by_index::<Uuid>(0)?)))
            .collect()
    }

    /// Whether the organization's trail has events past its cursor (read-only: the
    /// dispatcher asks before it opens a writing transaction).
    pub async fn behind(&self, tx: &TenantTx) -> Result<bool> {
        let cursor = tx
            .conn()
            .query_one_raw(tx.statement(
                "SELECT last_seq FROM webhook_cursors WHERE organization_id = $1",
                vec![tx.org_id().as_uuid().into()],
            ))
            .await?;
        let Some(cursor) = cursor else {
            return Ok(false);
        };
        let last_seq: i64 = cursor.try_get_by_index(0)?;
        Ok(self.audit.head_seq(tx).await? > last_seq)
    }

    /// Deletes the delivery log older than `before` (deliveries no longer pending, and
    /// messages none of whose deliveries is left). How many deliveries went.
    /// A delivery still pending this long after its attempt was due has lost its job
    /// (it died: the database was away longer than the job's retries): it is closed.
    pub async fn forget_before(&self, tx: &TenantTx, before: DateTime<Utc>) -> Result<u64> {
        let org = tx.org_id().as_uuid();
        let now = self.clock.now();
        tx.conn()
            .execute_raw(tx.statement(
                "UPDATE webhook_deliveries SET status = $1, next_attempt_at = NULL, \
                 last_error = 'its attempt could not be run', updated_at = $2 \
                 WHERE organization_id = $3 AND status = $4 AND next_attempt_at < $5",
                vec![
                    DeliveryStatus::Failed.as_str().into(),
                    now.into(),
                    org.into(),
                    DeliveryStatus::Pending.as_str().into(),
                    (now - STUCK_AFTER).into(),
                ],
            ))
            .await?;
        let deleted = webhook_delivery::Entity::delete_many()
            .filter(webhook_delivery::Column::OrganizationId.eq(org))
            .filter(webhook_delivery::Column::Status.ne(DeliveryStatus::Pending.as_str()))
            .filter(webhook_delivery::Column::UpdatedAt.lt(before))
            .exec(tx.conn())
            .await?
            .rows_affected;
        tx.conn()
            .execute_raw(tx.statement(
                "DELETE FROM webhook_messages WHERE organization_id = $1 AND created_at < $2 \
                 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d \
                   WHERE d.organization_id = webhook_messages.organization_id \
                     AND d.message_id = webhook_messages.id)",
                vec![org.into(), before.into()],
            ))
            .await?;
        Ok(deleted)
    }

    /// Turns the organization's next events of the catalog into messages and deliveries
    /// (one job each), and moves its cursor past them: one batch, in the caller's
    /// transaction, which must be a writing one. Concurrent fan-outs of one organization
    /// wait for each other (the cursor's row lock on PostgreSQL, the database lock on
    /// SQLite), so an event is fanned out once.
    pub async fn fan_out(
        &self,
        tx: &TenantTx,
        organization_global_id: &str,
        render: &RenderData,
    ) -> Result<FanOut> {
        let lock = match tx.conn().get_database_backend() {
            sea_orm::DbBackend::Postgres => " FOR UPDATE",
            _ => "",
        };
        let cursor = tx
            .conn()
            .query_one_raw(tx.statement(
                &format!("SELECT last_seq FROM webhook_cursors WHERE organization_id = $1{lock}"),
                vec![tx.org_id().as_uuid().into()],
            ))
            .await?;
        let Some(cursor) = cursor else {
            return Ok(FanOut::default());
        };
        let last_seq: i64 = cursor.try_get_by_index(0)?;
        let events = self.audit.events_after(tx, last_seq, FAN_OUT_BATCH).await?;
        let Some(through) = events.last().map(|e| e.seq) else {
            return Ok(FanOut::default());
        };
        let endpoints: Vec<(webhook_endpoint::Model, Vec<String>)> = tx
            .select::<webhook_endpoint::Entity>()
            .filter(webhook_endpoint::Column::Enabled.eq(true))
            .all(tx.conn())
            .await?
            .into_iter()
            .map(|row| {
                let types = parse_types(&row)?;
                Ok((row, types))
            })
            .collect::<Result<_>>()?;
        let mut deliveries = 0;
        for event in events.iter().filter(|e| e.succeeded) {
            let Some(kind) = catalog::for_action(&event.action) else {
                continue;
            };
            let wanting: Vec<Uuid> = endpoints
                .iter()
                .filter(|(row, types)| {
                    // The trail keeps times to the microsecond.
                    row.created_at.trunc_subsecs(6) <= event.occurred_at
                        && types.iter().any(|t| t == kind.name)
                })
                .map(|(row, _)| row.id)
                .collect();
            if wanting.is_empty() {
                continue;
            }
            let payload = envelope(event, kind, organization_global_id, render(event));
            webhook_message::Entity::insert(webhook_message::ActiveModel {
                organization_id: Set(tx.org_id().as_uuid()),
                id: Set(event.id),
                event_type: Set(kind.name.to_owned()),
                payload: Set(payload.to_string()),
                created_at: Set(event.occurred_at),
            })
            .on_conflict(
                OnConflict::columns([
                    webhook_message::Column::OrganizationId,
                    webhook_message::Column::Id,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(tx.conn())
            .await?;
            for endpoint in wanting {
                self.new_delivery(tx, endpoint, event.id).await?;
                deliveries += 1;
            }
        }
        tx.conn()
            .execute_raw(tx.statement(
                "UPDATE webhook_cursors SET last_seq = $1, updated_at = $2 \
                 WHERE organization_id = $3",
                vec![
                    through.into(),
                    self.clock.now().into(),
                    tx.org_id().as_uuid().into(),
                ],
            ))
            .await?;
        Ok(FanOut {
            events: events.len(),
            deliveries,
        })
    }

    // ---- deliveries (background, as the system) ----

    /// What attempt `attempt` of delivery `id` needs, or `None` when there is nothing to
    /// send: the attempt was made already (a job run twice), the delivery is over, or its
    /// endpoint is gone or disabled (the delivery then fails).
    pub async fn prepare(&self, tx: &TenantTx, id: Uuid, attempt: i32) -> Result<Option<Prepared>> {
        let Some(delivery) = tx
            .select::<webhook_delivery::Entity>()
            .filter(webhook_delivery::Column::Id.eq(id))
            .one(tx.conn())
            .await?
        else {
            return Ok(None);
        };
        if delivery.status != DeliveryStatus::Pending.as_str() || delivery.attempts != attempt - 1 {
            return Ok(None);
        }
        let endpoint = tx
            .select::<webhook_endpoint::Entity>()
            .filter(webhook_endpoint::Column::Id.eq(delivery.endpoint_id))
            .one(tx.conn())
            .await?;
        let Some(endpoint) = endpoint.filter(|e| e.enabled) else {
            let mut update = delivery.into_active_model();
            update.status = Set(DeliveryStatus::Failed.as_str().to_owned());
            update.next_attempt_at = Set(None);
            update.last_error = Set(Some("the endpoint is disabled".into()));
            update.updated_at = Set(self.clock.now());
            update.update(tx.conn()).await?;
            return Ok(None);
        };
        let message = tx
            .select::<webhook_message::Entity>()
            .filter(webhook_message::Column::Id.eq(delivery.message_id))
            .one(tx.conn())
            .await?
            .ok_or_else(|| Error::Corrupt(format!("delivery {id} without its message")))?;
        let corrupt = || Error::Corrupt(format!("endpoint {}: secret", endpoint.id));
        let mut keys = vec![signing::key_of(&endpoint.secret).ok_or_else(corrupt)?];
        if let (Some(previous), Some(until)) =
            (&endpoint.previous_secret, endpoint.previous_secret_until)
            && until > self.clock.now()
        {
            keys.push(signing::key_of(previous).ok_or_else(corrupt)?);
        }
        Ok(Some(Prepared {
            delivery_id: id,
            endpoint_id: endpoint.id,
            attempt,
            url: endpoint.url,
            keys,
            message_id: message.id,
            payload: message.payload,
        }))
    }

    /// Sends a prepared attempt, signed, under the egress policy (no transaction open).
    pub async fn send(&self, prepared: &Prepared) -> egress::Response {
        let id = prepared.message_id.to_string();
        let timestamp = self.clock.now().timestamp();
        let body = prepared.payload.as_bytes().to_vec();
        // Several signatures are separated by spaces (the specification's form).
        let signature = prepared
            .keys
            .iter()
            .map(|key| signing::signature(key, &id, timestamp, &body))
            .collect::<Vec<_>>()
            .join(" ");
        let headers = [
            ("webhook-id", id),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ];
        self.egress.post(&prepared.url, &headers, body).await
    }

    /// Records how an attempt went: succeeded; pending again with the next attempt
    /// enqueued per [`RETRY_SCHEDULE`]; or failed after the last. A failure starts or
    /// continues the endpoint's failure streak, and a streak of [`DISABLE_AFTER`] disables
    /// it (recorded as `webhook_endpoint.disabled`, itself an event of the catalog).
    pub async fn record(
        &self,
        tx: &TenantTx,
        prepared: &Prepared,
        response: &egress::Response,
    ) -> Result<Option<Attempt>> {
        let Some(delivery) = tx
            .select::<webhook_delivery::Entity>()
            .filter(webhook_delivery::Column::Id.eq(prepared.delivery_id))
            .one(tx.conn())
            .await?
        else {
            return Ok(None);
        };
        if delivery.status != DeliveryStatus::Pending.as_str()
            || delivery.attempts != prepared.attempt - 1
        {
            return Ok(None);
        }
        let now = self.clock.now();
        // Attempts to one endpoint recorded at once take turns on its row (PostgreSQL), so
        // a failure streak disables it once.
        let mut endpoint = tx
            .select::<webhook_endpoint::Entity>()
            .filter(webhook_endpoint::Column::Id.eq(prepared.endpoint_id));
        if tx.conn().get_database_backend() == sea_orm::DbBackend::Postgres {
            endpoint = endpoint.lock_exclusive();
        }
        let endpoint = endpoint.one(tx.conn()).await?;
        let mut endpoint_disabled = false;
        let (status, next_attempt_at) = if response.succeeded() {
            if let Some(endpoint) = endpoint.filter(|e| e.failing_since.is_some()) {
                let mut update = endpoint.into_active_model();
                update.failing_since = Set(None);
                update.update(tx.conn()).await?;
            }
            (DeliveryStatus::Succeeded, None)
        } else {
            let wait = usize::try_from(prepared.attempt - 1)
                .ok()
                .and_then(|i| RETRY_SCHEDULE.get(i));
            if let Some(endpoint) = endpoint {
                let since = endpoint.failing_since.unwrap_or(now);
                let enabled = endpoint.enabled;
                let mut update = endpoint.into_active_model();
                update.failing_since = Set(Some(since));
                // Disabled only when a delivery has used all its attempts and the streak
                // is five days old: days without events do not count against a receiver
                // that may have been fixed meanwhile (its next delivery still retries).
                if enabled && wait.is_none() && now - since >= DISABLE_AFTER {
                    update.enabled = Set(false);
                    update.disabled_reason = Set(Some("FAILING".into()));
                    update.updated_at = Set(now);
                    endpoint_disabled = true;
                }
                update.update(tx.conn()).await?;
                if endpoint_disabled {
                    self.audit
                        .record(
                            tx,
                            NewEvent::new(
                                "webhook_endpoint.disabled",
                                "webhook_endpoint",
                                Some(prepared.endpoint_id),
                            )
                            .change("enabled", Some(true), Some(false))
                            .change(
                                "failing_since",
                                None::<String>,
                                Some(since.to_rfc3339_opts(SecondsFormat::Secs, true)),
                            ),
                        )
                        .await?;
                }
            }
            match wait {
                Some(wait) if !endpoint_disabled => {
                    (DeliveryStatus::Pending, Some(now + jittered(*wait)))
                }
                _ => (DeliveryStatus::Failed, None),
            }
        };
        let mut update = delivery.into_active_model();
        update.status = Set(status.as_str().to_owned());
        update.attempts = Set(prepared.attempt);
        update.next_attempt_at = Set(next_attempt_at);
        update.response_status = Set(response.status.map(i32::from));
        update.latency_ms = Set(Some(
            i32::try_from(response.latency.as_millis()).unwrap_or(i32::MAX),
        ));
        update.response_excerpt = Set(response.excerpt.as_deref().map(storable));
        update.last_error = Set(response.error.as_deref().map(storable));
        update.updated_at = Set(now);
        update.update(tx.conn()).await?;
        if let Some(at) = next_attempt_at {
            self.enqueue_attempt(tx, prepared.delivery_id, prepared.attempt + 1, at)
                .await?;
        }
        Ok(Some(Attempt {
            status,
            next_attempt_at,
            endpoint_disabled,
        }))
    }

    fn checked_url(&self, url: &str) -> Result<String> {
        self.egress
            .check_url(url.trim())
            .map(|url| url.to_string())
            .map_err(|egress::Refused(reason)| Error::invalid("url", reason))
    }
}

/// The signed body: a stable envelope around `data`.
fn envelope(event: &FeedEvent, kind: &EventType, organization: &str, data: Json) -> Json {
    json!({
        "id": event.id,
        "type": kind.name,
        "createdAt": event.occurred_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "organizationId": organization,
        "data": data,
    })
}

/// A wait times a factor in [0.9, 1.1], so deliveries that failed together spread out.
fn jittered(wait: Duration) -> Duration {
    let factor = 0.9 + 0.2 * rand::random::<f64>();
    // Milliseconds of at most ten hours fit f64 exactly.
    #[allow(clippy::cast_possible_truncation)]
    let millis = (wait.num_milliseconds() as f64 * factor).round() as i64;
    Duration::milliseconds(millis)
}

/// Text a receiver sent, as it may be stored: bounded, without NUL (PostgreSQL's text
/// cannot hold it).
fn storable(text: &str) -> String {
    text.chars()
        .take(EXCERPT_CHARS)
        .map(|c| if c == '\0' { '\u{fffd}' } else { c })
        .collect()
}

/// A URL as the audit trail keeps it: its origin only (a path or query may carry a
/// token, and the trail outlives the endpoint and is read by auditors).
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(url) => url.origin().ascii_serialization(),
        Err(_) => "[unparsable]".into(),
    }
}

fn checked_event_types(types: &[String]) -> Result<Vec<String>> {
    if types.is_empty() {
        return Err(Error::invalid("eventTypes", "name at least one event type"));
    }
    if types.len() > catalog::CATALOG.len() {
        return Err(Error::invalid(
            "eventTypes",
            format!("at most {} event types", catalog::CATALOG.len()),
        ));
    }
    let mut checked = Vec::with_capacity(types.len());
    for name in types {
        let Some(kind) = catalog::named(name) else {
            let shown: String = name.chars().take(64).filter(|c| !c.is_control()).collect();
            return Err(Error::invalid(
                "eventTypes",
                format!("`{shown}` is not in the catalog"),
            ));
        };
        if !checked.contains(&kind.name.to_owned()) {
            checked.push(kind.name.to_owned());
        }
    }
    checked.sort();
    Ok(checked)
}

fn checked_description(description: &str) -> Result<String> {
    let description = description.trim();
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(Error::invalid(
            "description",
            format!("at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    if description.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::invalid(
            "description",
            "control characters are not allowed",
        ));
    }
    Ok(description.to_owned())
}

async fn find_endpoint(tx: &TenantTx, id: Uuid) -> Result<webhook_endpoint::Model> {
    tx.select::<webhook_endpoint::Entity>()
        .filter(webhook_endpoint::Column::Id.eq(id))
        .one(tx.conn())
        .await?
        .ok_or(Error::NotFound {
            entity: "webhook endpoint",
        })
}

fn parse_types(row: &webhook_endpoint::Model) -> Result<Vec<String>> {
    serde_json::from_str(&row.event_types)
        .map_err(|_| Error::Corrupt(format!("endpoint {}: event types", row.id)))
}

fn endpoint_from_row(row: webhook_endpoint::Model) -> Result<Endpoint> {
    let event_types = parse_types(&row)?;
    Ok(Endpoint {
        id: row.id,
        url: row.url,
        description: row.description,
        event_types,
        enabled: row.enabled,
        disabled_reason: row.disabled_reason,
        failing_since: row.failing_since,
        previous_secret_until: row.previous_secret_until,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// The event types of messages, by id.
async fn message_types(
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

fn delivery_from_row(row: webhook_delivery::Model, types: &[(Uuid, String)]) -> Result<Delivery> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_spans_about_a_day_and_a_half_with_bounded_jitter() {
        let total: i64 = RETRY_SCHEDULE.iter().map(|d| d.num_minutes()).sum();
        assert_eq!(total, 5 + 30 + 120 + 300 + 600 + 600); // the 5 s wait rounds to 0
        for _ in 0..100 {
            let waited = jittered(Duration::hours(10));
            assert!(waited >= Duration::hours(9) && waited <= Duration::hours(11));
        }
    }

    #[test]
    fn stored_text_is_bounded_and_without_nul() {
        let stored = storable(&format!("a\0b{}", "x".repeat(2_000)));
        assert!(stored.starts_with("a\u{fffd}b"));
        assert_eq!(stored.chars().count(), EXCERPT_CHARS);
    }

    #[test]
    fn event_types_come_from_the_catalog_deduplicated() {
        let types = vec!["project.created".to_owned(), "project.created".to_owned()];
        assert_eq!(checked_event_types(&types).unwrap(), ["project.created"]);
        assert!(checked_event_types(&[]).is_err());
        assert!(checked_event_types(&["user.logged_in".to_owned()]).is_err());
        assert!(checked_description(&"d".repeat(501)).is_err());
        assert!(checked_description("a\u{0}b").is_err());
    }

    #[test]
    fn the_audit_trail_keeps_urls_origin_only() {
        assert_eq!(
            redacted("https://hooks.example.com/catch/123/abc?token=secret"),
            "https://hooks.example.com"
        );
        assert_eq!(
            redacted("https://hooks.example.com:8443/in"),
            "https://hooks.example.com:8443"
        );
    }
}
