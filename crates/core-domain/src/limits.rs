//! The plan-limit hook: creation asks the plan (billing, or configuration until billing
//! answers) before adding one more of a limited thing.

use crate::error::{Error, Result};
use kernel::{Limit, PlanLimits, TenantTx};
use uuid::Uuid;

/// Serializes creations counted against one limit in one scope (an organization's
/// projects, a project's documents) until the transaction ends, so two concurrent
/// creations cannot both see room for one more.
pub(crate) async fn serialize_usage(tx: &TenantTx, limit: Limit, scope: Uuid) -> Result<()> {
    tx.lock(&format!("limit:{}:{scope}", limit.as_str()))
        .await?;
    Ok(())
}

/// `LIMIT_EXCEEDED` when `usage` already reaches the organization's limit.
pub(crate) async fn ensure_below_limit(
    tx: &TenantTx,
    limits: &dyn PlanLimits,
    limit: Limit,
    usage: u64,
) -> Result<()> {
    match limits.limit(tx, limit).await? {
        Some(max) if usage >= max => Err(Error::LimitExceeded(kernel::LimitExceeded {
            limit,
            max,
            usage,
        })),
        _ => Ok(()),
    }
}
