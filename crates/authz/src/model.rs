//! Resource types, actions, subjects and resources: the vocabulary of the policy.

use crate::error::{Error, Result};
use kernel::{ApiKeyId, GrantId, Principal, UserId};
use uuid::Uuid;

macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in a stable order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name used in policies.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Parses a policy name.
            pub fn parse(text: &str) -> Result<Self> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == text)
                    .ok_or_else(|| Error::invalid(stringify!($name), format!("unknown value `{text}`")))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(
    /// What kind of thing a permission is about.
    ResourceType {
        /// The organization itself.
        Organization => "organization",
        /// Memberships.
        Member => "member",
        /// Invitations.
        Invitation => "invitation",
        /// API keys.
        ApiKey => "api_key",
        /// Custom roles and role assignments.
        Role => "role",
        /// Grants on single records.
        Grant => "grant",
        /// The audit trail.
        Audit => "audit",
        /// Subscription, invoices, payment.
        Billing => "billing",
        /// Projects.
        Project => "project",
        /// Documents (children of projects).
        Document => "document",
        /// Outbound webhook endpoints and their deliveries.
        Webhook => "webhook",
    }
);

named_enum!(
    /// What is done to it.
    Action {
        /// See it.
        Read => "read",
        /// Make a new one.
        Create => "create",
        /// Change it.
        Update => "update",
        /// Remove it.
        Delete => "delete",
        /// Submit for review.
        Submit => "submit",
        /// Approve or request changes.
        Review => "review",
        /// Publish.
        Publish => "publish",
        /// Export in bulk.
        Export => "export",
    }
);

/// Who a policy is about: typed, so ids of different kinds never mix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// A person.
    User(UserId),
    /// An API key.
    Key(ApiKeyId),
    /// Everyone holding a role (for grants to a role).
    Role(String),
}

impl Subject {
    /// `user:<id>`, `key:<id>` or `role:<name>`.
    pub fn as_policy(&self) -> String {
        match self {
            Self::User(id) => format!("user:{id}"),
            Self::Key(id) => format!("key:{id}"),
            Self::Role(name) => format!("role:{name}"),
        }
    }

    /// Parses a policy subject.
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = || {
            Error::invalid(
                "subject",
                format!("`{text}` is not user:<id>, key:<id> or role:<name>"),
            )
        };
        let (kind, rest) = text.split_once(':').ok_or_else(invalid)?;
        match kind {
            "user" => Ok(Self::User(UserId::from_uuid(
                Uuid::try_parse(rest).map_err(|_| invalid())?,
            ))),
            "key" => Ok(Self::Key(ApiKeyId::from_uuid(
                Uuid::try_parse(rest).map_err(|_| invalid())?,
            ))),
            "role" if !rest.is_empty() => Ok(Self::Role(rest.to_owned())),
            _ => Err(invalid()),
        }
    }
}

impl From<Principal> for Subject {
    fn from(principal: Principal) -> Self {
        match principal {
            Principal::User(id) => Self::User(id),
            Principal::ApiKey { key, .. } => Self::Key(key),
        }
    }
}

/// The thing a decision is about: a type, optionally one record of it, with the record's
/// parent (whose grants it inherits) and owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The type.
    pub typ: ResourceType,
    /// The record, or `None` for the type as a whole (for `create`, or lists).
    pub id: Option<Uuid>,
    /// The parent record, e.g. a document's project.
    pub parent: Option<(ResourceType, Uuid)>,
    /// The record's owner, who holds the `record_owner` relation on it.
    pub owner: Option<Subject>,
}

impl Resource {
    /// The type as a whole.
    pub const fn of_type(typ: ResourceType) -> Self {
        Self {
            typ,
            id: None,
            parent: None,
            owner: None,
        }
    }

    /// One record.
    pub const fn record(typ: ResourceType, id: Uuid) -> Self {
        Self {
            typ,
            id: Some(id),
            parent: None,
            owner: None,
        }
    }

    /// The same record under a parent.
    pub fn with_parent(mut self, typ: ResourceType, id: Uuid) -> Self {
        self.parent = Some((typ, id));
        self
    }

    /// The same record with an owner.
    pub fn with_owner(mut self, owner: Subject) -> Self {
        self.owner = Some(owner);
        self
    }

    pub(crate) fn object(&self) -> String {
        self.id
            .map(|id| format!("{}:{id}", self.typ))
            .unwrap_or_default()
    }

    pub(crate) fn parent_object(&self) -> String {
        self.parent
            .map(|(typ, id)| format!("{typ}:{id}"))
            .unwrap_or_default()
    }
}

/// Allow or deny. Deny wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Grants the permission.
    Allow,
    /// Takes it away, whatever else allows it.
    Deny,
}

impl Effect {
    /// The policy name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }

    pub(crate) fn parse(text: &str) -> Result<Self> {
        match text {
            "allow" => Ok(Self::Allow),
            "deny" => Ok(Self::Deny),
            _ => Err(Error::invalid("effect", format!("unknown effect `{text}`"))),
        }
    }
}

/// One permission: an action on a resource type (`*` for every one, in built-ins).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Permission {
    /// `*` or a resource type.
    pub resource_type: String,
    /// `*` or an action.
    pub action: String,
}

impl Permission {
    /// A concrete permission.
    pub fn new(typ: ResourceType, action: Action) -> Self {
        Self {
            resource_type: typ.as_str().to_owned(),
            action: action.as_str().to_owned(),
        }
    }
}

/// A policy rule as stored: who, what, allow or deny.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// A role or relation name, or a typed subject.
    pub subject: String,
    /// The permission.
    pub permission: Permission,
    /// Allow or deny.
    pub effect: Effect,
    /// Built into the platform (shared by every organization) or the organization's own.
    pub built_in: bool,
}

/// A deny rule of an organization, with who made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyRule {
    /// Id.
    pub id: Uuid,
    /// A role name, or a typed subject (`user:<id>`, `key:<id>`).
    pub subject: String,
    /// What it denies.
    pub resource_type: ResourceType,
    /// What it denies.
    pub action: Action,
    /// When it was made.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Who made it; `None` for rules made before authors were recorded.
    pub created_by: Option<Subject>,
}

/// A role (built-in or custom) and what it permits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleInfo {
    /// The role's name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Built in (cannot be changed) or the organization's own.
    pub built_in: bool,
    /// What it allows.
    pub permissions: Vec<Permission>,
}

/// A grant of a relation on one record to a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Id.
    pub id: GrantId,
    /// Who holds it.
    pub subject: Subject,
    /// The record.
    pub resource_type: ResourceType,
    /// The record's id.
    pub resource_id: Uuid,
    /// The relation (a record role such as `editor`).
    pub relation: String,
}

/// Why a decision came out as it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The decision.
    pub allowed: bool,
    /// The rules that decided it: the allow that matched, or the deny that won. Empty
    /// when nothing matched (deny by default).
    pub rules: Vec<Rule>,
}
