//! Authorization: who may do what with which record in which organization.
//!
//! A Casbin model with organizations as domains, built-in role templates shared by every
//! organization ([`builtin`]), custom roles and deny rules per organization, role
//! assignments, and grants on single records that children inherit. Each organization's
//! policy is loaded into its own cached enforcer. Decisions come out as [`Permit`]s, which
//! only this crate can make and which domain services require.

pub mod builtin;
pub mod data_map;
pub(crate) mod engine;
mod entity;
pub mod error;
mod list;
pub mod model;
mod permit;
mod service;

pub use error::{Error, Result};
pub use list::ListFilter;
pub use model::{
    Action, DenyRule, Effect, Explanation, Grant, Permission, Resource, ResourceType, RoleInfo,
    Rule, Subject,
};
pub use permit::Permit;
pub use service::{Authorizer, CacheUsage, remember_policy_version};

/// Entry points for `benches/authz.rs` only: compile an organization's policy from rows
/// and decide without a database.
#[doc(hidden)]
pub mod bench_support {
    pub use crate::engine::Snapshot;

    /// A compiled enforcer.
    pub struct Compiled(crate::engine::OrgEnforcer);

    /// Compiles `snapshot` for `org`.
    pub async fn compile(org: kernel::OrgId, snapshot: Snapshot) -> crate::Result<Compiled> {
        let model = casbin::DefaultModel::from_str(crate::engine::MODEL).await?;
        Ok(Compiled(
            crate::engine::OrgEnforcer::build(&model, org, 1, snapshot).await?,
        ))
    }

    /// The built-in template rows.
    pub fn builtin_rows() -> Vec<Vec<String>> {
        crate::builtin::policy_rows()
    }

    impl Compiled {
        /// One decision, remembered for the policy version.
        pub fn enforce(&self, request: &[String; 7]) -> crate::Result<bool> {
            self.0.enforce(request)
        }

        /// One decision computed afresh.
        pub fn enforce_uncached(&self, request: &[String; 7]) -> crate::Result<bool> {
            self.0.enforce_uncached(request)
        }
    }
}
