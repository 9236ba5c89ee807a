//! The tenant boundary through GraphQL: a member of organization B gets nothing of
//! organization A by header, by `node`, by `nodes`, by lists or by mutations on A's ids,
//! and the answers look exactly like those for ids that do not exist.

use crate::helpers::{TestApp, TestOrg, TestUser};
use serde_json::json;

struct TwoOrgs {
    app: TestApp,
    alice: TestUser,
    acme: TestOrg,
    bob: TestUser,
    globex: TestOrg,
    acme_member_id: String,
    acme_invitation_id: String,
    acme_key_id: String,
    acme_key_secret: String,
    carol: TestUser,
}

async fn two_orgs() -> TwoOrgs {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@acme.test").await;
    let acme = app.org(&alice, "Acme").await;
    let carol = app.user("carol@acme.test").await;
    let acme_member_id = app.add_member(&alice, &acme, &carol, "MEMBER").await;
    let invited = app
        .invite(&alice, &acme, "pending@acme.test", "VIEWER")
        .await;
    let acme_invitation_id = invited.data()["inviteMember"]["invitation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (acme_key_id, acme_key_secret) = app.api_key(&alice, &acme, "ADMIN").await;
    let bob = app.user("bob@globex.test").await;
    let globex = app.org(&bob, "Globex").await;
    TwoOrgs {
        app,
        alice,
        acme,
        bob,
        globex,
        acme_member_id,
        acme_invitation_id,
        acme_key_id,
        acme_key_secret,
        carol,
    }
}

#[tokio::test]
async fn another_organizations_header_is_forbidden_with_nothing_of_it_in_the_answer() {
    let t = two_orgs().await;
    let query = "{ viewer { activeOrganization { id name } membership { role } } }";
    let response = t
        .app
        .gql(query)
        .as_user(&t.bob)
        .in_org(&t.acme)
        .send()
        .await;
    assert_eq!(response.code(), "FORBIDDEN");
    let text = response.body.to_string();
    assert!(
        !text.contains("Acme") && !text.contains("alice"),
        "leaked: {text}"
    );
    assert!(response.body["data"].is_null() || response.body["data"]["viewer"].is_null());

    for mutation in [
        "mutation { inviteMember(input: {email: \"x@y.test\", role: MEMBER}) { token } }",
        "mutation { createApiKey(input: {trustedDocumentsOnly: false, name: \"k\", role: VIEWER}) { secret } }",
        "mutation { leaveOrganization { organizationId } }",
    ] {
        let response = t
            .app
            .gql(mutation)
            .as_user(&t.bob)
            .in_org(&t.acme)
            .send()
            .await;
        assert_eq!(response.code(), "FORBIDDEN", "{mutation}");
    }
}

#[tokio::test]
async fn node_and_nodes_answer_null_for_another_organizations_records_as_for_missing_ones() {
    let t = two_orgs().await;
    let ids = [
        t.acme.id.clone(),
        t.acme_member_id.clone(),
        t.acme_invitation_id.clone(),
        t.acme_key_id.clone(),
        t.alice.id.clone(),
    ];
    // Alice sees each of them (proving the ids are real)...
    for id in &ids {
        let seen = t
            .app
            .gql("query($id: ID!) { node(id: $id) { id } }")
            .vars(json!({ "id": id }))
            .as_user(&t.alice)
            .in_org(&t.acme)
            .send()
            .await;
        assert_eq!(seen.data()["node"]["id"], *id);
    }
    // ...Bob sees none, with or without naming his own organization.
    for id in &ids {
        for org in [None, Some(&t.globex)] {
            let mut request = t
                .app
                .gql("query($id: ID!) { node(id: $id) { id } }")
                .vars(json!({ "id": id }))
                .as_user(&t.bob);
            if let Some(org) = org {
                request = request.in_org(org);
            }
            let response = request.send().await;
            assert!(response.data()["node"].is_null(), "{id}: {}", response.body);
        }
    }
    let nodes = t
        .app
        .gql("query($ids: [ID!]!) { nodes(ids: $ids) { id } }")
        .vars(json!({ "ids": ids }))
        .as_user(&t.bob)
        .send()
        .await;
    assert_eq!(nodes.data()["nodes"], json!([null, null, null, null, null]));
}

#[tokio::test]
async fn lists_hold_only_the_callers_organization() {
    let t = two_orgs().await;
    let query = "{ viewer { organizations { nodes { name members { edges { node { user { email } } } } } } } }";
    let response = t.app.gql(query).as_user(&t.bob).send().await;
    let text = response.data().to_string();
    assert!(text.contains("bob@globex.test"));
    assert!(!text.contains("acme"), "leaked: {text}");

    // Asking for Acme's lists through Acme's organization node as Bob: null.
    let lists = format!(
        "{{ node(id: \"{}\") {{ ... on Organization {{ members {{ edges {{ node {{ id }} }} }} invitations {{ edges {{ node {{ id }} }} }} apiKeys {{ edges {{ node {{ id }} }} }} }} }} }}",
        t.acme.id
    );
    assert!(t.app.gql(&lists).as_user(&t.bob).send().await.data()["node"].is_null());
}

#[tokio::test]
async fn mutations_on_another_organizations_ids_are_not_found() {
    let t = two_orgs().await;
    let cases = [
        (
            "mutation($id: ID!) { changeMemberRole(input: {memberId: $id, role: ADMIN}) { membership { id } } }",
            &t.acme_member_id,
        ),
        (
            "mutation($id: ID!) { removeMember(input: {memberId: $id}) { removedMemberId } }",
            &t.acme_member_id,
        ),
        (
            "mutation($id: ID!) { revokeInvitation(input: {invitationId: $id}) { invitation { id } } }",
            &t.acme_invitation_id,
        ),
        (
            "mutation($id: ID!) { resendInvitation(input: {invitationId: $id}) { token } }",
            &t.acme_invitation_id,
        ),
        (
            "mutation($id: ID!) { revokeApiKey(input: {apiKeyId: $id}) { apiKey { id } } }",
            &t.acme_key_id,
        ),
    ];
    for (mutation, id) in cases {
        for org in [None, Some(&t.globex), Some(&t.acme)] {
            let mut request = t
                .app
                .gql(mutation)
                .vars(json!({ "id": id }))
                .as_user(&t.bob);
            if let Some(org) = org {
                request = request.in_org(org);
            }
            let code = request.send().await.code().to_owned();
            assert_eq!(
                code,
                "NOT_FOUND",
                "{mutation} with {:?}",
                org.map(|o| &o.id)
            );
        }
    }
    // Nothing changed in Acme: Carol is still a member, the key still works.
    let still = t
        .app
        .gql("{ viewer { membership { role } } }")
        .as_user(&t.carol)
        .in_org(&t.acme)
        .send()
        .await;
    assert_eq!(still.data()["viewer"]["membership"]["role"], "MEMBER");
    let key = t
        .app
        .gql("{ viewer { activeOrganization { name } } }")
        .bearer(&t.acme_key_secret)
        .send()
        .await;
    assert_eq!(key.data()["viewer"]["activeOrganization"]["name"], "Acme");
}

#[tokio::test]
async fn an_api_key_acts_only_in_its_own_organization() {
    let t = two_orgs().await;
    let response = t
        .app
        .gql("{ viewer { activeOrganization { name } } }")
        .bearer(&t.acme_key_secret)
        .in_org(&t.globex)
        .send()
        .await;
    assert_eq!(response.code(), "FORBIDDEN");
    assert!(!response.body.to_string().contains("Globex"));
    let node = t
        .app
        .gql("query($id: ID!) { node(id: $id) { id } }")
        .vars(json!({ "id": t.globex.id }))
        .bearer(&t.acme_key_secret)
        .send()
        .await;
    assert!(node.data()["node"].is_null());
}
