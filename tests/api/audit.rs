//! The audit trail end to end: every mutation records an event; the chain verifies and
//! finds changed, missing and reordered rows; the application cannot change or delete
//! events; concurrent appends do not fork the chain; API keys are named as actors;
//! erasure leaves `[erased]` and a valid chain; auditors see only their organization.
//!
//! Longer than 600 lines on purpose: one feature's scenarios, each test self-contained
//! (it spins its own server and database): read them one at a time.

use crate::helpers::{TestApp, TestOrg, TestUser, on_postgres};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const EVENTS: &str = "query($f: AuditEventFilter) { auditEvents(filter: $f, first: 100) { edges { node { seq action actorType actorId outcome targetId requestId operation ip userAgent changes { field before after } } } } }";
const VERIFY: &str = "{ verifyAuditChain { valid checked broken { seq reason } } }";
const UNSEALED: &str = "{ verifyAuditChain { valid checked unsealed oldestUnsealedAt } }";

/// `verifyAuditChain` with the count of events not chained yet.
async fn unsealed(app: &TestApp, user: &TestUser, org: &TestOrg) -> Value {
    app.gql(UNSEALED)
        .as_user(user)
        .in_org(org)
        .send()
        .await
        .data()["verifyAuditChain"]
        .clone()
}

/// Waits (at most 10 s) until none of the organization's events waits to be chained;
/// the last report.
async fn all_sealed(app: &TestApp, user: &TestUser, org: &TestOrg) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let report = unsealed(app, user, org).await;
        if report["unsealed"] == 0 {
            return report;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "events still unsealed: {report}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn events(app: &TestApp, user: &TestUser, org: &TestOrg, filter: Value) -> Vec<Value> {
    let response = app
        .gql(EVENTS)
        .vars(json!({ "f": filter }))
        .as_user(user)
        .in_org(org)
        .send()
        .await;
    response.data()["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// The events' actions, in order.
fn actions_of(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default())
        .collect()
}

/// `verifyAuditChain` through the API (on PostgreSQL the database hashes), checked
/// against an independent recomputation in this process: both must name the same link.
async fn verify(app: &TestApp, user: &TestUser, org: &TestOrg) -> Value {
    let report = app
        .gql(VERIFY)
        .as_user(user)
        .in_org(org)
        .send()
        .await
        .data()["verifyAuditChain"]
        .clone();
    let here = app
        .state
        .tenancy
        .verify_audit_chain(org.org_id(), audit::Hashing::Here)
        .await
        .unwrap();
    assert_eq!(report["checked"], here.checked, "{report}");
    assert_eq!(
        report["broken"]["seq"].as_i64(),
        here.broken.as_ref().map(|b| b.seq),
        "{report}"
    );
    assert_eq!(
        report["broken"]["reason"].as_str(),
        here.broken.as_ref().map(|b| b.reason.as_str()),
        "{report}"
    );
    report
}

/// A connection that bypasses the application: the owner on PostgreSQL (a superuser
/// here, standing in for an attacker with database access), the file itself on SQLite.
async fn raw_db(app: &TestApp) -> DatabaseConnection {
    if on_postgres() {
        app.owner_db().await
    } else {
        app.app_db().await
    }
}

fn backend() -> DbBackend {
    if on_postgres() {
        DbBackend::Postgres
    } else {
        DbBackend::Sqlite
    }
}

async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn actions_in_db(db: &DatabaseConnection) -> BTreeSet<String> {
    db.query_all_raw(Statement::from_string(
        backend(),
        "SELECT DISTINCT action FROM audit_events",
    ))
    .await
    .unwrap()
    .iter()
    .map(|row| row.try_get_by_index::<String>(0).unwrap())
    .collect()
}

/// The table every new mutation must join: its name and the event it records.
const MUTATION_EVENTS: &[(&str, &str)] = &[
    ("signUp", "user.signed_up"),
    ("logIn", "user.logged_in"),
    ("refreshToken", "session.refreshed"),
    ("logOut", "session.revoked"),
    ("erasePersonalData", "user.personal_data_erased"),
    ("deleteAccount", "user.erased"),
    ("acceptDataProcessingAgreement", "dpa.accepted"),
    (
        "requestOrganizationDeletion",
        "organization.deletion_requested",
    ),
    (
        "cancelOrganizationDeletion",
        "organization.deletion_canceled",
    ),
    ("requestDataExport", "data_export.requested"),
    ("createOrganization", "organization.created"),
    ("inviteMember", "invitation.created"),
    ("resendInvitation", "invitation.resent"),
    ("revokeInvitation", "invitation.revoked"),
    ("acceptInvitation", "invitation.accepted"),
    ("changeMemberRole", "member.role_changed"),
    ("removeMember", "member.removed"),
    ("leaveOrganization", "member.left"),
    ("createApiKey", "api_key.created"),
    ("revokeApiKey", "api_key.revoked"),
    ("registerTrustedDocuments", "trusted_documents.registered"),
    ("revokeTrustedDocument", "trusted_document.revoked"),
    ("createRole", "role.created"),
    ("updateRole", "role.updated"),
    ("deleteRole", "role.deleted"),
    ("assignRole", "role.assigned"),
    ("unassignRole", "role.unassigned"),
    ("denyPermission", "rule.denied"),
    ("removeDenyRule", "rule.deny_removed"),
    ("createProject", "project.created"),
    ("updateProject", "project.updated"),
    ("grantAccess", "grant.created"),
    ("createDocument", "document.created"),
    ("updateDocument", "document.edited"),
    ("submitDocument", "document.submitted"),
    ("approveDocument", "document.approved"),
    ("requestDocumentChanges", "document.changes_requested"),
    ("publishDocument", "document.published"),
    ("archiveDocument", "document.archived"),
    ("revokeAccess", "grant.revoked"),
    ("setAuditRetention", "audit.retention_changed"),
    ("purgeAuditEvents", "audit.purged"),
    ("recordUsage", "usage.recorded"),
    ("changePlan", "subscription.started"),
    ("cancelSubscription", "subscription.cancel_scheduled"),
    ("payInvoice", "payment.requested"),
    ("importCatalog", "plan.published"),
    ("createWebhookEndpoint", "webhook_endpoint.created"),
    ("updateWebhookEndpoint", "webhook_endpoint.updated"),
    (
        "rotateWebhookEndpointSecret",
        "webhook_endpoint.secret_rotated",
    ),
    ("redeliverWebhook", "webhook_delivery.redelivered"),
    ("deleteWebhookEndpoint", "webhook_endpoint.deleted"),
];

/// Runs every webhook mutation once (the endpoint's one delivery goes nowhere: the test
/// network resolves no public name).
async fn webhook_steps(
    app: &TestApp,
    owner: &crate::helpers::TestUser,
    org: &crate::helpers::TestOrg,
) {
    let created = app
        .gql("mutation { createWebhookEndpoint(input: {url: \"https://hooks.example.com/in\", eventTypes: [\"project.created\"]}) { webhookEndpoint { id } } }")
        .as_user(owner)
        .in_org(org)
        .send()
        .await;
    let endpoint = created.data()["createWebhookEndpoint"]["webhookEndpoint"]["id"].clone();
    for mutation in [
        "mutation($e: ID!) { updateWebhookEndpoint(input: {webhookEndpointId: $e, description: \"ERP\"}) { webhookEndpoint { id } } }",
        "mutation($e: ID!) { rotateWebhookEndpointSecret(input: {webhookEndpointId: $e}) { secret } }",
    ] {
        app.gql(mutation)
            .vars(json!({ "e": endpoint }))
            .as_user(owner)
            .in_org(org)
            .send()
            .await
            .data();
    }
    app.gql("mutation { createProject(input: {name: \"Hooked\"}) { project { id } } }")
        .as_user(owner)
        .in_org(org)
        .send()
        .await
        .data();
    gateway::background::webhook_dispatch::run_once(&app.state)
        .await
        .unwrap();
    let log = app
        .gql("query($o: ID!) { node(id: $o) { ... on Organization { webhookDeliveries(first: 1) { nodes { id } } } } }")
        .vars(json!({ "o": org.id }))
        .as_user(owner)
        .in_org(org)
        .send()
        .await;
    let delivery = log.data()["node"]["webhookDeliveries"]["nodes"][0]["id"].clone();
    app.gql("mutation($d: ID!) { redeliverWebhook(input: {deliveryId: $d}) { delivery { id } } }")
        .vars(json!({ "d": delivery }))
        .as_user(owner)
        .in_org(org)
        .send()
        .await
        .data();
    app.gql("mutation($e: ID!) { deleteWebhookEndpoint(input: {webhookEndpointId: $e}) { webhookEndpoint { id } } }")
        .vars(json!({ "e": endpoint }))
        .as_user(owner)
        .in_org(org)
        .send()
        .await
        .data();
}

#[tokio::test]
async fn every_mutation_in_the_schema_records_its_event() {
    let app = TestApp::spawn().await;
    let schema = app
        .gql("{ __schema { mutationType { fields { name } } } }")
        .send()
        .await;
    let mutations: BTreeSet<String> = schema.data()["__schema"]["mutationType"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    let covered: BTreeSet<String> = MUTATION_EVENTS
        .iter()
        .map(|(m, _)| (*m).to_owned())
        .collect();
    assert_eq!(
        mutations, covered,
        "every mutation needs an entry (and a run below) here"
    );

    // Run each of them once.
    let owner = app.user("owner@example.com").await;
    let refresh = app
        .gql("mutation($t: String!) { refreshToken(input: {refreshToken: $t}) { accessToken } }")
        .vars(json!({ "t": owner.refresh_token }))
        .send()
        .await;
    let owner = crate::helpers::TestUser {
        token: refresh.data()["refreshToken"]["accessToken"]
            .as_str()
            .unwrap()
            .to_owned(),
        ..owner
    };
    let org = app.org(&owner, "Acme").await;
    let bob = app.user("bob@example.com").await;
    let bob_member = app.add_member(&owner, &org, &bob, "MEMBER").await;
    let carol = app.user("carol@example.com").await;
    let carol_member = app.add_member(&owner, &org, &carol, "VIEWER").await;
    let invited = app.invite(&owner, &org, "dan@example.com", "VIEWER").await;
    let invitation = invited.data()["inviteMember"]["invitation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (key, _) = app.api_key(&owner, &org, "VIEWER").await;
    let steps = [
        (
            "mutation($i: ID!) { resendInvitation(input: {invitationId: $i}) { token } }",
            json!({ "i": invitation }),
        ),
        (
            "mutation($i: ID!) { revokeInvitation(input: {invitationId: $i}) { invitation { id } } }",
            json!({ "i": invitation }),
        ),
        (
            "mutation($m: ID!) { changeMemberRole(input: {memberId: $m, role: VIEWER}) { membership { id } } }",
            json!({ "m": bob_member }),
        ),
        (
            "mutation($k: ID!) { revokeApiKey(input: {apiKeyId: $k}) { apiKey { id } } }",
            json!({ "k": key }),
        ),
        (
            "mutation($m: JSON!) { registerTrustedDocuments(input: {manifest: $m}) { registeredCount } }",
            json!({ "m": {
                "format": "apollo-persisted-query-manifest", "version": 1,
                "operations": [{
                    // SHA-256 of the body.
                    "id": "fd62e324acbd36cef07b4e4f13873507c78404993537dff6b7f887ad6e90d417",
                    "name": "Ping", "type": "query", "body": "query Ping { __typename }",
                }],
            } }),
        ),
        (
            "mutation { revokeTrustedDocument(input: {documentId: \"sha256:fd62e324acbd36cef07b4e4f13873507c78404993537dff6b7f887ad6e90d417\"}) { trustedDocument { name } } }",
            json!({}),
        ),
        (
            "mutation { createRole(input: {name: \"helper\", permissions: [{resourceType: MEMBER, action: READ}]}) { role { name } } }",
            json!({}),
        ),
        (
            "mutation { updateRole(input: {name: \"helper\", permissions: [{resourceType: PROJECT, action: READ}]}) { role { name } } }",
            json!({}),
        ),
        (
            "mutation($m: ID!) { assignRole(input: {memberId: $m, role: \"helper\"}) { roles } }",
            json!({ "m": bob_member }),
        ),
        (
            "mutation($m: ID!) { unassignRole(input: {memberId: $m, role: \"helper\"}) { roles } }",
            json!({ "m": bob_member }),
        ),
        (
            "mutation { deleteRole(input: {name: \"helper\"}) { name } }",
            json!({}),
        ),
        (
            "mutation { denyPermission(input: {subject: \"viewer\", resourceType: PROJECT, action: READ}) { ok } }",
            json!({}),
        ),
        (
            "mutation($m: ID!) { removeMember(input: {memberId: $m}) { removedMemberId } }",
            json!({ "m": carol_member }),
        ),
    ];
    for (mutation, vars) in steps {
        app.gql(mutation)
            .vars(vars)
            .as_user(&owner)
            .in_org(&org)
            .send()
            .await
            .data();
    }
    let rules = app
        .gql("{ viewer { activeOrganization { denyRules { nodes { id } } } } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    app.gql("mutation($id: ID!) { removeDenyRule(input: {ruleId: $id}) { denyRule { id } } }")
        .vars(json!({ "id": rules.data()["viewer"]["activeOrganization"]["denyRules"]["nodes"][0]["id"] }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
    let project = app
        .gql("mutation { createProject(input: {name: \"Apollo\"}) { project { id } } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    let project = project.data()["createProject"]["project"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    webhook_steps(&app, &owner, &org).await;
    app.gql("mutation($p: ID!) { updateProject(input: {projectId: $p, name: \"Apollo 2\"}) { project { id } } }")
        .vars(json!({ "p": project }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
    let granted = app
        .gql("mutation($p: ID!, $u: ID!) { grantAccess(input: {resourceId: $p, subjectId: $u, relation: \"editor\"}) { grant { id } } }")
        .vars(json!({ "p": project, "u": bob.id }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    let grant_id = granted.data()["grantAccess"]["grant"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Documents: the owner writes one and has changes requested on it; bob (an editor
    // of the project through the grant) writes one that the owner approves, publishes
    // and archives.
    let create = "mutation($p: ID!) { createDocument(input: {projectId: $p, title: \"Spec\"}) { document { id } } }";
    let own = app
        .gql(create)
        .vars(json!({ "p": project }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    let own = own.data()["createDocument"]["document"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bobs = app
        .gql(create)
        .vars(json!({ "p": project }))
        .as_user(&bob)
        .in_org(&org)
        .send()
        .await;
    let bobs = bobs.data()["createDocument"]["document"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let document_steps = [
        (
            "mutation($d: ID!) { updateDocument(input: {documentId: $d, body: \"# Spec\"}) { document { version } } }",
            &own,
            &owner,
        ),
        (
            "mutation($d: ID!) { submitDocument(input: {documentId: $d}) { document { status } } }",
            &own,
            &owner,
        ),
        (
            "mutation($d: ID!) { requestDocumentChanges(input: {documentId: $d, comment: \"more\"}) { document { status } } }",
            &own,
            &owner,
        ),
        (
            "mutation($d: ID!) { submitDocument(input: {documentId: $d}) { document { status } } }",
            &bobs,
            &bob,
        ),
        (
            "mutation($d: ID!) { approveDocument(input: {documentId: $d}) { document { status } } }",
            &bobs,
            &owner,
        ),
        (
            "mutation($d: ID!) { publishDocument(input: {documentId: $d}) { document { status } } }",
            &bobs,
            &owner,
        ),
        (
            "mutation($d: ID!) { archiveDocument(input: {documentId: $d}) { document { status } } }",
            &bobs,
            &owner,
        ),
    ];
    for (mutation, document, user) in document_steps {
        app.gql(mutation)
            .vars(json!({ "d": document }))
            .as_user(user)
            .in_org(&org)
            .send()
            .await
            .data();
    }
    app.gql("mutation($g: ID!) { revokeAccess(input: {grantId: $g}) { grant { id } } }")
        .vars(json!({ "g": grant_id }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
    app.operator()
        .await
        .tenancy
        .set_staff("owner@example.com", true)
        .await
        .unwrap();
    app.gql("mutation($c: String!) { importCatalog(input: {catalog: $c}) { changes } }")
        .vars(json!({ "c": crate::billing::METERED }))
        .as_user(&owner)
        .send()
        .await
        .data();
    // Usage of a metric the catalog now has.
    app.gql("mutation { recordUsage(input: {events: [{metric: \"api_calls\", key: \"k1\"}]}) { stored } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
    app.gql("mutation { changePlan(input: {plan: \"metered\"}) { effective } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
    let invoices = app
        .gql("{ invoices { nodes { id } } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    app.gql("mutation($i: String!) { payInvoice(input: {invoiceId: $i}) { invoice { status } } }")
        .vars(json!({ "i": invoices.data()["invoices"]["nodes"][0]["id"] }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
    app.gql("mutation { cancelSubscription { subscription { status } } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
    app.gql("mutation { leaveOrganization { organizationId } }")
        .as_user(&bob)
        .in_org(&org)
        .send()
        .await
        .data();
    app.gql("mutation { erasePersonalData { keysDeleted } }")
        .as_user(&carol)
        .send()
        .await
        .data();
    app.operator()
        .await
        .tenancy
        .publish_dpa("v1", "The agreement.", vec![])
        .await
        .unwrap();
    app.gql("mutation { acceptDataProcessingAgreement(input: {version: \"v1\"}) { acceptance { version } } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
    app.gql("mutation($p: String!) { deleteAccount(input: {password: $p}) { deletedUserId } }")
        .vars(json!({ "p": crate::helpers::PASSWORD }))
        .as_user(&carol)
        .send()
        .await
        .data();
    app.gql("mutation { requestDataExport(input: {scope: PERSON}) { dataExport { id } } }")
        .as_user(&owner)
        .send()
        .await
        .data();
    let doomed = app.org(&owner, "Doomed").await;
    app.gql("mutation($o: ID!) { requestOrganizationDeletion(input: {organizationId: $o, confirmSlug: \"doomed\"}) { organization { status } } }")
        .vars(json!({ "o": doomed.id }))
        .as_user(&owner)
        .send()
        .await
        .data();
    app.gql("mutation($o: ID!) { cancelOrganizationDeletion(input: {organizationId: $o}) { organization { status } } }")
        .vars(json!({ "o": doomed.id }))
        .as_user(&owner)
        .send()
        .await
        .data();
    app.gql("mutation { logOut { ok } }")
        .as_user(&owner)
        .send()
        .await
        .data();

    // Retention last: the purge removes what was recorded so far (read it first), and
    // moving the clock ends everyone's access tokens.
    let owner = app.relog(&owner).await;
    app.gql("mutation { setAuditRetention(input: {keepDays: 1}) { keepDays } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
    let mut recorded = actions_in_db(&raw_db(&app).await).await;
    app.clock.advance(chrono::Duration::days(2));
    let owner = app.relog(&owner).await;
    app.gql("mutation { purgeAuditEvents { throughSeq purged } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();

    recorded.extend(actions_in_db(&raw_db(&app).await).await);
    for (mutation, action) in MUTATION_EVENTS {
        assert!(
            recorded.contains(*action),
            "{mutation} recorded no `{action}` event; recorded: {recorded:?}"
        );
    }
    let owner = app.relog(&owner).await;
    let report = verify(&app, &owner, &org).await;
    assert_eq!(report["valid"], true, "{report}");
}

#[tokio::test]
async fn events_carry_actor_target_diff_request_and_client() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let bob = app.user("bob@example.com").await;
    let member = app.add_member(&owner, &org, &bob, "MEMBER").await;
    let response = app
        .http
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&owner.token)
        .header("X-Organization-Id", &org.id)
        .header("X-Request-Id", "req-audit-1")
        .header("User-Agent", "audit-test/1.0")
        .json(&json!({ "query": "mutation Promote($m: ID!) { changeMemberRole(input: {memberId: $m, role: ADMIN}) { membership { id } } }", "variables": { "m": member }, "operationName": "Promote" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let found = events(
        &app,
        &owner,
        &org,
        json!({ "action": "member.role_changed" }),
    )
    .await;
    assert_eq!(found.len(), 1);
    let event = &found[0];
    assert_eq!(event["actorType"], "user");
    assert_eq!(event["outcome"], "success");
    assert_eq!(event["requestId"], "req-audit-1");
    assert_eq!(event["operation"], "Promote");
    assert_eq!(event["ip"], "127.0.0.1");
    assert_eq!(event["userAgent"], "audit-test/1.0");
    let role = event["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == "role")
        .unwrap();
    // Values are JSON, not JSON encoded in a string.
    assert_eq!(
        (role["before"].as_str(), role["after"].as_str()),
        (Some("member"), Some("admin"))
    );
}

#[tokio::test]
async fn an_api_key_call_is_attributed_to_the_key() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let (key_id, secret) = app.api_key(&owner, &org, "ADMIN").await;
    let created = app
        .gql("mutation { inviteMember(input: {email: \"x@example.com\", role: VIEWER}) { token } }")
        .bearer(&secret)
        .send()
        .await;
    // Invitations are sent by people; a key is refused, and nothing is recorded for it.
    assert_eq!(created.code(), "FORBIDDEN");
    let made = app
        .gql("mutation { createApiKey(input: {name: \"child\", role: VIEWER}) { apiKey { id } } }")
        .bearer(&secret)
        .send()
        .await;
    made.data();
    let found = events(&app, &owner, &org, json!({ "action": "api_key.created" })).await;
    let by_key: Vec<_> = found
        .iter()
        .filter(|e| e["actorType"] == "api_key")
        .collect();
    assert_eq!(by_key.len(), 1);
    let key_uuid = by_key[0]["actorId"].as_str().unwrap();
    assert!(!key_uuid.is_empty());
    let by_actor = events(&app, &owner, &org, json!({ "actor": key_uuid })).await;
    assert_eq!(by_actor.len(), 1);
    assert!(!key_id.is_empty());
}

#[tokio::test]
async fn verify_names_a_changed_a_missing_and_a_reordered_event() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    for _ in 0..6 {
        app.api_key(&owner, &org, "VIEWER").await;
    }
    let clean = verify(&app, &owner, &org).await;
    assert_eq!(clean["valid"], true);
    let total = clean["checked"].as_i64().unwrap();
    assert_eq!(total, 7, "{clean}");

    let db = raw_db(&app).await;
    let org_filter = "organization_id = (SELECT organization_id FROM audit_events WHERE action = 'organization.created')";
    let disable = if on_postgres() {
        "ALTER TABLE audit_events DISABLE TRIGGER USER"
    } else {
        "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete"
    };
    exec(&db, disable).await;

    // A changed row.
    exec(
        &db,
        &format!("UPDATE audit_events SET action = 'api_key.read' WHERE {org_filter} AND seq = 4"),
    )
    .await;
    let changed = verify(&app, &owner, &org).await;
    assert_eq!(changed["valid"], false);
    assert_eq!(changed["broken"]["seq"], 4, "{changed}");
    assert!(
        changed["broken"]["reason"]
            .as_str()
            .unwrap()
            .contains("changed")
    );
    exec(
        &db,
        &format!(
            "UPDATE audit_events SET action = 'api_key.created' WHERE {org_filter} AND seq = 4"
        ),
    )
    .await;
    assert_eq!(verify(&app, &owner, &org).await["valid"], true);

    // Two rows swapped.
    exec(
        &db,
        &format!("UPDATE audit_events SET seq = -5 WHERE {org_filter} AND seq = 5"),
    )
    .await;
    exec(
        &db,
        &format!("UPDATE audit_events SET seq = 5 WHERE {org_filter} AND seq = 6"),
    )
    .await;
    exec(
        &db,
        &format!("UPDATE audit_events SET seq = 6 WHERE {org_filter} AND seq = -5"),
    )
    .await;
    let reordered = verify(&app, &owner, &org).await;
    assert_eq!(reordered["broken"]["seq"], 5, "{reordered}");
    exec(
        &db,
        &format!("UPDATE audit_events SET seq = -5 WHERE {org_filter} AND seq = 5"),
    )
    .await;
    exec(
        &db,
        &format!("UPDATE audit_events SET seq = 5 WHERE {org_filter} AND seq = 6"),
    )
    .await;
    exec(
        &db,
        &format!("UPDATE audit_events SET seq = 6 WHERE {org_filter} AND seq = -5"),
    )
    .await;
    assert_eq!(verify(&app, &owner, &org).await["valid"], true);

    // A deleted row.
    exec(
        &db,
        &format!("DELETE FROM audit_events WHERE {org_filter} AND seq = 3"),
    )
    .await;
    let missing = verify(&app, &owner, &org).await;
    assert_eq!(missing["broken"]["seq"], 4, "{missing}");
    assert!(
        missing["broken"]["reason"]
            .as_str()
            .unwrap()
            .contains("expected seq 3")
    );
}

/// A long chain is verified in ranges of `seq` checked concurrently, each in its own read
/// transaction; a change in any range is still found and named exactly (one pass over
/// the whole chain then decides), and a clean chain is accepted by the ranges alone.
#[tokio::test]
async fn a_long_chain_is_verified_in_parts_and_a_break_in_any_part_is_named() {
    const SYNTHETIC: u64 = 30_000;
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let tx = app.state.tenancy.system_tx(org.org_id()).await.unwrap();
    audit::bench_support::append_synthetic(&tx, SYNTHETIC, kernel::Clock::now(&app.clock))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let total = SYNTHETIC as i64 + 1; // and organization.created

    // Two read transactions: the ranges alone decide a clean chain.
    let ranges = || async {
        let main = app
            .state
            .tenancy
            .system_read_tx(org.org_id())
            .await
            .unwrap();
        let other = app
            .state
            .tenancy
            .system_read_tx(org.org_id())
            .await
            .unwrap();
        let hashing = app.state.audit.default_hashing();
        let decided = app
            .state
            .audit
            .verify_ranges(&main, std::slice::from_ref(&other), hashing)
            .await
            .unwrap();
        let whole = app
            .state
            .audit
            .verify_in_parts(&main, std::slice::from_ref(&other), hashing)
            .await
            .unwrap();
        other.rollback().await.unwrap();
        main.rollback().await.unwrap();
        (decided, whole)
    };
    let (decided, whole) = ranges().await;
    let decided = decided.expect("a clean chain is decided by its ranges");
    assert_eq!((decided.checked, &decided.broken), (total as u64, &None));
    assert_eq!(whole, decided);
    let clean = verify(&app, &owner, &org).await;
    assert_eq!(clean["valid"], true, "{clean}");
    assert_eq!(clean["checked"], total);

    let db = raw_db(&app).await;
    let disable = if on_postgres() {
        "ALTER TABLE audit_events DISABLE TRIGGER USER"
    } else {
        "DROP TRIGGER audit_events_no_update"
    };
    exec(&db, disable).await;
    // One change in the second range, then one in the first: each is the first broken link.
    for seq in [total - 10, 100] {
        exec(
            &db,
            &format!("UPDATE audit_events SET action = 'tampered' WHERE seq = {seq} AND action <> 'organization.created'"),
        )
        .await;
        let (decided, whole) = ranges().await;
        assert_eq!(
            decided, None,
            "seq {seq}: the ranges leave a break to one pass"
        );
        let link = whole.broken.expect("a break");
        assert_eq!((link.seq, whole.checked), (seq, seq as u64 - 1));
        let report = verify(&app, &owner, &org).await;
        assert_eq!(report["broken"]["seq"], seq, "{report}");
    }
}

#[tokio::test]
async fn the_application_can_neither_change_nor_delete_events() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    app.org(&owner, "Acme").await;
    let db = app.app_db().await;
    let scope = if on_postgres() {
        // As the application role, inside an organization's transaction.
        "SELECT set_config('app.org_id', (SELECT organization_id::text FROM memberships LIMIT 1), false)"
    } else {
        "SELECT 1"
    };
    let _ = db.execute_unprepared(scope).await;
    for sql in [
        "UPDATE audit_events SET action = 'x'",
        "DELETE FROM audit_events",
    ] {
        let refused = db.execute_unprepared(sql).await;
        assert!(refused.is_err(), "{sql} was allowed");
    }
    if on_postgres() {
        assert!(
            db.execute_unprepared("TRUNCATE audit_events")
                .await
                .is_err()
        );
    }
    let owner_view = raw_db(&app).await;
    let count = owner_view
        .query_one_raw(Statement::from_string(
            backend(),
            "SELECT count(*) FROM audit_events",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap();
    assert!(count >= 3);
}

#[tokio::test]
async fn sixty_four_concurrent_mutations_leave_a_gap_free_chain() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let create =
        "mutation($n: String!) { createApiKey(input: {name: $n, role: VIEWER}) { apiKey { id } } }";
    let calls = (0..64).map(|i| {
        app.gql(create)
            .vars(json!({ "n": format!("key-{i}") }))
            .as_user(&owner)
            .in_org(&org)
            .send()
    });
    let responses = futures::future::join_all(calls).await;
    for response in &responses {
        response.data();
    }
    // Appends that found the chain busy are chained just after their commit.
    all_sealed(&app, &owner, &org).await;
    let report = verify(&app, &owner, &org).await;
    assert_eq!(report["valid"], true, "{report}");
    let created = events(&app, &owner, &org, json!({ "action": "api_key.created" })).await;
    assert_eq!(created.len(), 64);
    let mut seqs: Vec<i64> = created.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), 64);
}

#[tokio::test]
async fn erasure_leaves_erased_values_and_a_valid_chain() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let bob = app.user("bob@example.com").await;
    app.add_member(&owner, &org, &bob, "MEMBER").await;
    let invitation = |events: &[Value]| {
        events
            .iter()
            .find(|e| e["action"] == "invitation.created")
            .and_then(|e| {
                e["changes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| c["field"] == "email")
                    .cloned()
            })
            .unwrap()
    };
    let accepted = |events: &[Value]| {
        events
            .iter()
            .find(|e| e["action"] == "invitation.accepted")
            .unwrap()
            .clone()
    };

    let before = events(&app, &owner, &org, json!({})).await;
    assert_eq!(invitation(&before)["after"], "bob@example.com");
    assert_eq!(accepted(&before)["ip"], "127.0.0.1");

    let erased = app
        .gql("mutation { erasePersonalData { keysDeleted } }")
        .as_user(&bob)
        .send()
        .await;
    assert_eq!(erased.data()["erasePersonalData"]["keysDeleted"], 2);

    let after = events(&app, &owner, &org, json!({})).await;
    assert_eq!(invitation(&after)["after"], "[erased]");
    assert_eq!(accepted(&after)["ip"], "[erased]");
    // The owner's own data is untouched.
    let created = after
        .iter()
        .find(|e| e["action"] == "organization.created")
        .unwrap();
    assert_eq!(created["ip"], "127.0.0.1");
    assert_eq!(verify(&app, &owner, &org).await["valid"], true);
}

#[tokio::test]
async fn auditors_see_only_their_organization_and_members_see_nothing() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@acme.test").await;
    let acme = app.org(&alice, "Acme").await;
    let erin = app.user("erin@globex.test").await;
    let globex = app.org(&erin, "Globex").await;
    let grace = app.user("grace@globex.test").await;
    app.add_member(&erin, &globex, &grace, "AUDITOR").await;
    let carol = app.user("carol@globex.test").await;
    app.add_member(&erin, &globex, &carol, "MEMBER").await;

    let seen = events(&app, &grace, &globex, json!({})).await;
    assert!(!seen.is_empty());
    let text = serde_json::to_string(&seen).unwrap();
    assert!(!text.contains("Acme") && !text.contains("acme"), "{text}");
    assert_eq!(
        app.gql(EVENTS)
            .vars(json!({ "f": {} }))
            .as_user(&grace)
            .in_org(&acme)
            .send()
            .await
            .code(),
        "FORBIDDEN"
    );
    assert_eq!(
        app.gql(EVENTS)
            .vars(json!({ "f": {} }))
            .as_user(&carol)
            .in_org(&globex)
            .send()
            .await
            .code(),
        "FORBIDDEN"
    );
    assert_eq!(
        app.gql(VERIFY)
            .as_user(&carol)
            .in_org(&globex)
            .send()
            .await
            .code(),
        "FORBIDDEN"
    );
    // Another organization's owner can neither change nor purge Acme's trail.
    let set = "mutation { setAuditRetention(input: {keepDays: 1}) { keepDays } }";
    assert_eq!(
        app.gql(set)
            .as_user(&erin)
            .in_org(&acme)
            .send()
            .await
            .code(),
        "FORBIDDEN"
    );
    let purge = "mutation { purgeAuditEvents { purged } }";
    assert_eq!(
        app.gql(purge)
            .as_user(&erin)
            .in_org(&acme)
            .send()
            .await
            .code(),
        "FORBIDDEN"
    );
    let acme_events = events(&app, &alice, &acme, json!({})).await;
    assert!(
        acme_events
            .iter()
            .all(|e| e["action"] != "audit.retention_changed")
    );
}

async fn export(
    app: &TestApp,
    user: &TestUser,
    org: &TestOrg,
    query: &str,
) -> (u16, String, String) {
    let response = app
        .http
        .get(format!("{}/audit/export?{query}", app.address))
        .bearer_auth(&user.token)
        .header("X-Organization-Id", &org.id)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

#[tokio::test]
async fn the_trail_exports_as_json_lines_and_csv_and_the_export_is_recorded() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    for _ in 0..3 {
        app.api_key(&owner, &org, "VIEWER").await;
    }
    let (status, content_type, body) = export(&app, &owner, &org, "format=jsonl").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/x-ndjson");
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // organization.created, three keys, and the export itself (recorded first).
    assert_eq!(lines.len(), 5, "{body}");
    assert_eq!(lines[0]["action"], "organization.created");
    assert_eq!(lines[4]["action"], "audit.exported");
    let seqs: Vec<i64> = lines.iter().map(|l| l["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);

    let (status, content_type, csv) = export(&app, &owner, &org, "format=csv").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/csv"));
    let rows: Vec<&str> = csv.split("\r\n").filter(|r| !r.is_empty()).collect();
    assert!(rows[0].starts_with("seq,id,occurred_at,actor_type"));
    assert_eq!(rows.len(), 1 + 6, "{csv}");

    // A window that ends before anything happened holds nothing (but is recorded).
    let (_, _, empty) = export(&app, &owner, &org, "format=jsonl&to=2000-01-01T00:00:00Z").await;
    assert!(empty.is_empty());
    let (status, _, bad) = export(&app, &owner, &org, "format=xml").await;
    assert_eq!(status, 400);
    assert!(bad.contains("BAD_USER_INPUT"));
    let (status, _, bad) = export(&app, &owner, &org, "from=yesterday").await;
    assert_eq!(status, 400);
    assert!(bad.contains("BAD_USER_INPUT"));
    let exports = events(&app, &owner, &org, json!({ "action": "audit.exported" })).await;
    assert_eq!(exports.len(), 3);
}

#[tokio::test]
async fn another_organizations_auditor_exports_nothing() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@acme.test").await;
    let acme = app.org(&alice, "Acme").await;
    let erin = app.user("erin@globex.test").await;
    let globex = app.org(&erin, "Globex").await;
    let grace = app.user("grace@globex.test").await;
    app.add_member(&erin, &globex, &grace, "AUDITOR").await;
    let member = app.user("m@globex.test").await;
    app.add_member(&erin, &globex, &member, "MEMBER").await;

    let (status, _, body) = export(&app, &grace, &acme, "format=jsonl").await;
    assert_eq!(status, 403);
    assert!(body.contains("FORBIDDEN") && !body.contains("organization.created"));
    let (status, _, body) = export(&app, &member, &globex, "format=jsonl").await;
    assert_eq!(status, 403, "{body}");
    let (status, _, body) = export(&app, &grace, &globex, "format=jsonl").await;
    assert_eq!(status, 200);
    assert!(!body.contains("Acme") && body.contains("Globex"), "{body}");
    let anonymous = app
        .http
        .get(format!("{}/audit/export", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

/// Retention is enforced without anyone asking: the scheduled run purges, in each
/// organization that set a retention, what is older than it, records the purge as the
/// system's event, leaves a chain that verifies, and leaves organizations without a
/// retention alone.
#[tokio::test]
async fn the_retention_run_purges_only_where_a_retention_is_set() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let kept = app.org(&owner, "Keeps everything").await;
    let org = app.org(&owner, "Acme").await;
    for target in [&kept, &org] {
        app.api_key(&owner, target, "VIEWER").await;
    }
    app.gql("mutation { setAuditRetention(input: {keepDays: 30}) { keepDays } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
    let kept_before = verify(&app, &owner, &kept).await["checked"]
        .as_i64()
        .unwrap();

    // Nothing is 30 days old yet.
    let early = app.retention_run().await;
    assert_eq!((early.purged_events, early.failed), (0, 0), "{early:?}");

    app.clock.advance(chrono::Duration::days(31));
    let owner = app.relog(&owner).await;
    app.api_key(&owner, &org, "VIEWER").await;
    let report = app.retention_run().await;
    // organization.created, api_key.created and the retention change (seq 1 to 3) went;
    // the key created after the clock moved (4) and the purge (5) stay.
    assert_eq!(report.purged_organizations, 1, "{report:?}");
    assert_eq!(report.failed, 0, "{report:?}");
    let remaining = events(&app, &owner, &org, json!({})).await;
    assert_eq!(actions_of(&remaining), ["api_key.created", "audit.purged"]);
    let purge = &remaining[1];
    assert_eq!(purge["actorType"], "system", "{purge}");
    assert_eq!(
        report.purged_events,
        purge["seq"].as_u64().unwrap() - 2,
        "every event before the new key went: {purge}"
    );
    let after = verify(&app, &owner, &org).await;
    assert_eq!(after["valid"], true, "{after}");

    // The organization without a retention keeps everything.
    let kept_after = verify(&app, &owner, &kept).await;
    assert_eq!(kept_after["valid"], true);
    assert_eq!(kept_after["checked"].as_i64().unwrap(), kept_before);

    // A second run finds nothing more to purge.
    let again = app.retention_run().await;
    assert_eq!((again.purged_events, again.failed), (0, 0), "{again:?}");
}

#[tokio::test]
async fn a_purge_removes_expired_events_records_itself_and_leaves_a_verifiable_chain() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let admin = app.user("admin@example.com").await;
    app.add_member(&owner, &org, &admin, "ADMIN").await;
    for _ in 0..3 {
        app.api_key(&owner, &org, "VIEWER").await;
    }
    let set = "mutation($d: Int) { setAuditRetention(input: {keepDays: $d}) { keepDays } }";
    assert_eq!(
        app.gql(set)
            .vars(json!({ "d": 30 }))
            .as_user(&admin)
            .in_org(&org)
            .send()
            .await
            .code(),
        "FORBIDDEN"
    );
    assert_eq!(
        app.gql(set)
            .vars(json!({ "d": 0 }))
            .as_user(&owner)
            .in_org(&org)
            .send()
            .await
            .code(),
        "BAD_USER_INPUT"
    );
    app.gql(set)
        .vars(json!({ "d": 30 }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();

    // Nothing is old enough yet.
    let purge = "mutation { purgeAuditEvents { throughSeq purged } }";
    let early = app.gql(purge).as_user(&owner).in_org(&org).send().await;
    assert_eq!(early.data()["purgeAuditEvents"]["purged"], 0);

    app.clock.advance(chrono::Duration::days(31));
    let owner = app.relog(&owner).await;
    app.api_key(&owner, &org, "VIEWER").await;
    let before = verify(&app, &owner, &org).await;
    assert_eq!(before["valid"], true);
    let purged = app.gql(purge).as_user(&owner).in_org(&org).send().await;
    let report = &purged.data()["purgeAuditEvents"];
    // organization.created, invitation.created, invitation.accepted, 3 keys, retention
    // change, (empty purges record nothing).
    assert_eq!(report["purged"], 7, "{report}");
    assert_eq!(report["throughSeq"], 7);

    let remaining = events(&app, &owner, &org, json!({})).await;
    assert_eq!(actions_of(&remaining), ["api_key.created", "audit.purged"]);
    let after = verify(&app, &owner, &org).await;
    assert_eq!(after["valid"], true, "{after}");

    // Deleting past the anchor without a purge is still found.
    let db = raw_db(&app).await;
    let disable = if on_postgres() {
        "ALTER TABLE audit_events DISABLE TRIGGER USER"
    } else {
        "DROP TRIGGER audit_events_no_delete"
    };
    exec(&db, disable).await;
    exec(
        &db,
        "DELETE FROM audit_events WHERE action = 'api_key.created' AND seq = 8",
    )
    .await;
    let broken = verify(&app, &owner, &org).await;
    assert_eq!(broken["valid"], false, "{broken}");
    assert_eq!(broken["broken"]["seq"], 9);
}

/// On PostgreSQL the database hashes appends (`audit_append`) and Rust verifies them:
/// both must serialize quotes, backslashes, control characters and non-ASCII text alike.
#[tokio::test]
async fn values_with_quotes_controls_and_unicode_hash_alike_in_the_database_and_in_rust() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Ächme \"Q\" \\ ✓").await;
    for name in [
        "quote \" backslash \\ slash /",
        "tab\tnewline\nbell\u{7} nul-free \u{1f}",
        "ünïcödé ✓ 😀 \u{2028}",
    ] {
        app.gql("mutation($n: String!) { createProject(input: {name: $n}) { project { id } } }")
            .vars(json!({ "n": name }))
            .as_user(&owner)
            .in_org(&org)
            .send()
            .await
            .data();
    }
    let report = verify(&app, &owner, &org).await;
    assert_eq!(report["valid"], true, "{report}");
    assert!(report["checked"].as_u64().unwrap() >= 4, "{report}");

    // On PostgreSQL the database both appends and serializes for verification: check its
    // stored hashes against the definition (SHA-256 of a serde_json array of the stored
    // values), computed here independently.
    if on_postgres() {
        use sha2::{Digest, Sha256};
        let db = app.owner_db().await;
        let rows = db
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT organization_id::text, seq, id::text, occurred_at, actor_type, actor_id, \
                 impersonator_id, action, target_type, target_id, outcome, diff, request_id, \
                 operation, client, prev_hash, hash FROM audit_events ORDER BY organization_id, seq",
            ))
            .await
            .unwrap();
        assert!(rows.len() >= 4);
        for row in rows {
            let text = |i: usize| row.try_get_by_index::<Option<String>>(i).unwrap();
            let seq: i64 = row.try_get_by_index(1).unwrap();
            let canonical = json!([
                text(0),
                seq,
                text(2),
                text(3),
                text(4),
                text(5),
                text(6),
                text(7),
                text(8),
                text(9),
                text(10),
                text(11),
                text(12),
                text(13),
                text(14),
                text(15),
            ])
            .to_string();
            let expected: String = Sha256::digest(canonical.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(text(16).unwrap(), expected, "seq {seq}: {canonical}");
        }
    }
}

/// `auditEvents(orderBy: NEWEST_FIRST)` puts what just happened on the first page; its
/// cursors page towards older events, without gaps or repeats, and another
/// organization's events never appear.
#[tokio::test]
async fn audit_events_can_be_read_newest_first() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let other = app.org(&owner, "Globex").await;
    let create = "mutation($n: String!) { createProject(input: {name: $n}) { project { id } } }";
    for name in ["One", "Two", "Three"] {
        app.gql(create)
            .vars(json!({ "n": name }))
            .as_user(&owner)
            .in_org(&org)
            .send()
            .await
            .data();
    }
    let theirs = app
        .gql(create)
        .vars(json!({ "n": "Theirs" }))
        .as_user(&owner)
        .in_org(&other)
        .send()
        .await;
    let theirs = theirs.data()["createProject"]["project"]["id"].clone();

    let page = |order: &'static str, first: i32, after: Option<String>| {
        app.gql(
            "query($o: ListOrder!, $f: Int, $a: String) { auditEvents(orderBy: $o, first: $f, after: $a) \
             { edges { node { seq action targetId } } pageInfo { hasNextPage endCursor } } }",
        )
        .vars(json!({ "o": order, "f": first, "a": after }))
        .as_user(&owner)
        .in_org(&org)
        .send()
    };
    let oldest_first = page("OLDEST_FIRST", 100, None).await;
    let mut all: Vec<i64> = oldest_first.data()["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["seq"].as_i64().unwrap())
        .collect();
    assert!(all.len() >= 4, "{all:?}");
    assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
    all.reverse();

    let mut newest_first = Vec::new();
    let mut after = None;
    loop {
        let answer = page("NEWEST_FIRST", 2, after.clone()).await;
        let data = &answer.data()["auditEvents"];
        for edge in data["edges"].as_array().unwrap() {
            assert_ne!(
                edge["node"]["targetId"], theirs,
                "another organization's event"
            );
            newest_first.push(edge["node"]["seq"].as_i64().unwrap());
        }
        if data["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = data["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(newest_first, all, "newest first, every event once");
    let first = page("NEWEST_FIRST", 1, None).await;
    assert_eq!(
        first.data()["auditEvents"]["edges"][0]["node"]["action"],
        "project.created"
    );
}

/// An audit event is a `Node`: `node(id:)` fetches it in its organization only, and it
/// names its actor and target by global ids that `nodes(ids:)` resolves.
#[tokio::test]
async fn an_audit_event_is_a_node_naming_its_actor_and_target_by_global_id() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let bob = app.user("bob@example.com").await;
    let globex = app.org(&bob, "Globex").await;
    let created = app
        .gql("mutation { createProject(input: {name: \"Audited\"}) { project { id } } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    let project = created.data()["createProject"]["project"]["id"].clone();

    let latest = app
        .gql("{ auditEvents(orderBy: NEWEST_FIRST, first: 1) { nodes { id action actorGlobalId targetGlobalId } } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    let event = latest.data()["auditEvents"]["nodes"][0].clone();
    assert_eq!(event["action"], "project.created");
    assert_eq!(event["targetGlobalId"], project);
    assert_eq!(event["actorGlobalId"], owner.id);

    let node =
        "query($id: ID!) { node(id: $id) { id ... on AuditEvent { action targetGlobalId } } }";
    let fetched = app
        .gql(node)
        .vars(json!({ "id": event["id"] }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(fetched.data()["node"]["id"], event["id"]);
    assert_eq!(fetched.data()["node"]["action"], "project.created");

    let named = app
        .gql("query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Project { name } ... on User { name } } }")
        .vars(json!({ "ids": [event["actorGlobalId"], event["targetGlobalId"]] }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(named.data()["nodes"][0]["id"], owner.id);
    assert_eq!(named.data()["nodes"][1]["name"], "Audited");

    // Another organization's owner gets nothing, whichever organization they name.
    for in_org in [None, Some(&globex), Some(&org)] {
        let mut request = app
            .gql(node)
            .vars(json!({ "id": event["id"] }))
            .as_user(&bob);
        if let Some(in_org) = in_org {
            request = request.in_org(in_org);
        }
        let answer = request.send().await;
        assert!(answer.body["data"]["node"].is_null(), "{}", answer.body);
        assert!(!answer.body.to_string().contains("project.created"));
    }
}

/// A busy organization's writes do not wait for each other's commits (PostgreSQL): while
/// another transaction holds the organization's chain lock, mutations still commit at
/// once; their events wait unchained (verification counts them, readers do not list
/// them yet) and are chained after commit, in order and gap-free, once the lock is free.
/// On SQLite every event is chained in place.
#[tokio::test]
async fn events_that_find_the_chain_busy_are_chained_after_their_commit() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let other = app.org(&owner, "Globex").await;
    let create =
        "mutation($n: String!) { createApiKey(input: {name: $n, role: VIEWER}) { apiKey { id } } }";
    let created = |n: usize| {
        app.gql(create)
            .vars(json!({ "n": format!("busy-{n}") }))
            .as_user(&owner)
            .in_org(&org)
            .send()
    };
    let before = events(&app, &owner, &org, json!({})).await.len();
    let holder = if on_postgres() {
        use sea_orm::TransactionTrait;
        let tx = app.owner_db().await.begin().await.unwrap();
        tx.execute_unprepared(&format!(
            "SELECT pg_advisory_xact_lock(hashtextextended('audit:{}', 0))",
            org.org_id()
        ))
        .await
        .unwrap();
        Some(tx)
    } else {
        None
    };
    for n in 0..5 {
        // Under the previous design these waited for the holder's commit.
        tokio::time::timeout(std::time::Duration::from_secs(10), created(n))
            .await
            .expect("a mutation waited for another transaction's commit")
            .data();
    }
    let waiting = unsealed(&app, &owner, &org).await;
    assert_eq!(waiting["valid"], true, "{waiting}");
    let listed = events(&app, &owner, &org, json!({"action": "api_key.created"})).await;
    if let Some(holder) = holder {
        assert!(waiting["unsealed"].as_i64().unwrap() >= 5, "{waiting}");
        assert!(waiting["oldestUnsealedAt"].is_string(), "{waiting}");
        assert!(
            listed.is_empty(),
            "unchained events were listed: {listed:?}"
        );
        // The other organization's chain is not held up.
        let elsewhere = unsealed(&app, &owner, &other).await;
        assert_eq!(elsewhere["unsealed"], 0, "{elsewhere}");
        holder.commit().await.unwrap();
    } else {
        assert_eq!(waiting["unsealed"], 0, "{waiting}");
        assert_eq!(waiting["oldestUnsealedAt"], Value::Null, "{waiting}");
        assert_eq!(listed.len(), 5);
    }
    let sealed = all_sealed(&app, &owner, &org).await;
    assert_eq!(sealed["valid"], true, "{sealed}");
    assert_eq!(verify(&app, &owner, &org).await["valid"], true);
    let all = events(&app, &owner, &org, json!({})).await;
    assert!(all.len() >= before + 5);
    let keys: Vec<&Value> = all
        .iter()
        .filter(|e| e["action"] == "api_key.created")
        .collect();
    assert_eq!(keys.len(), 5);
    // Chained in the order they were recorded, one after the other.
    let seqs: Vec<i64> = keys.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    let mut sorted = seqs.clone();
    sorted.sort();
    assert_eq!(
        seqs, sorted,
        "listed in id order, chained in the same order"
    );
    sorted.dedup();
    assert_eq!(sorted.len(), 5);
}

/// Events an instance left waiting when it stopped (written here straight into the
/// inbox, as its committed transactions would have) are chained by the organization's
/// next write, before that write's own event, or by any instance's sweep.
#[tokio::test]
async fn events_left_waiting_are_sealed_by_the_next_write_or_the_sweep() {
    if !on_postgres() {
        // SQLite never leaves an event unchained: its appends hold the database lock.
        return;
    }
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let db = app.owner_db().await;
    let leave = |action: &'static str| {
        let db = db.clone();
        let org = org.org_id();
        async move {
            exec(
                &db,
                &format!(
                    "INSERT INTO audit_inbox (organization_id, id, occurred_at, actor_type, action, target_type, outcome, diff)
                     VALUES ('{org}', '{}', '2026-01-01T00:00:00.000000Z', 'system', '{action}', 'test', 'success', '[]')",
                    uuid::Uuid::now_v7()
                ),
            )
            .await;
        }
    };
    // The next write chains what waits first.
    leave("test.left_before_a_write").await;
    app.gql("mutation { createApiKey(input: {name: \"next\", role: VIEWER}) { apiKey { id } } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
    let all = events(&app, &owner, &org, json!({})).await;
    let seq_of = |action: &str| {
        all.iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("{action} not chained: {all:?}"))["seq"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(
        seq_of("test.left_before_a_write") + 1,
        seq_of("api_key.created")
    );
    // Without a write, the sweep finds it.
    leave("test.left_behind").await;
    leave("test.left_behind_too").await;
    let swept = app.state.tenancy.seal_every_audit_inbox().await.unwrap();
    assert_eq!(
        swept,
        tenancy::SealSweep {
            organizations: 1,
            events: 2
        }
    );
    let report = all_sealed(&app, &owner, &org).await;
    assert_eq!(report["valid"], true, "{report}");
    let all = events(&app, &owner, &org, json!({})).await;
    assert!(all.iter().any(|e| e["action"] == "test.left_behind_too"));
    assert_eq!(verify(&app, &owner, &org).await["valid"], true);
    // Nothing is left for a second sweep.
    assert_eq!(
        app.state.tenancy.seal_every_audit_inbox().await.unwrap(),
        tenancy::SealSweep::default()
    );
}

/// The application role may add to an inbox and read its own organization's, but never
/// change or remove an event waiting there, and cannot seal another organization's.
#[tokio::test]
async fn the_application_cannot_remove_waiting_events_or_seal_another_organization() {
    if !on_postgres() {
        return; // PostgreSQL's grants and functions
    }
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let other = app.org(&owner, "Globex").await;
    let db = app.app_db().await;
    use sea_orm::TransactionTrait;
    let tx = db.begin().await.unwrap();
    tx.execute_unprepared(&format!(
        "SELECT set_config('app.org_id', '{}', true)",
        org.org_id()
    ))
    .await
    .unwrap();
    for sql in [
        "UPDATE audit_inbox SET action = 'x'".to_owned(),
        "DELETE FROM audit_inbox".to_owned(),
        format!("SELECT audit_seal('{}', 10)", other.org_id()),
    ] {
        let refused = tx
            .execute_unprepared("SAVEPOINT s")
            .await
            .and(tx.execute_unprepared(&sql).await);
        assert!(refused.is_err(), "{sql} was allowed");
        tx.execute_unprepared("ROLLBACK TO SAVEPOINT s")
            .await
            .unwrap();
    }
    tx.rollback().await.unwrap();
}
