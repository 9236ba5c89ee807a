//! Data processing agreements (GDPR Art. 28): staff publish a version, owners accept it,
//! and until then an organization cannot create API keys or start a paid plan; a new
//! version gives owners a notice period.

use crate::helpers::TestApp;
use chrono::Duration;
use serde_json::json;

const AGREEMENT: &str = "{ dataProcessingAgreement { version sha256 accepted subprocessors { name location } acceptance { version acceptedBy } } }";
const ACCEPT: &str = "mutation($v: String!) { acceptDataProcessingAgreement(input: {version: $v}) { acceptance { version acceptedBy } } }";
const CREATE_KEY: &str =
    "mutation { createApiKey(input: {name: \"ci\", role: VIEWER}) { apiKey { id } } }";

fn subprocessor() -> tenancy::dpa::Subprocessor {
    tenancy::dpa::Subprocessor {
        name: "Hosting AG".into(),
        purpose: "servers".into(),
        location: "Zurich".into(),
    }
}

#[tokio::test]
async fn an_organization_accepts_the_agreement_before_keys_and_paid_plans() {
    let app = TestApp::spawn().await;
    app.import_demo_catalog().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let admin = app.user("admin@example.com").await;
    app.add_member(&owner, &org, &admin, "ADMIN").await;
    let member = app.user("member@example.com").await;
    app.add_member(&owner, &org, &member, "MEMBER").await;
    // Nothing published yet: nothing to accept, nothing gated.
    let none = app.gql(AGREEMENT).as_user(&owner).in_org(&org).send().await;
    assert!(none.data()["dataProcessingAgreement"].is_null());
    app.gql(CREATE_KEY)
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();

    let operator = app.operator().await;
    let v1 = operator
        .tenancy
        .publish_dpa(
            "2026-12",
            "We process on your instructions.",
            vec![subprocessor()],
        )
        .await
        .unwrap();
    let again = operator
        .tenancy
        .publish_dpa("2026-12", "Other text", vec![])
        .await;
    assert!(matches!(again, Err(tenancy::Error::Conflict(_))));

    // Gated until accepted.
    for (query, what) in [
        (CREATE_KEY, "createApiKey"),
        (
            "mutation { changePlan(input: {plan: \"starter\"}) { effective } }",
            "changePlan",
        ),
    ] {
        let refused = app.gql(query).as_user(&owner).in_org(&org).send().await;
        assert_eq!(refused.code(), "FORBIDDEN", "{what}: {}", refused.body);
        assert_eq!(refused.error()["extensions"]["reason"], "DPA_NOT_ACCEPTED");
    }
    // Owners and admins read it; members do not; only owners accept, the current text.
    let read = app.gql(AGREEMENT).as_user(&admin).in_org(&org).send().await;
    let agreement = &read.data()["dataProcessingAgreement"];
    assert_eq!(agreement["version"], "2026-12");
    assert_eq!(agreement["sha256"], v1.sha256);
    assert_eq!(agreement["accepted"], false);
    assert_eq!(agreement["subprocessors"][0]["location"], "Zurich");
    let peek = app
        .gql(AGREEMENT)
        .as_user(&member)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(peek.code(), "FORBIDDEN");
    let accept = |user: &crate::helpers::TestUser, version: &str| {
        app.gql(ACCEPT)
            .vars(json!({ "v": version }))
            .as_user(user)
            .in_org(&org)
            .send()
    };
    assert_eq!(accept(&admin, "2026-12").await.code(), "FORBIDDEN");
    assert_eq!(accept(&owner, "2025-01").await.code(), "CONFLICT");
    let accepted = accept(&owner, "2026-12").await;
    assert_eq!(
        accepted.data()["acceptDataProcessingAgreement"]["acceptance"]["acceptedBy"],
        owner.id
    );
    app.gql(CREATE_KEY)
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
    let read = app.gql(AGREEMENT).as_user(&owner).in_org(&org).send().await;
    assert_eq!(read.data()["dataProcessingAgreement"]["accepted"], true);

    // Another organization has accepted nothing: its own gate, its own answer.
    let stranger = app.user("stranger@example.com").await;
    let other = app.org(&stranger, "Other").await;
    let theirs = app
        .gql(AGREEMENT)
        .as_user(&stranger)
        .in_org(&other)
        .send()
        .await;
    assert!(theirs.data()["dataProcessingAgreement"]["acceptance"].is_null());
    let gated = app
        .gql(CREATE_KEY)
        .as_user(&stranger)
        .in_org(&other)
        .send()
        .await;
    assert_eq!(gated.code(), "FORBIDDEN");

    // A new version: the earlier acceptance counts for the notice period, then not.
    operator
        .tenancy
        .publish_dpa(
            "2027-01",
            "We process on your instructions, v2.",
            vec![subprocessor()],
        )
        .await
        .unwrap();
    let owner = app.relog(&owner).await;
    app.gql(CREATE_KEY)
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
    app.clock.advance(Duration::days(31));
    let owner = app.relog(&owner).await;
    let lapsed = app
        .gql(CREATE_KEY)
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(lapsed.code(), "FORBIDDEN");
    app.gql(ACCEPT)
        .vars(json!({ "v": "2027-01" }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
    app.gql(CREATE_KEY)
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
    // A new version with other subprocessors is another agreement; during its notice only
    // an acceptance of the version right before it counts.
    operator
        .tenancy
        .publish_dpa("2027-02", "Same words.", vec![])
        .await
        .unwrap();
    operator
        .tenancy
        .publish_dpa("2027-03", "Same words.", vec![subprocessor()])
        .await
        .unwrap();
    let two_behind = app
        .gql(CREATE_KEY)
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(
        two_behind.error()["extensions"]["reason"],
        "DPA_NOT_ACCEPTED"
    );
    let read = app.gql(AGREEMENT).as_user(&owner).in_org(&org).send().await;
    assert_eq!(read.data()["dataProcessingAgreement"]["accepted"], false);
    let events = app
        .gql("{ auditEvents(filter: {action: \"dpa.accepted\"}, first: 10) { edges { node { actorId } } } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(
        events.data()["auditEvents"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn without_a_notice_period_a_new_version_applies_at_once() {
    let app = TestApp::spawn_with(|config| config.privacy.dpa_notice_days = 0).await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let operator = app.operator().await;
    operator
        .tenancy
        .publish_dpa("v1", "One.", vec![])
        .await
        .unwrap();
    app.gql(ACCEPT)
        .vars(json!({ "v": "v1" }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
    app.gql(CREATE_KEY)
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
    operator
        .tenancy
        .publish_dpa("v2", "Two.", vec![])
        .await
        .unwrap();
    app.clock.advance(Duration::seconds(1));
    let gated = app
        .gql(CREATE_KEY)
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(gated.error()["extensions"]["reason"], "DPA_NOT_ACCEPTED");
}
