//! Random hostile documents (deep values, fragment fans, alias storms, huge strings, NUL
//! characters, garbage) against the real server, anonymous and signed in: never a panic,
//! never `INTERNAL`, always a coded error or a normal answer, and the server healthy after.

use crate::helpers::{TestApp, assert_every_error_has_a_code};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

/// Fields a storm is made of: cheap, listed, nested, heavy.
const FIELDS: &[&str] = &[
    "__typename",
    "viewer { user { id name } }",
    "projects(first: 100) { nodes { id name } }",
    "documents(first: 50) { edges { node { id title body versions { nodes { body } } } } }",
    "nodes(ids: [\"x\", \"y\"]) { id }",
    "verifyAuditChain { valid }",
    "__schema { types { name fields { name } } }",
];

/// One hostile request: its body (a document and variables).
fn hostile() -> impl Strategy<Value = Value> {
    let deep = (1_usize..300, prop::bool::ANY).prop_map(|(depth, objects)| {
        let (open, close) = if objects { ("{a: ", "}") } else { ("[", "]") };
        json!({ "query": format!("{{ __typename(x: {}1{}) }}", open.repeat(depth), close.repeat(depth)) })
    });
    let fan = (1_usize..40, 0..FIELDS.len()).prop_map(|(levels, leaf)| {
        let mut document = format!("fragment F0 on Query {{ {} }}\n", FIELDS[leaf]);
        for i in 1..levels {
            document.push_str(&format!(
                "fragment F{i} on Query {{ ...F{p} ...F{p} }}\n",
                p = i - 1
            ));
        }
        document.push_str(&format!("{{ ...F{} }}", levels - 1));
        json!({ "query": document })
    });
    let storm = (1_usize..3_000, 0..FIELDS.len()).prop_map(|(n, field)| {
        let aliases: String = (0..n)
            .map(|i| format!("a{i}: {} ", FIELDS[field]))
            .collect();
        json!({ "query": format!("{{ {aliases} }}") })
    });
    let huge = (0_usize..400_000, prop::bool::ANY).prop_map(|(length, nul)| {
        let mut text = "x".repeat(length);
        if nul {
            text.insert(length / 2, '\0');
        }
        json!({
            "query": "mutation($i: SignUpInput!) { signUp(input: $i) { user { id } } }",
            "variables": { "i": { "email": "e@example.com", "password": "a-long-password", "name": text } }
        })
    });
    let nul_inline = "[a-z]{0,20}".prop_map(|name| {
        json!({ "query": format!("mutation {{ createProject(input: {{name: \"{name}\\u0000\"}}) {{ project {{ id }} }} }}") })
    });
    let garbage = prop::collection::vec(any::<char>(), 0..2_000)
        .prop_map(|chars| json!({ "query": chars.into_iter().collect::<String>() }));
    prop_oneof![deep, fan, storm, huge, nul_inline, garbage]
}

/// The answer has codes on every error and none is `INTERNAL`.
fn assert_coded(body: &Value) {
    assert_every_error_has_a_code(body);
    for error in body["errors"].as_array().into_iter().flatten() {
        assert_ne!(error["extensions"]["code"], "INTERNAL", "{error}");
    }
}

#[test]
fn hostile_documents_get_coded_answers() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (app, user, org) = runtime.block_on(async {
        let app = TestApp::spawn().await;
        let user = app.user("alice@example.com").await;
        let org = app.org(&user, "Acme").await;
        (app, user, org)
    });
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&(hostile(), prop::bool::ANY), |(body, signed_in)| {
            runtime.block_on(async {
                let mut request = app
                    .http
                    .post(format!("{}/graphql", app.address))
                    .json(&body);
                if signed_in {
                    request = request
                        .bearer_auth(&user.token)
                        .header("X-Organization-Id", &org.id);
                }
                let response = request.send().await.expect("the server answers");
                let status = response.status();
                assert!(
                    status.is_success() || status.is_client_error(),
                    "status {status}"
                );
                let answer: Value = response.json().await.expect("a JSON answer");
                assert_coded(&answer);
            });
            Ok(())
        })
        .expect("every hostile document got a coded answer");
    runtime.block_on(async {
        let health = app
            .http
            .get(format!("{}/healthz", app.address))
            .send()
            .await
            .expect("healthz");
        assert_eq!(health.status(), 200);
        app.gql("{ viewer { user { email } } }")
            .as_user(&user)
            .send()
            .await
            .data();
    });
}
