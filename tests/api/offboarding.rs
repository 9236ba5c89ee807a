//! Organization offboarding (issue 14 §4): an owner asks for the deletion, the
//! organization is frozen (owners read and may cancel, nobody else enters, keys die),
//! and after the grace period the purge leaves no row of it in any table but the
//! finalized invoices kept for their legal period; a purge that stopped midway resumes.

use crate::helpers::{TestApp, TestOrg, TestUser, on_postgres};
use kernel::ClientError as _;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const REQUEST: &str = "mutation($o: ID!, $s: String!) { requestOrganizationDeletion(input: \
    {organizationId: $o, confirmSlug: $s}) { organization { status deletionScheduledAt } } }";
const CANCEL: &str = "mutation($o: ID!) { cancelOrganizationDeletion(input: {organizationId: $o}) \
    { organization { status deletionScheduledAt } } }";

async fn request(
    app: &TestApp,
    user: &TestUser,
    org: &TestOrg,
    slug: &str,
) -> crate::helpers::GqlResponse {
    app.gql(REQUEST)
        .vars(json!({ "o": org.id, "s": slug }))
        .as_user(user)
        .send()
        .await
}

async fn cancel(app: &TestApp, user: &TestUser, org: &TestOrg) -> crate::helpers::GqlResponse {
    app.gql(CANCEL)
        .vars(json!({ "o": org.id }))
        .as_user(user)
        .send()
        .await
}

/// An organization with a row in (nearly) every table: members, an invitation, a key,
/// a custom role, a grant, a deny rule, a project with a reviewed document, usage, a
/// paid subscription with a finalized invoice, an accepted agreement, audit retention.
async fn populated(app: &TestApp, owner: &TestUser, name: &str) -> (TestOrg, TestUser) {
    let org = app.org(owner, name).await;
    let admin = app
        .user(&format!("admin@{}.example", name.to_lowercase()))
        .await;
    app.add_member(owner, &org, &admin, "ADMIN").await;
    app.invite(owner, &org, &format!("guest@{name}.example"), "VIEWER")
        .await
        .data();
    app.api_key(owner, &org, "VIEWER").await;
    let project = app.project(owner, &org, "Handbook").await;
    let document = app
        .gql("mutation($p: ID!) { createDocument(input: {projectId: $p, title: \"Intro\", body: \"Text\"}) { document { id } } }")
        .vars(json!({ "p": project }))
        .as_user(owner)
        .in_org(&org)
        .send()
        .await
        .data()["createDocument"]["document"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for step in ["submitDocument", "approveDocument"] {
        let user = if step == "approveDocument" {
            &admin
        } else {
            owner
        };
        app.gql(&format!(
            "mutation($d: ID!) {{ {step}(input: {{documentId: $d}}) {{ document {{ status }} }} }}"
        ))
        .vars(json!({ "d": document }))
        .as_user(user)
        .in_org(&org)
        .send()
        .await
        .data();
    }
    let member = app
        .user(&format!("member@{}.example", name.to_lowercase()))
        .await;
    app.add_member(owner, &org, &member, "MEMBER").await;
    app.gql("mutation($p: ID!, $u: ID!) { grantAccess(input: {resourceId: $p, subjectId: $u, relation: \"editor\"}) { grant { id } } }")
        .vars(json!({ "p": project, "u": member.id }))
        .as_user(owner)
        .in_org(&org)
        .send()
        .await
        .data();
    app.gql("mutation { createRole(input: {name: \"compliance\", permissions: [{resourceType: AUDIT, action: READ}]}) { role { name } } }")
        .as_user(owner)
        .in_org(&org)
        .send()
        .await
        .data();
    app.gql("mutation { setAuditRetention(input: {keepDays: 400}) { keepDays } }")
        .as_user(owner)
        .in_org(&org)
        .send()
        .await
        .data();
    app.gql("mutation { changePlan(input: {plan: \"metered\", timeZone: \"UTC\"}) { effective } }")
        .as_user(owner)
        .in_org(&org)
        .send()
        .await
        .data();
    app.gql("mutation { recordUsage(input: {events: [{metric: \"api_calls\", key: \"k1\"}]}) { stored } }")
        .as_user(owner)
        .in_org(&org)
        .send()
        .await
        .data();
    (org, admin)
}

/// Rows of `org` in every table with an `organization_id` column (and its own row in
/// `organizations`), read as the database owner.
async fn rows_of(app: &TestApp, org: &TestOrg) -> BTreeMap<String, i64> {
    let (db, backend) = app.whole_database().await;
    let id = org.org_id().as_uuid();
    let mut tables: Vec<(String, &str)> = app
        .catalog()
        .await
        .into_iter()
        .filter(|(_, column)| column == "organization_id")
        .map(|(table, _)| (table, "organization_id"))
        .collect();
    tables.push(("organizations".to_owned(), "id"));
    let mut counts = BTreeMap::new();
    for (table, column) in tables {
        let (sql, value): (String, sea_orm::Value) = if backend == DbBackend::Postgres {
            (
                format!("SELECT count(*) FROM \"{table}\" WHERE \"{column}\" = $1"),
                id.into(),
            )
        } else {
            (
                format!("SELECT count(*) FROM \"{table}\" WHERE \"{column}\" = ?"),
                id.into(),
            )
        };
        let count: i64 = db
            .query_one_raw(Statement::from_sql_and_values(backend, sql, [value]))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index(0)
            .unwrap();
        counts.insert(table, count);
    }
    counts
}

#[tokio::test]
async fn a_deleted_organization_is_frozen_then_purged_leaving_only_its_invoices() {
    let app = TestApp::spawn().await;
    gateway::catalog::import_catalog(
        &app.state,
        &billing::CatalogFile::parse(crate::billing::METERED).unwrap(),
    )
    .await
    .unwrap();
    let owner = app.user("owner@example.com").await;
    let (acme, admin) = populated(&app, &owner, "Acme").await;
    let globex_owner = app.user("owner@globex.example").await;
    let (globex, _) = populated(&app, &globex_owner, "Globex").await;
    let (_, key) = app.api_key(&owner, &acme, "ADMIN").await;
    let before = rows_of(&app, &acme).await;
    for table in [
        "memberships",
        "invitations",
        "api_keys",
        "projects",
        "documents",
        "document_versions",
        "document_reviews",
        "record_grants",
        "authz_roles",
        "subscriptions",
        "invoices",
        "invoice_lines",
        "usage_events",
        "audit_events",
        "audit_retention",
    ] {
        assert!(before[table] > 0, "{table} has no row to purge: {before:?}");
    }
    let globex_before = rows_of(&app, &globex).await;

    // Refused, nothing changed: a wrong slug, an admin, a key, someone else's org.
    let wrong = request(&app, &owner, &acme, "acme-wrong").await;
    assert_eq!(wrong.code(), "BAD_USER_INPUT");
    assert_eq!(wrong.error()["extensions"]["field"], "confirmSlug");
    assert_eq!(
        request(&app, &admin, &acme, "acme").await.code(),
        "FORBIDDEN"
    );
    let by_key = app
        .gql(REQUEST)
        .vars(json!({ "o": acme.id, "s": "acme" }))
        .bearer(&key)
        .send()
        .await;
    assert_eq!(by_key.code(), "FORBIDDEN");
    assert_eq!(
        request(&app, &globex_owner, &acme, "acme").await.code(),
        "FORBIDDEN"
    );
    assert_eq!(cancel(&app, &globex_owner, &acme).await.code(), "FORBIDDEN");
    let nothing_pending = cancel(&app, &owner, &acme).await;
    assert_eq!(nothing_pending.code(), "CONFLICT");
    // (The key's refused call is metered like every call: usage may grow.)
    let mut unchanged = rows_of(&app, &acme).await;
    unchanged.insert("usage_events".into(), before["usage_events"]);
    assert_eq!(unchanged, before);

    // Asked for: pending for 30 days.
    let now = kernel::Clock::now(&app.clock);
    let asked = request(&app, &owner, &acme, "acme").await;
    let asked = &asked.data()["requestOrganizationDeletion"]["organization"];
    assert_eq!(asked["status"], "PENDING_DELETION");
    let scheduled =
        chrono::DateTime::parse_from_rfc3339(asked["deletionScheduledAt"].as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc);
    assert_eq!(scheduled, now + chrono::Duration::days(30));

    // Frozen: keys dead, non-owners out, owners read (to export) but change nothing;
    // a second request is the same conflict. Globex is untouched.
    let key_read = app
        .gql("{ projects(first: 5) { nodes { id } } }")
        .bearer(&key)
        .send()
        .await;
    assert_eq!(key_read.code(), "UNAUTHENTICATED");
    let admin_read = app
        .gql("{ projects(first: 5) { nodes { id } } }")
        .as_user(&admin)
        .in_org(&acme)
        .send()
        .await;
    assert_eq!(admin_read.code(), "CONFLICT");
    assert_eq!(
        admin_read.error()["extensions"]["reason"],
        "PENDING_DELETION"
    );
    let owner_read = app
        .gql("{ projects(first: 5) { nodes { name } } viewer { activeOrganization { status } } }")
        .as_user(&owner)
        .in_org(&acme)
        .send()
        .await;
    assert_eq!(
        owner_read.data()["projects"]["nodes"][0]["name"],
        "Handbook"
    );
    assert_eq!(
        owner_read.data()["viewer"]["activeOrganization"]["status"],
        "PENDING_DELETION"
    );
    let write = app
        .gql("mutation { createProject(input: {name: \"More\"}) { project { id } } }")
        .as_user(&owner)
        .in_org(&acme)
        .send()
        .await;
    assert_eq!(write.code(), "CONFLICT");
    assert_eq!(write.error()["extensions"]["reason"], "PENDING_DELETION");
    // The pending invitation was revoked with the request; joining now is refused.
    let invitations = app
        .gql("{ viewer { activeOrganization { invitations(first: 10) { nodes { status } } } } }")
        .as_user(&owner)
        .in_org(&acme)
        .send()
        .await;
    let statuses =
        invitations.data()["viewer"]["activeOrganization"]["invitations"]["nodes"].clone();
    assert!(
        statuses
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["status"] != "PENDING"),
        "{statuses}"
    );
    // The owners take the data with them: an export is allowed while pending.
    let export = app
        .gql("mutation { requestDataExport(input: {scope: ORGANIZATION}) { dataExport { id } } }")
        .as_user(&owner)
        .in_org(&acme)
        .send()
        .await;
    let export = export.data()["requestDataExport"]["dataExport"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let export = crate::helpers::global_id_uuid(&export, "DataExport").unwrap();
    let archive = gateway::background::data_export::archive_path(&app.state, export);
    for _ in 0..200 {
        if archive.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(archive.exists(), "the export was prepared");
    let again = request(&app, &owner, &acme, "acme").await;
    assert_eq!(again.code(), "CONFLICT");
    assert_eq!(again.error()["extensions"]["reason"], "PENDING_DELETION");
    let subscription = app
        .gql("{ subscription { cancelAtPeriodEnd } }")
        .as_user(&owner)
        .in_org(&acme)
        .send()
        .await;
    assert_eq!(
        subscription.data()["subscription"]["cancelAtPeriodEnd"],
        true
    );
    app.project(&globex_owner, &globex, "Still here").await;

    // Not due yet: the run purges nothing.
    assert_eq!(app.retention_run().await.purged_organizations_deleted, 0);
    assert_eq!(rows_of(&app, &acme).await["projects"], 1);

    // Due: every row of Acme goes but its finalized invoices (and their lines), which
    // keep the organization's row as a tombstone with its slug released.
    app.clock.advance(chrono::Duration::days(31));
    let report = app.retention_run().await;
    assert_eq!(report.purged_organizations_deleted, 1, "{report:?}");
    let after = rows_of(&app, &acme).await;
    for (table, count) in &after {
        let kept = matches!(
            table.as_str(),
            "invoices" | "invoice_lines" | "organizations"
        );
        if kept {
            assert!(*count > 0, "{table} kept nothing: {after:?}");
        } else {
            assert_eq!(
                *count, 0,
                "{table} still holds rows of the purged organization"
            );
        }
    }
    // Its export went with it.
    assert!(!archive.exists());
    let (db, backend) = app.whole_database().await;
    let tombstone = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            if on_postgres() {
                "SELECT slug, purged_at IS NOT NULL AS purged FROM organizations WHERE id = $1"
            } else {
                "SELECT slug, purged_at IS NOT NULL AS purged FROM organizations WHERE id = ?"
            },
            [acme.org_id().as_uuid().into()],
        ))
        .await
        .unwrap()
        .unwrap();
    assert!(
        tombstone
            .try_get::<String>("", "slug")
            .unwrap()
            .starts_with("purged-")
    );
    assert!(tombstone.try_get::<bool>("", "purged").unwrap());
    // The slug is free again, the owner's account and Globex untouched, the platform
    // chain records the purge and verifies.
    let owner = app.relog(&owner).await;
    let reborn = app.org(&owner, "Acme").await;
    let slug = app
        .gql("{ viewer { activeOrganization { slug } } }")
        .as_user(&owner)
        .in_org(&reborn)
        .send()
        .await;
    assert_eq!(slug.data()["viewer"]["activeOrganization"]["slug"], "acme");
    let gone = app
        .gql("{ viewer { activeOrganization { id } } }")
        .as_user(&owner)
        .in_org(&acme)
        .send()
        .await;
    assert_eq!(gone.code(), "FORBIDDEN");
    let globex_after = rows_of(&app, &globex).await;
    assert_eq!(globex_after["projects"], globex_before["projects"] + 1);
    assert_eq!(globex_after["memberships"], globex_before["memberships"]);
    let platform = app
        .state
        .tenancy
        .verify_audit_chain(kernel::OrgId::PLATFORM, audit::Hashing::Here)
        .await
        .unwrap();
    assert!(platform.broken.is_none(), "{platform:?}");
    let purged: i64 = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            if on_postgres() {
                "SELECT count(*) FROM audit_events WHERE action = 'organization.purged' AND target_id = $1"
            } else {
                "SELECT count(*) FROM audit_events WHERE action = 'organization.purged' AND target_id = ?"
            },
            [acme.org_id().as_uuid().to_string().into()],
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index(0)
        .unwrap();
    assert_eq!(purged, 1);
    // Nothing left to do: a second run purges nothing.
    let again = app.retention_run().await;
    assert_eq!(
        (again.purged_organizations_deleted, again.retained_invoices),
        (0, 0)
    );

    // Ten years on (INVOICE_RETENTION_YEARS), the kept invoices go, and the tombstone
    // with them; Globex's invoices are its own and stay.
    let globex_invoices = rows_of(&app, &globex).await["invoices"];
    app.clock.advance(chrono::Duration::days(3_660));
    let end = app.retention_run().await;
    assert_eq!(end.retained_invoices, after["invoices"] as u64, "{end:?}");
    let gone = rows_of(&app, &acme).await;
    assert!(gone.values().all(|count| *count == 0), "{gone:?}");
    assert_eq!(rows_of(&app, &globex).await["invoices"], globex_invoices);
    let platform = app
        .state
        .tenancy
        .verify_audit_chain(kernel::OrgId::PLATFORM, audit::Hashing::Here)
        .await
        .unwrap();
    assert!(platform.broken.is_none(), "{platform:?}");
}

#[tokio::test]
async fn a_cancelled_deletion_gives_the_organization_back_and_a_purge_without_invoices_deletes_its_row()
 {
    let app = TestApp::spawn_with(|config| config.privacy.org_deletion_grace_days = 0).await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    let member = app.user("member@example.com").await;
    app.add_member(&owner, &org, &member, "MEMBER").await;
    app.project(&owner, &org, "Kept").await;

    let dan = app.user("dan@example.com").await;
    let invited = app.invite(&owner, &org, "dan@example.com", "OWNER").await;
    let token = invited.data()["inviteMember"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    request(&app, &owner, &org, "acme").await.data();
    // Nobody joins an organization on its way out.
    let joined = app
        .gql("mutation($t: String!) { acceptInvitation(input: {token: $t}) { membership { id } } }")
        .vars(json!({ "t": token }))
        .as_user(&dan)
        .send()
        .await;
    assert_eq!(joined.code(), "CONFLICT");
    assert_eq!(joined.error()["extensions"]["reason"], "PENDING_DELETION");
    let back = cancel(&app, &owner, &org).await;
    let back = &back.data()["cancelOrganizationDeletion"]["organization"];
    assert_eq!(back["status"], "ACTIVE");
    assert_eq!(back["deletionScheduledAt"], Value::Null);
    // Members are back in and it changes again; a grace of 0 purged nothing meanwhile.
    assert_eq!(app.retention_run().await.purged_organizations_deleted, 0);
    app.project(&member, &org, "Again").await;

    // With no invoice to keep, the purge deletes the organization's row too.
    request(&app, &owner, &org, "acme").await.data();
    app.clock.advance(chrono::Duration::seconds(1));
    let purged = gateway::background::retention_run::purge_due_organizations(&app.state)
        .await
        .unwrap();
    assert_eq!(purged.len(), 1);
    assert!(!purged[0].tombstone);
    let rows = rows_of(&app, &org).await;
    assert!(rows.values().all(|count| *count == 0), "{rows:?}");
    let owner = app.relog(&owner).await;
    let organizations = app
        .gql("{ viewer { organizations(first: 10) { nodes { id } } } }")
        .as_user(&owner)
        .send()
        .await;
    assert_eq!(
        organizations.data()["viewer"]["organizations"]["nodes"],
        json!([])
    );
}

#[tokio::test]
async fn a_purge_that_fails_midway_shows_what_is_left_and_a_rerun_finishes_it() {
    let app = TestApp::spawn_with(|config| config.privacy.org_deletion_grace_days = 0).await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    app.project(&owner, &org, "Handbook").await;
    app.api_key(&owner, &org, "VIEWER").await;
    request(&app, &owner, &org, "acme").await.data();
    app.clock.advance(chrono::Duration::seconds(1));

    // Memberships cannot be deleted for a while: the purge stops there.
    let (db, backend) = app.whole_database().await;
    let (block, unblock) = if on_postgres() {
        (
            "CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$; \
             CREATE TRIGGER test_refuse BEFORE DELETE ON memberships \
             FOR EACH ROW EXECUTE FUNCTION test_refuse();",
            "DROP TRIGGER test_refuse ON memberships; DROP FUNCTION test_refuse();",
        )
    } else {
        (
            "CREATE TRIGGER test_refuse BEFORE DELETE ON memberships \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
            "DROP TRIGGER test_refuse;",
        )
    };
    db.execute_unprepared(block).await.unwrap();
    let failed = app.state.tenancy.purge_organization(org.org_id()).await;
    assert!(failed.is_err());
    let ledger = |db: sea_orm::DatabaseConnection| async move {
        db.query_one_raw(Statement::from_string(
            backend,
            "SELECT steps, completed_at IS NOT NULL AS done FROM organization_purges",
        ))
        .await
        .unwrap()
        .map(|row| {
            (
                row.try_get::<String>("", "steps").unwrap(),
                row.try_get::<bool>("", "done").unwrap(),
            )
        })
    };
    let (steps, done) = ledger(db.clone()).await.expect("a ledger row");
    assert!(!done);
    assert!(steps.contains("projects=1"), "{steps}");
    assert!(steps.contains("api_keys=1"), "{steps}");
    assert!(!steps.contains("memberships"), "{steps}");
    let halfway = rows_of(&app, &org).await;
    assert_eq!(halfway["projects"], 0);
    assert_eq!(halfway["memberships"], 1);

    // Once started, the purge cannot be cancelled: what it deleted cannot come back.
    let late = cancel(&app, &owner, &org).await;
    assert_eq!(late.code(), "CONFLICT");

    // The rerun skips what is done and finishes; two runs at once: one does it.
    db.execute_unprepared(unblock).await.unwrap();
    let (first, second) = futures::join!(
        app.state.tenancy.purge_organization(org.org_id()),
        app.state.tenancy.purge_organization(org.org_id())
    );
    let report = match (first, second) {
        (Ok(report), Err(e)) | (Err(e), Ok(report)) => {
            assert_eq!(e.code(), kernel::ErrorCode::Conflict, "{e}");
            report
        }
        other => panic!("exactly one run purges: {other:?}"),
    };
    let memberships = report
        .rows
        .iter()
        .find(|(t, _)| t == "memberships")
        .unwrap();
    assert_eq!(memberships.1, 1);
    let projects = report.rows.iter().find(|(t, _)| t == "projects").unwrap();
    assert_eq!(projects.1, 1, "the first run's count is kept");
    let (_, done) = ledger(db.clone()).await.unwrap();
    assert!(done);
    let rows = rows_of(&app, &org).await;
    assert!(rows.values().all(|count| *count == 0), "{rows:?}");
    // And once complete, nothing is due any more.
    assert_eq!(
        app.state
            .tenancy
            .purge_organization(org.org_id())
            .await
            .unwrap_err()
            .code(),
        kernel::ErrorCode::Conflict
    );
}

#[test]
fn every_table_of_an_organization_is_purged() {
    let listed: std::collections::BTreeSet<&str> = tenancy::PURGED_TABLES.iter().copied().collect();
    let with_org: std::collections::BTreeSet<&str> = gateway::privacy::data_map()
        .iter()
        .filter(|table| table.columns.iter().any(|c| c.name == "organization_id"))
        .map(|table| table.name)
        .collect();
    assert_eq!(listed, with_org);
}
