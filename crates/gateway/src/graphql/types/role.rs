//! The built-in roles.

use async_graphql::Enum;

/// A built-in role in an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum Role {
    /// Everything, including naming other owners.
    Owner,
    /// Manages members, invitations and API keys; cannot touch owners.
    Admin,
    /// Works with the organization's records.
    Member,
    /// Manages the subscription and invoices.
    BillingAdmin,
    /// Reads the audit trail.
    Auditor,
    /// Reads only.
    Viewer,
}

impl From<tenancy::Role> for Role {
    fn from(role: tenancy::Role) -> Self {
        match role {
            tenancy::Role::Owner => Self::Owner,
            tenancy::Role::Admin => Self::Admin,
            tenancy::Role::Member => Self::Member,
            tenancy::Role::BillingAdmin => Self::BillingAdmin,
            tenancy::Role::Auditor => Self::Auditor,
            tenancy::Role::Viewer => Self::Viewer,
        }
    }
}

impl From<Role> for tenancy::Role {
    fn from(role: Role) -> Self {
        match role {
            Role::Owner => Self::Owner,
            Role::Admin => Self::Admin,
            Role::Member => Self::Member,
            Role::BillingAdmin => Self::BillingAdmin,
            Role::Auditor => Self::Auditor,
            Role::Viewer => Self::Viewer,
        }
    }
}
