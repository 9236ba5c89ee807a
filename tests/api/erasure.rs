//! Erasure of a person's account (GDPR Art. 17): after `deleteAccount` their email, name
//! and address appear nowhere in the database in plaintext, on both engines; every audit
//! chain still verifies; what they authored reads "Deleted user"; the last owner of an
//! organization is refused first; and the ledger re-applies an erasure to a restored row.

use crate::helpers::{TestApp, TestOrg};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::json;

const EMAIL: &str = "zelda.plaintext@example.com";
const NAME: &str = "Zelda Quintero-Plaintext";
const PASSWORD: &str = "zelda-password-1";
/// The address Zelda's requests come from (everyone else's is 127.0.0.1).
const ADDRESS: &str = "127.0.0.77";

/// Every `table.column` whose text holds `needle` (case-insensitively).
async fn plaintext(app: &TestApp, needle: &str) -> Vec<String> {
    let (db, backend) = app.whole_database().await;
    let needle = needle.to_lowercase().replace('\'', "''");
    let mut found = Vec::new();
    for (table, column) in app.catalog().await {
        let text = if backend == DbBackend::Postgres {
            format!("\"{column}\"::text")
        } else {
            format!("CAST(\"{column}\" AS TEXT)")
        };
        let sql = format!("SELECT count(*) FROM \"{table}\" WHERE lower({text}) LIKE '%{needle}%'");
        let count: i64 = db
            .query_one_raw(Statement::from_string(backend, sql))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index(0)
            .unwrap();
        if count > 0 {
            found.push(format!("{table}.{column} ({count})"));
        }
    }
    found
}

/// Signs Zelda up and logs her in from her own address; returns her access token.
async fn zelda(app: &TestApp) -> String {
    app.gql("mutation($i: SignUpInput!) { signUp(input: $i) { user { id } } }")
        .vars(json!({ "i": { "email": EMAIL, "password": PASSWORD, "name": NAME } }))
        .sent_from(ADDRESS)
        .send()
        .await
        .data();
    // A wrong password first: throttling and the audit trail see her address.
    let wrong = app.log_in_from(ADDRESS, EMAIL, "not-her-password").await;
    assert_eq!(wrong.code(), "UNAUTHENTICATED");
    let tokens = app.log_in_from(ADDRESS, EMAIL, PASSWORD).await;
    tokens.data()["logIn"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn delete(app: &TestApp, token: &str, password: &str) -> crate::helpers::GqlResponse {
    app.gql("mutation($p: String!) { deleteAccount(input: {password: $p}) { deletedUserId } }")
        .vars(json!({ "p": password }))
        .bearer(token)
        .sent_from(ADDRESS)
        .send()
        .await
}

async fn accept(app: &TestApp, token: &str, invitation: &str) {
    app.gql("mutation($t: String!) { acceptInvitation(input: {token: $t}) { membership { id } } }")
        .vars(json!({ "t": invitation }))
        .bearer(token)
        .sent_from(ADDRESS)
        .send()
        .await
        .data();
}

#[tokio::test]
async fn a_deleted_account_leaves_no_plaintext_and_every_chain_verifies() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let acme = app.org(&alice, "Acme").await;
    let token = zelda(&app).await;

    // Zelda joins Acme as an admin and works there: a project, a document, a key, an
    // invitation she sends.
    let invited = app.invite(&alice, &acme, EMAIL, "ADMIN").await;
    accept(
        &app,
        &token,
        invited.data()["inviteMember"]["token"].as_str().unwrap(),
    )
    .await;
    let in_acme = |query: &str| {
        app.gql(query)
            .bearer(&token)
            .org_header(&acme.id)
            .sent_from(ADDRESS)
    };
    let project =
        in_acme("mutation { createProject(input: {name: \"Roadmap\"}) { project { id } } }")
            .send()
            .await;
    let project = project.data()["createProject"]["project"]["id"].clone();
    in_acme("mutation($p: ID!) { createDocument(input: {projectId: $p, title: \"Plan\"}) { document { id } } }")
        .vars(json!({ "p": project }))
        .send()
        .await
        .data();
    let key =
        in_acme("mutation { createApiKey(input: {trustedDocumentsOnly: false, name: \"zelda's\", role: MEMBER}) { secret } }")
            .send()
            .await;
    let key = key.data()["createApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let sent = in_acme("mutation { inviteMember(input: {email: \"friend@example.com\", role: VIEWER}) { invitation { id } } }")
        .send()
        .await;
    let sent = sent.data()["inviteMember"]["invitation"]["id"].clone();

    // Her own organization: as its last owner she is refused, before anything changes.
    let own = app
        .gql("mutation { createOrganization(input: {name: \"Zelda Co\"}) { organization { id } } }")
        .bearer(&token)
        .send()
        .await;
    let own = TestOrg {
        id: own.data()["createOrganization"]["organization"]["id"]
            .as_str()
            .unwrap()
            .to_owned(),
    };
    let refused = delete(&app, &token, PASSWORD).await;
    assert_eq!(refused.code(), "CONFLICT", "{}", refused.body);
    assert_eq!(refused.error()["extensions"]["reason"], "LAST_OWNER");
    let wrong = delete(&app, &token, "not-her-password").await;
    assert_eq!(wrong.code(), "UNAUTHENTICATED");
    assert!(
        !plaintext(&app, EMAIL).await.is_empty(),
        "nothing changed yet"
    );
    // Alice becomes a second owner of Zelda Co; now Zelda may go.
    let co_owner = app
        .gql("mutation { inviteMember(input: {email: \"alice@example.com\", role: OWNER}) { token } }")
        .bearer(&token)
        .org_header(&own.id)
        .send()
        .await;
    app.gql("mutation($t: String!) { acceptInvitation(input: {token: $t}) { membership { id } } }")
        .vars(json!({ "t": co_owner.data()["inviteMember"]["token"] }))
        .as_user(&alice)
        .send()
        .await
        .data();

    let deleted = delete(&app, &token, PASSWORD).await;
    assert!(deleted.data()["deleteAccount"]["deletedUserId"].is_string());

    // Nothing of hers in plaintext, anywhere.
    for needle in [EMAIL, NAME, ADDRESS] {
        let found = plaintext(&app, needle).await;
        assert!(found.is_empty(), "{needle} is still in {found:?}");
    }
    // Her credentials are dead; what she authored reads "Deleted user"; the invitation
    // she sent is revoked.
    let me = app
        .gql("{ viewer { user { id } } }")
        .bearer(&token)
        .send()
        .await;
    assert_eq!(me.code(), "UNAUTHENTICATED");
    assert_eq!(app.log_in(EMAIL, PASSWORD).await.code(), "UNAUTHENTICATED");
    // The placeholder address with any password: wrong credentials, not an error.
    let (db, backend) = app.whole_database().await;
    let placeholder: String = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT email FROM users WHERE name = 'Deleted user'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index(0)
        .unwrap();
    assert_eq!(
        app.log_in(&placeholder, PASSWORD).await.code(),
        "UNAUTHENTICATED"
    );
    let by_key = app
        .gql("{ projects(first: 1) { edges { node { id } } } }")
        .bearer(&key);
    assert_eq!(by_key.send().await.code(), "UNAUTHENTICATED");
    let documents = app
        .gql("{ documents(first: 5) { edges { node { title author { name } } } } }")
        .as_user(&alice)
        .in_org(&acme)
        .send()
        .await;
    assert_eq!(
        documents.data()["documents"]["edges"][0]["node"]["author"]["name"],
        "Deleted user"
    );
    let invitation = app
        .gql("query($id: ID!) { node(id: $id) { ... on Invitation { status } } }")
        .vars(json!({ "id": sent }))
        .as_user(&alice)
        .in_org(&acme)
        .send()
        .await;
    assert_eq!(invitation.data()["node"]["status"], "REVOKED");
    // Alice's organizations no longer list her; every chain verifies.
    let members = app
        .gql("{ viewer { activeOrganization { members(first: 10) { edges { node { role } } } } } }")
        .as_user(&alice)
        .in_org(&acme)
        .send()
        .await;
    let members = &members.data()["viewer"]["activeOrganization"]["members"]["edges"];
    assert_eq!(members.as_array().unwrap().len(), 1);
    let tenancy = &app.state.tenancy;
    let mut orgs = tenancy.all_organization_ids().await.unwrap();
    orgs.push(kernel::OrgId::PLATFORM);
    for org in orgs {
        let report = tenancy
            .verify_audit_chain(org, audit::Hashing::Here)
            .await
            .unwrap();
        assert!(report.broken.is_none(), "{org}: {report:?}");
        assert!(report.checked > 0);
    }
    // The erasure is recorded, and a second one is NOT_FOUND (nothing is left to erase).
    let again = delete(&app, &token, PASSWORD).await;
    assert_eq!(again.code(), "UNAUTHENTICATED");
}

#[tokio::test]
async fn the_ledger_reapplies_an_erasure_to_a_restored_account() {
    let app = TestApp::spawn().await;
    let token = zelda(&app).await;
    let (db, backend) = app.whole_database().await;
    delete(&app, &token, PASSWORD).await.data();
    assert!(plaintext(&app, EMAIL).await.is_empty());
    // The ledger holds no plaintext either.
    let ledger = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT count(*) FROM erasure_requests WHERE completed_at IS NOT NULL",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ledger.try_get_by_index::<i64>(0).unwrap(), 1);

    // The ledger is exported and kept beside the backups (pseudonymous).
    let operator = app.operator().await;
    let exported = operator.tenancy.erasure_ledger_ndjson().await.unwrap();
    assert_eq!(exported.lines().count(), 1);
    assert!(!exported.contains(EMAIL) && !exported.contains(NAME));

    // A backup from before the erasure brings her row back, and has no ledger entry.
    db.execute_unprepared(&format!(
        "UPDATE users SET email = '{EMAIL}', email_normalized = '{EMAIL}', name = '{NAME}'
         WHERE name = 'Deleted user'"
    ))
    .await
    .unwrap();
    db.execute_unprepared("DELETE FROM erasure_requests")
        .await
        .unwrap();
    assert!(!plaintext(&app, EMAIL).await.is_empty());
    assert_eq!(operator.tenancy.replay_erasures().await.unwrap(), 0);
    // The exported ledger brings the erasure back; importing twice adds nothing.
    assert_eq!(
        operator
            .tenancy
            .import_erasure_ledger(&exported)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        operator
            .tenancy
            .import_erasure_ledger(&exported)
            .await
            .unwrap(),
        0
    );
    let garbage = operator.tenancy.import_erasure_ledger("{not json").await;
    assert!(matches!(garbage, Err(tenancy::Error::Invalid { .. })));
    assert_eq!(operator.tenancy.replay_erasures().await.unwrap(), 1);
    assert!(plaintext(&app, EMAIL).await.is_empty());
    assert!(plaintext(&app, NAME).await.is_empty());
    // Replaying again changes nothing.
    assert_eq!(operator.tenancy.replay_erasures().await.unwrap(), 0);
}

#[tokio::test]
async fn an_operator_erases_an_account_for_a_request_received_by_mail() {
    let app = TestApp::spawn().await;
    zelda(&app).await;
    let operator = app.operator().await;
    let missing = operator
        .tenancy
        .erase_account_on_request("nobody@example.com", "operator")
        .await;
    assert!(matches!(missing, Err(tenancy::Error::NotFound { .. })));
    operator
        .tenancy
        .erase_account_on_request("  Zelda.Plaintext@Example.com ", "operator")
        .await
        .unwrap();
    for needle in [EMAIL, NAME, ADDRESS] {
        let found = plaintext(&app, needle).await;
        assert!(found.is_empty(), "{needle} is still in {found:?}");
    }
    assert_eq!(app.log_in(EMAIL, PASSWORD).await.code(), "UNAUTHENTICATED");
    let (db, backend) = app.whole_database().await;
    let by = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT requested_by FROM erasure_requests",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by.try_get_by_index::<String>(0).unwrap(), "operator");
}

#[tokio::test]
async fn the_password_check_of_delete_account_is_throttled() {
    let app = TestApp::spawn().await;
    let token = zelda(&app).await;
    // Ten wrong re-authentications, as many as wrong log-ins are allowed.
    for _ in 0..10 {
        assert_eq!(
            delete(&app, &token, "a-guess").await.code(),
            "UNAUTHENTICATED"
        );
    }
    let refused = delete(&app, &token, PASSWORD).await;
    assert_eq!(refused.code(), "RATE_LIMITED", "{}", refused.body);
    assert_eq!(refused.status, 429);
    assert!(!plaintext(&app, EMAIL).await.is_empty(), "nothing erased");
}
