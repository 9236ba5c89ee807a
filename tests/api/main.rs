//! End-to-end tests: the real server, a fresh database per test, HTTP like a client.

// Test code fails loudly by design: a panic with a message is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod abuse;
mod api_keys;
mod audit;
mod auth;
mod billing;
mod boundary_source;
mod cancellation;
mod conventions;
mod data_export;
mod data_map;
mod documents;
mod erasure;
mod graphiql;
mod helpers;
mod hostile_property;
mod http_limits;
mod idempotency;
mod invitations;
mod isolation;
mod jobs;
mod list_property;
mod logs;
mod members;
mod metrics;
mod observed;
mod offboarding;
mod organizations;
mod permissions;
mod postgres_rls;
mod processor_agreement;
mod projects;
mod rate_limits;
mod schema;
mod surface;
mod traces;
mod trusted_documents;
mod unit_of_work;
mod usage;
mod webhooks;
