//! `Idempotency-Key` on mutations (issue 15): a retry gets the first answer again and
//! changes nothing; the same key for another request, a concurrent duplicate, and keys
//! of other callers and organizations.

use crate::helpers::{TestApp, TestOrg, TestUser, on_postgres};
use serde_json::json;

const CREATE: &str =
    "mutation Create($n: String!) { createProject(input: {name: $n}) { project { id name } } }";

async fn create(
    app: &TestApp,
    user: &TestUser,
    org: &TestOrg,
    name: &str,
    key: &str,
) -> crate::helpers::GqlResponse {
    app.gql(CREATE)
        .vars(json!({ "n": name }))
        .as_user(user)
        .in_org(org)
        .header("Idempotency-Key", key)
        .send()
        .await
}

async fn project_count(app: &TestApp, user: &TestUser, org: &TestOrg) -> u64 {
    let counted = app
        .gql("{ projects(first: 1) { totalCount } }")
        .as_user(user)
        .in_org(org)
        .send()
        .await;
    counted.data()["projects"]["totalCount"].as_u64().unwrap()
}

fn replayed(response: &crate::helpers::GqlResponse) -> bool {
    response
        .headers
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}

#[tokio::test]
async fn a_retry_gets_the_first_answer_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let acme = app.org(&alice, "Acme").await;

    let first = create(&app, &alice, &acme, "Roadmap", "key-1").await;
    assert!(!replayed(&first));
    let id = first.data()["createProject"]["project"]["id"].clone();
    let again = create(&app, &alice, &acme, "Roadmap", "key-1").await;
    assert!(replayed(&again), "{:?}", again.headers);
    assert_eq!(again.body, first.body);
    assert_eq!(project_count(&app, &alice, &acme).await, 1);

    // The same key for another request: refused, nothing created.
    let other = create(&app, &alice, &acme, "Budget", "key-1").await;
    assert_eq!(other.code(), "CONFLICT");
    assert_eq!(
        other.error()["extensions"]["reason"],
        "IDEMPOTENCY_KEY_REUSED"
    );
    assert_eq!(project_count(&app, &alice, &acme).await, 1);

    // A failed mutation claims nothing: the key stays free for the corrected request.
    let failed = create(&app, &alice, &acme, "", "key-2").await;
    assert_eq!(failed.code(), "BAD_USER_INPUT");
    let corrected = app
        .gql(CREATE)
        .vars(json!({ "n": "Fixed" }))
        .as_user(&alice)
        .in_org(&acme)
        .header("Idempotency-Key", "key-2")
        .send()
        .await;
    assert_eq!(
        corrected.data()["createProject"]["project"]["name"],
        "Fixed"
    );
    assert_eq!(project_count(&app, &alice, &acme).await, 2);

    // Keys belong to a caller in an organization: Bob's key-1 and Alice's key-1 in
    // another organization are new requests.
    let bob = app.user("bob@example.com").await;
    app.add_member(&alice, &acme, &bob, "ADMIN").await;
    let by_bob = create(&app, &bob, &acme, "Bob's", "key-1").await;
    assert!(!replayed(&by_bob));
    assert_eq!(by_bob.data()["createProject"]["project"]["name"], "Bob's");
    let globex = app.org(&alice, "Globex").await;
    let elsewhere = create(&app, &alice, &globex, "Roadmap", "key-1").await;
    assert!(!replayed(&elsewhere));
    assert_ne!(elsewhere.data()["createProject"]["project"]["id"], id);

    // After 24 hours a key may name a new request.
    app.clock.advance(chrono::Duration::hours(25));
    let alice = app.relog(&alice).await;
    let later = create(&app, &alice, &acme, "Budget", "key-1").await;
    assert_eq!(later.data()["createProject"]["project"]["name"], "Budget");
    assert!(!replayed(&later));

    // The retention run deletes expired keys; one audit event per project created.
    app.clock.advance(chrono::Duration::hours(25));
    let alice = app.relog(&alice).await;
    let report = gateway::background::retention_run::run_once(&app.state)
        .await
        .unwrap();
    assert!(report.expired_idempotency_keys >= 3, "{report:?}");
    let events = app
        .gql("{ auditEvents(first: 100, filter: {action: \"project.created\"}) { edges { node { id } } } }")
        .as_user(&alice)
        .in_org(&acme)
        .send()
        .await;
    assert_eq!(
        events.data()["auditEvents"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

#[tokio::test]
async fn concurrent_duplicates_make_one_change() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let acme = app.org(&alice, "Acme").await;
    let answers =
        futures::future::join_all((0..6).map(|_| create(&app, &alice, &acme, "Once", "same-key")))
            .await;
    assert_eq!(project_count(&app, &alice, &acme).await, 1);
    let mut ids = std::collections::BTreeSet::new();
    for answer in &answers {
        match answer.body["data"]["createProject"]["project"]["id"].as_str() {
            Some(id) => {
                ids.insert(id.to_owned());
            }
            None => {
                assert_eq!(answer.code(), "CONFLICT", "{}", answer.body);
                assert_eq!(answer.error()["extensions"]["reason"], "IN_PROGRESS");
            }
        }
    }
    assert_eq!(
        ids.len(),
        1,
        "every answer names the one project: {answers:?}"
    );
    if on_postgres() {
        // A duplicate waits for the first and gets its answer.
        assert!(
            answers.iter().all(|a| a.body.get("errors").is_none()),
            "{answers:?}"
        );
    }
}

#[tokio::test]
async fn a_key_is_refused_where_it_cannot_hold() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let acme = app.org(&alice, "Acme").await;
    let too_long = create(&app, &alice, &acme, "X", &"k".repeat(256)).await;
    assert_eq!(too_long.status, 400);
    assert_eq!(too_long.code(), "BAD_REQUEST");
    // Without an organization there is nothing to scope the key to.
    let no_org = app
        .gql(CREATE)
        .vars(json!({ "n": "X" }))
        .as_user(&alice)
        .header("Idempotency-Key", "k")
        .send()
        .await;
    assert_eq!(no_org.code(), "BAD_REQUEST");
    // Mutations outside the organization's unit of work, or answering with a secret,
    // are refused with a key (and so never run unprotected).
    for (document, field) in [
        ("mutation { logOut { ok } }", "logOut"),
        (
            "mutation { createApiKey(input: {name: \"k\", role: VIEWER}) { secret } }",
            "createApiKey",
        ),
        (
            "mutation { a: createProject(input: {name: \"A\"}) { project { id } } ...More } fragment More on Mutation { logOut { ok } }",
            "logOut",
        ),
    ] {
        let refused = app
            .gql(document)
            .as_user(&alice)
            .in_org(&acme)
            .header("Idempotency-Key", "k")
            .send()
            .await;
        assert_eq!(refused.code(), "BAD_REQUEST", "{document}");
        assert!(refused.error()["message"].as_str().unwrap().contains(field));
    }
    // Queries ignore it.
    let query = app
        .gql("{ projects { totalCount } }")
        .as_user(&alice)
        .in_org(&acme)
        .header("Idempotency-Key", "q")
        .send()
        .await;
    assert_eq!(query.data()["projects"]["totalCount"], 0);
    let batch = app
        .http
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&alice.token)
        .header("X-Organization-Id", &acme.id)
        .header("Idempotency-Key", "b")
        .json(&json!([{"query": "{ __typename }"}, {"query": "{ __typename }"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(batch.status(), 400);
    assert_eq!(project_count(&app, &alice, &acme).await, 0);
}

#[tokio::test]
async fn every_mutation_is_either_idempotent_or_refused_with_a_key() {
    let app = TestApp::spawn().await;
    let schema = app
        .gql("{ __schema { mutationType { fields { name } } } }")
        .send()
        .await;
    let mut in_schema: Vec<String> = schema.data()["__schema"]["mutationType"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    in_schema.sort();
    let mut decided: Vec<String> = gateway::idempotency::IDEMPOTENT_MUTATIONS
        .iter()
        .copied()
        .chain(
            gateway::idempotency::NOT_IDEMPOTENT_MUTATIONS
                .iter()
                .map(|(name, _)| *name),
        )
        .map(str::to_owned)
        .collect();
    decided.sort();
    assert_eq!(
        decided, in_schema,
        "each mutation needs a decision on Idempotency-Key"
    );
}

#[tokio::test]
async fn a_root_field_that_rolled_back_takes_its_claim_with_it() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let acme = app.org(&alice, "Acme").await;
    // The first field fails (and rolls back, its claim too); the second commits and
    // claims the key; the retry is a replay.
    let two = "mutation { a: createProject(input: {name: \"\"}) { project { id } } \
        b: createProject(input: {name: \"Second\"}) { project { id } } }";
    let send = || {
        app.gql(two)
            .as_user(&alice)
            .in_org(&acme)
            .header("Idempotency-Key", "two-fields")
            .send()
    };
    let first = send().await;
    assert_eq!(
        first.body["errors"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );
    assert!(
        first.body["data"]["b"]["project"]["id"].is_string(),
        "{}",
        first.body
    );
    let again = send().await;
    assert!(replayed(&again), "{}", again.body);
    assert_eq!(again.body, first.body);
    assert_eq!(project_count(&app, &alice, &acme).await, 1);
}
