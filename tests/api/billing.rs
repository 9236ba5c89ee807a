//! Billing through the API: the catalog, subscriptions moved by the clock, plan changes
//! with proration, and entitlements the rest of the platform obeys.
//!
//! Longer than 600 lines on purpose: one feature's scenarios, each test self-contained
//! (it spins its own server and database): read them one at a time.

use crate::helpers::{TestApp, TestOrg, TestUser};
use chrono::{DateTime, Utc};
use kernel::ClientError as _;
use serde_json::{Value, json};

const SUBSCRIPTION: &str = "{ subscription { status plan { code version } scheduledPlan { code } \
    timeZone billingAnchor trialEndsAt currentPeriodStart currentPeriodEnd cancelAtPeriodEnd \
    canceledAt } }";

const CHANGE_PLAN: &str = "mutation($p: String!, $z: String) { changePlan(input: {plan: $p, \
    timeZone: $z}) { effective subscription { status plan { code } scheduledPlan { code } \
    trialEndsAt currentPeriodEnd } prorations { description amount { amount currency minorUnits } } } }";

pub(crate) fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

async fn subscription(app: &TestApp, user: &TestUser, org: &TestOrg) -> Value {
    app.gql(SUBSCRIPTION)
        .as_user(user)
        .in_org(org)
        .send()
        .await
        .data()["subscription"]
        .clone()
}

pub(crate) async fn change_plan(
    app: &TestApp,
    user: &TestUser,
    org: &TestOrg,
    plan: &str,
    zone: Option<&str>,
) -> crate::helpers::GqlResponse {
    app.gql(CHANGE_PLAN)
        .vars(json!({ "p": plan, "z": zone }))
        .as_user(user)
        .in_org(org)
        .send()
        .await
}

async fn create_project(
    app: &TestApp,
    user: &TestUser,
    org: &TestOrg,
    name: &str,
) -> crate::helpers::GqlResponse {
    app.gql("mutation($n: String!) { createProject(input: {name: $n}) { project { id } } }")
        .vars(json!({ "n": name }))
        .as_user(user)
        .in_org(org)
        .send()
        .await
}

/// Fails unless each of `expected` is among the organization's audit events.
async fn assert_recorded(app: &TestApp, user: &TestUser, org: &TestOrg, expected: &[&str]) {
    let recorded = actions(app, user, org).await;
    for action in expected {
        assert!(
            recorded.iter().any(|a| a == action),
            "no {action} in {recorded:?}"
        );
    }
}

async fn actions(app: &TestApp, user: &TestUser, org: &TestOrg) -> Vec<String> {
    let events = app
        .gql("{ auditEvents(first: 100) { edges { node { action } } } }")
        .as_user(user)
        .in_org(org)
        .send()
        .await;
    events.data()["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["action"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_catalog_lists_each_plans_latest_version_and_imports_are_idempotent() {
    let app = TestApp::spawn().await;
    let user = app.user("someone@example.com").await;
    app.import_demo_catalog().await;
    app.import_demo_catalog().await;
    let plans = app
        .gql("{ plans { code version name currency trialDays features limits { seats projects documentsPerProject } quotas { metric perPeriod hard } charges { kind amount unitPrice metric model tiers { upTo unitPrice flatFee } packageSize packagePrice freeUnits } } }")
        .as_user(&user)
        .send()
        .await;
    let plans = plans.data()["plans"].as_array().unwrap().clone();
    let codes: Vec<_> = plans.iter().map(|p| p["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["business", "starter", "team"]);
    assert!(
        plans.iter().all(|p| p["version"] == 1),
        "imported twice, published once"
    );
    let team = &plans[2];
    assert_eq!(team["trialDays"], 14);
    assert_eq!(
        team["limits"],
        json!({"seats": 25, "projects": 50, "documentsPerProject": 1000})
    );
    assert_eq!(
        team["charges"][0],
        json!({"kind": "FIXED", "amount": "49", "unitPrice": null, "metric": null, "model": null, "tiers": [], "packageSize": null, "packagePrice": null, "freeUnits": null})
    );
    assert_eq!(team["charges"][2]["model"], "GRADUATED");
    assert_eq!(
        team["charges"][2]["tiers"][1],
        json!({"upTo": null, "unitPrice": "0.0005", "flatFee": "0"})
    );
    let business = &plans[0];
    assert_eq!(business["limits"]["projects"], Value::Null, "unlimited");
    assert_eq!(business["charges"][3]["packageSize"], "100");

    // A changed definition is a new version; the old one stays as it was.
    let mut catalog = billing::CatalogFile::parse(gateway::dev::seed::DEMO_CATALOG).unwrap();
    catalog.plans[1].definition.trial_days = 30;
    let report = gateway::catalog::import_catalog(&app.state, &catalog)
        .await
        .unwrap();
    assert!(
        report.contains(&"plan team: published version 2".to_owned()),
        "{report:?}"
    );
    let versions = app
        .gql("{ planVersions(code: \"team\") { version trialDays } }")
        .as_user(&user)
        .send()
        .await;
    assert_eq!(
        versions.data()["planVersions"],
        json!([{"version": 2, "trialDays": 30}, {"version": 1, "trialDays": 14}])
    );
    // A metric never changes.
    let mut catalog = billing::CatalogFile::parse(gateway::dev::seed::DEMO_CATALOG).unwrap();
    catalog.metrics[0].aggregation = billing::Aggregation::Sum;
    let refused = gateway::catalog::import_catalog(&app.state, &catalog).await;
    assert!(
        refused
            .unwrap_err()
            .to_string()
            .contains("metrics never change")
    );
    // Anonymous callers see no catalog.
    assert_eq!(
        app.gql("{ plans { code } }").send().await.code(),
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn a_subscription_moves_through_trial_upgrade_downgrade_and_cancellation() {
    let app = TestApp::spawn().await;
    app.clock.set(at("2027-01-10T09:00:00Z"));
    app.import_demo_catalog().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    assert_eq!(subscription(&app, &owner, &org).await, Value::Null);

    // Start: the team plan's 14-day trial.
    let started = change_plan(&app, &owner, &org, "team", Some("Europe/Berlin")).await;
    let started = &started.data()["changePlan"];
    assert_eq!(started["effective"], "IMMEDIATELY");
    assert_eq!(started["subscription"]["status"], "TRIALING");
    assert_eq!(
        started["subscription"]["trialEndsAt"],
        "2027-01-24T09:00:00+00:00"
    );
    assert_eq!(started["prorations"], json!([]));

    // Trial over: active, anchored on the trial's last local day, periods at Berlin midnight.
    app.clock.set(at("2027-01-25T00:00:00Z"));
    let owner = app.relog(&owner).await;
    let active = subscription(&app, &owner, &org).await;
    assert_eq!(active["status"], "ACTIVE");
    assert_eq!(active["billingAnchor"], "2027-01-24");
    assert_eq!(active["currentPeriodStart"], "2027-01-23T23:00:00+00:00");
    assert_eq!(active["currentPeriodEnd"], "2027-02-23T23:00:00+00:00");

    // Upgrade on Feb 3 (local): 21 of the period's 31 days remain. One seat: team costs
    // 49 + 12 = 61.00, business 199 + 20 = 219.00 a period.
    app.clock.set(at("2027-02-03T12:00:00Z"));
    let owner = app.relog(&owner).await;
    let upgraded = change_plan(&app, &owner, &org, "business", None).await;
    let upgraded = &upgraded.data()["changePlan"];
    assert_eq!(upgraded["effective"], "IMMEDIATELY");
    assert_eq!(upgraded["subscription"]["plan"]["code"], "business");
    let amounts: Vec<_> = upgraded["prorations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["amount"].clone())
        .collect();
    // -61 × 21/31 = -41.3225… → -41.32; 219 × 21/31 = 148.3548… → 148.35.
    assert_eq!(
        amounts,
        [
            json!({"amount": "-41.32", "currency": "USD", "minorUnits": -4132}),
            json!({"amount": "148.35", "currency": "USD", "minorUnits": 14835}),
        ]
    );

    // Downgrades: refused when what the organization has does not fit, else at period end.
    for n in 0..4 {
        create_project(&app, &owner, &org, &format!("P{n}"))
            .await
            .data();
    }
    let refused = change_plan(&app, &owner, &org, "starter", None).await;
    assert_eq!(refused.code(), "LIMIT_EXCEEDED");
    assert_eq!(refused.error()["extensions"]["limit"], "projects");
    assert_eq!(refused.error()["extensions"]["max"], 3);
    assert_eq!(refused.error()["extensions"]["usage"], 4);
    let scheduled = change_plan(&app, &owner, &org, "team", None).await;
    let scheduled = &scheduled.data()["changePlan"];
    assert_eq!(scheduled["effective"], "AT_PERIOD_END");
    assert_eq!(scheduled["subscription"]["plan"]["code"], "business");
    assert_eq!(scheduled["subscription"]["scheduledPlan"]["code"], "team");
    // Choosing the current plan drops the downgrade; choosing it again is a conflict.
    let kept = change_plan(&app, &owner, &org, "business", None).await;
    assert_eq!(
        kept.data()["changePlan"]["subscription"]["scheduledPlan"],
        Value::Null
    );
    assert_eq!(
        change_plan(&app, &owner, &org, "business", None)
            .await
            .code(),
        "CONFLICT"
    );
    change_plan(&app, &owner, &org, "team", None).await.data();

    // The period ends: the downgrade applies.
    app.clock.set(at("2027-02-24T00:00:00Z"));
    let owner = app.relog(&owner).await;
    let renewed = subscription(&app, &owner, &org).await;
    assert_eq!(renewed["plan"]["code"], "team");
    assert_eq!(renewed["scheduledPlan"], Value::Null);
    assert_eq!(renewed["currentPeriodEnd"], "2027-03-23T23:00:00+00:00");

    // Cancel at period end; twice is a conflict; then it ends, and the free allowance
    // applies again.
    let cancel = app
        .gql("mutation { cancelSubscription { subscription { cancelAtPeriodEnd currentPeriodEnd } } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(
        cancel.data()["cancelSubscription"]["subscription"]["cancelAtPeriodEnd"],
        true
    );
    let again = app
        .gql("mutation { cancelSubscription { subscription { status } } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(again.code(), "CONFLICT");
    app.clock.set(at("2027-03-24T00:00:00Z"));
    let owner = app.relog(&owner).await;
    let ended = subscription(&app, &owner, &org).await;
    assert_eq!(ended["status"], "CANCELED");
    assert_eq!(ended["canceledAt"], "2027-03-23T23:00:00+00:00");

    assert_recorded(
        &app,
        &owner,
        &org,
        &[
            "subscription.started",
            "subscription.trial_ended",
            "subscription.plan_changed",
            "subscription.downgrade_scheduled",
            "subscription.downgrade_dropped",
            "subscription.renewed",
            "subscription.cancel_scheduled",
        ],
    )
    .await;
}

#[tokio::test]
async fn only_owners_and_billing_admins_see_and_change_the_subscription() {
    let app = TestApp::spawn().await;
    app.import_demo_catalog().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    change_plan(&app, &owner, &org, "team", None).await.data();
    for role in ["ADMIN", "MEMBER", "VIEWER", "AUDITOR"] {
        let person = app
            .user(&format!("{}@example.com", role.to_lowercase()))
            .await;
        app.add_member(&owner, &org, &person, role).await;
        let read = app
            .gql(SUBSCRIPTION)
            .as_user(&person)
            .in_org(&org)
            .send()
            .await;
        assert_eq!(read.code(), "FORBIDDEN", "{role} reads the subscription");
        let change = change_plan(&app, &person, &org, "business", None).await;
        assert_eq!(change.code(), "FORBIDDEN", "{role} changes the plan");
    }
    let billing = app.user("billing@example.com").await;
    app.add_member(&owner, &org, &billing, "BILLING_ADMIN")
        .await;
    assert_eq!(
        subscription(&app, &billing, &org).await["plan"]["code"],
        "team"
    );
    change_plan(&app, &billing, &org, "business", None)
        .await
        .data();

    // Another organization's owner: their own organization has no subscription, and the
    // victim's is out of reach with any header.
    let stranger = app.user("stranger@example.com").await;
    let other = app.org(&stranger, "Other").await;
    assert_eq!(subscription(&app, &stranger, &other).await, Value::Null);
    let peek = app
        .gql(SUBSCRIPTION)
        .as_user(&stranger)
        .in_org(&org)
        .send()
        .await;
    assert!(peek.body["data"]["subscription"].is_null());
    assert!(
        ["FORBIDDEN", "NOT_FOUND"].contains(&peek.code()),
        "{}",
        peek.body
    );
    let change = change_plan(&app, &stranger, &org, "starter", None).await;
    assert!(["FORBIDDEN", "NOT_FOUND"].contains(&change.code()));
    for query in [
        "{ upcomingInvoice { total { amount } } }",
        "{ invoices { nodes { number } } }",
        "{ creditNotes { nodes { number } } }",
        "{ usage(metric: \"api_calls\", period: CURRENT, aggregation: COUNT) }",
        "mutation { cancelSubscription { subscription { status } } }",
    ] {
        let peek = app.gql(query).as_user(&stranger).in_org(&org).send().await;
        assert!(peek.body["data"].is_null(), "{query}: {}", peek.body);
        assert!(
            ["FORBIDDEN", "NOT_FOUND"].contains(&peek.code()),
            "{query}: {}",
            peek.body
        );
    }
    assert_eq!(
        subscription(&app, &owner, &org).await["plan"]["code"],
        "business"
    );
}

#[tokio::test]
async fn the_plan_limits_what_an_organization_may_create_and_use() {
    let app = TestApp::spawn().await;
    app.import_demo_catalog().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    // Unsubscribed: the configured free allowance, every feature.
    let export = |user: TestUser| {
        let app = &app;
        let org = org.clone();
        async move {
            let response = app
                .http
                .get(format!("{}/audit/export", app.address))
                .bearer_auth(&user.token)
                .header("X-Organization-Id", &org.id)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    assert_eq!(export(owner.clone()).await.0, 200);

    // Starter: 3 projects, 3 seats, no audit export.
    let started = change_plan(&app, &owner, &org, "starter", None).await;
    assert_eq!(
        started.data()["changePlan"]["subscription"]["status"],
        "ACTIVE"
    );
    for n in 0..3 {
        create_project(&app, &owner, &org, &format!("P{n}"))
            .await
            .data();
    }
    let fourth = create_project(&app, &owner, &org, "P3").await;
    assert_eq!(fourth.code(), "LIMIT_EXCEEDED");
    assert_eq!(fourth.error()["extensions"]["max"], 3);
    app.invite(&owner, &org, "a@example.com", "MEMBER")
        .await
        .data();
    app.invite(&owner, &org, "b@example.com", "MEMBER")
        .await
        .data();
    let third = app.invite(&owner, &org, "c@example.com", "MEMBER").await;
    assert_eq!(third.code(), "LIMIT_EXCEEDED");
    assert_eq!(third.error()["extensions"]["limit"], "seats");
    assert_eq!(third.error()["extensions"]["usage"], 3);
    let (status, body) = export(owner.clone()).await;
    assert_eq!(status, 403);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
    assert_eq!(body["errors"][0]["extensions"]["reason"], "PLAN_FEATURE");
    assert_eq!(body["errors"][0]["extensions"]["feature"], "audit_export");

    // Upgrading lifts the limits at once; from a free plan there is nothing to credit.
    let upgraded = change_plan(&app, &owner, &org, "team", None).await;
    let upgraded = &upgraded.data()["changePlan"];
    assert_eq!(upgraded["effective"], "IMMEDIATELY");
    assert_eq!(
        upgraded["subscription"]["status"], "ACTIVE",
        "one trial, at the start only"
    );
    let prorations = upgraded["prorations"].as_array().unwrap();
    assert_eq!(prorations.len(), 1, "{prorations:?}");
    assert!(prorations[0]["amount"]["minorUnits"].as_i64().unwrap() > 0);
    create_project(&app, &owner, &org, "P3").await.data();
    app.invite(&owner, &org, "c@example.com", "MEMBER")
        .await
        .data();
    assert_eq!(export(owner.clone()).await.0, 200);
}

#[tokio::test]
async fn bad_plan_changes_are_refused_with_clear_codes() {
    let app = TestApp::spawn().await;
    app.import_demo_catalog().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let unknown = change_plan(&app, &owner, &org, "platinum", None).await;
    assert_eq!(unknown.code(), "BAD_USER_INPUT");
    let zone = change_plan(&app, &owner, &org, "team", Some("Mars/Olympus")).await;
    assert_eq!(zone.code(), "BAD_USER_INPUT");
    assert_eq!(
        subscription(&app, &owner, &org).await,
        Value::Null,
        "nothing half-written"
    );
    let cancel = app
        .gql("mutation { cancelSubscription { subscription { status } } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(cancel.code(), "NOT_FOUND");
}

/// A small catalog with round numbers: 10.00 a period, 10 free API calls, then 0.25 each.
pub(crate) const METERED: &str = r#"{
  "metrics": [{"code": "api_calls", "name": "API calls", "aggregation": {"type": "count"}}],
  "plans": [{"code": "metered", "name": "Metered", "currency": "USD",
    "charges": [
      {"type": "fixed", "amount": "10.00"},
      {"type": "usage", "metric": "api_calls", "price": {"model": "graduated", "tiers": [
        {"up_to": "10", "unit_price": "0"}, {"up_to": null, "unit_price": "0.25"}]}}]}]
}"#;

const INVOICES: &str = "{ invoices { nodes { id number status subtotal { amount } taxRate tax { amount } \
    total { amount minorUnits } periodStart periodEnd lines { kind description quantity amount { amount } } } } }";

#[tokio::test]
async fn invoices_are_cut_at_period_boundaries_numbered_without_gaps_and_never_change() {
    let app = TestApp::spawn().await;
    app.clock.set(at("2027-01-10T09:00:00Z"));
    gateway::catalog::import_catalog(&app.state, &billing::CatalogFile::parse(METERED).unwrap())
        .await
        .unwrap();
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;

    // A paid start: the first period's fee, in advance, on INV-000001.
    change_plan(&app, &owner, &org, "metered", Some("UTC"))
        .await
        .data();
    let first = app.gql(INVOICES).as_user(&owner).in_org(&org).send().await;
    let first = first.data()["invoices"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["number"], "INV-000001");
    assert_eq!(first[0]["status"], "FINALIZED");
    assert_eq!(first[0]["total"]["amount"], "10.00");
    assert_eq!(first[0]["periodStart"], "2027-01-10T00:00:00+00:00");
    assert_eq!(first[0]["periodEnd"], "2027-02-10T00:00:00+00:00");

    // 13 calls: 3 beyond the free 10 at 0.25 = 0.75; tax 19 % on the subtotal.
    app.set_tax_rate(&org, "0.19").await;
    let events: Vec<Value> = (0..13)
        .map(|i| json!({"metric": "api_calls", "key": format!("call-{i}")}))
        .collect();
    app.gql("mutation($e: [UsageEventInput!]!) { recordUsage(input: {events: $e}) { stored } }")
        .vars(json!({ "e": events }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
    let upcoming = app
        .gql("{ upcomingInvoice { subtotal { amount } taxRate tax { amount } total { amount } lines { kind amount { amount } } } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    let upcoming = &upcoming.data()["upcomingInvoice"];
    assert_eq!(
        upcoming["lines"],
        json!([{"kind": "usage", "amount": {"amount": "0.75"}}, {"kind": "fixed", "amount": {"amount": "10.00"}}])
    );
    // 10.75 × 0.19 = 2.0425 → 2.04.
    assert_eq!(upcoming["subtotal"]["amount"], "10.75");
    assert_eq!(upcoming["tax"]["amount"], "2.04");
    assert_eq!(upcoming["total"]["amount"], "12.79");

    // The period ends; the billing run cuts INV-000002 with exactly what was upcoming.
    app.clock.set(at("2027-02-10T00:00:01Z"));
    let owner = app.relog(&owner).await;
    let report = app.billing_run().await;
    assert_eq!(report.advanced, 1, "{report:?}");
    assert_eq!(
        app.billing_run().await.advanced,
        0,
        "a second run finds nothing due"
    );
    let invoices = app.gql(INVOICES).as_user(&owner).in_org(&org).send().await;
    let invoices = invoices.data()["invoices"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    let numbers: Vec<_> = invoices
        .iter()
        .map(|i| i["number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["INV-000002", "INV-000001"]);
    assert_eq!(invoices[0]["total"]["amount"], "12.79");
    assert_eq!(invoices[0]["taxRate"], "0.19");
    assert_eq!(invoices[0]["periodStart"], "2027-02-10T00:00:00+00:00");
    assert_eq!(invoices[0]["lines"][0]["quantity"], "13");

    // Invoices are a connection read newest first: a page of one, then the next after it,
    // then back from the end.
    const PAGE: &str = "query($after: String, $last: Int, $first: Int) { \
        invoices(first: $first, after: $after, last: $last) { \
        edges { cursor node { number } } pageInfo { hasNextPage hasPreviousPage } } }";
    let first_page = app
        .gql(PAGE)
        .vars(json!({ "first": 1 }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    let first_page = first_page.data()["invoices"].clone();
    assert_eq!(first_page["edges"][0]["node"]["number"], "INV-000002");
    assert_eq!(first_page["pageInfo"]["hasNextPage"], true);
    let cursor = first_page["edges"][0]["cursor"].as_str().unwrap();
    let second_page = app
        .gql(PAGE)
        .vars(json!({ "first": 1, "after": cursor }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    let second_page = second_page.data()["invoices"].clone();
    assert_eq!(second_page["edges"][0]["node"]["number"], "INV-000001");
    assert_eq!(second_page["pageInfo"]["hasNextPage"], false);
    let oldest = app
        .gql(PAGE)
        .vars(json!({ "last": 1 }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    let oldest = oldest.data()["invoices"].clone();
    assert_eq!(oldest["edges"][0]["node"]["number"], "INV-000001");
    assert_eq!(oldest["pageInfo"]["hasPreviousPage"], true);
    // `orderBy: OLDEST_FIRST` reads them the other way, pages included.
    const OLDEST_FIRST: &str = "query($after: String) { invoices(orderBy: OLDEST_FIRST, \
        first: 1, after: $after) { edges { cursor node { number } } pageInfo { hasNextPage } } }";
    let read = |after: Option<String>| {
        app.gql(OLDEST_FIRST)
            .vars(json!({ "after": after }))
            .as_user(&owner)
            .in_org(&org)
            .send()
    };
    let first_oldest = read(None).await.data()["invoices"].clone();
    assert_eq!(first_oldest["edges"][0]["node"]["number"], "INV-000001");
    let cursor = first_oldest["edges"][0]["cursor"]
        .as_str()
        .map(str::to_owned);
    let next = read(cursor).await.data()["invoices"].clone();
    assert_eq!(next["edges"][0]["node"]["number"], "INV-000002");
    assert_eq!(next["pageInfo"]["hasNextPage"], false);

    // Another organization's invoice takes the next number: gapless per issuer.
    let other_owner = app.user("other@example.com").await;
    let other = app.org(&other_owner, "Other").await;
    change_plan(&app, &other_owner, &other, "metered", None)
        .await
        .data();
    let theirs = app
        .gql(INVOICES)
        .as_user(&other_owner)
        .in_org(&other)
        .send()
        .await;
    let theirs = theirs.data()["invoices"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(theirs.len(), 1, "their own only");
    assert_eq!(theirs[0]["number"], "INV-000003");
    let peek = app
        .gql(INVOICES)
        .as_user(&other_owner)
        .in_org(&org)
        .send()
        .await;
    assert!(peek.body["data"]["invoices"].is_null());
    // Their own header with this organization's invoice id finds nothing to pay.
    let pay = app
        .gql("mutation($i: String!) { payInvoice(input: {invoiceId: $i}) { invoice { status } } }")
        .vars(json!({ "i": invoices[0]["id"] }))
        .as_user(&other_owner)
        .in_org(&other)
        .send()
        .await;
    assert_eq!(pay.code(), "NOT_FOUND");

    // A finalized invoice never changes, whoever asks the database.
    let db = app.app_db().await;
    let invoice_id = invoices[0]["id"].as_str().unwrap();
    let attempts = [
        format!("UPDATE invoices SET total_minor = 1 WHERE id = '{invoice_id}'"),
        format!("UPDATE invoices SET status = 'draft' WHERE id = '{invoice_id}'"),
        format!("DELETE FROM invoices WHERE id = '{invoice_id}'"),
        format!("UPDATE invoice_lines SET amount_minor = 1 WHERE invoice_id = '{invoice_id}'"),
        format!("DELETE FROM invoice_lines WHERE invoice_id = '{invoice_id}'"),
    ];
    for sql in &attempts {
        let sql = if crate::helpers::on_postgres() {
            sql.clone()
        } else {
            // SQLite stores UUIDs as 16-byte blobs.
            sql.replace(
                &format!("'{invoice_id}'"),
                &format!("x'{}'", invoice_id.replace('-', "")),
            )
        };
        let result = crate::helpers::in_org_tx(&db, &org, &sql).await;
        assert!(result.is_err(), "{sql} was allowed");
    }
    let still = app.gql(INVOICES).as_user(&owner).in_org(&org).send().await;
    assert_eq!(
        still.data()["invoices"]["nodes"][0]["total"]["amount"],
        "12.79"
    );

    // Corrections are credit notes, numbered in their own sequence, never beyond the total.
    let tx = app.state.tenancy.system_tx(org.org_id()).await.unwrap();
    let invoices_service = app.state.subscriptions.invoices();
    let id: kernel::InvoiceId = invoice_id.parse().unwrap();
    let note = invoices_service
        .credit_note(&tx, id, Some("2.00".parse().unwrap()), "goodwill")
        .await
        .unwrap();
    assert_eq!(note.number.as_deref(), Some("CN-000001"));
    assert_eq!(note.total_minor, -200);
    let too_much = invoices_service
        .credit_note(&tx, id, Some("10.80".parse().unwrap()), "too much")
        .await
        .unwrap_err();
    assert_eq!(too_much.code(), kernel::ErrorCode::BadUserInput);
    tx.commit().await.unwrap();
    let notes = app
        .gql("{ creditNotes { nodes { number total { amount } creditOf lines { description } } } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(
        notes.data()["creditNotes"]["nodes"],
        json!([{"number": "CN-000001", "total": {"amount": "-2.00"}, "creditOf": invoice_id,
                "lines": [{"description": "Credit for INV-000002: goodwill"}]}])
    );

    // Usage of January reported in February, after its invoice: an adjustment on the next
    // invoice, priced at the margin (the 14th call costs 0.25); INV-000002 stays as it was.
    app.gql("mutation { recordUsage(input: {events: [{metric: \"api_calls\", key: \"late-1\", occurredAt: \"2027-01-20T00:00:00Z\"}]}) { stored } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
    app.clock.set(at("2027-03-10T00:00:01Z"));
    let owner = app.relog(&owner).await;
    app.billing_run().await;
    let later = app.gql(INVOICES).as_user(&owner).in_org(&org).send().await;
    let later = later.data()["invoices"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(later.len(), 3);
    assert_eq!(later[0]["number"], "INV-000004");
    assert_eq!(
        later[0]["lines"],
        json!([
            {"kind": "usage_adjustment", "description": "api_calls: 1 reported late for 2027-01-10 – 2027-02-10", "quantity": "1", "amount": {"amount": "0.25"}},
            {"kind": "fixed", "description": "Metered plan", "quantity": "1", "amount": {"amount": "10.00"}},
        ])
    );
    assert_eq!(
        later[1]["total"]["amount"], "12.79",
        "the finalized invoice did not change"
    );

    // Usage is accepted for the previous period during the grace (3 days), never for
    // older ones; `usage(period:)` reads a billing period.
    let report = |key: &str, at: &str| {
        let (app, owner, org) = (&app, owner.clone(), org.clone());
        let query = format!(
            "mutation {{ recordUsage(input: {{events: [{{metric: \"api_calls\", key: \"{key}\", occurredAt: \"{at}\"}}]}}) {{ stored }} }}"
        );
        async move { app.gql(&query).as_user(&owner).in_org(&org).send().await }
    };
    let too_old = report("old-1", "2027-01-25T00:00:00Z").await;
    assert_eq!(too_old.code(), "BAD_USER_INPUT");
    assert_eq!(too_old.error()["extensions"]["field"], "occurredAt");
    report("feb-1", "2027-02-20T00:00:00Z").await.data();
    let previous = app
        .gql("{ usage(metric: \"api_calls\", period: PREVIOUS, aggregation: COUNT) }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(
        previous.data()["usage"],
        "1",
        "February: the one reported in the grace"
    );
    let both = app
        .gql("{ usage(metric: \"api_calls\", period: CURRENT, from: \"2027-01-01T00:00:00Z\", aggregation: COUNT) }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(both.code(), "BAD_USER_INPUT");
    app.clock.set(at("2027-03-14T00:00:00Z"));
    let owner = app.relog(&owner).await;
    let late = app
        .gql("mutation { recordUsage(input: {events: [{metric: \"api_calls\", key: \"feb-2\", occurredAt: \"2027-02-21T00:00:00Z\"}]}) { stored } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(late.code(), "BAD_USER_INPUT", "the grace is over");

    assert_recorded(
        &app,
        &owner,
        &org,
        &[
            "invoice.finalized",
            "credit_note.issued",
            "subscription.renewed",
            "subscription.tax_rate_changed",
        ],
    )
    .await;
}

#[tokio::test]
async fn an_organization_goes_from_trial_through_failed_payments_and_suspension_back_to_active() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let stripe = MockServer::start().await;
    let intent = |id: &str| {
        ResponseTemplate::new(200).set_body_json(json!({"id": id, "status": "succeeded"}))
    };
    // The first charge succeeds, the next four are declined, then the card works.
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(intent("pi_first"))
        .up_to_n_times(1)
        .mount(&stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(402).set_body_json(json!({
            "error": {"type": "card_error", "code": "card_declined", "message": "Your card was declined."}
        })))
        .up_to_n_times(4)
        .mount(&stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(intent("pi_paid"))
        .mount(&stripe)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/pi_paid"))
        .respond_with(intent("pi_paid"))
        .mount(&stripe)
        .await;
    let uri = stripe.uri();
    let app = TestApp::spawn_with(|config| {
        config.billing.payment_provider = gateway::config::PaymentProviderKind::Stripe;
        config.stripe.api_base = uri;
        config.stripe.secret_key = Some("sk_test".into());
        config.stripe.webhook_secret = Some("whsec_test".into());
    })
    .await;
    app.clock.set(at("2027-01-10T09:00:00Z"));
    app.import_demo_catalog().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let status = |owner: TestUser| {
        let (app, org) = (&app, org.clone());
        async move { subscription(app, &owner, &org).await["status"].clone() }
    };

    // Trial, then its end: the first period's 61.00 is charged and paid.
    change_plan(&app, &owner, &org, "team", Some("UTC"))
        .await
        .data();
    app.clock.set(at("2027-01-24T10:00:00Z"));
    let report = app.billing_run().await;
    assert_eq!((report.advanced, report.charged), (1, 1), "{report:?}");
    let owner = app.relog(&owner).await;
    assert_eq!(status(owner.clone()).await, "ACTIVE");
    let paid = app.gql(INVOICES).as_user(&owner).in_org(&org).send().await;
    assert_eq!(paid.data()["invoices"]["nodes"][0]["status"], "PAID");
    assert_eq!(
        paid.data()["invoices"]["nodes"][0]["total"]["amount"],
        "61.00"
    );

    // Upgrade mid-period (21 of 31 days left), then usage: 170 GB peak storage is 2
    // packages of 100 after 50 free, 20.00.
    app.clock.set(at("2027-02-03T12:00:00Z"));
    let owner = app.relog(&owner).await;
    change_plan(&app, &owner, &org, "business", None)
        .await
        .data();
    app.gql("mutation { recordUsage(input: {events: [{metric: \"storage_gb\", key: \"s1\", value: \"170\"}]}) { stored } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();

    // The period ends: 20.00 + 219.00 + (-41.32 + 148.35) = 346.03, declined.
    app.clock.set(at("2027-02-24T01:00:00Z"));
    app.billing_run().await;
    let owner = app.relog(&owner).await;
    let invoices = app.gql(INVOICES).as_user(&owner).in_org(&org).send().await;
    let invoice = invoices.data()["invoices"]["nodes"][0].clone();
    assert_eq!(invoice["number"], "INV-000002");
    assert_eq!(invoice["total"]["amount"], "346.03");
    assert_eq!(invoice["status"], "FINALIZED");
    assert_eq!(status(owner.clone()).await, "PAST_DUE");
    create_project(&app, &owner, &org, "Still working")
        .await
        .data();

    // Retries after 3, 5 and 7 days, all declined: suspended.
    let mut now = at("2027-02-24T01:00:00Z");
    for days in [3, 5, 7] {
        now += chrono::Duration::days(days) + chrono::Duration::minutes(1);
        app.clock.set(now);
        assert_eq!(app.billing_run().await.charged, 1);
    }
    let owner = app.relog(&owner).await;
    assert_eq!(status(owner.clone()).await, "SUSPENDED");
    let given_up = app.gql(INVOICES).as_user(&owner).in_org(&org).send().await;
    assert_eq!(
        given_up.data()["invoices"]["nodes"][0]["status"],
        "UNCOLLECTIBLE"
    );
    assert_eq!(app.billing_run().await.charged, 0, "no retry is left");
    let refused = create_project(&app, &owner, &org, "Refused").await;
    assert_eq!(refused.code(), "PAYMENT_REQUIRED");
    let reads = app
        .gql("{ projects(first: 10) { edges { node { name } } } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(
        reads.data()["projects"]["edges"].as_array().unwrap().len(),
        1,
        "reads still work"
    );

    // Paying (with a working card) returns it to active.
    let paid = app
        .gql("mutation($i: String!) { payInvoice(input: {invoiceId: $i}) { invoice { status paymentAttempts } subscription { status } } }")
        .vars(json!({ "i": invoice["id"] }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    let paid = &paid.data()["payInvoice"];
    assert_eq!(paid["invoice"]["status"], "PAID");
    assert_eq!(paid["invoice"]["paymentAttempts"], 4);
    assert_eq!(paid["subscription"]["status"], "ACTIVE");
    create_project(&app, &owner, &org, "Back").await.data();

    // A late, out-of-order failure webhook is re-read against Stripe (succeeded) and
    // changes nothing; a redelivery is a duplicate; a bad signature is refused.
    let body = json!({"id": "evt_1", "type": "payment_intent.payment_failed", "data": {"object": {
        "id": "pi_paid", "metadata": {"invoice_id": invoice["id"], "organization_id": org.org_id().to_string()}}}})
    .to_string();
    let send = |signature: String, body: String| {
        let app = &app;
        async move {
            let response = app
                .http
                .post(format!("{}/webhooks/stripe", app.address))
                .header("Stripe-Signature", signature)
                .body(body)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let signed = stripe_provider::sign(body.as_bytes(), "whsec_test", now.timestamp());
    assert_eq!(
        send(signed.clone(), body.clone()).await,
        (200, "handled".into())
    );
    assert_eq!(send(signed, body.clone()).await, (200, "duplicate".into()));
    let forged = stripe_provider::sign(body.as_bytes(), "whsec_other", now.timestamp());
    assert_eq!(send(forged, body).await.0, 400);
    // An invoice this database does not hold (another environment on the same Stripe
    // account) is ignored, and its event is not claimed: a redelivery is ignored too.
    let elsewhere = json!({"id": "evt_2", "type": "payment_intent.succeeded", "data": {"object": {
        "id": "pi_paid", "metadata": {"invoice_id": uuid::Uuid::now_v7(), "organization_id": org.org_id().to_string()}}}})
    .to_string();
    let signed = stripe_provider::sign(elsewhere.as_bytes(), "whsec_test", now.timestamp());
    for _ in 0..2 {
        assert_eq!(
            send(signed.clone(), elsewhere.clone()).await,
            (200, "ignored".into())
        );
    }
    assert_eq!(status(owner.clone()).await, "ACTIVE");

    assert_recorded(
        &app,
        &owner,
        &org,
        &[
            "subscription.trial_ended",
            "subscription.plan_changed",
            "payment.failed",
            "subscription.past_due",
            "subscription.suspended",
            "payment.requested",
            "payment.succeeded",
            "subscription.reactivated",
        ],
    )
    .await;
    let failures = actions(&app, &owner, &org)
        .await
        .into_iter()
        .filter(|a| a == "payment.failed")
        .count();
    assert_eq!(failures, 4);
}

#[tokio::test]
async fn api_key_calls_are_metered_and_a_hard_quota_refuses_them() {
    let app = TestApp::spawn().await;
    let catalog = r#"{
      "metrics": [{"code": "api_calls", "name": "API calls", "aggregation": {"type": "count"}}],
      "plans": [{"code": "tiny", "name": "Tiny", "currency": "EUR",
        "entitlements": {"quotas": {"api_calls": {"per_period": 3, "hard": true}}}}]
    }"#;
    gateway::catalog::import_catalog(&app.state, &billing::CatalogFile::parse(catalog).unwrap())
        .await
        .unwrap();
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    change_plan(&app, &owner, &org, "tiny", None).await.data();
    let (_, key) = app.api_key(&owner, &org, "VIEWER").await;
    let call = || {
        app.gql("{ projects(first: 1) { edges { node { id } } } }")
            .bearer(&key)
            .in_org(&org)
            .send()
    };
    for _ in 0..3 {
        call().await.data();
    }
    let refused = call().await;
    assert_eq!(refused.code(), "LIMIT_EXCEEDED");
    assert_eq!(refused.error()["extensions"]["limit"], "api_calls");
    assert_eq!(refused.error()["extensions"]["max"], 3);
    // Naming another organization does not get around the quota (it was served unmetered).
    let stranger = app.user("stranger@example.com").await;
    let elsewhere = app.org(&stranger, "Elsewhere").await;
    for query in [
        "{ viewer { activeOrganization { name } } }",
        "{ projects(first: 1) { edges { node { id } } } }",
    ] {
        let foreign = app.gql(query).bearer(&key).in_org(&elsewhere).send().await;
        assert_eq!(foreign.code(), "FORBIDDEN", "{query}: {}", foreign.body);
    }
    // People's calls are not API calls; the count is what was allowed.
    app.gql("{ projects(first: 1) { edges { node { id } } } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
    let count = app
        .gql("{ usage(metric: \"api_calls\", from: \"2000-01-01T00:00:00Z\", to: \"2100-01-01T00:00:00Z\", aggregation: COUNT) }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(count.data()["usage"], "3");
}

#[tokio::test]
async fn only_platform_staff_import_the_catalog_through_graphql() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let import = |user: TestUser, catalog: String| {
        let app = &app;
        async move {
            app.gql("mutation($c: String!) { importCatalog(input: {catalog: $c}) { changes } }")
                .vars(json!({ "c": catalog }))
                .as_user(&user)
                .send()
                .await
        }
    };
    // An organization's owner is not staff.
    let refused = import(owner.clone(), METERED.to_owned()).await;
    assert_eq!(refused.code(), "FORBIDDEN");
    let (_, key) = app.api_key(&owner, &org, "ADMIN").await;
    let by_key = app
        .gql("mutation($c: String!) { importCatalog(input: {catalog: $c}) { changes } }")
        .vars(json!({ "c": METERED }))
        .bearer(&key)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(by_key.code(), "FORBIDDEN", "API keys are never staff");

    let staff = app.user("staff@example.com").await;
    app.operator()
        .await
        .tenancy
        .set_staff("Staff@Example.com", true)
        .await
        .unwrap();
    let imported = import(staff.clone(), METERED.to_owned()).await;
    assert_eq!(
        imported.data()["importCatalog"]["changes"],
        json!([
            "metric api_calls: created",
            "plan metered: published version 1"
        ])
    );
    let bad = import(staff.clone(), "{\"plans\": 1}".to_owned()).await;
    assert_eq!(bad.code(), "BAD_USER_INPUT");
    let float = import(staff.clone(), METERED.replace("\"10.00\"", "10.5")).await;
    assert_eq!(float.code(), "BAD_USER_INPUT");
    app.operator()
        .await
        .tenancy
        .set_staff("staff@example.com", false)
        .await
        .unwrap();
    assert_eq!(import(staff, METERED.to_owned()).await.code(), "FORBIDDEN");
}

#[tokio::test]
async fn two_billing_runs_charging_the_same_attempt_count_one_failure() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let stripe = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(402).set_body_json(json!({
            "error": {"type": "card_error", "code": "card_declined", "message": "Your card was declined."}
        })))
        .mount(&stripe)
        .await;
    let uri = stripe.uri();
    let app = TestApp::spawn_with(|config| {
        config.billing.payment_provider = gateway::config::PaymentProviderKind::Stripe;
        config.stripe.api_base = uri;
        config.stripe.secret_key = Some("sk_test".into());
    })
    .await;
    gateway::catalog::import_catalog(&app.state, &billing::CatalogFile::parse(METERED).unwrap())
        .await
        .unwrap();
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    change_plan(&app, &owner, &org, "metered", None)
        .await
        .data();

    // Two instances read the same due attempt, both charge it (the provider sees one
    // idempotency key), both record the answer.
    let subscriptions = &app.state.subscriptions;
    let tx = app.state.tenancy.system_tx(org.org_id()).await.unwrap();
    let seen_by_first = subscriptions.due_charges(&tx).await.unwrap();
    let seen_by_second = subscriptions.due_charges(&tx).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(seen_by_first.len(), 1);
    for request in [seen_by_first[0].clone(), seen_by_second[0].clone()] {
        assert_eq!(request.attempt, 1);
        let outcome = app.state.payments.charge(request.clone()).await.unwrap();
        let tx = app.state.tenancy.system_tx(org.org_id()).await.unwrap();
        subscriptions
            .record_charge(
                &tx,
                request.invoice_id,
                &outcome,
                "stripe",
                Some(request.attempt),
            )
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let invoices = app
        .gql("{ invoices { nodes { paymentAttempts nextPaymentAttemptAt } } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(
        invoices.data()["invoices"]["nodes"][0]["paymentAttempts"],
        1
    );
    let failures = actions(&app, &owner, &org)
        .await
        .into_iter()
        .filter(|a| a == "payment.failed")
        .count();
    assert_eq!(failures, 1);
}

/// A stored subscription value that does not parse is an internal error, never a
/// default: a tax rate that is not a number used to read as 0 % (and would have been
/// invoiced so); a status or time zone that is not one used to be `BAD_USER_INPUT`.
#[tokio::test]
async fn corrupt_stored_subscription_values_are_internal_errors_not_defaults() {
    let app = TestApp::spawn().await;
    gateway::catalog::import_catalog(&app.state, &billing::CatalogFile::parse(METERED).unwrap())
        .await
        .unwrap();
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    change_plan(&app, &owner, &org, "metered", Some("UTC"))
        .await
        .data();
    assert_eq!(subscription(&app, &owner, &org).await["status"], "ACTIVE");
    let (db, backend) = app.whole_database().await;
    use sea_orm::ConnectionTrait;
    for (column, value, good) in [
        ("tax_rate", "lots", "0"),
        ("status", "limbo", "active"),
        ("time_zone", "Mars/Olympus", "UTC"),
    ] {
        let set = |value: &str| {
            sea_orm::Statement::from_string(
                backend,
                format!("UPDATE subscriptions SET {column} = '{value}'"),
            )
        };
        db.execute_raw(set(value)).await.unwrap();
        let read = app
            .gql(SUBSCRIPTION)
            .as_user(&owner)
            .in_org(&org)
            .send()
            .await;
        assert_eq!(read.code(), "INTERNAL", "{column}: {:?}", read.body);
        db.execute_raw(set(good)).await.unwrap();
    }
    assert_eq!(subscription(&app, &owner, &org).await["status"], "ACTIVE");
}
