//! Property: the SQL list filter returns exactly the records that single-record decisions
//! (`enforce`, through `node(id:)`) allow, over random roles, custom roles, record grants
//! (to people and to roles), ownership and denies. Runs on whichever engine the suite
//! runs on (SQLite and PostgreSQL in `make test`).

use crate::helpers::{TestApp, TestOrg, TestUser};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::collections::BTreeSet;

async fn listed(app: &TestApp, user: &TestUser, org: &TestOrg) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut after: Option<String> = None;
    loop {
        let response = app
            .gql("query($a: String) { projects(first: 3, after: $a) { edges { node { id } } pageInfo { hasNextPage endCursor } } }")
            .vars(json!({ "a": after }))
            .as_user(user)
            .in_org(org)
            .send()
            .await;
        let data = &response.data()["projects"];
        for edge in data["edges"].as_array().unwrap() {
            assert!(
                seen.insert(edge["node"]["id"].as_str().unwrap().to_owned()),
                "a row repeated across pages"
            );
        }
        if data["pageInfo"]["hasNextPage"] != true {
            return seen;
        }
        after = data["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
}

async fn readable_one_by_one(
    app: &TestApp,
    user: &TestUser,
    org: &TestOrg,
    projects: &[String],
) -> BTreeSet<String> {
    let mut readable = BTreeSet::new();
    for id in projects {
        let response = app
            .gql("query($id: ID!) { node(id: $id) { id } }")
            .vars(json!({ "id": id }))
            .as_user(user)
            .in_org(org)
            .send()
            .await;
        if !response.data()["node"].is_null() {
            readable.insert(id.clone());
        }
    }
    readable
}

/// Returns how many people saw some but not all projects (the grant path).
async fn run_case(seed: u64) -> usize {
    let mut rng = StdRng::seed_from_u64(seed);
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    // A custom role that may create projects but not read them organization-wide: what
    // such people see comes from ownership alone.
    app.gql("mutation { createRole(input: {name: \"creator\", permissions: [{resourceType: PROJECT, action: CREATE}]}) { role { name } } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();

    let base_roles = [
        "VIEWER",
        "BILLING_ADMIN",
        "AUDITOR",
        "AUDITOR",
        "BILLING_ADMIN",
        "MEMBER",
    ];
    let mut people = Vec::new();
    for i in 0..5 {
        let user = app.user(&format!("p{i}@example.com")).await;
        let role = *base_roles.choose(&mut rng).unwrap();
        let member = app.add_member(&owner, &org, &user, role).await;
        if rng.gen_bool(0.4) {
            app.gql("mutation($m: ID!) { assignRole(input: {memberId: $m, role: \"creator\"}) { roles } }")
                .vars(json!({ "m": member }))
                .as_user(&owner)
                .in_org(&org)
                .send()
                .await
                .data();
        }
        people.push(user);
    }

    let mut projects = Vec::new();
    for i in 0..8 {
        // Some projects are created by the people themselves (owned), the rest by the owner.
        let creator = if rng.gen_bool(0.3) {
            people.choose(&mut rng).unwrap()
        } else {
            &owner
        };
        let created = app
            .gql("mutation($n: String!) { createProject(input: {name: $n}) { project { id } } }")
            .vars(json!({ "n": format!("project {i}") }))
            .as_user(creator)
            .in_org(&org)
            .send()
            .await;
        let id = match created.body["data"]["createProject"]["project"]["id"].as_str() {
            Some(id) => id.to_owned(),
            None => {
                // Not allowed to create: the owner creates it instead.
                let retry = app
                    .gql("mutation($n: String!) { createProject(input: {name: $n}) { project { id } } }")
                    .vars(json!({ "n": format!("project {i}") }))
                    .as_user(&owner)
                    .in_org(&org)
                    .send()
                    .await;
                retry.data()["createProject"]["project"]["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            }
        };
        projects.push(id);
    }

    let relations = ["reader", "editor", "reviewer", "project_admin"];
    for project in &projects {
        for person in &people {
            if rng.gen_bool(0.25) {
                app.gql("mutation($p: ID!, $u: ID!, $r: String!) { grantAccess(input: {resourceId: $p, subjectId: $u, relation: $r}) { grant { id } } }")
                    .vars(json!({ "p": project, "u": person.id, "r": relations.choose(&mut rng).unwrap() }))
                    .as_user(&owner)
                    .in_org(&org)
                    .send()
                    .await
                    .data();
            }
        }
        if rng.gen_bool(0.2) {
            app.gql("mutation($p: ID!) { grantAccess(input: {resourceId: $p, role: \"auditor\", relation: \"reader\"}) { grant { id } } }")
                .vars(json!({ "p": project }))
                .as_user(&owner)
                .in_org(&org)
                .send()
                .await
                .data();
        }
    }
    if rng.gen_bool(0.5) {
        app.gql("mutation { denyPermission(input: {subject: \"billing_admin\", resourceType: PROJECT, action: READ}) { ok } }")
            .as_user(&owner)
            .in_org(&org)
            .send()
            .await
            .data();
    }
    if rng.gen_bool(0.3) {
        let denied = people.choose(&mut rng).unwrap();
        app.gql("mutation($s: String!) { denyPermission(input: {subject: $s, resourceType: PROJECT, action: READ}) { ok } }")
            .vars(json!({ "s": denied.id }))
            .as_user(&owner)
            .in_org(&org)
            .send()
            .await
            .data();
    }

    let mut partial = 0;
    for person in people.iter().chain(std::iter::once(&owner)) {
        let by_list = listed(&app, person, &org).await;
        let by_decision = readable_one_by_one(&app, person, &org, &projects).await;
        assert_eq!(by_list, by_decision, "seed {seed}, {}", person.email);
        if !by_list.is_empty() && by_list.len() < projects.len() {
            partial += 1;
        }
    }
    partial
}

#[tokio::test]
async fn the_list_filter_returns_exactly_what_single_decisions_allow() {
    let mut partial = 0;
    for seed in [1, 2, 3, 4] {
        partial += run_case(seed).await;
    }
    // The cases must exercise grants and ownership, not only all-or-nothing roles.
    assert!(
        partial >= 3,
        "only {partial} partial lists: the cases are too uniform"
    );
}
