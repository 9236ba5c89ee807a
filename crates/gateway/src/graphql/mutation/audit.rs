//! Retention of the active organization's audit trail (owners).

use crate::context::ContextExt;
use crate::error::{GqlResult, ResultExt};
use async_graphql::{Context, InputObject, Object, SimpleObject};
use authz::{Action, Resource, ResourceType};
use kernel::TxMode;

#[derive(Default)]
pub struct AuditMutation;

/// Input of `setAuditRetention`.
#[derive(InputObject)]
pub struct SetAuditRetentionInput {
    /// Days to keep events (1 to 36,500); null keeps them forever.
    pub keep_days: Option<i32>,
}

/// Result of `setAuditRetention`.
#[derive(SimpleObject)]
pub struct AuditRetentionPayload {
    /// Days events are kept; null: forever.
    pub keep_days: Option<i32>,
}

/// Result of `purgeAuditEvents`.
#[derive(SimpleObject)]
pub struct PurgeAuditEventsPayload {
    /// The last purged event's `seq`; the chain continues from its hash.
    pub through_seq: Option<i64>,
    /// How many events were removed.
    pub purged: i64,
}

#[Object]
impl AuditMutation {
    /// Sets how long the active organization keeps its audit events.
    async fn set_audit_retention(
        &self,
        ctx: &Context<'_>,
        input: SetAuditRetentionInput,
    ) -> GqlResult<AuditRetentionPayload> {
        let (tx, actor) = ctx.enter_active(TxMode::Write).await?;
        let permit = ctx
            .permit(
                &tx,
                &actor,
                Resource::of_type(ResourceType::Audit),
                Action::Delete,
            )
            .await?;
        ctx.state()
            .tenancy
            .set_audit_retention(&tx, &permit, input.keep_days)
            .await
            .gql()?;
        tx.commit().await.gql()?;
        Ok(AuditRetentionPayload {
            keep_days: input.keep_days,
        })
    }

    /// Removes the events older than the retention now; the purge is recorded as an
    /// event that anchors the rest of the chain.
    async fn purge_audit_events(&self, ctx: &Context<'_>) -> GqlResult<PurgeAuditEventsPayload> {
        let (tx, actor) = ctx.enter_active(TxMode::Write).await?;
        let permit = ctx
            .permit(
                &tx,
                &actor,
                Resource::of_type(ResourceType::Audit),
                Action::Delete,
            )
            .await?;
        let report = ctx.state().tenancy.purge_audit(&tx, &permit).await.gql()?;
        tx.commit().await.gql()?;
        Ok(PurgeAuditEventsPayload {
            through_seq: report.through_seq,
            purged: i64::try_from(report.purged).unwrap_or(i64::MAX),
        })
    }
}
