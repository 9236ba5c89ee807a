//! The data map in code agrees with the live database: every column of every table is
//! classified (personal or not, and why), and no classification names a column that is
//! gone. On both engines, after every migration.

use crate::helpers::TestApp;

#[tokio::test]
async fn every_column_of_the_live_database_is_classified_and_nothing_else() {
    let app = TestApp::spawn().await;
    let catalog = app.catalog().await;
    assert!(
        catalog.len() > 100,
        "read the catalog: {} columns",
        catalog.len()
    );
    let problems = kernel::data_map::check(gateway::privacy::data_map(), &catalog);
    let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(
        problems.is_empty(),
        "classify each column in its crate's data_map.rs:\n{}",
        listed.join("\n")
    );
}

/// The retention the data map declares is what the retention run enforces: moving the
/// clock past each one removes exactly what is due, and nothing else.
#[tokio::test]
async fn the_retention_run_removes_exactly_what_the_data_map_says_is_due() {
    use chrono::Duration;
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let org = app.org(&alice, "Acme").await;
    let bob = app.user("bob@example.com").await;
    // Accepted now; and one pending (it expires in 7 days).
    app.add_member(&alice, &org, &bob, "MEMBER").await;
    app.invite(&alice, &org, "carol@example.com", "VIEWER")
        .await
        .data();
    // Bob's session ends now; Alice's runs until its refresh token expires (30 days).
    app.gql("mutation { logOut { ok } }")
        .as_user(&bob)
        .send()
        .await
        .data();

    let now = app.retention_run().await;
    assert_eq!(
        (
            now.ended_sessions,
            now.ended_invitations,
            now.old_sign_up_counters
        ),
        (0, 0, 0),
        "{now:?}"
    );
    // Sign-up counters are kept a day.
    app.clock.advance(Duration::days(2));
    let day2 = app.retention_run().await;
    assert_eq!(day2.old_sign_up_counters, 2, "{day2:?}");
    assert_eq!((day2.ended_sessions, day2.ended_invitations), (0, 0));
    // Ended things are kept 30 days: Bob's session and the accepted invitation are due;
    // Alice's session (expired a day ago) and the pending invitation (expired 24 days
    // ago) are not.
    app.clock.advance(Duration::days(29));
    let day31 = app.retention_run().await;
    assert_eq!(
        (day31.ended_sessions, day31.ended_invitations),
        (1, 1),
        "{day31:?}"
    );
    app.clock.advance(Duration::days(7));
    let day38 = app.retention_run().await;
    assert_eq!(
        (day38.ended_sessions, day38.ended_invitations),
        (0, 1),
        "{day38:?}"
    );
    app.clock.advance(Duration::days(23));
    let day61 = app.retention_run().await;
    assert_eq!(
        (day61.ended_sessions, day61.ended_invitations),
        (1, 0),
        "{day61:?}"
    );
    assert_eq!(day61.failed, 0);

    // The purges are recorded in the organization's chain, by the system.
    let alice = app.relog(&alice).await;
    let events = app
        .gql("{ auditEvents(filter: {action: \"invitations.purged\"}, first: 10) { edges { node { actorType } } } }")
        .as_user(&alice)
        .in_org(&org)
        .send()
        .await;
    let edges = events.data()["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(edges.len(), 2);
    assert_eq!(edges[0]["node"]["actorType"], "system");
}
