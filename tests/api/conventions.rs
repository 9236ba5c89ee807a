//! GraphQL conventions: codes on async-graphql's own errors, limits, batches, GET.

use crate::helpers::{TestApp, assert_every_error_has_a_code};
use serde_json::{Value, json};

async fn post_raw(app: &TestApp, body: &str) -> (u16, Value) {
    let response = app
        .http
        .post(format!("{}/graphql", app.address))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_every_error_has_a_code(&body);
    (status, body)
}

#[tokio::test]
async fn parse_validation_depth_and_complexity_errors_have_codes() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.gql("{ viewer { ").send().await.code(),
        "GRAPHQL_PARSE_FAILED"
    );
    assert_eq!(
        app.gql("{ noSuchField }").send().await.code(),
        "GRAPHQL_VALIDATION_FAILED"
    );
    let wrong_variable = app
        .gql("query($id: ID!) { node(id: $id) { id } }")
        .vars(json!({ "id": { "not": "an id" } }))
        .send()
        .await;
    assert!(matches!(
        wrong_variable.code(),
        "GRAPHQL_VALIDATION_FAILED" | "BAD_USER_INPUT"
    ));

    // 20 levels of __type { ofType { … } } exceed the depth limit regardless of data.
    let too_deep = format!(
        "{{ __schema {{ types {{ {}name{} }} }} }}",
        "ofType { ".repeat(20),
        " }".repeat(20)
    );
    assert_eq!(app.gql(&too_deep).send().await.code(), "QUERY_TOO_DEEP");

    // 40 pages of 100 projects, 3 fields each: 40 × (10 + 100 × 3) = 12,400.
    let wide: String = (0..40)
        .map(|i| format!("f{i}: projects(first: 100) {{ nodes {{ id name }} }} "))
        .collect();
    let too_complex = app.gql(&format!("{{ {wide} }}")).send().await;
    assert_eq!(too_complex.code(), "QUERY_TOO_COMPLEX");
    assert_eq!(too_complex.error()["extensions"]["cost"], 12_400);

    // Choosing the operation is part of the request too: a request error, not INTERNAL.
    let two = "query A { __typename } query B { __typename }";
    for body in [
        json!({ "query": two }),
        json!({ "query": two, "operationName": "C" }),
    ] {
        let (_, answer) = post_raw(&app, &body.to_string()).await;
        assert_eq!(
            answer["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
            "{answer}"
        );
        assert!(answer.get("data").is_none(), "{answer}");
    }
}

#[tokio::test]
async fn graphiql_introspection_is_within_the_limits() {
    let app = TestApp::spawn().await;
    let introspection = include_str!("introspection.graphql");
    let response = app.gql(introspection).send().await;
    assert!(
        response.data()["__schema"]["types"]
            .as_array()
            .unwrap()
            .len()
            > 10
    );
    let page = app
        .http
        .get(format!("{}/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("graphiql"));
}

#[tokio::test]
async fn batches_are_capped_and_bad_bodies_have_codes() {
    let app = TestApp::spawn().await;
    let two = json!([{ "query": "{ __typename }" }, { "query": "{ __typename }" }]).to_string();
    let (status, body) = post_raw(&app, &two).await;
    assert_eq!(status, 200);
    assert_eq!(body.as_array().unwrap().len(), 2);

    let eleven = Value::Array(vec![json!({ "query": "{ __typename }" }); 11]).to_string();
    let (status, body) = post_raw(&app, &eleven).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST");

    let (status, body) = post_raw(&app, "not json").await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST");
}

#[tokio::test]
async fn queries_work_over_get_and_mutations_do_not() {
    let app = TestApp::spawn().await;
    let get = |query: &str| {
        app.http
            .get(format!("{}/graphql", app.address))
            .query(&[("query", query)])
            .send()
    };
    let query = get("{ __typename }").await.unwrap();
    assert_eq!(query.status(), 200);
    assert_eq!(
        query.json::<Value>().await.unwrap()["data"]["__typename"],
        "Query"
    );

    let mutation = get("mutation { logOut { ok } }").await.unwrap();
    assert_eq!(mutation.status(), 405);
    let body: Value = mutation.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST");
}

#[tokio::test]
async fn health_and_readiness_answer_and_request_ids_come_back() {
    let app = TestApp::spawn().await;
    let health = app
        .http
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = app
        .http
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let traced = app
        .http
        .post(format!("{}/graphql", app.address))
        .header("x-request-id", "req-123")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(traced.headers()["x-request-id"], "req-123");
}
