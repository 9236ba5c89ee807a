//! Request rates per API key and per person (issue 15): the plan's rate or the server's
//! default, `RATE_LIMITED` with HTTP 429 and `Retry-After` once over it, the allowance
//! back as time passes, and counters shared by instances through Redis.

use crate::helpers::{TestApp, TestOrg, TestUser};
use serde_json::json;

const QUERY: &str = "{ viewer { activeOrganization { name } } }";

/// An organization on a plan that lets each key send `per_minute` requests a minute.
async fn org_on_plan(app: &TestApp, per_minute: u32) -> (TestUser, TestOrg) {
    let catalog = json!({
      "metrics": [{"code": "api_calls", "name": "API calls", "aggregation": {"type": "count"}}],
      "plans": [{"code": "slow", "name": "Slow", "currency": "EUR",
        "entitlements": {"limits": {"requests_per_minute_per_api_key": per_minute}}}]
    });
    gateway::catalog::import_catalog(
        &app.state,
        &billing::CatalogFile::parse(&catalog.to_string()).unwrap(),
    )
    .await
    .unwrap();
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    app.gql("mutation { changePlan(input: {plan: \"slow\"}) { effective } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
    // Rates are read once a minute: the change of plan counts from a minute on.
    app.clock.advance(chrono::Duration::seconds(61));
    let owner = app.relog(&owner).await;
    (owner, org)
}

#[tokio::test]
async fn a_key_over_its_plans_rate_waits_and_is_not_metered() {
    let app = TestApp::spawn().await;
    let (owner, org) = org_on_plan(&app, 3).await;
    let (_, key) = app.api_key(&owner, &org, "VIEWER").await;
    let (_, other_key) = app.api_key(&owner, &org, "VIEWER").await;
    for _ in 0..3 {
        app.gql(QUERY).bearer(&key).send().await.data();
    }
    let refused = app.gql(QUERY).bearer(&key).send().await;
    assert_eq!(refused.code(), "RATE_LIMITED");
    assert_eq!(refused.status, 429);
    let wait = refused.error()["extensions"]["retryAfterSeconds"]
        .as_u64()
        .unwrap();
    assert!((1..=20).contains(&wait), "{wait}");
    assert_eq!(
        refused.retry_after.as_deref(),
        Some(wait.to_string().as_str())
    );
    // Each key has its own allowance; the organization's people are not counted here.
    app.gql(QUERY).bearer(&other_key).send().await.data();
    app.gql(QUERY)
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
    // A third of a minute later, one more request goes.
    app.clock.advance(chrono::Duration::seconds(20));
    app.gql(QUERY).bearer(&key).send().await.data();
    assert_eq!(
        app.gql(QUERY).bearer(&key).send().await.code(),
        "RATE_LIMITED"
    );
    // Refused calls were not metered: 3 + 1 + 1 calls ran.
    let count = app
        .gql("{ usage(metric: \"api_calls\", period: CURRENT, aggregation: COUNT) }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(count.data()["usage"], "5");
}

#[tokio::test]
async fn a_person_over_the_default_rate_is_refused() {
    let app = TestApp::spawn_with(|config| config.limits.rate_limit_user_per_minute = 5).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    for _ in 0..5 {
        app.gql("{ viewer { user { id } } }")
            .as_user(&alice)
            .send()
            .await
            .data();
    }
    let refused = app
        .gql("{ viewer { user { id } } }")
        .as_user(&alice)
        .send()
        .await;
    assert_eq!(refused.code(), "RATE_LIMITED");
    assert_eq!(refused.status, 429);
    // Someone else is not held back by Alice.
    app.gql("{ viewer { user { id } } }")
        .as_user(&bob)
        .send()
        .await
        .data();
}

#[tokio::test]
async fn instances_sharing_redis_share_a_keys_allowance() {
    let redis = |config: &mut gateway::config::Config| {
        config.limits.redis_url = Some(
            std::env::var("TEST_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
                .into(),
        );
    };
    let app = TestApp::spawn_with(redis).await;
    let twin = app.spawn_twin_with(redis).await;
    let (owner, org) = org_on_plan(&app, 4).await;
    let (_, key) = app.api_key(&owner, &org, "VIEWER").await;
    for instance in [&app, &twin, &app, &twin] {
        instance.gql(QUERY).bearer(&key).send().await.data();
    }
    for instance in [&app, &twin] {
        let refused = instance.gql(QUERY).bearer(&key).send().await;
        assert_eq!(refused.code(), "RATE_LIMITED", "{}", refused.body);
    }
    app.clock.advance(chrono::Duration::seconds(15));
    twin.gql(QUERY).bearer(&key).send().await.data();
    assert_eq!(
        app.gql(QUERY).bearer(&key).send().await.code(),
        "RATE_LIMITED"
    );
}
