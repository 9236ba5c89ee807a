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

    // What went outside any organization is recorded in the platform chain.
    let (db, backend) = app.whole_database().await;
    use sea_orm::ConnectionTrait;
    let platform: i64 = db
        .query_one_raw(sea_orm::Statement::from_string(
            backend,
            // Only the platform's chain has this action.
            "SELECT count(*) FROM audit_events WHERE action = 'retention.purged'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index(0)
        .unwrap();
    // Day 2 (counters), day 31 (a session, throttles), day 61 (a session).
    assert!(platform >= 3, "{platform} retention events");
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

/// Usage events are kept until the period they belong to can no longer change (invoiced,
/// its grace over) and then for the data map's days; without a subscription, a month
/// and then those days. Each organization's purge is its own and recorded by the system.
#[tokio::test]
async fn usage_events_are_deleted_once_settled_and_kept_for_their_retention() {
    use chrono::Duration;
    let app = TestApp::spawn().await;
    gateway::catalog::import_catalog(
        &app.state,
        &billing::CatalogFile::parse(crate::billing::METERED).unwrap(),
    )
    .await
    .unwrap();
    let alice = app.user("alice@example.com").await;
    let free = app.org(&alice, "Free").await;
    let paid = app.org(&alice, "Paid").await;
    app.gql("mutation { changePlan(input: {plan: \"metered\", timeZone: \"UTC\"}) { effective } }")
        .as_user(&alice)
        .in_org(&paid)
        .send()
        .await
        .data();
    let record = |org: &crate::helpers::TestOrg, user: &crate::helpers::TestUser, key: &str| {
        app.gql("mutation($k: String!) { recordUsage(input: {events: [{metric: \"api_calls\", key: $k}]}) { stored } }")
            .vars(serde_json::json!({ "k": key }))
            .as_user(user)
            .in_org(org)
            .send()
    };
    record(&free, &alice, "f1").await.data();
    record(&paid, &alice, "p1").await.data();
    let usage =
        |report: &gateway::background::retention_run::RetentionReport| report.old_usage_events;

    // Two months on: the free organization's month and 90 days are not over, the paid
    // one's first period is settled but its 90 days are not.
    app.clock.advance(Duration::days(61));
    assert_eq!(usage(&app.retention_run().await), 0);
    // 122 days: the free organization's event (31 + 90 days) goes; the paid one's
    // period ended a month after it began, so its 90 days end about day 124.
    app.clock.advance(Duration::days(61));
    let alice = app.relog(&alice).await;
    record(&free, &alice, "f2").await.data();
    assert_eq!(usage(&app.retention_run().await), 1);
    app.clock.advance(Duration::days(40));
    let alice = app.relog(&alice).await;
    record(&paid, &alice, "p2").await.data();
    let day162 = app.retention_run().await;
    assert_eq!(usage(&day162), 1, "{day162:?}");
    assert_eq!(day162.failed, 0);

    // Each purge is in its organization's chain, by the system.
    for (org, key) in [(&free, "f2"), (&paid, "p2")] {
        let events = app
            .gql("{ auditEvents(filter: {action: \"usage_events.purged\"}, first: 10) { edges { node { actorType } } } }")
            .as_user(&alice)
            .in_org(org)
            .send()
            .await;
        let edges = events.data()["auditEvents"]["edges"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(edges.len(), 1, "{key}");
        assert_eq!(edges[0]["node"]["actorType"], "system");
    }
}
