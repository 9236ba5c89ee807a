//! Sign-up, log-in, tokens, refresh rotation, log-out and throttling.

use crate::helpers::{PASSWORD, TestApp};
use chrono::Duration;
use serde_json::json;

const VIEWER: &str = "{ viewer { user { email } } }";

#[tokio::test]
async fn sign_up_then_log_in_and_ask_who_i_am() {
    let app = TestApp::spawn().await;
    let alice = app.user("Alice@Example.com").await;
    let me = app.gql(VIEWER).as_user(&alice).send().await;
    assert_eq!(me.data()["viewer"]["user"]["email"], "Alice@Example.com");

    // Email is unique case-insensitively; log-in ignores case too.
    let again = app
        .gql("mutation { signUp(input: {email: \"alice@EXAMPLE.com\", password: \"another-password\", name: \"A\"}) { user { id } } }")
        .send()
        .await;
    assert_eq!(again.code(), "CONFLICT");
    assert!(
        app.log_in("ALICE@example.com", PASSWORD)
            .await
            .body
            .get("errors")
            .is_none()
    );
}

#[tokio::test]
async fn bad_sign_up_input_is_bad_user_input() {
    let app = TestApp::spawn().await;
    for (email, password, name) in [
        ("not-an-email", "long-enough-password", "N"),
        ("a@b.test", "short", "N"),
        ("a@b.test", "long-enough-password", "   "),
    ] {
        let response = app
            .gql("mutation($i: SignUpInput!) { signUp(input: $i) { user { id } } }")
            .vars(json!({ "i": { "email": email, "password": password, "name": name } }))
            .send()
            .await;
        assert_eq!(
            response.code(),
            "BAD_USER_INPUT",
            "{email} {password} {name}"
        );
    }
}

#[tokio::test]
async fn wrong_credentials_and_bad_tokens_are_unauthenticated() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    assert_eq!(
        app.log_in("alice@example.com", "wrong-password")
            .await
            .code(),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        app.log_in("nobody@example.com", PASSWORD).await.code(),
        "UNAUTHENTICATED"
    );

    assert_eq!(app.gql(VIEWER).send().await.code(), "UNAUTHENTICATED");
    assert_eq!(
        app.gql(VIEWER).bearer("garbage").send().await.code(),
        "UNAUTHENTICATED"
    );
    let mut tampered = alice.token.clone();
    let flipped = if tampered.ends_with('A') { "B" } else { "A" };
    tampered.replace_range(tampered.len() - 1.., flipped);
    assert_eq!(
        app.gql(VIEWER).bearer(&tampered).send().await.code(),
        "UNAUTHENTICATED"
    );

    // Expired: the access token lives 15 minutes on the server's clock.
    app.clock.advance(Duration::minutes(16));
    assert_eq!(
        app.gql(VIEWER).as_user(&alice).send().await.code(),
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_refresh_token_ends_the_session() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let refresh = "mutation($t: String!) { refreshToken(input: {refreshToken: $t}) { accessToken refreshToken } }";

    let first = app
        .gql(refresh)
        .vars(json!({ "t": alice.refresh_token }))
        .send()
        .await;
    let new_access = first.data()["refreshToken"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let new_refresh = first.data()["refreshToken"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_refresh, alice.refresh_token);
    assert!(
        app.gql(VIEWER)
            .bearer(&new_access)
            .send()
            .await
            .body
            .get("errors")
            .is_none()
    );

    // The old refresh token was used: presenting it again is theft, the session ends.
    let reuse = app
        .gql(refresh)
        .vars(json!({ "t": alice.refresh_token }))
        .send()
        .await;
    assert_eq!(reuse.code(), "UNAUTHENTICATED");
    assert_eq!(
        app.gql(VIEWER).bearer(&new_access).send().await.code(),
        "UNAUTHENTICATED"
    );
    let after = app
        .gql(refresh)
        .vars(json!({ "t": new_refresh }))
        .send()
        .await;
    assert_eq!(after.code(), "UNAUTHENTICATED");
}

#[tokio::test]
async fn log_out_revokes_the_access_and_refresh_tokens() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let other_session = app.log_in("alice@example.com", PASSWORD).await;
    let other_token = other_session.data()["logIn"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();

    let out = app
        .gql("mutation { logOut { ok } }")
        .as_user(&alice)
        .send()
        .await;
    assert_eq!(out.data()["logOut"]["ok"], true);
    assert_eq!(
        app.gql(VIEWER).as_user(&alice).send().await.code(),
        "UNAUTHENTICATED"
    );
    let refresh = app
        .gql("mutation($t: String!) { refreshToken(input: {refreshToken: $t}) { accessToken } }")
        .vars(json!({ "t": alice.refresh_token }))
        .send()
        .await;
    assert_eq!(refresh.code(), "UNAUTHENTICATED");
    // Another session of the same person is untouched.
    assert!(
        app.gql(VIEWER)
            .bearer(&other_token)
            .send()
            .await
            .body
            .get("errors")
            .is_none()
    );
}

/// A session's liveness is checked where the request first needs its caller: entering an
/// organization (in the same statement), or on its own for operations that enter none.
/// After log-out, every kind of operation refuses the old access token.
#[tokio::test]
async fn a_logged_out_session_is_refused_by_every_kind_of_operation() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let org = app.org(&alice, "Acme").await;
    let created = app
        .gql("mutation { createProject(input: {name: \"Kept\"}) { project { id } } }")
        .as_user(&alice)
        .in_org(&org)
        .send()
        .await;
    let project = created.data()["createProject"]["project"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = app.log_in("alice@example.com", PASSWORD).await;
    let other_token = other.data()["logIn"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = app
        .gql("mutation { logOut { ok } }")
        .as_user(&alice)
        .send()
        .await;
    assert_eq!(out.data()["logOut"]["ok"], true);

    let in_org = [
        "{ projects { nodes { name } } }",
        "{ subscription { status } }",
        "{ auditEvents { nodes { action } } }",
        "mutation { createProject(input: {name: \"Lost\"}) { project { id } } }",
    ];
    for query in in_org {
        let refused = app.gql(query).as_user(&alice).in_org(&org).send().await;
        assert_eq!(
            refused.code(),
            "UNAUTHENTICATED",
            "{query}: {}",
            refused.body
        );
        assert!(
            refused.body["data"].is_null() || !refused.body["data"].to_string().contains("Kept")
        );
    }
    let node = "query($id: ID!) { node(id: $id) { id } }";
    for id in [&project, &org.id, &alice.id] {
        let refused = app
            .gql(node)
            .vars(json!({ "id": id }))
            .as_user(&alice)
            .in_org(&org)
            .send()
            .await;
        assert_eq!(
            refused.code(),
            "UNAUTHENTICATED",
            "node {id}: {}",
            refused.body
        );
    }
    let without_org = [
        VIEWER,
        "{ viewer { organizations { nodes { name } } } }",
        "{ plans { code } }",
        "{ dataExports(first: 1) { nodes { id } } }",
        "mutation { logOut { ok } }",
        "mutation { requestDataExport(input: {scope: PERSON}) { dataExport { id } } }",
        "mutation { createOrganization(input: {name: \"Other\"}) { organization { id } } }",
    ];
    for query in without_org {
        let refused = app.gql(query).as_user(&alice).send().await;
        assert_eq!(
            refused.code(),
            "UNAUTHENTICATED",
            "{query}: {}",
            refused.body
        );
    }
    // Fields that enter an organization and fields that do not, in one operation.
    let mixed = app
        .gql("{ plans { code } projects { nodes { name } } viewer { user { email } } }")
        .as_user(&alice)
        .in_org(&org)
        .send()
        .await;
    let codes: Vec<_> = mixed.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["extensions"]["code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes, ["UNAUTHENTICATED"; 3], "{}", mixed.body);
    for path in [
        "/audit/export",
        "/exports/00000000-0000-0000-0000-000000000000",
    ] {
        let response = app
            .http
            .get(format!("{}{path}", app.address))
            .bearer_auth(&alice.token)
            .header("x-organization-id", &org.id)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{path}");
    }

    // The other session still works, and nothing was created by the refused one.
    let listed = app
        .gql("{ projects { nodes { name } } }")
        .bearer(&other_token)
        .in_org(&org)
        .send()
        .await;
    let names: Vec<_> = listed.data()["projects"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["Kept"]);
}

#[tokio::test]
async fn log_in_is_throttled_per_account_after_repeated_failures() {
    let app = TestApp::spawn().await;
    app.user("alice@example.com").await;
    for _ in 0..10 {
        assert_eq!(
            app.log_in("alice@example.com", "wrong-password")
                .await
                .code(),
            "UNAUTHENTICATED"
        );
    }
    let throttled = app.log_in("alice@example.com", PASSWORD).await;
    assert_eq!(throttled.code(), "RATE_LIMITED");
    let retry_after = throttled.error()["extensions"]["retryAfterSeconds"]
        .as_i64()
        .unwrap();
    assert!(retry_after > 0);
    assert_eq!(throttled.status, 429);
    assert_eq!(throttled.retry_after, Some(retry_after.to_string()));

    // The guesser's address is refused, not the account: the right password from an
    // address without failures gets in (ten requests locked alice out for 15 minutes).
    let elsewhere = app
        .log_in_from("127.0.0.2", "alice@example.com", PASSWORD)
        .await;
    assert!(elsewhere.body.get("errors").is_none(), "{}", elsewhere.body);
    // An account under attack from many addresses gives each new address one try, not
    // ten.
    for i in 10..20 {
        let guess = app
            .log_in_from(
                &format!("127.0.0.{i}"),
                "alice@example.com",
                "wrong-password",
            )
            .await;
        assert_eq!(guess.code(), "UNAUTHENTICATED");
    }
    let first = app
        .log_in_from("127.0.0.3", "alice@example.com", "wrong-password")
        .await;
    assert_eq!(first.code(), "UNAUTHENTICATED");
    let second = app
        .log_in_from("127.0.0.3", "alice@example.com", PASSWORD)
        .await;
    assert_eq!(second.code(), "RATE_LIMITED");
    assert!(
        app.log_in_from("127.0.0.4", "alice@example.com", PASSWORD)
            .await
            .body
            .get("errors")
            .is_none()
    );

    // The window passes; the right password works again.
    app.clock.advance(Duration::minutes(16));
    assert!(
        app.log_in("alice@example.com", PASSWORD)
            .await
            .body
            .get("errors")
            .is_none()
    );
    // The counters name an email and an address: the retention run drops them once
    // their window is over.
    assert!(app.retention_run().await.expired_throttles >= 10);
}

#[tokio::test]
async fn log_in_is_throttled_per_address_across_accounts() {
    let app = TestApp::spawn().await;
    app.user("alice@example.com").await;
    // A hundred failures from one address, each on a different (unknown) account.
    for i in 0..100 {
        let failed = app
            .log_in(&format!("probe{i}@example.com"), "wrong-password")
            .await;
        assert_eq!(failed.code(), "UNAUTHENTICATED");
    }
    // Now even a correct log-in from that address waits.
    assert_eq!(
        app.log_in("alice@example.com", PASSWORD).await.code(),
        "RATE_LIMITED"
    );
    app.clock.advance(Duration::minutes(16));
    assert!(
        app.log_in("alice@example.com", PASSWORD)
            .await
            .body
            .get("errors")
            .is_none()
    );
}

#[tokio::test]
async fn parallel_guesses_cannot_race_past_the_limit() {
    let app = TestApp::spawn().await;
    app.user("alice@example.com").await;
    // Sixty wrong passwords at once against a limit of ten per account and address (all
    // sixty were checked and stored before).
    let guesses = (0..60).map(|_| app.log_in("alice@example.com", "wrong-password"));
    let answers = futures::future::join_all(guesses).await;
    let checked = answers
        .iter()
        .filter(|a| a.code() == "UNAUTHENTICATED")
        .count();
    let refused = answers
        .iter()
        .filter(|a| a.code() == "RATE_LIMITED")
        .count();
    assert_eq!(checked + refused, 60);
    assert!(
        (1..=10).contains(&checked),
        "{checked} passwords were checked"
    );
}
