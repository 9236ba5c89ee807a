//! Every table, index, Row-Level Security policy and trigger, as ordered migrations.
//! Migrations name their own tables and columns (never the entities), so history stays
//! frozen. They run as the owner role; on PostgreSQL they create the application role
//! `platform_app`, which owns nothing, has no `BYPASSRLS`, and gets only the rights each
//! table grants it.

pub use sea_orm_migration::prelude::*;

mod m0001_spine;
mod m0002_authz;
mod m0003_audit;
mod m0004_projects;
mod m0005_audit_retention;
mod m0006_documents;
mod m0007_audit_append;
mod m0008_owner_indexes;
mod m0009_usage_events;
mod m0010_billing;
mod m0011_invoices;
mod m0012_payment_webhooks;
mod m0013_invoice_line_metric;
mod m0014_staff;
mod m0015_metric_max_value;
mod m0016_enter_organization;
mod m0017_login_throttles;
mod m0018_rule_authors;
mod m0019_api_key_expiry;
mod m0020_least_privilege;
mod m0021_account_erasure;
mod m0022_session_retention;
mod m0023_processor_agreements;
mod m0024_erasure_policy;
mod m0025_pseudonymize_user;
mod m0026_organization_offboarding;
mod m0027_data_exports;
mod m0028_usage_retention;
mod m0029_invoice_retention_end;
mod m0030_enter_with_session;
mod m0031_trusted_documents;
mod m0032_idempotency_keys;
mod m0033_audit_sealing;
mod m0034_jobs;
mod m0035_webhooks;
mod tenant_table;

pub use m0033_audit_sealing::chained_audit_append;
pub use tenant_table::APP_ROLE;

/// The ordered list of migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_spine::Migration),
            Box::new(m0002_authz::Migration),
            Box::new(m0003_audit::Migration),
            Box::new(m0004_projects::Migration),
            Box::new(m0005_audit_retention::Migration),
            Box::new(m0006_documents::Migration),
            Box::new(m0007_audit_append::Migration),
            Box::new(m0008_owner_indexes::Migration),
            Box::new(m0009_usage_events::Migration),
            Box::new(m0010_billing::Migration),
            Box::new(m0011_invoices::Migration),
            Box::new(m0012_payment_webhooks::Migration),
            Box::new(m0013_invoice_line_metric::Migration),
            Box::new(m0014_staff::Migration),
            Box::new(m0015_metric_max_value::Migration),
            Box::new(m0016_enter_organization::Migration),
            Box::new(m0017_login_throttles::Migration),
            Box::new(m0018_rule_authors::Migration),
            Box::new(m0019_api_key_expiry::Migration),
            Box::new(m0020_least_privilege::Migration),
            Box::new(m0021_account_erasure::Migration),
            Box::new(m0022_session_retention::Migration),
            Box::new(m0023_processor_agreements::Migration),
            Box::new(m0024_erasure_policy::Migration),
            Box::new(m0025_pseudonymize_user::Migration),
            Box::new(m0026_organization_offboarding::Migration),
            Box::new(m0027_data_exports::Migration),
            Box::new(m0028_usage_retention::Migration),
            Box::new(m0029_invoice_retention_end::Migration),
            Box::new(m0030_enter_with_session::Migration),
            Box::new(m0031_trusted_documents::Migration),
            Box::new(m0032_idempotency_keys::Migration),
            Box::new(m0033_audit_sealing::Migration),
            Box::new(m0034_jobs::Migration),
            Box::new(m0035_webhooks::Migration),
        ]
    }
}
