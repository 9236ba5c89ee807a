//! GraphQL object types, each a thin wrapper over a domain model.

pub mod access;
pub mod api_key;
pub mod audit;
pub mod billing;
pub mod document;
pub mod invitation;
pub mod membership;
pub mod node;
pub mod organization;
pub mod project;
pub mod role;
pub mod trusted_document;
pub mod user;
pub mod webhook;

pub use api_key::ApiKey;
pub use document::Document;
pub use invitation::Invitation;
pub use membership::Membership;
pub use node::Node;
pub use organization::Organization;
pub use project::Project;
pub use role::Role;
pub use trusted_document::TrustedDocument;
pub use user::User;
