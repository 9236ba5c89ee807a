//! Roles and permissions through GraphQL: every built-in role's allowed and refused
//! actions, custom roles, deny rules, escalation, explanations, field-level visibility,
//! and a change made through one server refused by another on the next request.
//!
//! Longer than 600 lines on purpose: one feature's scenarios, each test self-contained
//! (it spins its own server and database): read them one at a time.

use crate::helpers::{TestApp, TestOrg, TestUser};
use serde_json::json;

const CAN: &str =
    "query($a: Action!, $t: ResourceType!) { viewerCan(action: $a, resourceType: $t) }";

async fn can(app: &TestApp, user: &TestUser, org: &TestOrg, action: &str, typ: &str) -> bool {
    let response = app
        .gql(CAN)
        .vars(json!({ "a": action, "t": typ }))
        .as_user(user)
        .in_org(org)
        .send()
        .await;
    response.data()["viewerCan"].as_bool().unwrap()
}

async fn org_with_roles(app: &TestApp) -> (TestUser, TestOrg, Vec<(&'static str, TestUser)>) {
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let mut people = vec![];
    for role in ["ADMIN", "MEMBER", "BILLING_ADMIN", "AUDITOR", "VIEWER"] {
        let user = app
            .user(&format!("{}@example.com", role.to_lowercase()))
            .await;
        app.add_member(&owner, &org, &user, role).await;
        people.push((role, user));
    }
    (owner, org, people)
}

#[tokio::test]
async fn each_built_in_role_is_allowed_and_refused_what_its_table_says() {
    let app = TestApp::spawn().await;
    let (owner, org, people) = org_with_roles(&app).await;
    // (role, action, type, expected)
    let table = [
        ("ADMIN", "CREATE", "INVITATION", true),
        ("ADMIN", "DELETE", "ORGANIZATION", false),
        ("ADMIN", "READ", "BILLING", false),
        ("ADMIN", "EXPORT", "AUDIT", true),
        ("MEMBER", "CREATE", "DOCUMENT", true),
        ("MEMBER", "UPDATE", "DOCUMENT", false),
        ("MEMBER", "CREATE", "INVITATION", false),
        ("BILLING_ADMIN", "UPDATE", "BILLING", true),
        ("BILLING_ADMIN", "READ", "DOCUMENT", false),
        ("AUDITOR", "READ", "AUDIT", true),
        ("AUDITOR", "DELETE", "AUDIT", false),
        ("VIEWER", "READ", "PROJECT", true),
        ("VIEWER", "CREATE", "PROJECT", false),
    ];
    for (role, action, typ, expected) in table {
        let user = &people.iter().find(|(r, _)| *r == role).unwrap().1;
        assert_eq!(
            can(&app, user, &org, action, typ).await,
            expected,
            "{role} {action} {typ}"
        );
    }
    assert!(can(&app, &owner, &org, "DELETE", "ORGANIZATION").await);

    // And the API refuses what viewerCan says is refused.
    let viewer = &people.iter().find(|(r, _)| *r == "VIEWER").unwrap().1;
    assert_eq!(
        app.invite(viewer, &org, "x@example.com", "VIEWER")
            .await
            .code(),
        "FORBIDDEN"
    );
    let auditor = &people.iter().find(|(r, _)| *r == "AUDITOR").unwrap().1;
    let keys = app.gql("{ viewer { activeOrganization { apiKeys { edges { node { id } } } } } }");
    assert_eq!(
        keys.as_user(auditor).in_org(&org).send().await.code(),
        "FORBIDDEN"
    );
}

#[tokio::test]
async fn a_custom_role_grants_its_permissions_until_unassigned() {
    let app = TestApp::spawn().await;
    let (owner, org, people) = org_with_roles(&app).await;
    let viewer = people
        .iter()
        .find(|(r, _)| *r == "VIEWER")
        .unwrap()
        .1
        .clone();
    let viewer_member = app
        .gql("{ viewer { membership { id } } }")
        .as_user(&viewer)
        .in_org(&org)
        .send()
        .await;
    let viewer_member = viewer_member.data()["viewer"]["membership"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let create = "mutation($i: CreateRoleInput!) { createRole(input: $i) { role { name builtIn permissions { resourceType action } } } }";
    let role = app
        .gql(create)
        .vars(
            json!({ "i": { "name": "recruiter", "description": "Invites people", "permissions": [
            { "resourceType": "INVITATION", "action": "CREATE" },
            { "resourceType": "INVITATION", "action": "READ" } ] } }),
        )
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(role.data()["createRole"]["role"]["builtIn"], false);
    assert_eq!(
        role.data()["createRole"]["role"]["permissions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    assert_eq!(
        app.invite(&viewer, &org, "new@example.com", "VIEWER")
            .await
            .code(),
        "FORBIDDEN"
    );
    let assign =
        "mutation($m: ID!, $r: String!) { assignRole(input: {memberId: $m, role: $r}) { roles } }";
    let assigned = app
        .gql(assign)
        .vars(json!({ "m": viewer_member, "r": "recruiter" }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    let mut roles: Vec<_> = assigned.data()["assignRole"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    roles.sort();
    assert_eq!(roles, ["recruiter", "viewer"]);
    // Effective on the next request.
    assert!(
        app.invite(&viewer, &org, "new@example.com", "VIEWER")
            .await
            .body
            .get("errors")
            .is_none()
    );
    // A recruiter cannot invite an admin: it holds less than an admin.
    assert_eq!(
        app.invite(&viewer, &org, "boss@example.com", "ADMIN")
            .await
            .code(),
        "FORBIDDEN"
    );

    let unassign = "mutation($m: ID!, $r: String!) { unassignRole(input: {memberId: $m, role: $r}) { roles } }";
    app.gql(unassign)
        .vars(json!({ "m": viewer_member, "r": "recruiter" }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
    assert_eq!(
        app.invite(&viewer, &org, "later@example.com", "VIEWER")
            .await
            .code(),
        "FORBIDDEN"
    );

    // Built-in names are taken; a role in use cannot be deleted; an unused one can.
    let clash = app
        .gql(create)
        .vars(json!({ "i": { "name": "admin", "permissions": [] } }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(clash.code(), "CONFLICT");
    let delete = "mutation { deleteRole(input: {name: \"recruiter\"}) { name } }";
    assert_eq!(
        app.gql(delete)
            .as_user(&owner)
            .in_org(&org)
            .send()
            .await
            .data()["deleteRole"]["name"],
        "recruiter"
    );
}

#[tokio::test]
async fn nobody_composes_or_confers_more_than_they_hold() {
    let app = TestApp::spawn().await;
    let (_owner, org, people) = org_with_roles(&app).await;
    let admin = &people.iter().find(|(r, _)| *r == "ADMIN").unwrap().1;
    let create = "mutation($i: CreateRoleInput!) { createRole(input: $i) { role { name } } }";
    let billing = app
        .gql(create)
        .vars(json!({ "i": { "name": "payer", "permissions": [{ "resourceType": "BILLING", "action": "READ" }] } }))
        .as_user(admin)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(billing.code(), "FORBIDDEN");
    let member = &people.iter().find(|(r, _)| *r == "MEMBER").unwrap().1;
    let by_member = app
        .gql(create)
        .vars(json!({ "i": { "name": "helper", "permissions": [] } }))
        .as_user(member)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(by_member.code(), "FORBIDDEN");
    assert_eq!(
        app.invite(admin, &org, "o@example.com", "OWNER")
            .await
            .code(),
        "FORBIDDEN"
    );
}

#[tokio::test]
async fn an_explicit_deny_wins_and_explain_access_names_the_rule() {
    let app = TestApp::spawn().await;
    let (owner, org, people) = org_with_roles(&app).await;
    let admin = &people.iter().find(|(r, _)| *r == "ADMIN").unwrap().1;
    assert!(can(&app, admin, &org, "CREATE", "INVITATION").await);

    let explain = "query($s: ID!) { explainAccess(subject: $s, action: CREATE, resourceType: INVITATION) { allowed rules { subject effect builtIn permission { resourceType action } } } }";
    let before = app
        .gql(explain)
        .vars(json!({ "s": admin.id }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    let before = &before.data()["explainAccess"];
    assert_eq!(before["allowed"], true);
    assert_eq!(before["rules"][0]["subject"], "admin");
    assert_eq!(before["rules"][0]["builtIn"], true);

    let deny = "mutation { denyPermission(input: {subject: \"admin\", resourceType: INVITATION, action: CREATE}) { ok } }";
    // Two seconds on, to the microsecond zero: a time the wall's clock is not showing.
    use chrono::{DurationRound, TimeDelta};
    use kernel::Clock;
    let at = app
        .clock
        .now()
        .duration_trunc(TimeDelta::seconds(1))
        .unwrap()
        + TimeDelta::seconds(2);
    app.clock.set(at);
    assert_eq!(
        app.gql(deny)
            .as_user(&owner)
            .in_org(&org)
            .send()
            .await
            .data()["denyPermission"]["ok"],
        true
    );
    assert!(!can(&app, admin, &org, "CREATE", "INVITATION").await);
    assert_eq!(
        app.invite(admin, &org, "x@example.com", "VIEWER")
            .await
            .code(),
        "FORBIDDEN"
    );
    assert!(can(&app, &owner, &org, "CREATE", "INVITATION").await);
    // The rule was made at the platform's clock (a test's clock here), not the wall's.
    let rules = app
        .gql("{ viewer { activeOrganization { denyRules { nodes { createdAt } } } } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    let made = rules.data()["viewer"]["activeOrganization"]["denyRules"]["nodes"][0]["createdAt"]
        .as_str()
        .unwrap()
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap();
    assert_eq!(made, at);

    let after = app
        .gql(explain)
        .vars(json!({ "s": admin.id }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    let after = &after.data()["explainAccess"];
    assert_eq!(after["allowed"], false);
    assert_eq!(after["rules"][0]["effect"], "DENY");
    assert_eq!(after["rules"][0]["builtIn"], false);

    // Explanations are for those who may read roles.
    let member = &people.iter().find(|(r, _)| *r == "MEMBER").unwrap().1;
    let refused = app
        .gql(explain)
        .vars(json!({ "s": admin.id }))
        .as_user(member)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(refused.code(), "FORBIDDEN");
}

#[tokio::test]
async fn a_members_email_is_null_and_forbidden_for_those_who_do_not_manage_members() {
    let app = TestApp::spawn().await;
    let (owner, org, people) = org_with_roles(&app).await;
    let member = &people.iter().find(|(r, _)| *r == "MEMBER").unwrap().1;
    let query =
        "{ viewer { activeOrganization { members { edges { node { user { name email } } } } } } }";

    let as_member = app.gql(query).as_user(member).in_org(&org).send().await;
    let edges = as_member.body["data"]["viewer"]["activeOrganization"]["members"]["edges"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(edges.len(), 6);
    for edge in &edges {
        let user = &edge["node"]["user"];
        assert!(user["name"].is_string());
        if user["name"] == "member" {
            assert_eq!(
                user["email"], "member@example.com",
                "one's own email is visible"
            );
        } else {
            assert!(user["email"].is_null(), "{user}");
        }
    }
    let errors = as_member.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 5);
    assert!(
        errors
            .iter()
            .all(|e| e["extensions"]["code"] == "FORBIDDEN")
    );

    let as_owner = app.gql(query).as_user(&owner).in_org(&org).send().await;
    let text = as_owner.data().to_string();
    assert!(text.contains("auditor@example.com") && text.contains("member@example.com"));
}

#[tokio::test]
async fn a_permission_taken_away_through_one_server_is_refused_by_another_on_the_next_request() {
    let app = TestApp::spawn().await;
    let twin = app.spawn_twin().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let admin = app.user("admin@example.com").await;
    let admin_member = app.add_member(&owner, &org, &admin, "ADMIN").await;

    // The twin has the organization's policy cached...
    assert!(can(&twin, &admin, &org, "CREATE", "INVITATION").await);
    // ...the first server demotes the admin...
    let demote = "mutation($id: ID!) { changeMemberRole(input: {memberId: $id, role: VIEWER}) { membership { role } } }";
    app.gql(demote)
        .vars(json!({ "id": admin_member }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
    // ...and the twin refuses at once.
    assert!(!can(&twin, &admin, &org, "CREATE", "INVITATION").await);
    assert_eq!(
        twin.invite(&admin, &org, "x@example.com", "VIEWER")
            .await
            .code(),
        "FORBIDDEN"
    );
}

#[tokio::test]
async fn another_organizations_roles_and_members_are_out_of_reach() {
    let app = TestApp::spawn().await;
    let (_owner, acme, people) = org_with_roles(&app).await;
    let acme_member = app
        .gql("{ viewer { membership { id } } }")
        .as_user(&people[1].1)
        .in_org(&acme)
        .send()
        .await;
    let acme_member = acme_member.data()["viewer"]["membership"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mallory = app.user("mallory@evil.test").await;
    let evil = app.org(&mallory, "Evil").await;

    let roles = format!(
        "{{ node(id: \"{}\") {{ ... on Organization {{ roles {{ name }} }} }} }}",
        acme.id
    );
    assert!(app.gql(&roles).as_user(&mallory).send().await.data()["node"].is_null());
    let assign =
        "mutation($m: ID!) { assignRole(input: {memberId: $m, role: \"anything\"}) { roles } }";
    let response = app
        .gql(assign)
        .vars(json!({ "m": acme_member }))
        .as_user(&mallory)
        .in_org(&evil)
        .send()
        .await;
    assert_eq!(response.code(), "NOT_FOUND");
    assert_eq!(
        app.gql(CAN)
            .vars(json!({ "a": "READ", "t": "MEMBER" }))
            .as_user(&mallory)
            .in_org(&acme)
            .send()
            .await
            .code(),
        "FORBIDDEN"
    );
    let deny = "mutation { denyPermission(input: {subject: \"admin\", resourceType: MEMBER, action: READ}) { ok } }";
    assert_eq!(
        app.gql(deny)
            .as_user(&mallory)
            .in_org(&acme)
            .send()
            .await
            .code(),
        "FORBIDDEN"
    );
}

const DENY: &str = "mutation($s: String!, $t: ResourceType!, $a: Action!) { denyPermission(input: {subject: $s, resourceType: $t, action: $a}) { ok } }";
const DENY_RULES: &str = "{ viewer { activeOrganization { denyRules { nodes { id subject resourceType action createdBy } } } } }";
const REMOVE_DENY: &str =
    "mutation($id: ID!) { removeDenyRule(input: {ruleId: $id}) { denyRule { subject action } } }";

async fn deny(
    app: &TestApp,
    by: &TestUser,
    org: &TestOrg,
    subject: &str,
    typ: &str,
    action: &str,
) -> crate::helpers::GqlResponse {
    app.gql(DENY)
        .vars(json!({ "s": subject, "t": typ, "a": action }))
        .as_user(by)
        .in_org(org)
        .send()
        .await
}

fn assert_escalation(response: &crate::helpers::GqlResponse, what: &str) {
    assert_eq!(response.code(), "FORBIDDEN", "{what}: {}", response.body);
    assert_eq!(
        response.error()["extensions"]["reason"],
        "ESCALATION",
        "{what}: {}",
        response.body
    );
}

#[tokio::test]
async fn deny_rules_restrict_only_what_the_actor_could_confer_and_can_be_removed() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let admin = app.user("admin@example.com").await;
    app.add_member(&owner, &org, &admin, "ADMIN").await;
    let member = app.user("member@example.com").await;
    let member_id = app.add_member(&owner, &org, &member, "MEMBER").await;
    app.gql("mutation { createRole(input: {name: \"finance\", description: \"\", permissions: [{resourceType: BILLING, action: READ}]}) { role { name } } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();

    // An admin cannot disarm the owners (it could deny them MEMBER:UPDATE, MEMBER:DELETE
    // and ROLE:UPDATE for good), nor restrict a role holding more than an admin, nor take
    // away its own right to undo a rule.
    for (subject, typ, action, what) in [
        ("owner", "MEMBER", "UPDATE", "the owner role"),
        ("owner", "ROLE", "UPDATE", "the owner role"),
        (owner.id.as_str(), "MEMBER", "DELETE", "an owner by id"),
        (
            "finance",
            "PROJECT",
            "READ",
            "a role with billing rights an admin lacks",
        ),
        (
            "admin",
            "ROLE",
            "UPDATE",
            "its own role's right to remove rules",
        ),
        (
            admin.id.as_str(),
            "ROLE",
            "UPDATE",
            "its own right to remove rules",
        ),
    ] {
        assert_escalation(&deny(&app, &admin, &org, subject, typ, action).await, what);
    }
    // Owners are the root: not even an owner restricts them.
    assert_escalation(
        &deny(&app, &owner, &org, "owner", "DOCUMENT", "DELETE").await,
        "owner by owner",
    );

    // What an admin could confer, it may restrict.
    deny(&app, &admin, &org, "member", "DOCUMENT", "CREATE")
        .await
        .data();
    deny(&app, &admin, &org, &member.id, "PROJECT", "CREATE")
        .await
        .data();
    // The owner restricts the admins' rule making.
    deny(&app, &owner, &org, "admin", "ROLE", "UPDATE")
        .await
        .data();

    let listed = app
        .gql(DENY_RULES)
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    let rules = listed.data()["viewer"]["activeOrganization"]["denyRules"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(rules.len(), 3, "{rules:?}");
    assert_eq!(rules[0]["subject"], "member");
    assert_eq!(rules[0]["createdBy"], admin.id);
    assert_eq!(rules[1]["subject"], member.id);
    assert_eq!(rules[2]["subject"], "admin");
    assert_eq!(rules[2]["createdBy"], owner.id);
    // Members do not read the rules.
    let peek = app
        .gql(DENY_RULES)
        .as_user(&member)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(peek.code(), "FORBIDDEN");

    // The admin cannot lift the rule that restricts it; the owner can.
    let remove = |by: &TestUser, id: &serde_json::Value| {
        app.gql(REMOVE_DENY)
            .vars(json!({ "id": id }))
            .as_user(by)
            .in_org(&org)
            .send()
    };
    assert_eq!(remove(&admin, &rules[2]["id"]).await.code(), "FORBIDDEN");
    let lifted = remove(&owner, &rules[2]["id"]).await;
    assert_eq!(
        lifted.data()["removeDenyRule"]["denyRule"]["subject"],
        "admin"
    );
    // Now the admin removes its own rule on members, and another organization's owner
    // cannot touch this organization's rules.
    let stranger = app.user("stranger@example.com").await;
    let other = app.org(&stranger, "Other").await;
    let foreign = app
        .gql(REMOVE_DENY)
        .vars(json!({ "id": rules[0]["id"] }))
        .as_user(&stranger)
        .in_org(&other)
        .send()
        .await;
    assert_eq!(foreign.code(), "NOT_FOUND");
    remove(&admin, &rules[0]["id"]).await.data();
    assert_eq!(remove(&admin, &rules[0]["id"]).await.code(), "NOT_FOUND");
    let left = app
        .gql(DENY_RULES)
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    let left = &left.data()["viewer"]["activeOrganization"]["denyRules"]["nodes"];
    assert_eq!(left.as_array().unwrap().len(), 1);
    assert_eq!(left[0]["subject"], member.id);
    // The member restricted by id is restricted.
    let create = app
        .gql("mutation { createProject(input: {name: \"x\"}) { project { id } } }")
        .as_user(&member)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(create.code(), "FORBIDDEN");

    // Someone restricted by id who becomes an owner is restricted no more, and an owner
    // lifts the rule that now names an owner.
    app.gql("mutation($id: ID!) { changeMemberRole(input: {memberId: $id, role: OWNER}) { membership { role } } }")
        .vars(json!({ "id": member_id }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
    let create = app
        .gql("mutation { createProject(input: {name: \"x\"}) { project { id } } }")
        .as_user(&member)
        .in_org(&org)
        .send()
        .await;
    assert!(create.data()["createProject"]["project"]["id"].is_string());
    remove(&owner, &left[0]["id"]).await.data();

    // An admin cannot disarm an owner through a custom role either: an empty role given
    // to the owner and then denied restricts nothing of the owner's.
    app.gql("mutation { createRole(input: {name: \"muzzle\", description: \"\", permissions: []}) { role { name } } }")
        .as_user(&admin)
        .in_org(&org)
        .send()
        .await
        .data();
    let members = app
        .gql("{ viewer { activeOrganization { members(first: 10) { edges { node { id role user { id } } } } } } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    let owner_member = members.data()["viewer"]["activeOrganization"]["members"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["user"]["id"] == owner.id)
        .map(|e| e["node"]["id"].clone())
        .unwrap();
    app.gql("mutation($m: ID!) { assignRole(input: {memberId: $m, role: \"muzzle\"}) { roles } }")
        .vars(json!({ "m": owner_member }))
        .as_user(&admin)
        .in_org(&org)
        .send()
        .await
        .data();
    for (typ, action) in [
        ("ROLE", "UPDATE"),
        ("MEMBER", "DELETE"),
        ("MEMBER", "UPDATE"),
    ] {
        deny(&app, &admin, &org, "muzzle", typ, action).await.data();
    }
    let still = deny(&app, &owner, &org, "admin", "PROJECT", "DELETE").await;
    assert_eq!(
        still.data()["denyPermission"]["ok"],
        true,
        "the owner still makes rules"
    );
}
