//! Queries.

mod access;
mod audit;
mod billing;
mod documents;
mod node;
mod projects;
mod usage;
mod viewer;
mod webhooks;

/// The root query type.
#[derive(async_graphql::MergedObject, Default)]
pub struct Query(
    node::NodeQuery,
    viewer::ViewerQuery,
    access::AccessQuery,
    audit::AuditQuery,
    billing::BillingQuery,
    projects::ProjectsQuery,
    documents::DocumentsQuery,
    usage::UsageQuery,
    webhooks::WebhooksQuery,
    crate::graphql::privacy::PrivacyQuery,
);
