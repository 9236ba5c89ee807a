//! Usage of billable metrics: batches recorded all or nothing, idempotent per (metric,
//! key), aggregated per period, for owners and billing admins of that organization only.

use crate::helpers::{TestApp, TestOrg, TestUser};
use serde_json::{Value, json};

const RECORD: &str =
    "mutation($e: [UsageEventInput!]!) { recordUsage(input: {events: $e}) { stored replayed } }";
const USAGE: &str = "query($m: String!, $a: UsageAggregation!, $p: String) { usage(metric: $m, from: \"2027-01-01T00:00:00Z\", to: \"2027-02-01T00:00:00Z\", aggregation: $a, property: $p) }";

fn events() -> Value {
    json!([
        { "metric": "api_calls", "key": "req-1", "occurredAt": "2027-01-05T10:00:00Z", "value": "2.5", "properties": [{ "name": "user", "value": "u1" }] },
        { "metric": "api_calls", "key": "req-2", "occurredAt": "2027-01-06T10:00:00Z", "value": "4", "properties": [{ "name": "user", "value": "u2" }] },
        { "metric": "api_calls", "key": "req-3", "occurredAt": "2027-01-07T10:00:00Z", "properties": [{ "name": "user", "value": "u1" }] },
        { "metric": "api_calls", "key": "late", "occurredAt": "2027-02-01T00:00:00Z", "value": "100" },
    ])
}

async fn record(
    app: &TestApp,
    bearer: &str,
    org: &TestOrg,
    events: Value,
) -> crate::helpers::GqlResponse {
    app.gql(RECORD)
        .vars(json!({ "e": events }))
        .bearer(bearer)
        .in_org(org)
        .send()
        .await
}

async fn usage(
    app: &TestApp,
    user: &TestUser,
    org: &TestOrg,
    aggregation: &str,
    property: Option<&str>,
) -> Value {
    let response = app
        .gql(USAGE)
        .vars(json!({ "m": "api_calls", "a": aggregation, "p": property }))
        .as_user(user)
        .in_org(org)
        .send()
        .await;
    response.data()["usage"].clone()
}

/// A server whose clock stands after the events' month (usage cannot be reported ahead of
/// time), with the demo catalog (usage is only of metrics it has).
async fn app_after_january() -> TestApp {
    let app = TestApp::spawn().await;
    app.clock.set(
        chrono::DateTime::parse_from_rfc3339("2027-02-01T12:00:00Z")
            .unwrap()
            .into(),
    );
    app.import_demo_catalog().await;
    app
}

#[tokio::test]
async fn usage_is_recorded_once_per_key_all_or_nothing_and_aggregated_per_period() {
    let app = app_after_january().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    // The organization's systems report with a billing admin's API key.
    let (_, key) = app.api_key(&owner, &org, "BILLING_ADMIN").await;

    let first = record(&app, &key, &org, events()).await;
    assert_eq!(
        first.data()["recordUsage"],
        json!({ "stored": 4, "replayed": 0 })
    );
    let retry = record(&app, &key, &org, events()).await;
    assert_eq!(
        retry.data()["recordUsage"],
        json!({ "stored": 0, "replayed": 4 })
    );
    // A retry without a time means the first report's time.
    let untimed = record(&app, &key, &org, json!([{ "metric": "api_calls", "key": "req-3", "properties": [{ "name": "user", "value": "u1" }] }])).await;
    assert_eq!(
        untimed.data()["recordUsage"],
        json!({ "stored": 0, "replayed": 1 })
    );

    // The same key with another payload: CONFLICT, and nothing of the batch is kept.
    let conflicting = record(
        &app,
        &key,
        &org,
        json!([
            { "metric": "api_calls", "key": "req-4", "occurredAt": "2027-01-08T10:00:00Z" },
            { "metric": "api_calls", "key": "req-1", "occurredAt": "2027-01-05T10:00:00Z", "value": "3" },
        ]),
    )
    .await;
    assert_eq!(conflicting.code(), "CONFLICT");
    assert_eq!(conflicting.error()["extensions"]["key"], "req-1");

    assert_eq!(
        usage(&app, &owner, &org, "COUNT", None).await,
        "3",
        "the late event is next period's; req-4 was rolled back"
    );
    assert_eq!(usage(&app, &owner, &org, "SUM", None).await, "7.5");
    assert_eq!(usage(&app, &owner, &org, "MAX", None).await, "4");
    assert_eq!(
        usage(&app, &owner, &org, "UNIQUE_COUNT", Some("user")).await,
        "2"
    );
    assert_eq!(usage(&app, &owner, &org, "LATEST", None).await, "1");

    for (bad, field) in [
        (
            json!([{ "metric": "api_calls", "key": "x", "value": "abc" }]),
            "value",
        ),
        (
            json!([{ "metric": "api_calls", "key": "x", "value": "-1" }]),
            "value",
        ),
        (json!([{ "metric": "api calls!", "key": "x" }]), "metric"),
        (json!([]), "events"),
    ] {
        let refused = record(&app, &key, &org, bad).await;
        assert_eq!(refused.code(), "BAD_USER_INPUT", "{}", refused.body);
        assert_eq!(refused.error()["extensions"]["field"], field);
    }
    let too_many: Vec<Value> = (0..1001)
        .map(|i| json!({ "metric": "api_calls", "key": format!("k{i}") }))
        .collect();
    assert_eq!(
        record(&app, &key, &org, json!(too_many)).await.code(),
        "BAD_USER_INPUT"
    );
}

#[tokio::test]
async fn only_owners_and_billing_admins_of_that_organization_see_or_report_usage() {
    let app = app_after_january().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    record(&app, &owner.token, &org, events()).await.data();
    let member = app.user("member@example.com").await;
    app.add_member(&owner, &org, &member, "MEMBER").await;
    let billing = app.user("billing@example.com").await;
    app.add_member(&owner, &org, &billing, "BILLING_ADMIN")
        .await;

    assert_eq!(usage(&app, &billing, &org, "COUNT", None).await, "3");
    let refused = app
        .gql(USAGE)
        .vars(json!({ "m": "api_calls", "a": "COUNT" }))
        .as_user(&member)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(refused.code(), "FORBIDDEN");
    assert_eq!(
        record(&app, &member.token, &org, events()).await.code(),
        "FORBIDDEN"
    );

    // Another organization's owner: their own count is zero, Acme's is out of reach.
    let other = app.user("other@globex.example").await;
    let globex = app.org(&other, "Globex").await;
    assert_eq!(usage(&app, &other, &globex, "COUNT", None).await, "0");
    let across = app
        .gql(USAGE)
        .vars(json!({ "m": "api_calls", "a": "COUNT" }))
        .as_user(&other)
        .in_org(&org)
        .send()
        .await;
    assert!(
        matches!(across.code(), "FORBIDDEN" | "NOT_FOUND"),
        "{}",
        across.body
    );
    // The same keys in another organization are other events.
    let theirs = record(&app, &other.token, &globex, events()).await;
    assert_eq!(
        theirs.data()["recordUsage"],
        json!({ "stored": 4, "replayed": 0 })
    );
}

#[tokio::test]
async fn concurrent_reports_of_one_new_key_store_it_once_and_never_fail_internally() {
    let app = app_after_january().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let event =
        json!([{ "metric": "api_calls", "key": "same", "occurredAt": "2027-01-05T10:00:00Z" }]);
    let responses =
        futures::future::join_all((0..8).map(|_| record(&app, &owner.token, &org, event.clone())))
            .await;
    let mut stored = 0;
    for response in &responses {
        if response.body.get("errors").is_some() {
            assert_eq!(response.code(), "CONFLICT", "{}", response.body);
        } else {
            stored += response.data()["recordUsage"]["stored"].as_i64().unwrap();
        }
    }
    assert_eq!(stored, 1, "exactly one request stored it");
    assert_eq!(usage(&app, &owner, &org, "COUNT", None).await, "1");
    // A retry after the race is a replay.
    let retry = record(&app, &owner.token, &org, event).await;
    assert_eq!(
        retry.data()["recordUsage"],
        json!({ "stored": 0, "replayed": 1 })
    );
}

#[tokio::test]
async fn creating_projects_and_documents_records_their_usage_in_the_same_transaction() {
    let app = TestApp::spawn_with(|config| config.limits.plan_max_documents_per_project = 2).await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let project = app
        .gql("mutation { createProject(input: {name: \"Apollo\"}) { project { id } } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    let project = project.data()["createProject"]["project"]["id"].clone();
    let mut refused = 0;
    for title in ["One", "Two", "Three"] {
        let created = app
            .gql("mutation($p: ID!, $t: String!) { createDocument(input: {projectId: $p, title: $t}) { document { id } } }")
            .vars(json!({ "p": project, "t": title }))
            .as_user(&owner)
            .in_org(&org)
            .send()
            .await;
        if created.body.get("errors").is_some() {
            assert_eq!(created.code(), "LIMIT_EXCEEDED");
            refused += 1;
        }
    }
    assert_eq!(refused, 1);
    let count = |metric: &'static str| {
        let (app, owner, org) = (&app, &owner, &org);
        async move {
            let response = app
                .gql("query($m: String!) { usage(metric: $m, from: \"2000-01-01T00:00:00Z\", to: \"2100-01-01T00:00:00Z\", aggregation: COUNT) }")
                .vars(json!({ "m": metric }))
                .as_user(owner)
                .in_org(org)
                .send()
                .await;
            response.data()["usage"].clone()
        }
    };
    assert_eq!(count("projects_created").await, "1");
    assert_eq!(
        count("documents_created").await,
        "2",
        "the refused document recorded nothing"
    );
}

/// `POST /usage/events` with `bearer` for `org`: (HTTP status, JSON answer).
async fn ingest(app: &TestApp, bearer: Option<&str>, org: &TestOrg, body: &str) -> (u16, Value) {
    let mut request = app
        .http
        .post(format!("{}/usage/events", app.address))
        .header("X-Organization-Id", &org.id)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_batch_ingestion_endpoint_records_like_record_usage_and_keeps_tenants_apart() {
    let app = app_after_january().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let (_, key) = app.api_key(&owner, &org, "BILLING_ADMIN").await;
    let body = json!({ "events": events() }).to_string();

    let (status, first) = ingest(&app, Some(&key), &org, &body).await;
    assert_eq!(status, 200);
    assert_eq!(
        first["data"]["recordUsage"],
        json!({"stored": 4, "replayed": 0})
    );
    let (_, again) = ingest(&app, Some(&key), &org, &body).await;
    assert_eq!(
        again["data"]["recordUsage"],
        json!({"stored": 0, "replayed": 4})
    );
    assert_eq!(usage(&app, &owner, &org, "COUNT", None).await, "3");

    // A batch over 1,000 is refused whole; so is one with a bad value.
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"metric": "api_calls", "key": format!("k{i}")}))
        .collect();
    let (_, over) = ingest(
        &app,
        Some(&key),
        &org,
        &json!({ "events": many }).to_string(),
    )
    .await;
    assert_eq!(over["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    let bad = json!({"events": [{"metric": "api_calls", "key": "n1"}, {"metric": "api_calls", "key": "n2", "value": "-1"}]});
    let (_, refused) = ingest(&app, Some(&key), &org, &bad.to_string()).await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(
        usage(&app, &owner, &org, "COUNT", None).await,
        "3",
        "nothing of it stored"
    );
    let (status, _) = ingest(&app, Some(&key), &org, "{\"event\": []}").await;
    assert_eq!(status, 400);
    let (_, anonymous) = ingest(&app, None, &org, &body).await;
    assert_eq!(
        anonymous["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );

    // Another organization's key cannot report into this one.
    let stranger = app.user("stranger@example.com").await;
    let other = app.org(&stranger, "Other").await;
    let (_, their_key) = app.api_key(&stranger, &other, "BILLING_ADMIN").await;
    let (_, foreign) = ingest(&app, Some(&their_key), &org, &body.replace("req-", "x-")).await;
    assert!(foreign["data"]["recordUsage"].is_null(), "{foreign}");
    assert_eq!(usage(&app, &owner, &org, "COUNT", None).await, "3");
    assert_eq!(usage(&app, &stranger, &other, "COUNT", None).await, "0");
}
