//! Creating organizations and the viewer's view of them.

use crate::helpers::TestApp;
use serde_json::json;

#[tokio::test]
async fn the_creator_owns_a_new_organization_with_a_unique_slug() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let create = "mutation { createOrganization(input: {name: \"Acme GmbH\"}) { organization { id name slug } membership { role user { email } } } }";
    let first = app.gql(create).as_user(&alice).send().await;
    let data = &first.data()["createOrganization"];
    assert_eq!(data["organization"]["slug"], "acme-gmbh");
    assert_eq!(data["membership"]["role"], "OWNER");
    let second = app.gql(create).as_user(&alice).send().await;
    assert_eq!(
        second.data()["createOrganization"]["organization"]["slug"],
        "acme-gmbh-2"
    );

    let empty = app
        .gql("mutation { createOrganization(input: {name: \"  \"}) { organization { id } } }")
        .as_user(&alice)
        .send()
        .await;
    assert_eq!(empty.code(), "BAD_USER_INPUT");
    let anonymous = app.gql(create).send().await;
    assert_eq!(anonymous.code(), "UNAUTHENTICATED");
}

#[tokio::test]
async fn viewer_lists_organizations_and_the_active_one_with_the_membership() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let acme = app.org(&alice, "Acme").await;
    let globex = app.org(&alice, "Globex").await;
    let query = "{ viewer { user { email } organizations { nodes { id name } } activeOrganization { id name } membership { role } } }";

    let without_header = app.gql(query).as_user(&alice).send().await;
    let viewer = &without_header.data()["viewer"];
    let ids: Vec<_> = viewer["organizations"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![acme.id.as_str(), globex.id.as_str()]);
    assert!(viewer["activeOrganization"].is_null());
    // A connection, in the order they were created: one, then the next.
    let paged = "query($after: String) { viewer { organizations(first: 1, after: $after) { \
        nodes { name } pageInfo { hasNextPage endCursor } } } }";
    let first = app.gql(paged).as_user(&alice).send().await;
    let first = first.data()["viewer"]["organizations"].clone();
    assert_eq!(first["nodes"], json!([{ "name": "Acme" }]));
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    let next = app
        .gql(paged)
        .vars(json!({ "after": first["pageInfo"]["endCursor"] }))
        .as_user(&alice)
        .send()
        .await;
    let next = next.data()["viewer"]["organizations"].clone();
    assert_eq!(next["nodes"], json!([{ "name": "Globex" }]));
    assert_eq!(next["pageInfo"]["hasNextPage"], false);
    assert!(viewer["membership"].is_null());

    let with_header = app.gql(query).as_user(&alice).in_org(&globex).send().await;
    let viewer = &with_header.data()["viewer"];
    assert_eq!(viewer["activeOrganization"]["name"], "Globex");
    assert_eq!(viewer["membership"]["role"], "OWNER");

    let malformed = app
        .gql(query)
        .as_user(&alice)
        .org_header("not-an-id")
        .send()
        .await;
    assert_eq!(malformed.code(), "BAD_USER_INPUT");
}

#[tokio::test]
async fn members_page_forward_and_backward_with_capped_sizes() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let org = app.org(&alice, "Acme").await;
    for name in ["b", "c", "d", "e"] {
        let user = app.user(&format!("{name}@example.com")).await;
        app.add_member(&alice, &org, &user, "MEMBER").await;
    }
    let page = |args: &str| {
        format!(
            "{{ node(id: \"{}\") {{ ... on Organization {{ members({args}) {{ edges {{ cursor node {{ user {{ email }} }} }} pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} }} }} }} }}",
            org.id
        )
    };
    let emails = |response: &crate::helpers::GqlResponse| -> Vec<String> {
        response.data()["node"]["members"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["user"]["email"].as_str().unwrap().to_owned())
            .collect()
    };

    let first = app.gql(&page("first: 2")).as_user(&alice).send().await;
    assert_eq!(emails(&first), ["alice@example.com", "b@example.com"]);
    assert_eq!(
        first.data()["node"]["members"]["pageInfo"]["hasNextPage"],
        true
    );
    let end = first.data()["node"]["members"]["pageInfo"]["endCursor"]
        .as_str()
        .unwrap()
        .to_owned();

    let second = app
        .gql(&page(&format!("first: 2, after: \"{end}\"")))
        .as_user(&alice)
        .send()
        .await;
    assert_eq!(emails(&second), ["c@example.com", "d@example.com"]);

    let last = app.gql(&page("last: 2")).as_user(&alice).send().await;
    assert_eq!(emails(&last), ["d@example.com", "e@example.com"]);
    assert_eq!(
        last.data()["node"]["members"]["pageInfo"]["hasPreviousPage"],
        true
    );
    let start = last.data()["node"]["members"]["pageInfo"]["startCursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = app
        .gql(&page(&format!("last: 1, before: \"{start}\"")))
        .as_user(&alice)
        .send()
        .await;
    assert_eq!(emails(&before), ["c@example.com"]);

    for bad in [
        "first: 101",
        "first: -1",
        "first: 1, last: 1",
        "after: \"bogus\"",
    ] {
        let response = app.gql(&page(bad)).as_user(&alice).send().await;
        assert_eq!(response.code(), "BAD_USER_INPUT", "{bad}");
    }
}
