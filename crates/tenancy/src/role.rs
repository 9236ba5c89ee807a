//! The built-in role a membership or API key is created with. What each role permits is
//! decided by `authz` (see `authz::builtin`); tenancy keeps the role on the membership for
//! the rule that an organization always has an owner.

use crate::error::{Error, Result};

/// A built-in role in one organization, ordered from most to least powerful for the
/// purposes of membership management.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, including deleting the organization and naming other owners.
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

impl Role {
    /// Every role, in a stable order.
    pub const ALL: [Role; 6] = [
        Role::Owner,
        Role::Admin,
        Role::Member,
        Role::BillingAdmin,
        Role::Auditor,
        Role::Viewer,
    ];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
            Self::BillingAdmin => "billing_admin",
            Self::Auditor => "auditor",
            Self::Viewer => "viewer",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == name)
            .ok_or_else(|| Error::invalid("role", format!("unknown role `{name}`")))
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()).unwrap(), role);
        }
        assert!(matches!(Role::parse("root"), Err(Error::Invalid { .. })));
    }
}
