//! [`PlanEntitlements`]: the one answer to "may this organization have one more of X /
//! use feature Y?", from its subscription's pinned plan version as of now. Services ask
//! it through `kernel::PlanLimits` inside their transaction. An organization that never
//! subscribed, or whose subscription ended, gets the configured free allowance.

use crate::subscriptions::{Status, Subscriptions, plan_limit};
use kernel::{ConfiguredLimits, FeatureFuture, Limit, LimitFuture, PlanLimits, TenantTx};
use sea_orm::DbErr;

/// Entitlements from subscriptions, with a free allowance for the unsubscribed.
#[derive(Debug, Clone)]
pub struct PlanEntitlements {
    subscriptions: Subscriptions,
    free: ConfiguredLimits,
}

impl PlanEntitlements {
    /// Entitlements of `subscriptions`; `free` for organizations without one.
    pub fn new(subscriptions: Subscriptions, free: ConfiguredLimits) -> Self {
        Self {
            subscriptions,
            free,
        }
    }
}

fn db_error(e: crate::Error) -> DbErr {
    match e {
        crate::Error::Db(e) => e,
        other => DbErr::Custom(other.to_string()),
    }
}

impl PlanLimits for PlanEntitlements {
    fn limit<'a>(&'a self, tx: &'a TenantTx, limit: Limit) -> LimitFuture<'a> {
        Box::pin(async move {
            match self.subscriptions.effective(tx).await.map_err(db_error)? {
                Some(sub) if sub.status != Status::Canceled => {
                    Ok(plan_limit(&sub.plan.definition, limit))
                }
                _ => self.free.limit(tx, limit).await,
            }
        })
    }

    fn feature<'a>(&'a self, tx: &'a TenantTx, feature: &'a str) -> FeatureFuture<'a> {
        Box::pin(async move {
            match self.subscriptions.effective(tx).await.map_err(db_error)? {
                Some(sub) if sub.status != Status::Canceled => {
                    Ok(sub.plan.definition.has_feature(feature))
                }
                _ => self.free.feature(tx, feature).await,
            }
        })
    }
}
