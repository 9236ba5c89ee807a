//! One unit of work per operation and organization: every field and loader of an
//! operation that reads an organization shares one transaction of it, however many
//! fields, rows and loaders, and however many requests run at once.

use crate::helpers::TestApp;
use serde_json::json;

/// Tenant transactions begun while `send` runs, and its answer.
async fn transactions<F: std::future::Future<Output = crate::helpers::GqlResponse>>(
    app: &TestApp,
    send: F,
) -> (u64, crate::helpers::GqlResponse) {
    let before = app.server_db.tenant_transactions_begun();
    let response = send.await;
    (app.server_db.tenant_transactions_begun() - before, response)
}

#[tokio::test]
async fn an_operation_reads_an_organization_in_one_transaction() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let member = app.user("member@example.com").await;
    app.add_member(&owner, &org, &member, "MEMBER").await;
    let first = app.project(&owner, &org, "One").await;
    app.project(&owner, &org, "Two").await;

    // Root fields, nested lists, loaders, node lookups and permission checks of one
    // organization: one transaction.
    let query = "query($id: ID!) { \
        viewer { user { name } membership { role } activeOrganization { name viewerRole \
          members { nodes { role user { email } } } roles { name } } } \
        projects { nodes { name grants { nodes { relation } } } } \
        documents { nodes { title } } \
        node(id: $id) { ... on Project { name } } \
        nodes(ids: [$id, $id]) { id } }";
    let (count, response) = transactions(
        &app,
        app.gql(query)
            .vars(json!({ "id": first }))
            .as_user(&owner)
            .in_org(&org)
            .send(),
    )
    .await;
    let data = response.data();
    assert_eq!(
        data["viewer"]["activeOrganization"]["members"]["nodes"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(data["projects"]["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(data["node"]["name"], "One");
    assert_eq!(count, 1, "tenant transactions for one operation");

    // Eight at once: still one each.
    let before = app.server_db.tenant_transactions_begun();
    let answers = futures::future::join_all((0..8).map(|_| {
        app.gql(query)
            .vars(json!({ "id": first }))
            .as_user(&owner)
            .in_org(&org)
            .send()
    }))
    .await;
    for answer in &answers {
        assert_eq!(answer.data()["node"]["name"], "One");
    }
    assert_eq!(app.server_db.tenant_transactions_begun() - before, 8);

    // A mutation writes in its own transaction and commits once; what its answer reads
    // afterwards shares one more.
    let (count, response) = transactions(
        &app,
        app.gql("mutation { createProject(input: {name: \"Three\"}) { project { name createdAt grants { nodes { relation } } } } }")
            .as_user(&owner)
            .in_org(&org)
            .send(),
    )
    .await;
    assert_eq!(response.data()["createProject"]["project"]["name"], "Three");
    assert!(
        count <= 2,
        "{count} tenant transactions for a mutation and its answer"
    );

    // Two organizations in one operation: each read in a transaction of its own, one at
    // a time; the other organization's rows never appear in this one's.
    let other = app.org(&owner, "Globex").await;
    app.project(&owner, &other, "Theirs").await;
    let (count, response) = transactions(
        &app,
        app.gql("{ viewer { organizations { nodes { name viewerRole members { nodes { user { email } } } } } } }")
            .as_user(&owner)
            .send(),
    )
    .await;
    let organizations = response.data()["viewer"]["organizations"]["nodes"].clone();
    assert_eq!(organizations[0]["name"], "Acme");
    assert_eq!(
        organizations[0]["members"]["nodes"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(organizations[1]["name"], "Globex");
    assert_eq!(
        organizations[1]["members"]["nodes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(
        (2..=4).contains(&count),
        "{count} tenant transactions for two organizations"
    );
}

/// A mutation reads what it changes once: `updateProject` reads the project for the
/// decision and changes that row, it does not read it again.
#[tokio::test]
async fn an_update_reads_its_record_once() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let id = app.project(&owner, &org, "One").await;
    let update = "mutation($id: ID!, $n: String!) { updateProject(input: {projectId: $id, name: $n}) { project { name } } }";
    // Once to warm the policy cache.
    app.gql(update)
        .vars(json!({ "id": id, "n": "Two" }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
    let before = app.server_db.statements_executed();
    let renamed = app
        .gql(update)
        .vars(json!({ "id": id, "n": "Three" }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(renamed.data()["updateProject"]["project"]["name"], "Three");
    let statements = app.server_db.statements_executed() - before;
    // Session, standing, subscription standing, the project, the update, the actor's
    // personal-data key, the audit append (SQLite appends in two statements).
    let most = if crate::helpers::on_postgres() { 6 } else { 8 };
    assert!(
        statements <= most,
        "{statements} statements (at most {most})"
    );
}

/// Records of two organizations in one `nodes` lookup, with nested fields of each, in
/// any order: each is read in its organization's unit, the units take turns on the one
/// connection, and nothing waits forever.
#[tokio::test]
async fn records_of_two_organizations_in_one_lookup_take_turns() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let acme = app.org(&owner, "Acme").await;
    let globex = app.org(&owner, "Globex").await;
    let a = app.project(&owner, &acme, "A").await;
    let b = app.project(&owner, &globex, "B").await;
    let ids = json!([a, b, a, b, b, a]);
    let (count, response) = transactions(
        &app,
        app.gql("query($ids: [ID!]!) { nodes(ids: $ids) { ... on Project { name grants { nodes { relation } } } } }")
            .vars(json!({ "ids": ids }))
            .as_user(&owner)
            .in_org(&acme)
            .send(),
    )
    .await;
    let names: Vec<_> = response.data()["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap_or("-").to_owned())
        .collect();
    assert_eq!(names, ["A", "B", "A", "B", "B", "A"]);
    // Units of two organizations alternate, so one may be entered again: at most once
    // per field that reads (six lookups, six grant lists), never more.
    assert!(count >= 2, "{count} tenant transactions");
    assert!(
        count <= 12,
        "{count} tenant transactions for six lookups and their grants"
    );
}

/// A creation checks the suspension and the plan's limit against one read of the
/// subscription.
#[tokio::test]
async fn a_creation_reads_the_subscription_once() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    app.project(&owner, &org, "Warm").await;
    let before = app.server_db.statements_executed();
    app.project(&owner, &org, "Counted").await;
    let statements = app.server_db.statements_executed() - before;
    // 9 on both engines; 10 when the plan-limit check read the subscription again.
    let most = if crate::helpers::on_postgres() { 8 } else { 9 };
    assert!(statements <= most, "createProject: {statements} statements");
}

/// On PostgreSQL a read transaction is read-only: its unit ends without a commit round
/// trip (`TenantTx::end` queues the rollback), so a write in it must fail rather
/// than be lost. A write transaction of the same caller writes.
#[tokio::test]
async fn a_read_transaction_cannot_write() {
    use sea_orm::ConnectionTrait;
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let org = app.org(&alice, "Acme").await;
    app.project(&alice, &org, "Kept").await;
    let user = crate::helpers::global_id_uuid(&alice.id, "User").unwrap();
    let caller = tenancy::Caller::trusted(kernel::Principal::User(kernel::UserId::from_uuid(user)));
    let rename = "UPDATE projects SET name = 'Renamed'";
    for mode in [kernel::TxMode::Read, kernel::TxMode::Write] {
        let (tx, _) = app
            .state
            .tenancy
            .enter(&caller, org.org_id(), mode)
            .await
            .unwrap();
        let written = tx.conn().execute_unprepared(rename).await;
        match (mode, crate::helpers::on_postgres()) {
            (kernel::TxMode::Read, true) => {
                let error = written.unwrap_err().to_string();
                assert!(error.contains("read-only transaction"), "{error}");
            }
            _ => assert_eq!(written.unwrap().rows_affected(), 1),
        }
        tx.rollback().await.unwrap();
    }
}
