//! Roles, permissions and access decisions.

use crate::graphql::ids::{GlobalId, NodeKind};
use async_graphql::{Enum, SimpleObject};

macro_rules! mirror_enum {
    ($(#[$doc:meta])* $name:ident = $domain:path { $($(#[$vdoc:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl From<$name> for $domain {
            fn from(value: $name) -> Self {
                match value {
                    $($name::$variant => <$domain>::$variant),+
                }
            }
        }

        impl From<$domain> for $name {
            fn from(value: $domain) -> Self {
                match value {
                    $(<$domain>::$variant => $name::$variant),+
                }
            }
        }
    };
}

mirror_enum!(
    /// What kind of thing a permission is about.
    ResourceType = authz::ResourceType {
        /// The organization itself.
        Organization,
        /// Memberships.
        Member,
        /// Invitations.
        Invitation,
        /// API keys.
        ApiKey,
        /// Custom roles and role assignments.
        Role,
        /// Grants on single records.
        Grant,
        /// The audit trail.
        Audit,
        /// Subscription, invoices, payment.
        Billing,
        /// Projects.
        Project,
        /// Documents.
        Document,
        /// Outbound webhook endpoints and their deliveries.
        Webhook,
    }
);

mirror_enum!(
    /// What is done.
    Action = authz::Action {
        /// See.
        Read,
        /// Make.
        Create,
        /// Change.
        Update,
        /// Remove.
        Delete,
        /// Submit for review.
        Submit,
        /// Approve or request changes.
        Review,
        /// Publish.
        Publish,
        /// Export in bulk.
        Export,
    }
);

/// One permission. `*` stands for every type or every action (built-in roles only).
#[derive(SimpleObject)]
pub struct Permission {
    /// A resource type name, or `*`.
    pub resource_type: String,
    /// An action name, or `*`.
    pub action: String,
}

impl From<authz::Permission> for Permission {
    fn from(p: authz::Permission) -> Self {
        Self {
            resource_type: p.resource_type,
            action: p.action,
        }
    }
}

/// A role and what it permits.
#[derive(SimpleObject)]
pub struct RoleDefinition {
    /// Its name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Built in (shared by every organization, unchangeable) or the organization's own.
    pub built_in: bool,
    /// What it allows.
    pub permissions: Vec<Permission>,
}

impl From<authz::RoleInfo> for RoleDefinition {
    fn from(role: authz::RoleInfo) -> Self {
        Self {
            name: role.name,
            description: role.description,
            built_in: role.built_in,
            permissions: role.permissions.into_iter().map(Permission::from).collect(),
        }
    }
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum Effect {
    /// Grants.
    Allow,
    /// Takes away; wins over every allow.
    Deny,
}

/// A policy rule that took part in a decision.
#[derive(SimpleObject)]
pub struct PolicyRule {
    /// The role, relation or subject the rule is about.
    pub subject: String,
    /// The permission.
    pub permission: Permission,
    /// Allow or deny.
    pub effect: Effect,
    /// A built-in template or the organization's own rule.
    pub built_in: bool,
}

/// Why a subject may or may not do something.
#[derive(SimpleObject)]
pub struct AccessExplanation {
    /// The decision.
    pub allowed: bool,
    /// The rules that decided it: the allows that matched, or the denies that won. Empty
    /// when nothing matched (deny by default).
    pub rules: Vec<PolicyRule>,
}

impl From<authz::Explanation> for AccessExplanation {
    fn from(e: authz::Explanation) -> Self {
        Self {
            allowed: e.allowed,
            rules: e
                .rules
                .into_iter()
                .map(|r| PolicyRule {
                    subject: r.subject,
                    permission: r.permission.into(),
                    effect: match r.effect {
                        authz::Effect::Allow => Effect::Allow,
                        authz::Effect::Deny => Effect::Deny,
                    },
                    built_in: r.built_in,
                })
                .collect(),
        }
    }
}

/// A deny rule: `action` on `resourceType` is refused to `subject`, whatever else
/// allows it.
#[derive(SimpleObject)]
pub struct DenyRule {
    /// Id (for `removeDenyRule`).
    pub id: async_graphql::ID,
    /// A role name, or the id of the User or ApiKey it restricts.
    pub subject: String,
    /// What it denies.
    pub resource_type: ResourceType,
    /// What it denies.
    pub action: Action,
    /// When it was made.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// The User or ApiKey that made it (null for rules made before authors were kept).
    pub created_by: Option<async_graphql::ID>,
}

impl DenyRule {
    /// The rule as seen in organization `org`.
    pub fn new(rule: authz::DenyRule, org: kernel::OrgId) -> Self {
        let subject = match authz::Subject::parse(&rule.subject) {
            Ok(subject @ (authz::Subject::User(_) | authz::Subject::Key(_))) => {
                subject_id(&subject, org).to_string()
            }
            _ => rule.subject,
        };
        Self {
            id: GlobalId::scoped(NodeKind::DenyRule, org, rule.id),
            subject,
            resource_type: rule.resource_type.into(),
            action: rule.action.into(),
            created_at: rule.created_at,
            created_by: rule.created_by.as_ref().map(|by| subject_id(by, org)),
        }
    }
}

/// The global id of a person or key (a role has none: its name).
fn subject_id(subject: &authz::Subject, org: kernel::OrgId) -> async_graphql::ID {
    match subject {
        authz::Subject::User(user) => GlobalId::global(NodeKind::User, user.as_uuid()),
        authz::Subject::Key(key) => GlobalId::scoped(NodeKind::ApiKey, org, key.as_uuid()),
        authz::Subject::Role(role) => async_graphql::ID(role.clone()),
    }
}
