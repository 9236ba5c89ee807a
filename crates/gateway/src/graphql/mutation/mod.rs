//! Mutations.

mod access;
mod api_key;
mod audit;
mod auth;
mod billing;
mod document;
mod member;
mod organization;
mod project;
mod trusted_document;
mod usage;
mod webhook;

/// The root mutation type.
#[derive(async_graphql::MergedObject, Default)]
pub struct Mutation(
    auth::AuthMutation,
    organization::OrganizationMutation,
    member::MemberMutation,
    api_key::ApiKeyMutation,
    access::AccessMutation,
    project::ProjectMutation,
    document::DocumentMutation,
    audit::AuditMutation,
    billing::BillingMutation,
    usage::UsageMutation,
    trusted_document::TrustedDocumentMutation,
    webhook::WebhookMutation,
    crate::graphql::privacy::PrivacyMutation,
);
