//! Typed ids. A `UserId` cannot be passed where an `OrgId` is expected; all are UUIDv7, so
//! they sort by creation time and serve as keyset pagination keys.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an id read from storage or a decoded global id.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        /// Parsed from a UUID's text (a command-line argument, a provider's metadata).
        impl std::str::FromStr for $name {
            type Err = uuid::Error;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(text).map(Self)
            }
        }

        /// Compared with and written to its `uuid` column as the UUID it wraps.
        impl From<$name> for sea_orm::Value {
            fn from(id: $name) -> sea_orm::Value {
                id.0.into()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_newtype!(
    /// An organization: the tenant.
    OrgId
);

impl OrgId {
    /// The platform's own pseudo-organization: events that belong to no organization
    /// (sign-up, log-in) are chained here.
    pub const PLATFORM: OrgId = OrgId(Uuid::nil());
}
id_newtype!(
    /// A person who can log in.
    UserId
);
id_newtype!(
    /// A user's membership in one organization.
    MembershipId
);
id_newtype!(
    /// An invitation to join an organization.
    InvitationId
);
id_newtype!(
    /// A service account's key, bound to one organization.
    ApiKeyId
);
id_newtype!(
    /// A log-in session: one refresh-token family.
    SessionId
);
id_newtype!(
    /// A project of an organization.
    ProjectId
);
id_newtype!(
    /// A document of a project.
    DocumentId
);
id_newtype!(
    /// An invoice or a credit note of an organization.
    InvoiceId
);
id_newtype!(
    /// A grant of a relation on one record (a project or a document) to a subject.
    GrantId
);
