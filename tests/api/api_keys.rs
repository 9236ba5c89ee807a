//! API keys: shown once, act with their own role in their own organization, revocable.

use crate::helpers::TestApp;
use serde_json::json;

#[tokio::test]
async fn a_key_authenticates_with_its_own_role_until_revoked() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let org = app.org(&alice, "Acme").await;
    let (viewer_key_id, viewer_key) = app.api_key(&alice, &org, "VIEWER").await;
    // A prefix nobody mistakes for a public key; keys issued as `pk_…` keep working.
    assert!(viewer_key.starts_with("plsk_"), "{viewer_key}");
    let legacy = viewer_key.replacen("plsk_", "pk_", 1);
    let as_legacy = app
        .gql("{ viewer { activeOrganization { viewerRole } } }")
        .bearer(&legacy)
        .send()
        .await;
    assert_eq!(
        as_legacy.data()["viewer"]["activeOrganization"]["viewerRole"],
        "VIEWER"
    );

    // The key names its organization itself; no header needed.
    let me = app
        .gql("{ viewer { user { id } activeOrganization { name viewerRole } } }")
        .bearer(&viewer_key)
        .send()
        .await;
    assert!(me.data()["viewer"]["user"].is_null());
    assert_eq!(
        me.data()["viewer"]["activeOrganization"]["viewerRole"],
        "VIEWER"
    );

    // A viewer key cannot do what its owner creator could.
    let invite = app
        .gql("mutation { inviteMember(input: {email: \"x@example.com\", role: MEMBER}) { token } }")
        .bearer(&viewer_key)
        .send()
        .await;
    assert_eq!(invite.code(), "FORBIDDEN");
    let keys = app
        .gql("{ viewer { activeOrganization { apiKeys { edges { node { id lastUsedAt } } } } } }");
    assert_eq!(keys.bearer(&viewer_key).send().await.code(), "FORBIDDEN");
    // Nor may it count them.
    let count = app.gql("{ viewer { activeOrganization { apiKeys(first: 1) { totalCount } } } }");
    assert_eq!(count.bearer(&viewer_key).send().await.code(), "FORBIDDEN");
    let counted = app
        .gql("{ viewer { activeOrganization { apiKeys(first: 1) { totalCount } } } }")
        .as_user(&alice)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(
        counted.data()["viewer"]["activeOrganization"]["apiKeys"]["totalCount"],
        1
    );

    let listed = app
        .gql("{ viewer { activeOrganization { apiKeys { edges { node { id name role lastUsedAt revokedAt } } } } } }")
        .as_user(&alice)
        .in_org(&org)
        .send()
        .await;
    let node = &listed.data()["viewer"]["activeOrganization"]["apiKeys"]["edges"][0]["node"];
    assert_eq!(node["id"], viewer_key_id);
    assert!(node["lastUsedAt"].is_string());
    assert!(
        !listed.body.to_string().contains(&viewer_key),
        "the secret is shown only once"
    );

    let revoke = app
        .gql("mutation($id: ID!) { revokeApiKey(input: {apiKeyId: $id}) { apiKey { revokedAt } } }")
        .vars(json!({ "id": viewer_key_id }))
        .as_user(&alice)
        .in_org(&org)
        .send()
        .await;
    assert!(revoke.data()["revokeApiKey"]["apiKey"]["revokedAt"].is_string());
    let after = app
        .gql("{ viewer { activeOrganization { name } } }")
        .bearer(&viewer_key)
        .send()
        .await;
    assert_eq!(after.code(), "UNAUTHENTICATED");
    let mut forged = viewer_key.clone();
    forged.push('x');
    assert_eq!(
        app.gql("{ viewer { activeOrganization { name } } }")
            .bearer(&forged)
            .send()
            .await
            .code(),
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn keys_are_never_owners_and_only_managers_create_them() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let org = app.org(&alice, "Acme").await;
    let carol = app.user("carol@example.com").await;
    app.add_member(&alice, &org, &carol, "MEMBER").await;
    let create = "mutation($r: Role!) { createApiKey(input: {trustedDocumentsOnly: false, name: \"k\", role: $r}) { secret } }";
    let owner_key = app
        .gql(create)
        .vars(json!({ "r": "OWNER" }))
        .as_user(&alice)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(owner_key.code(), "BAD_USER_INPUT");
    let by_member = app
        .gql(create)
        .vars(json!({ "r": "VIEWER" }))
        .as_user(&carol)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(by_member.code(), "FORBIDDEN");
    let no_org = app
        .gql(create)
        .vars(json!({ "r": "VIEWER" }))
        .as_user(&alice)
        .send()
        .await;
    assert_eq!(no_org.code(), "BAD_USER_INPUT");
}

#[tokio::test]
async fn credentials_are_decided_first_and_a_key_acts_only_in_its_own_organization() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let org = app.org(&alice, "Acme").await;
    let bob = app.user("bob@example.com").await;
    let other = app.org(&bob, "Other").await;
    let theirs = app
        .gql("mutation { createProject(input: {name: \"Theirs\"}) { project { id } } }")
        .as_user(&bob)
        .in_org(&other)
        .send()
        .await;
    let their_project = theirs.data()["createProject"]["project"]["id"].clone();
    let (key_id, key) = app.api_key(&alice, &org, "ADMIN").await;

    // Missing or unverifiable credentials are UNAUTHENTICATED, header or not (it was
    // BAD_USER_INPUT "no active organization" without one).
    let list = "{ projects(first: 1) { edges { node { id } } } }";
    let create = "mutation { createProject(input: {name: \"x\"}) { project { id } } }";
    for query in [list, create] {
        assert_eq!(app.gql(query).send().await.code(), "UNAUTHENTICATED");
        let garbage = app.gql(query).bearer("pk_not-a-key").send().await;
        assert_eq!(garbage.code(), "UNAUTHENTICATED", "{query}");
        let garbage_in_org = app.gql(query).bearer("pk_not-a-key").in_org(&org);
        assert_eq!(garbage_in_org.send().await.code(), "UNAUTHENTICATED");
    }

    // The key with another organization's id: refused as a whole, for any field.
    for (query, vars) in [
        ("{ viewer { activeOrganization { name } } }", json!({})),
        (
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": their_project }),
        ),
        (
            "query($id: ID!) { nodes(ids: [$id]) { id } }",
            json!({ "id": their_project }),
        ),
        (list, json!({})),
        (create, json!({})),
    ] {
        let foreign = app
            .gql(query)
            .vars(vars)
            .bearer(&key)
            .in_org(&other)
            .send()
            .await;
        assert_eq!(foreign.code(), "FORBIDDEN", "{query}: {}", foreign.body);
        assert!(foreign.body["data"].is_null(), "{query}: {}", foreign.body);
    }
    // Nothing was created anywhere.
    let bobs = app.gql(list).as_user(&bob).in_org(&other).send().await;
    assert_eq!(
        bobs.data()["projects"]["edges"].as_array().unwrap().len(),
        1
    );
    // With its own organization (named or implied) the key works.
    let own = app.gql(list).bearer(&key).in_org(&org).send().await;
    assert!(own.data()["projects"]["edges"].is_array());

    // Revoked: UNAUTHENTICATED with or without a header.
    app.gql("mutation($id: ID!) { revokeApiKey(input: {apiKeyId: $id}) { apiKey { id } } }")
        .vars(json!({ "id": key_id }))
        .as_user(&alice)
        .in_org(&org)
        .send()
        .await
        .data();
    assert_eq!(
        app.gql(list).bearer(&key).send().await.code(),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        app.gql(list).bearer(&key).in_org(&org).send().await.code(),
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn keys_follow_their_creators_standing() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let org = app.org(&alice, "Acme").await;
    let carol = app.user("carol@example.com").await;
    let carol_member = app.add_member(&alice, &org, &carol, "ADMIN").await;
    let (_, admin_key) = app.api_key(&carol, &org, "ADMIN").await;
    let (_, viewer_key) = app.api_key(&carol, &org, "VIEWER").await;
    // A key made by a key.
    let made = app
        .gql("mutation { createApiKey(input: {trustedDocumentsOnly: false, name: \"made by a key\", role: ADMIN}) { secret } }")
        .bearer(&admin_key)
        .send()
        .await;
    let key_made_by_key = made.data()["createApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let works = |key: String| {
        let app = &app;
        async move {
            let answer = app
                .gql("{ viewer { activeOrganization { name } } }")
                .bearer(&key)
                .send()
                .await;
            answer.body.get("errors").is_none()
        }
    };
    for key in [&admin_key, &viewer_key, &key_made_by_key] {
        assert!(works(key.clone()).await);
    }

    // Demoted to member: what a member cannot confer goes, with what it made.
    app.gql("mutation($id: ID!) { changeMemberRole(input: {memberId: $id, role: MEMBER}) { membership { role } } }")
        .vars(json!({ "id": carol_member }))
        .as_user(&alice)
        .in_org(&org)
        .send()
        .await
        .data();
    assert!(!works(admin_key.clone()).await, "an ADMIN key of a member");
    assert!(
        !works(key_made_by_key.clone()).await,
        "made by a revoked key"
    );
    assert!(
        works(viewer_key.clone()).await,
        "a member may confer VIEWER"
    );

    // The audit trail says why.
    let events = app
        .gql("query($f: AuditEventFilter) { auditEvents(filter: $f, first: 100) { edges { node { changes { field after } } } } }")
        .vars(json!({ "f": { "action": "api_key.revoked" } }))
        .as_user(&alice)
        .in_org(&org)
        .send()
        .await;
    let reasons: Vec<String> = events.data()["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            e["node"]["changes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["field"] == "reason")
                .map(|c| c["after"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(reasons, ["creator_demoted", "creator_key_revoked"]);

    // Removed: every key they made stops working (her ADMIN key made another before).
    app.gql("mutation($id: ID!) { removeMember(input: {memberId: $id}) { removedMemberId } }")
        .vars(json!({ "id": carol_member }))
        .as_user(&alice)
        .in_org(&org)
        .send()
        .await
        .data();
    assert!(!works(viewer_key).await);
}

#[tokio::test]
async fn a_key_may_expire() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let org = app.org(&alice, "Acme").await;
    let create = "mutation($at: DateTime) { createApiKey(input: {trustedDocumentsOnly: false, name: \"temp\", role: VIEWER, expiresAt: $at}) { secret apiKey { expiresAt } } }";
    let now = kernel::Clock::now(&app.clock);
    for bad in [
        now - chrono::Duration::minutes(1),
        now + chrono::Duration::days(4_000),
    ] {
        let refused = app
            .gql(create)
            .vars(json!({ "at": bad.to_rfc3339() }))
            .as_user(&alice)
            .in_org(&org)
            .send()
            .await;
        assert_eq!(refused.code(), "BAD_USER_INPUT", "{bad}");
        assert_eq!(refused.error()["extensions"]["field"], "expiresAt");
    }
    let issued = app
        .gql(create)
        .vars(json!({ "at": (now + chrono::Duration::hours(1)).to_rfc3339() }))
        .as_user(&alice)
        .in_org(&org)
        .send()
        .await;
    let key = issued.data()["createApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(issued.data()["createApiKey"]["apiKey"]["expiresAt"].is_string());
    let call = || {
        app.gql("{ viewer { activeOrganization { name } } }")
            .bearer(&key)
            .send()
    };
    assert!(call().await.body.get("errors").is_none());
    app.clock.advance(chrono::Duration::minutes(61));
    assert_eq!(call().await.code(), "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_key_may_be_restricted_to_some_permissions_of_its_role() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let org = app.org(&alice, "Acme").await;
    let create = "mutation($r: Role!, $s: [PermissionInput!]) { createApiKey(input: {trustedDocumentsOnly: false, name: \"ci\", role: $r, scopes: $s}) { secret apiKey { id scopes { resourceType action } } } }";
    let issue = |role: &str, scopes: serde_json::Value| {
        app.gql(create)
            .vars(json!({ "r": role, "s": scopes }))
            .as_user(&alice)
            .in_org(&org)
            .send()
    };
    // Only permissions the role gives, and at least one.
    let beyond = issue(
        "VIEWER",
        json!([{"resourceType": "PROJECT", "action": "CREATE"}]),
    )
    .await;
    assert_eq!(beyond.code(), "BAD_USER_INPUT");
    assert_eq!(beyond.error()["extensions"]["field"], "scopes");
    assert_eq!(issue("ADMIN", json!([])).await.code(), "BAD_USER_INPUT");

    let project = app
        .gql("mutation { createProject(input: {name: \"Apollo\"}) { project { id } } }")
        .as_user(&alice)
        .in_org(&org)
        .send()
        .await;
    let project = project.data()["createProject"]["project"]["id"].clone();
    app.gql("mutation($p: ID!) { createDocument(input: {projectId: $p, title: \"Plan\"}) { document { id } } }")
        .vars(json!({ "p": project }))
        .as_user(&alice)
        .in_org(&org)
        .send()
        .await
        .data();
    let scoped = issue(
        "ADMIN",
        json!([
            {"resourceType": "PROJECT", "action": "READ"},
            {"resourceType": "ORGANIZATION", "action": "READ"},
            {"resourceType": "PROJECT", "action": "READ"}
        ]),
    )
    .await;
    let key = scoped.data()["createApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown = &scoped.data()["createApiKey"]["apiKey"]["scopes"];
    assert_eq!(shown.as_array().unwrap().len(), 2, "{shown}");
    let unscoped = issue("ADMIN", serde_json::Value::Null).await;
    assert!(unscoped.data()["createApiKey"]["apiKey"]["scopes"].is_null());

    // Within the scope: works.
    let listed = app
        .gql("{ projects(first: 10) { edges { node { name } } } }")
        .bearer(&key)
        .send()
        .await;
    assert_eq!(
        listed.data()["projects"]["edges"][0]["node"]["name"],
        "Apollo"
    );
    // Beyond it, though its ADMIN role allows all of these: refused.
    for refused in [
        "mutation { inviteMember(input: {email: \"x@example.com\", role: VIEWER}) { token } }",
        "mutation { createApiKey(input: {trustedDocumentsOnly: false, name: \"more\", role: ADMIN}) { secret } }",
        "{ viewer { activeOrganization { members(first: 5) { edges { node { id } } } } } }",
        "mutation { createProject(input: {name: \"x\"}) { project { id } } }",
    ] {
        let answer = app.gql(refused).bearer(&key).send().await;
        assert_eq!(answer.code(), "FORBIDDEN", "{refused}: {}", answer.body);
    }
    let documents = app
        .gql("{ documents(first: 5) { edges { node { id } } } }")
        .bearer(&key)
        .send()
        .await;
    let hidden = documents.body["data"]["documents"]["edges"]
        .as_array()
        .is_none_or(Vec::is_empty);
    assert!(hidden, "{}", documents.body);
}

#[tokio::test]
async fn a_key_made_by_an_expiring_key_expires_with_it() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let org = app.org(&alice, "Acme").await;
    let now = kernel::Clock::now(&app.clock);
    let maker = app
        .gql("mutation($at: DateTime) { createApiKey(input: {trustedDocumentsOnly: false, name: \"maker\", role: ADMIN, expiresAt: $at}) { secret } }")
        .vars(json!({ "at": (now + chrono::Duration::hours(1)).to_rfc3339() }))
        .as_user(&alice)
        .in_org(&org)
        .send()
        .await;
    let maker = maker.data()["createApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let later = app
        .gql("mutation($at: DateTime) { createApiKey(input: {trustedDocumentsOnly: false, name: \"later\", role: VIEWER, expiresAt: $at}) { secret } }")
        .vars(json!({ "at": (now + chrono::Duration::days(2)).to_rfc3339() }))
        .bearer(&maker)
        .send()
        .await;
    assert_eq!(later.code(), "BAD_USER_INPUT");
    let child = app
        .gql("mutation { createApiKey(input: {trustedDocumentsOnly: false, name: \"child\", role: VIEWER}) { secret apiKey { expiresAt } } }")
        .bearer(&maker)
        .send()
        .await;
    assert!(child.data()["createApiKey"]["apiKey"]["expiresAt"].is_string());
    let child = child.data()["createApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    app.clock.advance(chrono::Duration::minutes(61));
    let dead = app
        .gql("{ viewer { activeOrganization { name } } }")
        .bearer(&child)
        .send()
        .await;
    assert_eq!(dead.code(), "UNAUTHENTICATED");
}

/// A key's secret, revocation and expiry are checked in the statement that enters its
/// organization (to meter the call): a key's query runs one tenant transaction, the
/// metering's, in which the operation reads and which commits before the answer; a
/// mutation two (the meter commits before the write). A wrong secret is refused before
/// any field runs.
#[tokio::test]
async fn a_key_is_checked_where_it_enters_and_its_query_is_one_transaction() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let org = app.org(&alice, "Acme").await;
    let other = app.org(&alice, "Globex").await;
    let (_, key) = app.api_key(&alice, &org, "ADMIN").await;
    let project = app.project(&alice, &org, "Ours").await;

    let before = app.server_db.tenant_transactions_begun();
    let listed = app
        .gql("{ projects { nodes { name } } }")
        .bearer(&key)
        .send()
        .await;
    assert_eq!(listed.data()["projects"]["nodes"][0]["name"], "Ours");
    assert_eq!(app.server_db.tenant_transactions_begun() - before, 1);
    let before = app.server_db.tenant_transactions_begun();
    app.gql("mutation($p: ID!) { updateProject(input: {projectId: $p, name: \"Ours\"}) { project { id } } }")
        .vars(json!({ "p": project }))
        .bearer(&key)
        .send()
        .await
        .data();
    assert_eq!(app.server_db.tenant_transactions_begun() - before, 2);

    // The right form with a wrong secret, or the key's id and secret under another
    // organization's id: refused whole, even what needs no caller.
    let mut wrong_secret = key.clone();
    let last = wrong_secret.pop().unwrap();
    wrong_secret.push(if last == 'a' { 'b' } else { 'a' });
    // `plsk_<org>_<key>_<secret>`.
    let mut parts = key.splitn(3, '_').skip(1);
    let (key_org, rest) = (parts.next().unwrap(), parts.next().unwrap());
    let other_org = other.org_id().to_string();
    assert_ne!(key_org, other_org);
    let moved = format!("plsk_{other_org}_{rest}");
    for forged in [&wrong_secret, &moved] {
        for query in [
            "{ __typename }",
            "{ projects { nodes { name } } }",
            "{ viewer { activeOrganization { name } } }",
        ] {
            let refused = app.gql(query).bearer(forged).send().await;
            assert_eq!(
                refused.code(),
                "UNAUTHENTICATED",
                "{query}: {}",
                refused.body
            );
            assert!(!refused.body.to_string().contains("Ours"));
        }
        let create = app
            .gql("mutation($n: String!) { updateProject(input: {projectId: $n, name: \"Forged\"}) { project { id } } }")
            .vars(json!({ "n": "none" }))
            .bearer(forged)
            .send()
            .await;
        assert_eq!(create.code(), "UNAUTHENTICATED");
    }
    let names = app
        .gql("{ projects { nodes { name } } }")
        .as_user(&alice)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(
        names.data()["projects"]["nodes"].as_array().unwrap().len(),
        1
    );
}

/// A key's `lastUsedAt` is written at most once a minute, and a call within that minute
/// costs no statement for it; a call after it writes the new time.
#[tokio::test]
async fn a_key_calling_again_within_a_minute_writes_nothing_for_its_use() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let org = app.org(&alice, "Acme").await;
    let (_, key) = app.api_key(&alice, &org, "MEMBER").await;
    let last_used = || async {
        app.gql("{ viewer { activeOrganization { apiKeys { nodes { lastUsedAt } } } } }")
            .as_user(&alice)
            .in_org(&org)
            .send()
            .await
            .data()["viewer"]["activeOrganization"]["apiKeys"]["nodes"][0]["lastUsedAt"]
            .clone()
    };
    let call = || async {
        let before = app.server_db.statements_executed();
        app.gql("{ projects(first: 1) { nodes { name } } }")
            .bearer(&key)
            .send()
            .await
            .data();
        app.server_db.statements_executed() - before
    };
    call().await; // the first: the key's policy and the plan's rates are read
    let noted = last_used().await;
    assert!(noted.is_string(), "{noted}");
    // A person's same query, for reference: the key's call adds its meter only (the
    // subscription's read and the usage row), no write of its use within the minute.
    let before = app.server_db.statements_executed();
    app.gql("{ projects(first: 1) { nodes { name } } }")
        .as_user(&alice)
        .in_org(&org)
        .send()
        .await
        .data();
    let person = app.server_db.statements_executed() - before;
    app.clock.advance(chrono::Duration::seconds(30));
    assert_eq!(call().await, person + 2);
    assert_eq!(last_used().await, noted);
    // A minute on, the use is written again; ten seconds later it is not.
    app.clock.advance(chrono::Duration::seconds(31));
    let after = call().await;
    let written = last_used().await;
    assert_ne!(written, noted);
    app.clock.advance(chrono::Duration::seconds(10));
    assert_eq!(call().await, person + 2);
    assert!(after > person + 2, "{after} statements");
    assert_eq!(last_used().await, written);
}
