//! Documents: the whole approval workflow with distinct people and roles, per-record
//! grants, another organization's member getting NOT_FOUND everywhere, plan limits, and
//! a page of documents whose nested fields cost a fixed number of SQL statements.
//!
//! Longer than 600 lines on purpose: one feature's scenarios, each test self-contained
//! (it spins its own server and database): read them one at a time.

use crate::helpers::{TestApp, TestOrg, TestUser};
use serde_json::{Value, json};

const DOC_FIELDS: &str = "id title status version approvals { reviewer { name } } reviews { nodes { decision comment current } } versions { nodes { version changedFields } }";

async fn project(app: &TestApp, owner: &TestUser, org: &TestOrg, approvals: u32) -> String {
    let created = app
        .gql("mutation($n: Int!) { createProject(input: {name: \"Handbook\", requiredApprovals: $n}) { project { id requiredApprovals } } }")
        .vars(json!({ "n": approvals }))
        .as_user(owner)
        .in_org(org)
        .send()
        .await;
    assert_eq!(
        created.data()["createProject"]["project"]["requiredApprovals"],
        approvals
    );
    created.data()["createProject"]["project"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn create_document(
    app: &TestApp,
    user: &TestUser,
    org: &TestOrg,
    project: &str,
    title: &str,
) -> crate::helpers::GqlResponse {
    app.gql("mutation($p: ID!, $t: String!) { createDocument(input: {projectId: $p, title: $t, body: \"first\"}) { document { id status version } } }")
        .vars(json!({ "p": project, "t": title }))
        .as_user(user)
        .in_org(org)
        .send()
        .await
}

async fn document(
    app: &TestApp,
    user: &TestUser,
    org: &TestOrg,
    project: &str,
    title: &str,
) -> String {
    let created = create_document(app, user, org, project, title).await;
    created.data()["createDocument"]["document"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn grant(
    app: &TestApp,
    by: &TestUser,
    org: &TestOrg,
    record: &str,
    to: &TestUser,
    relation: &str,
) {
    app.gql("mutation($r: ID!, $u: ID!, $rel: String!) { grantAccess(input: {resourceId: $r, subjectId: $u, relation: $rel}) { grant { id } } }")
        .vars(json!({ "r": record, "u": to.id, "rel": relation }))
        .as_user(by)
        .in_org(org)
        .send()
        .await
        .data();
}

/// A workflow step (`submitDocument`, `approveDocument`, …) by `user`.
async fn step(
    app: &TestApp,
    user: &TestUser,
    org: &TestOrg,
    mutation: &str,
    document: &str,
    comment: Option<&str>,
) -> crate::helpers::GqlResponse {
    app.gql(&format!(
        "mutation($d: ID!, $c: String) {{ {mutation}(input: {{documentId: $d, comment: $c}}) {{ document {{ {DOC_FIELDS} }} }} }}"
    ))
    .vars(json!({ "d": document, "c": comment }))
    .as_user(user)
    .in_org(org)
    .send()
    .await
}

async fn edit(
    app: &TestApp,
    user: &TestUser,
    org: &TestOrg,
    document: &str,
    body: &str,
) -> crate::helpers::GqlResponse {
    app.gql(&format!(
        "mutation($d: ID!, $b: String) {{ updateDocument(input: {{documentId: $d, body: $b}}) {{ document {{ {DOC_FIELDS} }} }} }}"
    ))
    .vars(json!({ "d": document, "b": body }))
    .as_user(user)
    .in_org(org)
    .send()
    .await
}

fn doc<'a>(response: &'a crate::helpers::GqlResponse, mutation: &str) -> &'a Value {
    &response.data()[mutation]["document"]
}

fn assert_conflict(response: &crate::helpers::GqlResponse, status: &str) {
    assert_eq!(response.code(), "CONFLICT", "{}", response.body);
    assert_eq!(response.error()["extensions"]["status"], status);
}

async fn document_events(app: &TestApp, owner: &TestUser, org: &TestOrg) -> Vec<Value> {
    let response = app
        .gql("{ auditEvents(filter: {targetType: \"document\"}, first: 100) { edges { node { action actorId changes { field before after } } } } }")
        .as_user(owner)
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

/// A change of an event as `[before, after]`, decoded from the JSON text the API gives.
fn change(event: &Value, field: &str) -> [Value; 2] {
    let found = event["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == field)
        .unwrap_or_else(|| panic!("no change of {field} in {event}"));
    [found["before"].clone(), found["after"].clone()]
}

#[tokio::test]
async fn a_document_goes_through_the_whole_workflow_with_four_eyes_and_two_approvals() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let handbook = project(&app, &owner, &org, 2).await;
    let writer = app.user("writer@example.com").await;
    let first_reviewer = app.user("rita@example.com").await;
    let second_reviewer = app.user("sam@example.com").await;
    for person in [&writer, &first_reviewer, &second_reviewer] {
        app.add_member(&owner, &org, person, "MEMBER").await;
    }
    // Reviewers of the project; the writer is one too, which four-eyes must not let
    // count for their own document.
    for person in [&writer, &first_reviewer, &second_reviewer] {
        grant(&app, &owner, &org, &handbook, person, "reviewer").await;
    }
    let members = app
        .gql("query($id: ID!) { node(id: $id) { ... on Project { grants { nodes { relation } } } } }")
        .vars(json!({ "id": handbook }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(
        members.data()["node"]["grants"]["nodes"],
        json!([{ "relation": "reviewer" }, { "relation": "reviewer" }, { "relation": "reviewer" }])
    );
    // Grants are a connection: two, then the one after them.
    const GRANTS_PAGE: &str = "query($id: ID!, $after: String) { node(id: $id) { ... on Project { \
        grants(first: 2, after: $after) { nodes { subject } pageInfo { hasNextPage endCursor } } } } }";
    let page = app
        .gql(GRANTS_PAGE)
        .vars(json!({ "id": handbook }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    let page = page.data()["node"]["grants"].clone();
    assert_eq!(page["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let rest = app
        .gql(GRANTS_PAGE)
        .vars(json!({ "id": handbook, "after": page["pageInfo"]["endCursor"] }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    let rest = rest.data()["node"]["grants"].clone();
    assert_eq!(rest["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(rest["pageInfo"]["hasNextPage"], false);
    let subjects: std::collections::BTreeSet<_> = page["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["nodes"].as_array().unwrap())
        .map(|g| g["subject"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        subjects.len(),
        3,
        "three reviewers, none twice: {subjects:?}"
    );

    let id = document(&app, &writer, &org, &handbook, "Onboarding").await;
    let edited = edit(&app, &writer, &org, &id, "second").await;
    assert_eq!(doc(&edited, "updateDocument")["version"], 2);
    let versions = app
        .gql("query($d: ID!) { documentVersions(documentId: $d) { nodes { version body changedFields editedBy { name } } } }")
        .vars(json!({ "d": id }))
        .as_user(&first_reviewer)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(
        versions.data()["documentVersions"]["nodes"],
        json!([
            { "version": 2, "body": "second", "changedFields": ["body"], "editedBy": { "name": "writer" } },
            { "version": 1, "body": "first", "changedFields": ["title", "body"], "editedBy": { "name": "writer" } },
        ])
    );

    // Nothing to approve or publish in a draft.
    assert_conflict(
        &step(&app, &first_reviewer, &org, "approveDocument", &id, None).await,
        "DRAFT",
    );
    assert_conflict(
        &step(&app, &writer, &org, "publishDocument", &id, None).await,
        "DRAFT",
    );
    // Submitting needs edit rights: a reviewer who is not the author has none.
    assert_eq!(
        step(&app, &first_reviewer, &org, "submitDocument", &id, None)
            .await
            .code(),
        "FORBIDDEN"
    );
    let submitted = step(&app, &writer, &org, "submitDocument", &id, Some("ready")).await;
    assert_eq!(doc(&submitted, "submitDocument")["status"], "IN_REVIEW");
    assert_conflict(
        &step(&app, &writer, &org, "submitDocument", &id, None).await,
        "IN_REVIEW",
    );

    let own = step(&app, &writer, &org, "approveDocument", &id, None).await;
    assert_eq!(own.code(), "FORBIDDEN");
    assert_eq!(own.error()["extensions"]["reason"], "FOUR_EYES");

    let one = step(
        &app,
        &first_reviewer,
        &org,
        "approveDocument",
        &id,
        Some("lgtm"),
    )
    .await;
    assert_eq!(
        doc(&one, "approveDocument")["status"],
        "IN_REVIEW",
        "1 of 2"
    );
    assert_eq!(
        doc(&one, "approveDocument")["approvals"],
        json!([{ "reviewer": { "name": "rita" } }])
    );
    assert_eq!(
        step(&app, &first_reviewer, &org, "approveDocument", &id, None)
            .await
            .code(),
        "CONFLICT",
        "one reviewer counts once"
    );
    let two = step(&app, &second_reviewer, &org, "approveDocument", &id, None).await;
    assert_eq!(doc(&two, "approveDocument")["status"], "APPROVED", "2 of 2");

    // An edit after approval: back to draft, approvals void.
    let reset = edit(&app, &writer, &org, &id, "third").await;
    let reset = doc(&reset, "updateDocument");
    assert_eq!(reset["status"], "DRAFT");
    assert_eq!(reset["version"], 3);
    assert_eq!(reset["approvals"], json!([]));
    assert!(
        reset["reviews"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["current"] == false)
    );

    step(&app, &writer, &org, "submitDocument", &id, None)
        .await
        .data();
    let changes = step(
        &app,
        &first_reviewer,
        &org,
        "requestDocumentChanges",
        &id,
        Some("add a glossary"),
    )
    .await;
    assert_eq!(
        doc(&changes, "requestDocumentChanges")["status"],
        "CHANGES_REQUESTED"
    );
    assert_conflict(
        &step(&app, &second_reviewer, &org, "approveDocument", &id, None).await,
        "CHANGES_REQUESTED",
    );
    step(&app, &writer, &org, "submitDocument", &id, None)
        .await
        .data();
    step(&app, &first_reviewer, &org, "approveDocument", &id, None)
        .await
        .data();
    let approved = step(&app, &second_reviewer, &org, "approveDocument", &id, None).await;
    assert_eq!(doc(&approved, "approveDocument")["status"], "APPROVED");
    let published = step(&app, &writer, &org, "publishDocument", &id, None).await;
    assert_eq!(doc(&published, "publishDocument")["status"], "PUBLISHED");
    assert_conflict(&edit(&app, &writer, &org, &id, "late").await, "PUBLISHED");
    let archived = step(
        &app,
        &writer,
        &org,
        "archiveDocument",
        &id,
        Some("superseded"),
    )
    .await;
    assert_eq!(doc(&archived, "archiveDocument")["status"], "ARCHIVED");
    assert_conflict(
        &step(&app, &writer, &org, "submitDocument", &id, None).await,
        "ARCHIVED",
    );

    // Exactly one event per change and decision (refused steps leave none), with actor,
    // from/to status and comment.
    let events = document_events(&app, &owner, &org).await;
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "document.created",
            "document.edited",
            "document.submitted",
            "document.approved",
            "document.approved",
            "document.edited",
            "document.submitted",
            "document.changes_requested",
            "document.submitted",
            "document.approved",
            "document.approved",
            "document.published",
            "document.archived",
        ]
    );
    let submitted = &events[2];
    assert_eq!(
        change(submitted, "status"),
        [json!("draft"), json!("in_review")]
    );
    assert_eq!(change(submitted, "comment")[1], "ready");
    let first_approval = &events[3];
    assert_eq!(
        first_approval["actorId"].as_str(),
        first_reviewer.id_uuid().as_deref()
    );
    assert_eq!(change(first_approval, "status")[1], "in_review");
    assert_eq!(change(first_approval, "approvals"), [json!(0), json!(1)]);
    assert_eq!(change(&events[4], "status")[1], "approved");
    assert_eq!(
        change(&events[5], "status"),
        [json!("approved"), json!("draft")]
    );
    assert_eq!(change(&events[5], "approvals_voided")[0], 2);
    assert_eq!(change(&events[7], "comment")[1], "add a glossary");

    let report = app
        .gql("{ verifyAuditChain { valid } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(report.data()["verifyAuditChain"]["valid"], true);
}

#[tokio::test]
async fn a_grant_on_one_document_reveals_that_document_and_not_its_siblings() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let handbook = project(&app, &owner, &org, 1).await;
    let shared = document(&app, &owner, &org, &handbook, "Shared plan").await;
    let sibling = document(&app, &owner, &org, &handbook, "Secret plan").await;
    // Auditors have no organization-wide right on documents.
    let guest = app.user("guest@example.com").await;
    app.add_member(&owner, &org, &guest, "AUDITOR").await;
    let reviewer = app.user("reviewer@example.com").await;
    app.add_member(&owner, &org, &reviewer, "AUDITOR").await;

    let sees = |user: TestUser, id: String| {
        let app = &app;
        let org = &org;
        async move {
            let found = app
                .gql("query($id: ID!) { node(id: $id) { id } }")
                .vars(json!({ "id": id }))
                .as_user(&user)
                .in_org(org)
                .send()
                .await;
            !found.data()["node"].is_null()
        }
    };
    assert!(!sees(guest.clone(), shared.clone()).await);
    grant(&app, &owner, &org, &shared, &guest, "editor").await;
    grant(&app, &owner, &org, &shared, &reviewer, "reviewer").await;
    assert!(sees(guest.clone(), shared.clone()).await);
    assert!(
        !sees(guest.clone(), sibling.clone()).await,
        "a sibling stays invisible"
    );

    for query in [
        "{ documents { edges { node { title } } } }",
        "{ documents(filter: {text: \"plan\"}) { edges { node { title } } } }",
    ] {
        let listed = app.gql(query).as_user(&guest).in_org(&org).send().await;
        assert_eq!(
            listed.data()["documents"]["edges"],
            json!([{ "node": { "title": "Shared plan" } }]),
            "{query}"
        );
    }
    // The project itself stays hidden: the grant was on the document only.
    let listed = app
        .gql("{ documents { edges { node { title project { id } } } } }")
        .as_user(&guest)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(
        listed.data()["documents"]["edges"][0]["node"]["project"],
        Value::Null
    );

    edit(&app, &guest, &org, &shared, "edited by the guest")
        .await
        .data();
    assert_eq!(
        edit(&app, &guest, &org, &sibling, "nope").await.code(),
        "NOT_FOUND"
    );
    step(&app, &guest, &org, "submitDocument", &shared, None)
        .await
        .data();
    // Editing is not reviewing.
    assert_eq!(
        step(&app, &guest, &org, "approveDocument", &shared, None)
            .await
            .code(),
        "FORBIDDEN"
    );
    let approved = step(&app, &reviewer, &org, "approveDocument", &shared, None).await;
    assert_eq!(doc(&approved, "approveDocument")["status"], "APPROVED");
    assert_eq!(
        step(&app, &reviewer, &org, "approveDocument", &sibling, None)
            .await
            .code(),
        "NOT_FOUND"
    );
}

#[tokio::test]
async fn project_grants_reach_its_documents_and_organization_roles_decide_the_rest() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let handbook = project(&app, &owner, &org, 1).await;
    let other = project(&app, &owner, &org, 1).await;
    let in_handbook = document(&app, &owner, &org, &handbook, "In handbook").await;
    let elsewhere = document(&app, &owner, &org, &other, "Elsewhere").await;

    let editor = app.user("editor@example.com").await;
    app.add_member(&owner, &org, &editor, "AUDITOR").await;
    grant(&app, &owner, &org, &handbook, &editor, "editor").await;
    // Inherited from the project: edit and create there, nothing elsewhere.
    edit(&app, &editor, &org, &in_handbook, "x").await.data();
    assert_eq!(
        edit(&app, &editor, &org, &elsewhere, "x").await.code(),
        "NOT_FOUND"
    );
    document(&app, &editor, &org, &handbook, "Mine").await;
    assert_eq!(
        create_document(&app, &editor, &org, &other, "Not here")
            .await
            .code(),
        "FORBIDDEN"
    );

    // A viewer reads every document but changes none.
    let viewer = app.user("viewer@example.com").await;
    app.add_member(&owner, &org, &viewer, "VIEWER").await;
    let listed = app
        .gql("{ documents { edges { node { title } } } }")
        .as_user(&viewer)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(
        listed.data()["documents"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        edit(&app, &viewer, &org, &in_handbook, "y").await.code(),
        "FORBIDDEN"
    );
    // Filters narrow within what may be read.
    let by_project = app
        .gql("query($p: ID!) { documents(filter: {projectId: $p, status: DRAFT}) { edges { node { title } } } }")
        .vars(json!({ "p": other }))
        .as_user(&viewer)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(
        by_project.data()["documents"]["edges"],
        json!([{ "node": { "title": "Elsewhere" } }])
    );
    let by_author = app
        .gql("query($a: ID!) { documents(filter: {authorId: $a}) { edges { node { title } } } }")
        .vars(json!({ "a": editor.id }))
        .as_user(&viewer)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(
        by_author.data()["documents"]["edges"],
        json!([{ "node": { "title": "Mine" } }])
    );
    // A member may create documents anywhere, and owns what they write.
    let member = app.user("member@example.com").await;
    app.add_member(&owner, &org, &member, "MEMBER").await;
    let own = document(&app, &member, &org, &other, "Member's").await;
    edit(&app, &member, &org, &own, "mine").await.data();
    assert_eq!(
        edit(&app, &member, &org, &elsewhere, "not mine")
            .await
            .code(),
        "FORBIDDEN"
    );
}

#[tokio::test]
async fn another_organizations_member_gets_not_found_on_every_document_operation() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let handbook = project(&app, &owner, &org, 1).await;
    let id = document(&app, &owner, &org, &handbook, "Acme only").await;
    let outsider = app.user("outsider@globex.example").await;
    let globex = app.org(&outsider, "Globex").await;

    for org_header in [None, Some(&globex), Some(&org)] {
        let with = |query: &str, vars: Value| {
            let mut request = app.gql(query).vars(vars).as_user(&outsider);
            if let Some(o) = org_header {
                request = request.in_org(o);
            }
            request
        };
        let node = with(
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": id }),
        )
        .send()
        .await;
        assert!(node.data()["node"].is_null());
        for mutation in [
            "submitDocument",
            "approveDocument",
            "requestDocumentChanges",
            "publishDocument",
            "archiveDocument",
        ] {
            let response = with(
                &format!("mutation($d: ID!) {{ {mutation}(input: {{documentId: $d}}) {{ document {{ id }} }} }}"),
                json!({ "d": id }),
            )
            .send()
            .await;
            assert_eq!(response.code(), "NOT_FOUND", "{mutation}");
        }
        for (query, vars) in [
            (
                "mutation($d: ID!) { updateDocument(input: {documentId: $d, title: \"x\"}) { document { id } } }",
                json!({ "d": id }),
            ),
            (
                "query($d: ID!) { documentVersions(documentId: $d) { nodes { version } } }",
                json!({ "d": id }),
            ),
            (
                "mutation($p: ID!) { createDocument(input: {projectId: $p, title: \"x\"}) { document { id } } }",
                json!({ "p": handbook }),
            ),
            (
                "mutation($d: ID!, $u: ID!) { grantAccess(input: {resourceId: $d, subjectId: $u, relation: \"reader\"}) { grant { id } } }",
                json!({ "d": id, "u": outsider.id }),
            ),
            (
                "mutation($p: ID!) { updateProject(input: {projectId: $p, name: \"x\"}) { project { id } } }",
                json!({ "p": handbook }),
            ),
        ] {
            assert_eq!(
                with(query, vars).send().await.code(),
                "NOT_FOUND",
                "{query}"
            );
        }
    }
    // Their own organization's lists hold nothing of Acme's, even filtered by its project.
    let listed = app
        .gql("query($p: ID!) { documents(filter: {projectId: $p}) { edges { node { id } } } }")
        .vars(json!({ "p": handbook }))
        .as_user(&outsider)
        .in_org(&globex)
        .send()
        .await;
    assert_eq!(listed.data()["documents"]["edges"], json!([]));
}

#[tokio::test]
async fn plan_limits_refuse_the_project_and_document_beyond_them_with_limit_and_usage() {
    let app = TestApp::spawn_with(|config| {
        config.limits.plan_max_projects = 2;
        config.limits.plan_max_documents_per_project = 2;
    })
    .await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let first = project(&app, &owner, &org, 1).await;
    project(&app, &owner, &org, 1).await;
    let third = app
        .gql("mutation { createProject(input: {name: \"Third\"}) { project { id } } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(third.code(), "LIMIT_EXCEEDED");
    assert_eq!(
        third.error()["extensions"],
        json!({ "code": "LIMIT_EXCEEDED", "limit": "projects", "max": 2, "usage": 2 })
    );
    document(&app, &owner, &org, &first, "One").await;
    document(&app, &owner, &org, &first, "Two").await;
    let beyond = create_document(&app, &owner, &org, &first, "Three").await;
    assert_eq!(
        beyond.error()["extensions"],
        json!({ "code": "LIMIT_EXCEEDED", "limit": "documents_per_project", "max": 2, "usage": 2 })
    );
    // Another organization has its own room.
    let other_owner = app.user("other@example.com").await;
    let other = app.org(&other_owner, "Globex").await;
    project(&app, &other_owner, &other, 1).await;
}

#[tokio::test]
async fn a_page_of_documents_with_project_author_and_approvals_costs_a_fixed_number_of_statements()
{
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let reviewer = app.user("reviewer@example.com").await;
    app.add_member(&owner, &org, &reviewer, "ADMIN").await;
    let projects = [
        project(&app, &owner, &org, 1).await,
        project(&app, &owner, &org, 1).await,
    ];
    add_documents(&app, &owner, &reviewer, &org, &projects, 0..3).await;
    let few = page_cost(&app, &owner, &org, 1).await;
    assert_eq!(few.rows, 3);
    add_documents(&app, &owner, &reviewer, &org, &projects, 3..50).await;
    let alone = page_cost(&app, &owner, &org, 1).await;
    assert_eq!(alone.rows, 50);
    // The same statements for 3 rows as for 50, and for one request as for each of 8
    // at once: loaders batch a page's keys in one query each, and every field and loader
    // of the operation shares its one transaction.
    let crowded = page_cost(&app, &owner, &org, 8).await;
    assert_eq!(crowded.rows, 50);
    assert_eq!(
        (few.statements, crowded.statements),
        (alone.statements, alone.statements),
        "statements per request: 3 rows {few:?}, 50 rows {alone:?}, 8 at once {crowded:?}"
    );
    // Session, membership with the policy version (on PostgreSQL in the statement that
    // binds the organization), the page, projects, authors, approvals, versions,
    // reviewers: 8.
    assert!(
        alone.statements <= 8,
        "{} statements for one page",
        alone.statements
    );
    assert_eq!((alone.transactions, crowded.transactions), (1, 1));
}

/// What one request for the first page of documents costs, measured over `concurrency`
/// identical requests at once.
#[derive(Debug)]
struct PageCost {
    /// Documents on the page.
    rows: usize,
    /// SQL statements per request (BEGIN and COMMIT not counted).
    statements: u64,
    /// Tenant transactions per request.
    transactions: u64,
}

async fn page_cost(app: &TestApp, user: &TestUser, org: &TestOrg, concurrency: u64) -> PageCost {
    let page = "{ documents(first: 50) { edges { node { title status project { name } author { name } approvals { reviewer { name } } versions { nodes { version } } } } } }";
    // One run first, to warm the policy cache.
    app.gql(page).as_user(user).in_org(org).send().await.data();
    let statements = app.server_db.statements_executed();
    let transactions = app.server_db.tenant_transactions_begun();
    let responses = futures::future::join_all(
        (0..concurrency).map(|_| app.gql(page).as_user(user).in_org(org).send()),
    )
    .await;
    let rows = responses
        .iter()
        .map(|r| r.data()["documents"]["edges"].as_array().unwrap().len())
        .min()
        .unwrap_or(0);
    let per_request = |total: u64| {
        assert_eq!(
            total % concurrency,
            0,
            "{total} over {concurrency} requests"
        );
        total / concurrency
    };
    PageCost {
        rows,
        statements: per_request(app.server_db.statements_executed() - statements),
        transactions: per_request(app.server_db.tenant_transactions_begun() - transactions),
    }
}

/// Documents `range` alternately in the two projects; every third one approved.
async fn add_documents(
    app: &TestApp,
    owner: &TestUser,
    reviewer: &TestUser,
    org: &TestOrg,
    projects: &[String; 2],
    range: std::ops::Range<usize>,
) {
    for i in range {
        let id = document(app, owner, org, &projects[i % 2], &format!("Doc {i}")).await;
        if i % 3 == 0 {
            step(app, owner, org, "submitDocument", &id, None)
                .await
                .data();
            step(app, reviewer, org, "approveDocument", &id, None)
                .await
                .data();
        }
    }
}

/// A history is read a page at a time, never whole: versions newest first and reviews
/// oldest first, forward and backward with cursors, the same page of several documents
/// in one query each, and pages capped at 100.
#[tokio::test]
async fn histories_are_read_a_page_at_a_time() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let handbook = project(&app, &owner, &org, 1).await;
    let long = document(&app, &owner, &org, &handbook, "Long").await;
    let short = document(&app, &owner, &org, &handbook, "Short").await;
    for i in 2..=30 {
        edit(&app, &owner, &org, &long, &format!("v{i}"))
            .await
            .data();
    }
    edit(&app, &owner, &org, &short, "v2").await.data();
    let numbers = |connection: &Value| -> Vec<u64> {
        connection["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_u64().unwrap())
            .collect()
    };
    let versions = |args: &str| {
        format!(
            "query($d: ID!) {{ documentVersions(documentId: $d{args}) {{ nodes {{ version }} pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} }} }}"
        )
    };
    let first = app
        .gql(&versions(", first: 5"))
        .vars(json!({ "d": long }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    let first = &first.data()["documentVersions"];
    assert_eq!(numbers(first), [30, 29, 28, 27, 26]);
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    let next = app
        .gql(&versions(", first: 5, after: $a"))
        .vars(json!({ "d": long }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    // `$a` is not declared: a validation error, not a silent first page.
    assert_eq!(next.code(), "GRAPHQL_VALIDATION_FAILED");
    let next = app
        .gql("query($d: ID!, $a: String) { documentVersions(documentId: $d, first: 5, after: $a) { nodes { version } } }")
        .vars(json!({ "d": long, "a": first["pageInfo"]["endCursor"] }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(
        numbers(&next.data()["documentVersions"]),
        [25, 24, 23, 22, 21]
    );
    let oldest = app
        .gql(&versions(", last: 3"))
        .vars(json!({ "d": long }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    let oldest = &oldest.data()["documentVersions"];
    assert_eq!(numbers(oldest), [3, 2, 1]);
    assert_eq!(oldest["pageInfo"]["hasPreviousPage"], true);
    // Default page: 20; more than 100 is refused.
    let default = app
        .gql(&versions(""))
        .vars(json!({ "d": long }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(numbers(&default.data()["documentVersions"]).len(), 20);
    let too_many = app
        .gql(&versions(", first: 101"))
        .vars(json!({ "d": long }))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(too_many.code(), "BAD_USER_INPUT");

    // Both documents' newest two, in one page of documents.
    let page = app
        .gql("{ documents(first: 10) { nodes { title versions(first: 2) { nodes { version } pageInfo { hasNextPage } } } } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    let nodes = page.data()["documents"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    let by_title: std::collections::BTreeMap<&str, (Vec<u64>, bool)> = nodes
        .iter()
        .map(|d| {
            (
                d["title"].as_str().unwrap(),
                (
                    numbers(&d["versions"]),
                    d["versions"]["pageInfo"]["hasNextPage"] == true,
                ),
            )
        })
        .collect();
    assert_eq!(by_title["Long"], (vec![30, 29], true));
    assert_eq!(by_title["Short"], (vec![2, 1], false));
}

/// Stored values that do not parse (a hand edit, a bad migration) are never replaced by
/// a default: a review decision that is neither `approved` nor `changes_requested` used
/// to read as "changes requested", a negative number of required approvals as 1. The read fails with `INTERNAL` instead, and the rest
/// of the organization's documents still read.
#[tokio::test]
async fn corrupt_stored_values_are_internal_errors_not_defaults() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let reviewer = app.user("reviewer@example.com").await;
    app.add_member(&owner, &org, &reviewer, "MEMBER").await;
    let handbook = project(&app, &owner, &org, 1).await;
    grant(&app, &owner, &org, &handbook, &reviewer, "reviewer").await;
    let id = document(&app, &owner, &org, &handbook, "Policy").await;
    let other = document(&app, &owner, &org, &handbook, "Other").await;
    step(&app, &owner, &org, "submitDocument", &id, None)
        .await
        .data();
    let asked = step(
        &app,
        &reviewer,
        &org,
        "requestDocumentChanges",
        &id,
        Some("why"),
    )
    .await;
    assert_eq!(
        asked.data()["requestDocumentChanges"]["document"]["reviews"]["nodes"][0]["decision"],
        "CHANGES_REQUESTED"
    );
    let read = |document: String| {
        let app = &app;
        let owner = &owner;
        let org = &org;
        async move {
            app.gql(&format!(
                "query($d: [ID!]!) {{ nodes(ids: $d) {{ ... on Document {{ {DOC_FIELDS} }} }} }}"
            ))
            .vars(json!({ "d": [document] }))
            .as_user(owner)
            .in_org(org)
            .send()
            .await
        }
    };
    let (db, backend) = app.whole_database().await;
    use sea_orm::ConnectionTrait;
    for (sql, what) in [
        (
            "UPDATE document_reviews SET decision = 'maybe'",
            "a review decision",
        ),
        (
            "UPDATE documents SET status = 'limbo' WHERE title = 'Policy'",
            "a status",
        ),
    ] {
        db.execute_raw(sea_orm::Statement::from_string(backend, sql))
            .await
            .unwrap();
        let corrupt = read(id.clone()).await;
        assert_eq!(corrupt.code(), "INTERNAL", "{what}: {:?}", corrupt.body);
        if what == "a review decision" {
            db.execute_raw(sea_orm::Statement::from_string(
                backend,
                "UPDATE document_reviews SET decision = 'changes_requested'",
            ))
            .await
            .unwrap();
        }
    }
    // The other document still reads.
    let fine = read(other).await;
    assert_eq!(fine.data()["nodes"][0]["title"], "Other");

    // A project's required approvals below zero used to read as 1.
    let project = || {
        app.gql("query($p: ID!) { node(id: $p) { ... on Project { requiredApprovals } } }")
            .vars(json!({ "p": handbook }))
            .as_user(&owner)
            .in_org(&org)
            .send()
    };
    assert_eq!(project().await.data()["node"]["requiredApprovals"], 1);
    db.execute_raw(sea_orm::Statement::from_string(
        backend,
        "UPDATE projects SET required_approvals = -1",
    ))
    .await
    .unwrap();
    let corrupt = project().await;
    assert_eq!(corrupt.code(), "INTERNAL", "{:?}", corrupt.body);
}
