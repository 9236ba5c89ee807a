//! The fan-out (background, as the system): the audit trail followed from each
//! organization's cursor into messages and deliveries, and the log's retention.

use super::endpoints::parse_types;
use super::{FAN_OUT_BATCH, FanOut, RenderData, STUCK_AFTER, Webhooks};
use crate::catalog::{self, EventType};
use crate::entity::{webhook_delivery, webhook_endpoint, webhook_message};
use crate::error::Result;
use crate::model::DeliveryStatus;
use audit::FeedEvent;
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use kernel::{Backend, Db, OrgId, TenantTx};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Statement};
use serde_json::{Value as Json, json};
use uuid::Uuid;

/// The signed body: a stable envelope around `data`.
pub(super) fn envelope(
    event: &FeedEvent,
    kind: &EventType,
    organization: &str,
    data: Json,
) -> Json {
    json!({
        "id": event.id,
        "type": kind.name,
        "createdAt": event.occurred_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "organizationId": organization,
        "data": data,
    })
}

impl Webhooks {
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
        // An endpoint deleted meanwhile would leave a delivery naming it: deletions wait.
        super::endpoints::lock_endpoints(tx).await?;
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
}
