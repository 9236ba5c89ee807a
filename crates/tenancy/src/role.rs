//! Built-in organization roles and what the spine lets each of them do. The permissions
//! issue replaces these checks with per-record policies in `authz`; until then, managing
//! people and keys is for owners and admins.

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

    /// May invite, remove and re-role members and manage API keys.
    pub const fn manages_members(self) -> bool {
        matches!(self, Self::Owner | Self::Admin)
    }

    /// Checks that an actor holding `self` may hand out or take away `target`: only an
    /// owner may make or unmake owners (an admin cannot grant more than they hold).
    pub fn ensure_may_assign(self, target: Role) -> Result<()> {
        if !self.manages_members() {
            return Err(Error::Forbidden(
                "managing members requires the owner or admin role".into(),
            ));
        }
        if target == Role::Owner && self != Role::Owner {
            return Err(Error::Forbidden(
                "only an owner can grant or revoke the owner role".into(),
            ));
        }
        Ok(())
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

    #[test]
    fn only_owners_hand_out_ownership_and_only_managers_assign_roles() {
        assert!(Role::Owner.ensure_may_assign(Role::Owner).is_ok());
        assert!(Role::Admin.ensure_may_assign(Role::Member).is_ok());
        assert!(matches!(
            Role::Admin.ensure_may_assign(Role::Owner),
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            Role::Member.ensure_may_assign(Role::Viewer),
            Err(Error::Forbidden(_))
        ));
    }
}
