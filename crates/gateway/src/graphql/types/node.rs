//! The Relay `Node` interface.

use super::audit::AuditEvent;
use super::{ApiKey, Document, Invitation, Membership, Organization, Project, User};
use async_graphql::{ID, Interface};

/// An object with a global id, fetchable with `node(id:)`.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "Global id."))]
pub enum Node {
    /// A person.
    User(User),
    /// An organization.
    Organization(Organization),
    /// A membership.
    Membership(Membership),
    /// An invitation.
    Invitation(Invitation),
    /// An API key.
    ApiKey(ApiKey),
    /// A project.
    Project(Project),
    /// A document.
    Document(Document),
    /// An event of an audit trail.
    AuditEvent(Box<AuditEvent>),
}
