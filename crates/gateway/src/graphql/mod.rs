//! The GraphQL schema: queries and mutations merged from one module per area, with depth
//! and complexity limits. No extension: one would wrap every field's resolution (error
//! codes are given in `http::respond`).

pub mod admission;
pub mod connection;
pub mod ids;
pub mod loaders;
pub mod mutation;
pub mod privacy;
pub mod query;
pub mod record_access;
pub mod tasks;
pub mod types;

use async_graphql::{EmptySubscription, Schema};

/// The schema type.
pub type AppSchema = Schema<query::Query, mutation::Mutation, EmptySubscription>;

/// Deepest nesting a document may have (GraphiQL's introspection query needs 13). What a
/// document may cost is decided before validation, in [`admission`].
pub const MAX_DEPTH: usize = 16;

/// Builds the schema without data: for `export-schema` and the staleness test.
pub fn schema_builder()
-> async_graphql::SchemaBuilder<query::Query, mutation::Mutation, EmptySubscription> {
    Schema::build(
        query::Query::default(),
        mutation::Mutation::default(),
        EmptySubscription,
    )
    .limit_depth(MAX_DEPTH)
}

/// The SDL that `schema.graphql` must hold.
pub fn sdl() -> String {
    schema_builder().finish().sdl()
}
