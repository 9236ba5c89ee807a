//! Queries.

mod access;
mod audit;
mod billing;
mod document;
mod node;
mod project;
mod usage;
mod viewer;
mod webhook;

/// The root query type.
#[derive(async_graphql::MergedObject, Default)]
pub struct Query(
    node::NodeQuery,
    viewer::ViewerQuery,
    access::AccessQuery,
    audit::AuditQuery,
    billing::BillingQuery,
    project::ProjectsQuery,
    document::DocumentsQuery,
    usage::UsageQuery,
    webhook::WebhooksQuery,
    crate::graphql::privacy::PrivacyQuery,
);
