//! Retention of the active organization's audit trail (owners).

use crate::context::{Where, write};
use crate::error::GqlResult;
use crate::standing::WriteClass;
use async_graphql::{Context, InputObject, Object, SimpleObject};
use authz::{Action, Resource, ResourceType};

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

/// The organization's audit trail, as a permission resource.
fn on_audit() -> Resource {
    Resource::of_type(ResourceType::Audit)
}

#[Object]
impl AuditMutation {
    /// Sets how long the active organization keeps its audit events.
    async fn set_audit_retention(
        &self,
        ctx: &Context<'_>,
        input: SetAuditRetentionInput,
    ) -> GqlResult<AuditRetentionPayload> {
        write(ctx, Where::Active, WriteClass::Ordinary, async |unit| {
            let permit = unit.permit(on_audit(), Action::Delete).await?;
            let tenancy = &unit.state.tenancy;
            tenancy
                .set_audit_retention(unit.tx, &permit, input.keep_days)
                .await?;
            Ok(AuditRetentionPayload {
                keep_days: input.keep_days,
            })
        })
        .await
    }

    /// Removes the events older than the retention now; the purge is recorded as an
    /// event that anchors the rest of the chain.
    async fn purge_audit_events(&self, ctx: &Context<'_>) -> GqlResult<PurgeAuditEventsPayload> {
        write(ctx, Where::Active, WriteClass::Settling, async |unit| {
            let permit = unit.permit(on_audit(), Action::Delete).await?;
            let report = unit.state.tenancy.purge_audit(unit.tx, &permit).await?;
            Ok(PurgeAuditEventsPayload {
                through_seq: report.through_seq,
                purged: i64::try_from(report.purged).unwrap_or(i64::MAX),
            })
        })
        .await
    }
}
