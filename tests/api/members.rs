//! Roles, removal, leaving, and the organization that always keeps an owner.

use crate::helpers::TestApp;
use serde_json::json;

const CHANGE: &str = "mutation($id: ID!, $r: Role!) { changeMemberRole(input: {memberId: $id, role: $r}) { membership { role } } }";
const REMOVE: &str =
    "mutation($id: ID!) { removeMember(input: {memberId: $id}) { removedMemberId } }";
const LEAVE: &str = "mutation { leaveOrganization { organizationId } }";

async fn own_membership_id(
    app: &TestApp,
    user: &crate::helpers::TestUser,
    org: &crate::helpers::TestOrg,
) -> String {
    let response = app
        .gql("{ viewer { membership { id } } }")
        .as_user(user)
        .in_org(org)
        .send()
        .await;
    response.data()["viewer"]["membership"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_last_owner_can_be_neither_demoted_nor_removed_nor_leave() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let org = app.org(&alice, "Acme").await;
    let alice_member = own_membership_id(&app, &alice, &org).await;

    let demote = app
        .gql(CHANGE)
        .vars(json!({ "id": alice_member, "r": "ADMIN" }))
        .as_user(&alice)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(demote.code(), "CONFLICT");
    assert_eq!(
        app.gql(REMOVE)
            .vars(json!({ "id": alice_member }))
            .as_user(&alice)
            .in_org(&org)
            .send()
            .await
            .code(),
        "CONFLICT"
    );
    assert_eq!(
        app.gql(LEAVE)
            .as_user(&alice)
            .in_org(&org)
            .send()
            .await
            .code(),
        "CONFLICT"
    );

    // With a second owner, the first may step down.
    let bob = app.user("bob@example.com").await;
    app.add_member(&alice, &org, &bob, "OWNER").await;
    let stepped = app
        .gql(CHANGE)
        .vars(json!({ "id": alice_member, "r": "MEMBER" }))
        .as_user(&alice)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(
        stepped.data()["changeMemberRole"]["membership"]["role"],
        "MEMBER"
    );
    assert_eq!(
        app.gql(LEAVE)
            .as_user(&bob)
            .in_org(&org)
            .send()
            .await
            .code(),
        "CONFLICT"
    );
    assert!(
        app.gql(LEAVE)
            .as_user(&alice)
            .in_org(&org)
            .send()
            .await
            .body
            .get("errors")
            .is_none()
    );
    let gone = app
        .gql("{ viewer { activeOrganization { id } } }")
        .as_user(&alice)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(gone.code(), "FORBIDDEN");
}

#[tokio::test]
async fn admins_manage_members_but_never_owners_and_members_manage_nobody() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let org = app.org(&alice, "Acme").await;
    let alice_member = own_membership_id(&app, &alice, &org).await;
    let admin = app.user("admin@example.com").await;
    app.add_member(&alice, &org, &admin, "ADMIN").await;
    let carol = app.user("carol@example.com").await;
    let carol_member = app.add_member(&alice, &org, &carol, "MEMBER").await;

    let promote = app
        .gql(CHANGE)
        .vars(json!({ "id": carol_member, "r": "AUDITOR" }))
        .as_user(&admin)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(
        promote.data()["changeMemberRole"]["membership"]["role"],
        "AUDITOR"
    );
    // An admin holds no billing permissions, so cannot hand them out.
    let billing = app
        .gql(CHANGE)
        .vars(json!({ "id": carol_member, "r": "BILLING_ADMIN" }))
        .as_user(&admin)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(billing.code(), "FORBIDDEN");
    let to_owner = app
        .gql(CHANGE)
        .vars(json!({ "id": carol_member, "r": "OWNER" }))
        .as_user(&admin)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(to_owner.code(), "FORBIDDEN");
    let demote_owner = app
        .gql(CHANGE)
        .vars(json!({ "id": alice_member, "r": "VIEWER" }))
        .as_user(&admin)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(demote_owner.code(), "FORBIDDEN");
    assert_eq!(
        app.gql(REMOVE)
            .vars(json!({ "id": alice_member }))
            .as_user(&admin)
            .in_org(&org)
            .send()
            .await
            .code(),
        "FORBIDDEN"
    );
    assert_eq!(
        app.gql(REMOVE)
            .vars(json!({ "id": carol_member }))
            .as_user(&carol)
            .in_org(&org)
            .send()
            .await
            .code(),
        "FORBIDDEN"
    );

    let removed = app
        .gql(REMOVE)
        .vars(json!({ "id": carol_member }))
        .as_user(&admin)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(
        removed.data()["removeMember"]["removedMemberId"],
        carol_member
    );
    let gone = app
        .gql("{ viewer { activeOrganization { id } } }")
        .as_user(&carol)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(gone.code(), "FORBIDDEN");
    assert_eq!(
        app.gql(REMOVE)
            .vars(json!({ "id": carol_member }))
            .as_user(&admin)
            .in_org(&org)
            .send()
            .await
            .code(),
        "NOT_FOUND"
    );
}
