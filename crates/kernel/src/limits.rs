//! Plan limits: how many of a thing an organization's plan allows. Services ask before
//! they create; the billing crate answers from the organization's subscription, and until
//! it does, [`ConfiguredLimits`] answers from configuration.

use crate::TenantTx;
use sea_orm::DbErr;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A numeric limit of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// Projects per organization.
    Projects,
    /// Documents per project.
    DocumentsPerProject,
    /// Members plus pending invitations of an organization.
    Seats,
}

impl Limit {
    /// The stable name clients see in `extensions.limit`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Projects => "projects",
            Self::DocumentsPerProject => "documents_per_project",
            Self::Seats => "seats",
        }
    }
}

/// What [`PlanLimits::limit`] returns: the limit, `None` for unlimited.
pub type LimitFuture<'a> = Pin<Box<dyn Future<Output = Result<Option<u64>, DbErr>> + Send + 'a>>;

/// What [`PlanLimits::feature`] returns: whether the feature is on.
pub type FeatureFuture<'a> = Pin<Box<dyn Future<Output = Result<bool, DbErr>> + Send + 'a>>;

/// Answers "how many may this organization have?" and "may it use this feature?" inside
/// the organization's transaction (so an answer from the subscription is consistent with
/// the change).
pub trait PlanLimits: Send + Sync + Debug {
    /// The organization's limit.
    fn limit<'a>(&'a self, tx: &'a TenantTx, limit: Limit) -> LimitFuture<'a>;

    /// Whether the organization's plan has `feature` (`audit_export`, `sso`, …).
    fn feature<'a>(&'a self, tx: &'a TenantTx, feature: &'a str) -> FeatureFuture<'a>;
}

/// Shared plan limits.
pub type SharedLimits = Arc<dyn PlanLimits>;

/// Limits from configuration, the same for every organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfiguredLimits {
    /// Projects per organization (`None`: unlimited).
    pub projects: Option<u64>,
    /// Documents per project (`None`: unlimited).
    pub documents_per_project: Option<u64>,
    /// Members plus pending invitations (`None`: unlimited).
    pub seats: Option<u64>,
}

impl Default for ConfiguredLimits {
    /// The limits of the free plan the platform ships with.
    fn default() -> Self {
        Self {
            projects: Some(100),
            documents_per_project: Some(1_000),
            seats: Some(50),
        }
    }
}

impl PlanLimits for ConfiguredLimits {
    fn limit<'a>(&'a self, _tx: &'a TenantTx, limit: Limit) -> LimitFuture<'a> {
        let value = match limit {
            Limit::Projects => self.projects,
            Limit::DocumentsPerProject => self.documents_per_project,
            Limit::Seats => self.seats,
        };
        Box::pin(async move { Ok(value) })
    }

    /// Configuration gates no feature: until an organization subscribes, it has them all.
    fn feature<'a>(&'a self, _tx: &'a TenantTx, _feature: &'a str) -> FeatureFuture<'a> {
        Box::pin(async move { Ok(true) })
    }
}
