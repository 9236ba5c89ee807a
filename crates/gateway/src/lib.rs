//! The gateway: the GraphQL schema over the domain services, the axum HTTP server, and
//! the `platform` command-line tool that serves, migrates, seeds and exports the schema.

pub mod background;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod context;
pub mod dev;
pub mod error;
pub mod export;
pub mod graphql;
pub mod http;
pub mod idempotency;
pub mod metrics;
pub mod privacy;
pub mod rate_limit;
pub mod server;
pub mod standing;
pub mod startup;
pub mod telemetry;
pub mod trace_context;
pub mod unit;
pub mod wire;

pub use config::Config;
pub use startup::{AppState, Application};

/// Every program that links the gateway (the server, its tests and benchmarks) allocates
/// with mimalloc: a request makes many small, short-lived allocations from several
/// threads, where glibc's allocator contends on its arenas (the profile's figures are in
/// the README, "One unit of work per operation").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
