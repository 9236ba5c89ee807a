//! The tenant boundary in PostgreSQL itself: as the application role, without
//! `app.org_id` a tenant table looks empty and another organization's row cannot be
//! written; every tenant table has RLS enabled and forced, and its keys include
//! `organization_id`. On SQLite these tests have nothing to check and say so.

use crate::helpers::{TestApp, on_postgres};
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};

fn skip() -> bool {
    if !on_postgres() {
        eprintln!(
            "needs PostgreSQL (TEST_BACKEND=postgres); the SQLite run checks the boundary through GraphQL"
        );
        return true;
    }
    false
}

async fn scalar_i64(conn: &impl ConnectionTrait, sql: &str) -> i64 {
    let row = conn
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

#[tokio::test]
async fn without_the_setting_the_application_role_sees_no_tenant_rows() {
    if skip() {
        return;
    }
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    app.org(&alice, "Acme").await;
    app.api_key(&alice, &app.org(&alice, "Globex").await, "VIEWER")
        .await;

    let owner = app.owner_db().await;
    assert_eq!(
        scalar_i64(&owner, "SELECT count(*) FROM memberships").await,
        2
    );

    let app_db = app.app_db().await;
    assert_eq!(
        scalar_i64(&app_db, "SELECT count(*) FROM memberships").await,
        0
    );
    assert_eq!(
        scalar_i64(&app_db, "SELECT count(*) FROM api_keys").await,
        0
    );
    assert_eq!(
        scalar_i64(&app_db, "SELECT count(*) FROM invitations").await,
        0
    );
    let is_app_role = scalar_i64(
        &app_db,
        "SELECT count(*) FROM pg_roles WHERE rolname = current_user AND NOT rolsuper AND NOT rolbypassrls",
    )
    .await;
    assert_eq!(
        is_app_role, 1,
        "tests must connect as the non-owner application role"
    );
}

#[tokio::test]
async fn the_application_role_cannot_write_another_organizations_rows() {
    if skip() {
        return;
    }
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    app.org(&alice, "Acme").await;
    let owner = app.owner_db().await;
    let orgs = owner
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT id::text FROM organizations",
        ))
        .await
        .unwrap();
    let acme: String = orgs[0].try_get_by_index(0).unwrap();
    let user = owner
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT id::text FROM users",
        ))
        .await
        .unwrap()
        .unwrap();
    let user: String = user.try_get_by_index(0).unwrap();

    let app_db = app.app_db().await;
    let txn = app_db.begin().await.unwrap();
    // Bound to a different (random) organization, write a row claiming to be Acme's.
    txn.execute_unprepared(&format!(
        "SELECT set_config('app.org_id', '{}', true)",
        uuid::Uuid::now_v7()
    ))
    .await
    .unwrap();
    let insert = txn
        .execute_unprepared(&format!(
            "INSERT INTO memberships (organization_id, id, user_id, role, created_at)
             VALUES ('{acme}', '{}', '{user}', 'owner', now())",
            uuid::Uuid::now_v7()
        ))
        .await;
    let error = insert.expect_err("RLS must refuse the row").to_string();
    assert!(error.contains("row-level security"), "{error}");
    txn.rollback().await.unwrap();

    // And rows of Acme are invisible and unchangeable from there.
    let txn = app_db.begin().await.unwrap();
    txn.execute_unprepared(&format!(
        "SELECT set_config('app.org_id', '{}', true)",
        uuid::Uuid::now_v7()
    ))
    .await
    .unwrap();
    let updated = txn
        .execute_unprepared("UPDATE memberships SET role = 'viewer'")
        .await
        .unwrap();
    assert_eq!(updated.rows_affected(), 0);
    txn.rollback().await.unwrap();
}

#[tokio::test]
async fn every_tenant_table_is_under_forced_rls_with_keys_that_include_the_organization() {
    if skip() {
        return;
    }
    let app = TestApp::spawn().await;
    let owner = app.owner_db().await;
    let tables = owner
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                    pg_get_userbyid(c.relowner) <> 'platform_app' AS not_owned_by_app
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind = 'r'
               AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                           AND a.attname = 'organization_id' AND NOT a.attisdropped)",
        ))
        .await
        .unwrap();
    assert!(
        tables.len() >= 3,
        "expected the tenant tables, found {}",
        tables.len()
    );
    for row in &tables {
        let name: String = row.try_get_by_index(0).unwrap();
        let enabled: bool = row.try_get_by_index(1).unwrap();
        let forced: bool = row.try_get_by_index(2).unwrap();
        let not_owned: bool = row.try_get_by_index(3).unwrap();
        assert!(
            enabled && forced && not_owned,
            "{name}: rls={enabled} forced={forced} not_owned={not_owned}"
        );
        let policies = scalar_i64(
            &owner,
            &format!(
                "SELECT count(*) FROM pg_policies WHERE tablename = '{name}'
                 AND (qual LIKE '%app.org_id%' OR with_check LIKE '%app.org_id%')"
            ),
        )
        .await;
        assert!(policies >= 4, "{name} has {policies} organization policies");
        let keys_without_org = scalar_i64(
            &owner,
            &format!(
                "SELECT count(*) FROM pg_index i
                 WHERE i.indrelid = '{name}'::regclass AND (i.indisunique OR i.indisprimary)
                   AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = i.indrelid
                                   AND a.attnum = ANY(i.indkey) AND a.attname = 'organization_id')"
            ),
        )
        .await;
        assert_eq!(
            keys_without_org, 0,
            "{name} has a unique key without organization_id"
        );
    }
}

/// `enter_organization` binds the transaction to the organization it names and answers
/// the caller's standing there; a person who is not a member gets no standing, and a
/// member's transaction sees that organization's rows only.
#[tokio::test]
async fn entering_an_organization_binds_it_and_answers_only_members() {
    if skip() {
        return;
    }
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let acme = app.org(&alice, "Acme").await;
    let globex = app.org(&bob, "Globex").await;
    for (user, org) in [(&alice, &acme), (&bob, &globex)] {
        app.gql("mutation { createProject(input: {name: \"P\"}) { project { id } } }")
            .as_user(user)
            .in_org(org)
            .send()
            .await
            .data();
    }
    let app_db = app.app_db().await;
    let enter = |org: &crate::helpers::TestOrg, user: &crate::helpers::TestUser| {
        format!(
            "SELECT count(*) FROM enter_organization('{}', '{}', NULL)",
            org.org_id(),
            user.id_uuid().unwrap()
        )
    };
    // A member: one standing, and only their organization's project is visible.
    let tx = app_db.begin().await.unwrap();
    assert_eq!(scalar_i64(&tx, &enter(&acme, &alice)).await, 1);
    assert_eq!(scalar_i64(&tx, "SELECT count(*) FROM projects").await, 1);
    assert_eq!(
        scalar_i64(
            &tx,
            &format!(
                "SELECT count(*) FROM projects WHERE organization_id = '{}'",
                globex.org_id()
            )
        )
        .await,
        0
    );
    tx.rollback().await.unwrap();
    // Not a member: no standing.
    let tx = app_db.begin().await.unwrap();
    assert_eq!(scalar_i64(&tx, &enter(&globex, &alice)).await, 0);
    tx.rollback().await.unwrap();
    // The binding is the transaction's: the next one on the pool starts unbound.
    assert_eq!(
        scalar_i64(&app_db, "SELECT count(*) FROM projects").await,
        0
    );
}
