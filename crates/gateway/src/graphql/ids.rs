//! Opaque global ids. A record of an organization carries the organization in its id
//! (`Membership:<org>:<id>`), so `node(id:)` opens exactly that organization's
//! transaction, membership-checked, and answers `null` for another organization's record
//! just as for one that does not exist.

use crate::error::ApiError;
use async_graphql::ID;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kernel::OrgId;
use uuid::Uuid;

/// The kinds of node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// `User`
    User,
    /// `Organization`
    Organization,
    /// `Membership`
    Membership,
    /// `Invitation`
    Invitation,
    /// `ApiKey`
    ApiKey,
    /// `Project`
    Project,
    /// `Grant`
    Grant,
    /// `Document`
    Document,
    /// `DenyRule` (not a node: listed on its organization)
    DenyRule,
    /// `DataExport` (not a node: listed for whoever asked for it)
    DataExport,
    /// `AuditEvent`
    AuditEvent,
    /// `WebhookEndpoint` (not a node: listed on its organization)
    WebhookEndpoint,
    /// `WebhookDelivery` (not a node: listed on its organization)
    WebhookDelivery,
}

impl NodeKind {
    const ALL: [NodeKind; 13] = [
        Self::User,
        Self::Organization,
        Self::Membership,
        Self::Invitation,
        Self::ApiKey,
        Self::Project,
        Self::Grant,
        Self::Document,
        Self::DenyRule,
        Self::DataExport,
        Self::AuditEvent,
        Self::WebhookEndpoint,
        Self::WebhookDelivery,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::Organization => "Organization",
            Self::Membership => "Membership",
            Self::Invitation => "Invitation",
            Self::ApiKey => "ApiKey",
            Self::Project => "Project",
            Self::Grant => "Grant",
            Self::Document => "Document",
            Self::DenyRule => "DenyRule",
            Self::DataExport => "DataExport",
            Self::AuditEvent => "AuditEvent",
            Self::WebhookEndpoint => "WebhookEndpoint",
            Self::WebhookDelivery => "WebhookDelivery",
        }
    }
}

/// A decoded global id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalId {
    /// What it names.
    pub kind: NodeKind,
    /// The owning organization, for records of one.
    pub org: Option<OrgId>,
    /// The record's own id.
    pub id: Uuid,
}

impl GlobalId {
    /// Encodes a global (organization-less) record's id.
    pub fn global(kind: NodeKind, id: impl Into<Uuid>) -> ID {
        let id: Uuid = id.into();
        ID(URL_SAFE_NO_PAD.encode(format!("{}:{}", kind.name(), id.simple())))
    }

    /// Encodes an organization's record's id.
    pub fn scoped(kind: NodeKind, org: OrgId, id: impl Into<Uuid>) -> ID {
        let id: Uuid = id.into();
        ID(URL_SAFE_NO_PAD.encode(format!(
            "{}:{}:{}",
            kind.name(),
            org.as_uuid().simple(),
            id.simple()
        )))
    }

    /// Decodes any global id.
    pub fn decode(field: &'static str, id: &ID) -> Result<Self, ApiError> {
        let invalid = || ApiError::bad_input(field, "not an id issued by this API");
        let bytes = URL_SAFE_NO_PAD.decode(id.as_str()).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let mut parts = text.split(':');
        let kind_name = parts.next().ok_or_else(invalid)?;
        let kind = NodeKind::ALL
            .into_iter()
            .find(|k| k.name() == kind_name)
            .ok_or_else(invalid)?;
        let uuids: Vec<Uuid> = parts
            .map(|part| Uuid::try_parse(part).map_err(|_| invalid()))
            .collect::<Result<_, _>>()?;
        let scoped = !matches!(
            kind,
            NodeKind::User | NodeKind::Organization | NodeKind::DataExport
        );
        match (scoped, uuids.as_slice()) {
            (false, [id]) => Ok(Self {
                kind,
                org: None,
                id: *id,
            }),
            (true, [org, id]) => Ok(Self {
                kind,
                org: Some(OrgId::from_uuid(*org)),
                id: *id,
            }),
            _ => Err(invalid()),
        }
    }

    /// Decodes an id that must be of `kind`; for records of an organization, returns it.
    pub fn expect(field: &'static str, id: &ID, kind: NodeKind) -> Result<Self, ApiError> {
        let decoded = Self::decode(field, id)?;
        if decoded.kind == kind {
            Ok(decoded)
        } else {
            Err(ApiError::bad_input(
                field,
                format!("expected the id of a {}", kind.name()),
            ))
        }
    }
}

impl GlobalId {
    /// The id as a project's; `BAD_USER_INPUT` for an id of another kind (callers have
    /// checked it with [`Self::expect`]: this keeps a mix-up from compiling into a wrong
    /// query).
    pub fn project_id(&self) -> Result<kernel::ProjectId, ApiError> {
        self.of_kind(NodeKind::Project)
            .map(kernel::ProjectId::from_uuid)
    }

    /// The id as a document's (see [`Self::project_id`]).
    pub fn document_id(&self) -> Result<kernel::DocumentId, ApiError> {
        self.of_kind(NodeKind::Document)
            .map(kernel::DocumentId::from_uuid)
    }

    /// The id as a grant's (see [`Self::project_id`]).
    pub fn grant_id(&self) -> Result<kernel::GrantId, ApiError> {
        self.of_kind(NodeKind::Grant)
            .map(kernel::GrantId::from_uuid)
    }

    fn of_kind(&self, kind: NodeKind) -> Result<Uuid, ApiError> {
        if self.kind == kind {
            Ok(self.id)
        } else {
            Err(ApiError::bad_input(
                "id",
                format!("expected the id of a {}", kind.name()),
            ))
        }
    }

    /// Decodes the id of a User or an ApiKey as a policy subject.
    pub fn subject(field: &'static str, id: &ID) -> Result<authz::Subject, ApiError> {
        match Self::decode(field, id)? {
            GlobalId {
                kind: NodeKind::User,
                id,
                ..
            } => Ok(authz::Subject::User(kernel::UserId::from_uuid(id))),
            GlobalId {
                kind: NodeKind::ApiKey,
                id,
                ..
            } => Ok(authz::Subject::Key(kernel::ApiKeyId::from_uuid(id))),
            _ => Err(ApiError::bad_input(field, "expected a User or ApiKey id")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A typed id is read only from an id of its kind.
    #[test]
    fn a_typed_id_comes_only_from_an_id_of_its_kind() {
        let (org, id) = (OrgId::generate(), Uuid::now_v7());
        let project = GlobalId::scoped(NodeKind::Project, org, id);
        let project = GlobalId::expect("id", &project, NodeKind::Project).unwrap();
        assert_eq!(project.project_id().unwrap().as_uuid(), id);
        assert!(project.document_id().is_err());
        assert!(project.grant_id().is_err());
    }

    #[test]
    fn ids_round_trip_and_foreign_strings_are_refused() {
        let org = OrgId::generate();
        let id = Uuid::now_v7();
        let encoded = GlobalId::scoped(NodeKind::Membership, org, id);
        let decoded = GlobalId::decode("id", &encoded).unwrap();
        assert_eq!(
            decoded,
            GlobalId {
                kind: NodeKind::Membership,
                org: Some(org),
                id
            }
        );
        assert!(GlobalId::expect("id", &encoded, NodeKind::ApiKey).is_err());
        assert!(GlobalId::decode("id", &ID("nope".into())).is_err());
        let unscoped_membership = GlobalId::global(NodeKind::Membership, id);
        assert!(GlobalId::decode("id", &unscoped_membership).is_err());
    }
}
