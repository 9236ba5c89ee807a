//! `schema.graphql` is what the code serves.

#[test]
fn schema_graphql_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql");
    let committed = std::fs::read_to_string(path).expect("schema.graphql exists");
    assert!(
        committed == gateway::graphql::sdl(),
        "schema.graphql is stale: run `make schema` and commit it"
    );
}
