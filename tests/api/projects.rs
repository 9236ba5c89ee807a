//! Projects: per-record access through grants, sibling invisibility, delegation within a
//! project, and another organization's member getting NOT_FOUND on every operation.

use crate::helpers::{TestApp, TestOrg, TestUser};
use serde_json::{Value, json};

async fn project(app: &TestApp, user: &TestUser, org: &TestOrg, name: &str) -> String {
    let created = app
        .gql("mutation($n: String!) { createProject(input: {name: $n}) { project { id name } } }")
        .vars(json!({ "n": name }))
        .as_user(user)
        .in_org(org)
        .send()
        .await;
    created.data()["createProject"]["project"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn grant(
    app: &TestApp,
    by: &TestUser,
    org: &TestOrg,
    project: &str,
    to: &TestUser,
    relation: &str,
) -> crate::helpers::GqlResponse {
    app.gql("mutation($p: ID!, $u: ID!, $r: String!) { grantAccess(input: {resourceId: $p, subjectId: $u, relation: $r}) { grant { id relation } } }")
        .vars(json!({ "p": project, "u": to.id, "r": relation }))
        .as_user(by)
        .in_org(org)
        .send()
        .await
}

async fn sees(app: &TestApp, user: &TestUser, org: &TestOrg, project: &str) -> bool {
    let response = app
        .gql("query($id: ID!) { node(id: $id) { id } }")
        .vars(json!({ "id": project }))
        .as_user(user)
        .in_org(org)
        .send()
        .await;
    !response.data()["node"].is_null()
}

const RENAME: &str = "mutation($p: ID!, $n: String!) { updateProject(input: {projectId: $p, name: $n}) { project { name } } }";

#[tokio::test]
async fn a_grant_on_one_project_reveals_that_project_only_until_revoked() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let apollo = project(&app, &owner, &org, "Apollo").await;
    let gemini = project(&app, &owner, &org, "Gemini").await;
    let auditor = app.user("auditor@example.com").await;
    app.add_member(&owner, &org, &auditor, "AUDITOR").await;
    assert!(!sees(&app, &auditor, &org, &apollo).await);

    let granted = grant(&app, &owner, &org, &apollo, &auditor, "project_admin").await;
    let grant_id = granted.data()["grantAccess"]["grant"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(sees(&app, &auditor, &org, &apollo).await);
    assert!(
        !sees(&app, &auditor, &org, &gemini).await,
        "a sibling stays invisible"
    );
    let list = app
        .gql("{ projects { edges { node { name } } } }")
        .as_user(&auditor)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(
        list.data()["projects"]["edges"],
        json!([{ "node": { "name": "Apollo" } }])
    );
    let renamed = app
        .gql(RENAME)
        .vars(json!({ "p": apollo, "n": "Apollo 11" }))
        .as_user(&auditor)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(
        renamed.data()["updateProject"]["project"]["name"],
        "Apollo 11"
    );
    let sibling = app
        .gql(RENAME)
        .vars(json!({ "p": gemini, "n": "x" }))
        .as_user(&auditor)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(sibling.code(), "FORBIDDEN");

    app.gql("mutation($g: ID!) { revokeAccess(input: {grantId: $g}) { grant { id } } }")
        .vars(json!({ "g": grant_id }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
    assert!(
        !sees(&app, &auditor, &org, &apollo).await,
        "revoked on the next request"
    );
    let list = app
        .gql("{ projects { edges { node { name } } } }")
        .as_user(&auditor)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(list.data()["projects"]["edges"], json!([]));
}

#[tokio::test]
async fn a_project_admin_delegates_within_the_project_but_not_beyond_what_they_hold() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let apollo = project(&app, &owner, &org, "Apollo").await;
    let gemini = project(&app, &owner, &org, "Gemini").await;
    let lead = app.user("lead@example.com").await;
    app.add_member(&owner, &org, &lead, "AUDITOR").await;
    let writer = app.user("writer@example.com").await;
    app.add_member(&owner, &org, &writer, "AUDITOR").await;
    grant(&app, &owner, &org, &apollo, &lead, "project_admin")
        .await
        .data();

    assert_eq!(
        grant(&app, &lead, &org, &apollo, &writer, "editor")
            .await
            .data()["grantAccess"]["grant"]["relation"],
        "editor"
    );
    assert!(sees(&app, &writer, &org, &apollo).await);
    assert_eq!(
        grant(&app, &lead, &org, &gemini, &writer, "editor")
            .await
            .code(),
        "FORBIDDEN"
    );
    // An editor cannot hand out more than editing.
    assert_eq!(
        grant(&app, &writer, &org, &apollo, &lead, "project_admin")
            .await
            .code(),
        "FORBIDDEN"
    );
    assert_eq!(
        grant(&app, &owner, &org, &apollo, &writer, "owner")
            .await
            .code(),
        "BAD_USER_INPUT"
    );
    assert_eq!(
        grant(&app, &lead, &org, &apollo, &writer, "editor")
            .await
            .code(),
        "CONFLICT"
    );
}

#[tokio::test]
async fn another_organizations_member_gets_not_found_on_every_project_operation() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@acme.test").await;
    let acme = app.org(&owner, "Acme").await;
    let apollo = project(&app, &owner, &acme, "Apollo").await;
    let colleague = app.user("colleague@acme.test").await;
    app.add_member(&owner, &acme, &colleague, "VIEWER").await;
    let granted = grant(&app, &owner, &acme, &apollo, &colleague, "editor").await;
    let grant_id = granted.data()["grantAccess"]["grant"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mallory = app.user("mallory@evil.test").await;
    let evil = app.org(&mallory, "Evil").await;
    for org in [None, Some(&evil), Some(&acme)] {
        fn with<'a>(
            q: crate::helpers::Gql<'a>,
            user: &TestUser,
            org: Option<&TestOrg>,
        ) -> crate::helpers::Gql<'a> {
            match org {
                Some(o) => q.as_user(user).in_org(o),
                None => q.as_user(user),
            }
        }
        let node = with(
            app.gql("query($id: ID!) { node(id: $id) { id } }")
                .vars(json!({ "id": apollo })),
            &mallory,
            org,
        )
        .send()
        .await;
        assert!(node.data()["node"].is_null());
        let rename = with(
            app.gql(RENAME).vars(json!({ "p": apollo, "n": "pwned" })),
            &mallory,
            org,
        )
        .send()
        .await;
        assert_eq!(rename.code(), "NOT_FOUND");
        let grab = with(
            app.gql("mutation($p: ID!, $u: ID!) { grantAccess(input: {resourceId: $p, subjectId: $u, relation: \"reader\"}) { grant { id } } }")
                .vars(json!({ "p": apollo, "u": mallory.id })),
            &mallory,
            org,
        )
        .send()
        .await;
        assert_eq!(grab.code(), "NOT_FOUND");
        let revoke = with(
            app.gql("mutation($g: ID!) { revokeAccess(input: {grantId: $g}) { grant { id } } }")
                .vars(json!({ "g": grant_id })),
            &mallory,
            org,
        )
        .send()
        .await;
        assert_eq!(revoke.code(), "NOT_FOUND");
    }
    let own = app
        .gql("{ projects { edges { node { id } } } }")
        .as_user(&mallory)
        .in_org(&evil)
        .send()
        .await;
    assert_eq!(own.data()["projects"]["edges"], json!([]));
    assert_eq!(
        app.gql("{ projects { edges { node { id } } } }")
            .as_user(&mallory)
            .in_org(&acme)
            .send()
            .await
            .code(),
        "FORBIDDEN"
    );
    // Nothing changed in Acme.
    let still = app
        .gql("{ projects { edges { node { name } } } }")
        .as_user(&colleague)
        .in_org(&acme)
        .send()
        .await;
    assert_eq!(
        still.data()["projects"]["edges"],
        json!([{ "node": { "name": "Apollo" } }])
    );
}

/// Reads every page of `list` (`projects` or `documents`) in `order`, two at a time, and
/// returns the names (titles) in the order they came.
async fn every_page(
    app: &TestApp,
    user: &TestUser,
    org: &TestOrg,
    list: &str,
    label: &str,
    order: &str,
) -> Vec<String> {
    let query = format!(
        "query($o: ListOrder!, $a: String) {{ {list}(orderBy: $o, first: 2, after: $a) \
         {{ nodes {{ {label} }} pageInfo {{ hasNextPage endCursor }} }} }}"
    );
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let answer = app
            .gql(&query)
            .vars(json!({ "o": order, "a": after }))
            .as_user(user)
            .in_org(org)
            .send()
            .await;
        let data = &answer.data()[list];
        for node in data["nodes"].as_array().unwrap() {
            seen.push(node[label].as_str().unwrap().to_owned());
        }
        if data["pageInfo"]["hasNextPage"] != true {
            return seen;
        }
        after = data["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
}

/// `projects` and `documents` read newest first with `orderBy: NEWEST_FIRST`: every row
/// once, in reverse, across pages; another organization's rows never appear.
#[tokio::test]
async fn projects_and_documents_can_be_read_newest_first() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let other = app.org(&owner, "Globex").await;
    let create = "mutation($n: String!) { createProject(input: {name: $n}) { project { id } } }";
    let mut first_project = None;
    for name in ["P1", "P2", "P3", "P4", "P5"] {
        let created = app
            .gql(create)
            .vars(json!({ "n": name }))
            .as_user(&owner)
            .in_org(&org)
            .send()
            .await;
        first_project.get_or_insert(created.data()["createProject"]["project"]["id"].clone());
    }
    app.gql(create)
        .vars(json!({ "n": "Theirs" }))
        .as_user(&owner)
        .in_org(&other)
        .send()
        .await
        .data();
    for title in ["D1", "D2", "D3"] {
        app.gql("mutation($p: ID!, $t: String!) { createDocument(input: {projectId: $p, title: $t, body: \"b\"}) { document { id } } }")
            .vars(json!({ "p": first_project, "t": title }))
            .as_user(&owner)
            .in_org(&org)
            .send()
            .await
            .data();
    }

    for (list, label, expected) in [
        ("projects", "name", vec!["P1", "P2", "P3", "P4", "P5"]),
        ("documents", "title", vec!["D1", "D2", "D3"]),
    ] {
        let oldest = every_page(&app, &owner, &org, list, label, "OLDEST_FIRST").await;
        assert_eq!(oldest, expected, "{list}");
        let newest = every_page(&app, &owner, &org, list, label, "NEWEST_FIRST").await;
        let mut reversed = expected.clone();
        reversed.reverse();
        assert_eq!(newest, reversed, "{list}");
    }
}

/// `projects { totalCount }` counts every page of what the caller may read in the
/// active organization, and costs its statement only when asked for.
#[tokio::test]
async fn the_project_list_counts_its_rows_only_when_asked() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let other = app.org(&owner, "Globex").await;
    let create = "mutation($n: String!) { createProject(input: {name: $n}) { project { id } } }";
    for (name, in_org) in [("A", &org), ("B", &org), ("C", &org), ("Theirs", &other)] {
        app.gql(create)
            .vars(json!({ "n": name }))
            .as_user(&owner)
            .in_org(in_org)
            .send()
            .await
            .data();
    }
    let counted = app
        .gql("{ projects(first: 1) { totalCount nodes { name } } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(counted.data()["projects"]["totalCount"], 3);
    assert_eq!(
        counted.data()["projects"]["nodes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let theirs = app
        .gql("{ projects { totalCount } }")
        .as_user(&owner)
        .in_org(&other)
        .send()
        .await;
    assert_eq!(theirs.data()["projects"]["totalCount"], 1);

    let statements = async |query: &str| {
        let before = app.server_db.statements_executed();
        app.gql(query)
            .as_user(&owner)
            .in_org(&org)
            .send()
            .await
            .data();
        app.server_db.statements_executed() - before
    };
    let without = statements("{ projects(first: 1) { nodes { name } } }").await;
    let with = statements("{ projects(first: 1) { totalCount nodes { name } } }").await;
    assert_eq!(with, without + 1, "one count statement, only when selected");
}

/// `documents { totalCount }` counts what the list's filter matches across all pages;
/// another organization's project matches nothing.
#[tokio::test]
async fn the_document_list_counts_what_its_filter_matches() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let other = app.org(&owner, "Globex").await;
    let project = |in_org: &TestOrg, name: &str| {
        app.gql("mutation($n: String!) { createProject(input: {name: $n}) { project { id } } }")
            .vars(json!({ "n": name }))
            .as_user(&owner)
            .in_org(in_org)
            .send()
    };
    let first = project(&org, "First").await.data()["createProject"]["project"]["id"].clone();
    let second = project(&org, "Second").await.data()["createProject"]["project"]["id"].clone();
    let theirs = project(&other, "Theirs").await.data()["createProject"]["project"]["id"].clone();
    for (in_project, in_org, title) in [
        (&first, &org, "Cookie banner"),
        (&first, &org, "Cookie policy"),
        (&second, &org, "Pricing"),
        (&theirs, &other, "Cookie secrets"),
    ] {
        app.gql("mutation($p: ID!, $t: String!) { createDocument(input: {projectId: $p, title: $t, body: \"b\"}) { document { id } } }")
            .vars(json!({ "p": in_project, "t": title }))
            .as_user(&owner)
            .in_org(in_org)
            .send()
            .await
            .data();
    }
    let count = async |filter: Value| {
        let answer = app
            .gql("query($f: DocumentFilter) { documents(filter: $f, first: 1) { totalCount } }")
            .vars(json!({ "f": filter }))
            .as_user(&owner)
            .in_org(&org)
            .send()
            .await;
        answer.data()["documents"]["totalCount"].as_i64().unwrap()
    };
    assert_eq!(count(json!({})).await, 3);
    assert_eq!(count(json!({ "text": "cookie" })).await, 2);
    assert_eq!(count(json!({ "projectId": second })).await, 1);
    assert_eq!(count(json!({ "projectId": theirs })).await, 0);
}
