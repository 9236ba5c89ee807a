//! Tenancy: users, organizations, memberships, invitations, API keys and log-in
//! sessions. This is the only crate that opens a [`kernel::TenantTx`], and it does so
//! only after it has verified a membership, an API key or an invitation: that is the
//! tenant boundary in code.

mod api_keys;
mod audit_sealer;
mod audit_trail;
mod auth;
mod caller;
mod crypto;
pub mod data_map;
pub mod dpa;
mod entity;
mod erasure;
pub mod error;
mod exports;
mod idempotency;
mod invitations;
pub mod model;
mod offboarding;
mod orgs;
mod repo;
mod retention;
pub mod role;
mod service;
mod throttle;
mod tokens;
mod trusted_documents;

pub use api_keys::NewApiKey;
pub use audit_sealer::SealSweep;
pub use audit_trail::{CONCURRENT_VERIFICATIONS, VerificationSlot};
pub use caller::Caller;
pub use error::{Error, Result};
pub use exports::{DataExport, ExportScope, ExportStatus, PREPARE_EXPORT};
pub use idempotency::{IDEMPOTENCY_WINDOW, IdempotentRequest, MAX_IDEMPOTENCY_KEY_CHARS};
pub use model::{
    Actor, ApiKey, Invitation, InvitationStatus, IssuedApiKey, IssuedInvitation, Membership,
    NewUser, Organization, Tokens, User,
};
pub use offboarding::{PURGED_TABLES, PurgeReport, RetainedInvoicesPurge};
pub use role::Role;
pub use service::{ClientInfo, TenancyService, TenancySettings};
pub use trusted_documents::{
    DocumentHash, MAX_MANIFEST_OPERATIONS, MAX_TRUSTED_DOCUMENT_BYTES, MAX_TRUSTED_DOCUMENTS,
    ManifestOperation, Registration, TrustedDocument, TrustedOperationType, read_manifest,
};
