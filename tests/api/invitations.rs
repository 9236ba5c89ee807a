//! Invitations: accept once, only by the invited address; revoke; re-send; expiry.

use crate::helpers::TestApp;
use chrono::Duration;
use serde_json::json;

const ACCEPT: &str = "mutation($t: String!) { acceptInvitation(input: {token: $t}) { organization { name } membership { role } } }";

#[tokio::test]
async fn an_invitation_is_accepted_once_by_the_invited_address_only() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let org = app.org(&alice, "Acme").await;
    let invited = app.invite(&alice, &org, "Bob@Example.com", "ADMIN").await;
    assert_eq!(
        invited.data()["inviteMember"]["invitation"]["status"],
        "PENDING"
    );
    let token = invited.data()["inviteMember"]["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let mallory = app.user("mallory@example.com").await;
    let stolen = app
        .gql(ACCEPT)
        .vars(json!({ "t": token }))
        .as_user(&mallory)
        .send()
        .await;
    assert_eq!(stolen.code(), "FORBIDDEN");

    let bob = app.user("bob@example.com").await;
    let accepted = app
        .gql(ACCEPT)
        .vars(json!({ "t": token }))
        .as_user(&bob)
        .send()
        .await;
    assert_eq!(
        accepted.data()["acceptInvitation"]["organization"]["name"],
        "Acme"
    );
    assert_eq!(
        accepted.data()["acceptInvitation"]["membership"]["role"],
        "ADMIN"
    );

    let again = app
        .gql(ACCEPT)
        .vars(json!({ "t": token }))
        .as_user(&bob)
        .send()
        .await;
    assert_eq!(again.code(), "NOT_FOUND");
    let bogus = app
        .gql(ACCEPT)
        .vars(json!({ "t": "inv_nothing" }))
        .as_user(&bob)
        .send()
        .await;
    assert_eq!(bogus.code(), "NOT_FOUND");

    // A member cannot be invited again.
    assert_eq!(
        app.invite(&alice, &org, "bob@example.com", "MEMBER")
            .await
            .code(),
        "CONFLICT"
    );
}

#[tokio::test]
async fn revoked_and_superseded_tokens_stop_working_and_expired_ones_can_be_resent() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let org = app.org(&alice, "Acme").await;
    let bob = app.user("bob@example.com").await;

    let first = app.invite(&alice, &org, "bob@example.com", "MEMBER").await;
    let id = first.data()["inviteMember"]["invitation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let old_token = first.data()["inviteMember"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.invite(&alice, &org, "bob@example.com", "MEMBER")
            .await
            .code(),
        "CONFLICT"
    );

    let resend = "mutation($id: ID!) { resendInvitation(input: {invitationId: $id}) { token invitation { status } } }";
    let resent = app
        .gql(resend)
        .vars(json!({ "id": id }))
        .as_user(&alice)
        .in_org(&org)
        .send()
        .await;
    let new_token = resent.data()["resendInvitation"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.gql(ACCEPT)
            .vars(json!({ "t": old_token }))
            .as_user(&bob)
            .send()
            .await
            .code(),
        "NOT_FOUND"
    );

    app.clock.advance(Duration::days(8));
    let (alice, bob) = (app.relog(&alice).await, app.relog(&bob).await);
    assert_eq!(
        app.gql(ACCEPT)
            .vars(json!({ "t": new_token }))
            .as_user(&bob)
            .send()
            .await
            .code(),
        "CONFLICT"
    );
    let renewed = app
        .gql(resend)
        .vars(json!({ "id": id }))
        .as_user(&alice)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(
        renewed.data()["resendInvitation"]["invitation"]["status"],
        "PENDING"
    );
    let renewed_token = renewed.data()["resendInvitation"]["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let revoke = "mutation($id: ID!) { revokeInvitation(input: {invitationId: $id}) { invitation { status } } }";
    let revoked = app
        .gql(revoke)
        .vars(json!({ "id": id }))
        .as_user(&alice)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(
        revoked.data()["revokeInvitation"]["invitation"]["status"],
        "REVOKED"
    );
    assert_eq!(
        app.gql(ACCEPT)
            .vars(json!({ "t": renewed_token }))
            .as_user(&bob)
            .send()
            .await
            .code(),
        "NOT_FOUND"
    );
    assert_eq!(
        app.gql(revoke)
            .vars(json!({ "id": id }))
            .as_user(&alice)
            .in_org(&org)
            .send()
            .await
            .code(),
        "CONFLICT"
    );
}

#[tokio::test]
async fn only_managers_invite_and_only_owners_invite_owners() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let org = app.org(&alice, "Acme").await;
    let admin = app.user("admin@example.com").await;
    app.add_member(&alice, &org, &admin, "ADMIN").await;
    let member = app.user("member@example.com").await;
    app.add_member(&alice, &org, &member, "MEMBER").await;

    assert_eq!(
        app.invite(&member, &org, "x@example.com", "VIEWER")
            .await
            .code(),
        "FORBIDDEN"
    );
    assert_eq!(
        app.invite(&admin, &org, "x@example.com", "OWNER")
            .await
            .code(),
        "FORBIDDEN"
    );
    assert!(
        app.invite(&admin, &org, "x@example.com", "ADMIN")
            .await
            .body
            .get("errors")
            .is_none()
    );
    assert_eq!(
        app.invite(&alice, &org, "bad address", "VIEWER")
            .await
            .code(),
        "BAD_USER_INPUT"
    );

    let list = "{ viewer { activeOrganization { invitations { edges { node { email role status } } } } } }";
    let as_member = app.gql(list).as_user(&member).in_org(&org).send().await;
    assert_eq!(as_member.code(), "FORBIDDEN");
    let as_admin = app.gql(list).as_user(&admin).in_org(&org).send().await;
    let edges = &as_admin.data()["viewer"]["activeOrganization"]["invitations"]["edges"];
    assert_eq!(edges.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn invitations_beyond_the_plans_seats_are_refused_until_a_seat_frees_up() {
    let app = crate::helpers::TestApp::spawn_with(|config| config.limits.plan_max_seats = 2).await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    // The owner holds one seat, a pending invitation the second.
    let first = app
        .invite(&owner, &org, "first@example.com", "MEMBER")
        .await;
    let invitation = first.data()["inviteMember"]["invitation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = app
        .invite(&owner, &org, "second@example.com", "MEMBER")
        .await;
    assert_eq!(refused.code(), "LIMIT_EXCEEDED");
    assert_eq!(
        refused.error()["extensions"],
        serde_json::json!({ "code": "LIMIT_EXCEEDED", "limit": "seats", "max": 2, "usage": 2 })
    );
    app.gql("mutation($id: ID!) { revokeInvitation(input: {invitationId: $id}) { invitation { status } } }")
        .vars(serde_json::json!({ "id": invitation }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
    app.invite(&owner, &org, "second@example.com", "MEMBER")
        .await
        .data();
}
