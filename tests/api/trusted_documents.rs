//! Trusted documents (persisted queries, issue 15): an organization's admins register
//! their integration's documents, its restricted keys run those by id and nothing else,
//! APQ clients register texts by sending them with their hash, and the platform's own
//! documents are imported by an operator.

use crate::helpers::{TestApp, TestOrg, TestUser, on_postgres};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const READ_ORG: &str = "query ReadOrg { viewer { activeOrganization { name } } }";
const ADD_PROJECT: &str = "mutation AddProject($name: String!) { recordUsage(input: {events: [{metric: \"exports\", key: $name}]}) { stored } }";
const INTROSPECT: &str = "query Intro { __schema { queryType { name } } }";

/// The SHA-256 of `text` in hex (computed here independently of the server's code).
fn sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn document_id(text: &str) -> String {
    format!("sha256:{}", sha256(text))
}

fn manifest(operations: &[(&str, &str, &str)]) -> Value {
    let operations: Vec<Value> = operations
        .iter()
        .map(|(name, kind, body)| json!({"id": sha256(body), "name": name, "type": kind, "body": body}))
        .collect();
    json!({"format": "apollo-persisted-query-manifest", "version": 1, "operations": operations})
}

/// Runs the document `text` by its id alone, with `credential`.
async fn by_id(app: &TestApp, credential: &str, text: &str) -> crate::helpers::GqlResponse {
    app.gql_body(json!({"documentId": document_id(text)}))
        .bearer(credential)
        .send()
        .await
}

async fn register(app: &TestApp, admin: &TestUser, org: &TestOrg, manifest: Value) -> Value {
    let answer = app
        .gql("mutation($m: JSON!) { registerTrustedDocuments(input: {manifest: $m}) { registeredCount trustedDocuments { documentId name operationType } } }")
        .vars(json!({ "m": manifest }))
        .as_user(admin)
        .in_org(org)
        .send()
        .await;
    answer.body
}

/// A key as `createApiKey` makes it by default: restricted to trusted documents.
async fn restricted_key(app: &TestApp, admin: &TestUser, org: &TestOrg, role: &str) -> String {
    let made = app
        .gql("mutation($r: Role!) { createApiKey(input: {name: \"partner\", role: $r}) { secret apiKey { trustedDocumentsOnly } } }")
        .vars(json!({ "r": role }))
        .as_user(admin)
        .in_org(org)
        .send()
        .await;
    assert_eq!(
        made.data()["createApiKey"]["apiKey"]["trustedDocumentsOnly"],
        true
    );
    made.data()["createApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn api_calls(app: &TestApp, admin: &TestUser, org: &TestOrg) -> u64 {
    let usage = app
        .gql("{ usage(metric: \"api_calls\", period: CURRENT, aggregation: COUNT) }")
        .as_user(admin)
        .in_org(org)
        .send()
        .await;
    usage.data()["usage"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_restricted_key_runs_its_organizations_trusted_documents_by_id_and_nothing_else() {
    let app = TestApp::spawn().await;
    let catalog = r#"{
      "metrics": [{"code": "api_calls", "name": "API calls", "aggregation": {"type": "count"}},
                  {"code": "exports", "name": "Exports", "aggregation": {"type": "count"}}],
      "plans": [{"code": "metered", "name": "Metered", "currency": "EUR",
        "entitlements": {"quotas": {"api_calls": {"per_period": 1000, "hard": true}}}}]
    }"#;
    gateway::catalog::import_catalog(&app.state, &billing::CatalogFile::parse(catalog).unwrap())
        .await
        .unwrap();
    let alice = app.user("alice@example.com").await;
    let acme = app.org(&alice, "Acme").await;
    app.gql("mutation { changePlan(input: {plan: \"metered\"}) { effective } }")
        .as_user(&alice)
        .in_org(&acme)
        .send()
        .await
        .data();
    let key = restricted_key(&app, &alice, &acme, "BILLING_ADMIN").await;
    let calls_before = api_calls(&app, &alice, &acme).await;

    // Free text: refused with 400, before it runs or is metered.
    let text = app.gql(READ_ORG).bearer(&key).send().await;
    assert_eq!(text.code(), "PERSISTED_QUERY_NOT_IN_LIST");
    assert_eq!(text.status, 400);
    assert!(text.body.get("data").is_none(), "{}", text.body);
    // An id nobody registered: not found (a restricted key cannot register by APQ).
    let unknown = by_id(&app, &key, READ_ORG).await;
    assert_eq!(unknown.code(), "PERSISTED_QUERY_NOT_FOUND");
    let apq_register = app
        .gql_body(json!({"query": READ_ORG, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256(READ_ORG)}}}))
        .bearer(&key)
        .send()
        .await;
    assert_eq!(apq_register.code(), "PERSISTED_QUERY_NOT_IN_LIST");
    let still_unknown = by_id(&app, &key, READ_ORG).await;
    assert_eq!(still_unknown.code(), "PERSISTED_QUERY_NOT_FOUND");
    assert_eq!(api_calls(&app, &alice, &acme).await, calls_before);

    // The organization's admin registers the integration's documents (twice: harmless).
    let documents = [
        ("ReadOrg", "query", READ_ORG),
        ("AddProject", "mutation", ADD_PROJECT),
        ("Intro", "query", INTROSPECT),
    ];
    let registered = register(&app, &alice, &acme, manifest(&documents)).await;
    assert_eq!(
        registered["data"]["registerTrustedDocuments"]["registeredCount"], 3,
        "{registered}"
    );
    let listed = &registered["data"]["registerTrustedDocuments"]["trustedDocuments"];
    assert_eq!(listed[0]["documentId"], document_id(READ_ORG));
    assert_eq!(listed[1]["operationType"], "MUTATION");
    let again = register(&app, &alice, &acme, manifest(&documents[..1])).await;
    assert_eq!(
        again["data"]["registerTrustedDocuments"]["registeredCount"],
        0
    );

    // By id: over POST in both forms, over GET, and with its text (which matches).
    let ran = by_id(&app, &key, READ_ORG).await;
    assert_eq!(ran.data()["viewer"]["activeOrganization"]["name"], "Acme");
    let by_apq = app
        .gql_body(json!({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256(READ_ORG)}}}))
        .bearer(&key)
        .send()
        .await;
    assert_eq!(
        by_apq.data()["viewer"]["activeOrganization"]["name"],
        "Acme"
    );
    let with_text = app
        .gql_body(json!({"query": READ_ORG, "documentId": document_id(READ_ORG)}))
        .bearer(&key)
        .send()
        .await;
    assert_eq!(
        with_text.data()["viewer"]["activeOrganization"]["name"],
        "Acme"
    );
    let over_get: Value = app
        .http
        .get(format!("{}/graphql", app.address))
        .query(&[("documentId", document_id(READ_ORG))])
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        over_get["data"]["viewer"]["activeOrganization"]["name"],
        "Acme"
    );
    let mutation_over_get: Value = app
        .http
        .get(format!("{}/graphql", app.address))
        .query(&[
            ("documentId", document_id(ADD_PROJECT)),
            ("variables", json!({"name": "via GET"}).to_string()),
        ])
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        mutation_over_get["errors"][0]["extensions"]["code"],
        "BAD_REQUEST"
    );
    let added = app
        .gql_body(json!({"documentId": document_id(ADD_PROJECT), "variables": {"name": "by-id"}}))
        .bearer(&key)
        .send()
        .await;
    assert_eq!(added.data()["recordUsage"]["stored"], 1);
    // Every call that ran was metered, and only those (6 ran, the GET mutation refused).
    assert_eq!(api_calls(&app, &alice, &acme).await - calls_before, 5);
    // A restricted key does not introspect, even through a trusted document.
    let intro = by_id(&app, &key, INTROSPECT).await;
    assert_eq!(intro.code(), "FORBIDDEN");
    assert_eq!(
        intro.error()["extensions"]["reason"],
        "INTROSPECTION_DISABLED"
    );
    // A text that is not the id it came with.
    let mismatch = app
        .gql_body(json!({"query": "query ReadOrg { viewer { user { id } } }", "documentId": document_id(READ_ORG)}))
        .bearer(&key)
        .send()
        .await;
    assert_eq!(mismatch.code(), "BAD_REQUEST");

    // The organization's list, and its revocation: the document stops running.
    let list = app
        .gql("{ viewer { activeOrganization { trustedDocuments(first: 10) { totalCount edges { node { documentId name body revokedAt } } } } } }")
        .as_user(&alice)
        .in_org(&acme)
        .send()
        .await;
    let edges = list.data()["viewer"]["activeOrganization"]["trustedDocuments"]["edges"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(edges.len(), 3);
    assert_eq!(
        list.data()["viewer"]["activeOrganization"]["trustedDocuments"]["totalCount"],
        3
    );
    assert_eq!(edges[0]["node"]["body"], READ_ORG);
    let revoke = "mutation($d: String!) { revokeTrustedDocument(input: {documentId: $d}) { trustedDocument { name revokedAt } } }";
    let revoked = app
        .gql(revoke)
        .vars(json!({"d": document_id(READ_ORG)}))
        .as_user(&alice)
        .in_org(&acme)
        .send()
        .await;
    assert!(revoked.data()["revokeTrustedDocument"]["trustedDocument"]["revokedAt"].is_string());
    let after = by_id(&app, &key, READ_ORG).await;
    assert_eq!(after.code(), "PERSISTED_QUERY_NOT_FOUND");
    let twice = app
        .gql(revoke)
        .vars(json!({"d": document_id(READ_ORG)}))
        .as_user(&alice)
        .in_org(&acme)
        .send()
        .await;
    assert_eq!(twice.code(), "NOT_FOUND");
}

#[tokio::test]
async fn another_organizations_documents_are_not_found_by_its_keys_or_people() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let acme = app.org(&alice, "Acme").await;
    let mallory = app.user("mallory@example.com").await;
    let evil = app.org(&mallory, "Evil").await;
    let registered = register(
        &app,
        &alice,
        &acme,
        manifest(&[("ReadOrg", "query", READ_ORG)]),
    )
    .await;
    assert_eq!(
        registered["data"]["registerTrustedDocuments"]["registeredCount"],
        1
    );
    // Acme's key runs it (and so it is kept in the server's memory from now on).
    let acme_key = restricted_key(&app, &alice, &acme, "ADMIN").await;
    let ran = by_id(&app, &acme_key, READ_ORG).await;
    assert_eq!(ran.data()["viewer"]["activeOrganization"]["name"], "Acme");

    // Evil's restricted key, Evil's unrestricted key and Evil's owner: not found.
    let evil_key = restricted_key(&app, &mallory, &evil, "ADMIN").await;
    let (_, evil_open_key) = app.api_key(&mallory, &evil, "ADMIN").await;
    for credential in [&evil_key, &evil_open_key, &mallory.token] {
        let answer = app
            .gql_body(json!({"documentId": document_id(READ_ORG)}))
            .bearer(credential)
            .in_org(&evil)
            .send()
            .await;
        assert_eq!(
            answer.code(),
            "PERSISTED_QUERY_NOT_FOUND",
            "{}",
            answer.body
        );
    }
    // Naming Acme does not help, though Acme's document is kept in the server's memory:
    // a key stays in its organization, a non-member gets in nowhere, an anonymous caller
    // finds no organization's documents, and the document never runs.
    for credential in [Some(&evil_key), Some(&mallory.token), None] {
        let mut request = app
            .gql_body(json!({"documentId": document_id(READ_ORG)}))
            .in_org(&acme);
        if let Some(credential) = credential {
            request = request.bearer(credential);
        }
        let answer = request.send().await;
        assert!(answer.body.get("data").is_none(), "it ran: {}", answer.body);
        assert!(
            ["FORBIDDEN", "PERSISTED_QUERY_NOT_FOUND"].contains(&answer.code()),
            "{}",
            answer.body
        );
    }
    // Evil cannot see or revoke Acme's document.
    let list = app
        .gql("{ viewer { activeOrganization { trustedDocuments { totalCount edges { node { name } } } } } }")
        .as_user(&mallory)
        .in_org(&evil)
        .send()
        .await;
    assert_eq!(
        list.data()["viewer"]["activeOrganization"]["trustedDocuments"]["edges"],
        json!([])
    );
    assert_eq!(
        list.data()["viewer"]["activeOrganization"]["trustedDocuments"]["totalCount"],
        0
    );
    let revoke = app
        .gql("mutation($d: String!) { revokeTrustedDocument(input: {documentId: $d}) { trustedDocument { name } } }")
        .vars(json!({"d": document_id(READ_ORG)}))
        .as_user(&mallory)
        .in_org(&evil)
        .send()
        .await;
    assert_eq!(revoke.code(), "NOT_FOUND");
    let still = by_id(&app, &acme_key, READ_ORG).await;
    assert_eq!(still.data()["viewer"]["activeOrganization"]["name"], "Acme");
}

#[tokio::test]
async fn only_admins_register_and_a_bad_manifest_is_refused_with_where() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let acme = app.org(&alice, "Acme").await;
    let bob = app.user("bob@example.com").await;
    app.add_member(&alice, &acme, &bob, "VIEWER").await;
    let by_viewer = register(
        &app,
        &bob,
        &acme,
        manifest(&[("ReadOrg", "query", READ_ORG)]),
    )
    .await;
    assert_eq!(
        by_viewer["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{by_viewer}"
    );

    let mut wrong_id = manifest(&[("ReadOrg", "query", READ_ORG)]);
    wrong_id["operations"][0]["id"] = json!(sha256("something else"));
    let two_operations = "query A { __typename } query B { __typename }";
    let cases = [
        (wrong_id, "operations[0].id"),
        (
            manifest(&[("Other", "query", READ_ORG)]),
            "operations[0].body",
        ),
        (
            manifest(&[("A", "query", two_operations)]),
            "exactly one operation",
        ),
        (
            manifest(&[("ReadOrg", "mutation", READ_ORG)]),
            "operations[0].body",
        ),
        (
            manifest(&[("ReadOrg", "query", "query ReadOrg {")]),
            "not a GraphQL document",
        ),
        (
            json!({"format": "apollo-persisted-query-manifest", "version": 2, "operations": []}),
            "version",
        ),
    ];
    for (bad, expected) in cases {
        let answer = register(&app, &alice, &acme, bad).await;
        let error = &answer["errors"][0];
        assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{answer}");
        assert_eq!(error["extensions"]["field"], "manifest", "{answer}");
        assert!(
            error["message"].as_str().unwrap().contains(expected),
            "{expected}: {answer}"
        );
    }
    // A manifest is parsed once per request: the same one under two aliases (each up to
    // 1 MiB of documents to parse) is refused before anything is parsed.
    let twice = app
        .gql("mutation($m: JSON!) { a: registerTrustedDocuments(input: {manifest: $m}) { registeredCount } \
              b: registerTrustedDocuments(input: {manifest: $m}) { registeredCount } }")
        .vars(json!({ "m": manifest(&[("ReadOrg", "query", READ_ORG)]) }))
        .as_user(&alice)
        .in_org(&acme)
        .send()
        .await;
    assert_eq!(twice.code(), "QUERY_TOO_COMPLEX");
    // Nothing was registered by any of them.
    let list = app
        .gql("{ viewer { activeOrganization { trustedDocuments { edges { node { name } } } } } }")
        .as_user(&alice)
        .in_org(&acme)
        .send()
        .await;
    assert_eq!(
        list.data()["viewer"]["activeOrganization"]["trustedDocuments"]["edges"],
        json!([])
    );
}

#[tokio::test]
async fn an_apq_client_registers_its_text_by_hash_then_sends_the_hash_alone() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let acme = app.org(&alice, "Acme").await;
    let apq = |text: &str| json!({"persistedQuery": {"version": 1, "sha256Hash": sha256(text)}});

    let first = app
        .gql_body(json!({"extensions": apq(READ_ORG)}))
        .as_user(&alice)
        .in_org(&acme)
        .send()
        .await;
    assert_eq!(first.code(), "PERSISTED_QUERY_NOT_FOUND");
    let with_text = app
        .gql_body(json!({"query": READ_ORG, "extensions": apq(READ_ORG)}))
        .as_user(&alice)
        .in_org(&acme)
        .send()
        .await;
    assert_eq!(
        with_text.data()["viewer"]["activeOrganization"]["name"],
        "Acme"
    );
    let by_hash = app
        .gql_body(json!({"extensions": apq(READ_ORG)}))
        .as_user(&alice)
        .in_org(&acme)
        .send()
        .await;
    assert_eq!(
        by_hash.data()["viewer"]["activeOrganization"]["name"],
        "Acme"
    );
    // Registered for the caller who sent it: an anonymous caller does not find it.
    let anonymous = app
        .gql_body(json!({"extensions": apq(READ_ORG)}))
        .send()
        .await;
    assert_eq!(anonymous.code(), "PERSISTED_QUERY_NOT_FOUND");
    // A hash that is not its text's registers nothing.
    let lying = app
        .gql_body(json!({"query": "{ __typename }", "extensions": apq("{ plans { name } }")}))
        .send()
        .await;
    assert_eq!(lying.code(), "BAD_REQUEST");
    let after_lie = app
        .gql_body(json!({"extensions": apq("{ plans { name } }")}))
        .send()
        .await;
    assert_eq!(after_lie.code(), "PERSISTED_QUERY_NOT_FOUND");
}

#[tokio::test]
async fn callers_restricted_by_setting_run_the_platforms_imported_documents() {
    let app = TestApp::spawn_with(|config| {
        config.http.trusted_documents_only = vec![gateway::config::TrustedDocumentsOnly::Anonymous];
    })
    .await;
    const PLANS: &str = "query Plans { __typename }";
    let text = app.gql(PLANS).send().await;
    assert_eq!(text.code(), "PERSISTED_QUERY_NOT_IN_LIST");
    assert_eq!(text.status, 400);
    let operations = tenancy::read_manifest(&manifest(&[("Plans", "query", PLANS)])).unwrap();
    gateway::graphql::admission::check_trusted_operation(&operations[0]).unwrap();
    // The application role may not write the platform's documents; an operator does.
    assert!(
        !on_postgres()
            || app
                .state
                .tenancy
                .import_platform_trusted_documents(&operations)
                .await
                .is_err()
    );
    let operator = app.operator().await;
    let import = || {
        operator
            .tenancy
            .import_platform_trusted_documents(&operations)
    };
    assert_eq!(import().await.unwrap(), 1);
    assert_eq!(import().await.unwrap(), 0);
    let by_id = app
        .gql_body(json!({"documentId": document_id(PLANS)}))
        .send()
        .await;
    assert_eq!(by_id.data()["__typename"], "Query");
    // People are not restricted by this setting (signing up is anonymous: through an
    // instance without the setting).
    let alice = app.spawn_twin().await.user("alice@example.com").await;
    let as_person = app.gql(PLANS).as_user(&alice).send().await;
    assert_eq!(as_person.data()["__typename"], "Query");
}

#[tokio::test]
async fn a_restricted_key_makes_restricted_keys_only() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let acme = app.org(&alice, "Acme").await;
    const MINT: &str = "mutation Mint($r: Boolean!) { createApiKey(input: {name: \"minted\", role: VIEWER, trustedDocumentsOnly: $r}) { apiKey { trustedDocumentsOnly } } }";
    register(&app, &alice, &acme, manifest(&[("Mint", "mutation", MINT)])).await;
    let key = restricted_key(&app, &alice, &acme, "ADMIN").await;
    let minted = app
        .gql_body(json!({"documentId": document_id(MINT), "variables": {"r": false}}))
        .bearer(&key)
        .send()
        .await;
    assert_eq!(
        minted.data()["createApiKey"]["apiKey"]["trustedDocumentsOnly"],
        true
    );
}
