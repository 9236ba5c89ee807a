//! The trail as a feed: what happened after a sequence number, without the changes and
//! their personal data, for consumers that follow an organization's events in order
//! (outbound webhooks). Only chained events are in it, so a follower never skips one
//! that is sealed later with a lower number.

use crate::entity::audit_event;
use crate::error::{Error, Result};
use crate::service::AuditLog;
use chrono::{DateTime, Utc};
use kernel::TenantTx;
use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

/// One chained event, as a follower sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEvent {
    /// The event's id (a UUIDv7).
    pub id: Uuid,
    /// Its place in the organization's chain.
    pub seq: i64,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// What happened (`project.created`).
    pub action: String,
    /// `user`, `api_key` or `system`.
    pub actor_type: String,
    /// The acting user's or key's id.
    pub actor_id: Option<String>,
    /// To what kind of record.
    pub target_type: String,
    /// To which record.
    pub target_id: Option<String>,
    /// Whether it succeeded.
    pub succeeded: bool,
}

impl AuditLog {
    /// Up to `limit` of the organization's chained events after `after_seq`, in order.
    pub async fn events_after(
        &self,
        tx: &TenantTx,
        after_seq: i64,
        limit: u64,
    ) -> Result<Vec<FeedEvent>> {
        let rows = tx
            .select::<audit_event::Entity>()
            .select_only()
            .columns([
                audit_event::Column::Id,
                audit_event::Column::Seq,
                audit_event::Column::OccurredAt,
                audit_event::Column::Action,
                audit_event::Column::ActorType,
                audit_event::Column::ActorId,
                audit_event::Column::TargetType,
                audit_event::Column::TargetId,
                audit_event::Column::Outcome,
            ])
            .filter(audit_event::Column::Seq.gt(after_seq))
            .order_by_asc(audit_event::Column::Seq)
            .limit(limit)
            .into_tuple::<(
                Uuid,
                i64,
                String,
                String,
                String,
                Option<String>,
                String,
                Option<String>,
                String,
            )>()
            .all(tx.conn())
            .await?;
        rows.into_iter()
            .map(
                |(id, seq, at, action, actor_type, actor_id, target_type, target_id, outcome)| {
                    let occurred_at = DateTime::parse_from_rfc3339(&at)
                        .map_err(|_| Error::Corrupt(format!("event {id}: time `{at}`")))?
                        .with_timezone(&Utc);
                    Ok(FeedEvent {
                        id,
                        seq,
                        occurred_at,
                        action,
                        actor_type,
                        actor_id,
                        target_type,
                        target_id,
                        succeeded: outcome == "success",
                    })
                },
            )
            .collect()
    }

    /// The sequence number of the organization's last chained event (0: none).
    pub async fn head_seq(&self, tx: &TenantTx) -> Result<i64> {
        let head = tx
            .select::<audit_event::Entity>()
            .select_only()
            .column(audit_event::Column::Seq)
            .order_by_desc(audit_event::Column::Seq)
            .limit(1)
            .into_tuple::<i64>()
            .one(tx.conn())
            .await?;
        Ok(head.unwrap_or(0))
    }
}
