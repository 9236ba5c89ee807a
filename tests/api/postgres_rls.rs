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
/// the caller's standing there; a person who is not a member gets no standing, nor does
/// one whose session is not live, and a member's transaction sees that organization's
/// rows only.
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
            "SELECT count(*) FROM enter_organization('{}', '{}', NULL, NULL, NULL, NULL)",
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
    // A session that is not the person's live one: no standing, only the refusal.
    let tx = app_db.begin().await.unwrap();
    let dead = format!(
        "SELECT count(*) FROM enter_organization('{}', '{}', NULL, '{}', NULL, NULL) \
         WHERE standing_role IS NULL AND NOT standing_session_live",
        acme.org_id(),
        alice.id_uuid().unwrap(),
        uuid::Uuid::now_v7()
    );
    assert_eq!(scalar_i64(&tx, &dead).await, 1);
    tx.rollback().await.unwrap();
    // The binding is the transaction's: the next one on the pool starts unbound.
    assert_eq!(
        scalar_i64(&app_db, "SELECT count(*) FROM projects").await,
        0
    );
}

/// What the application role may do, read from the catalog: its attributes, its table
/// and column privileges, and the functions it may run. Compared with the reviewed list
/// in `app_role_privileges.txt`, so a new grant is a visible diff.
const APP_ROLE_PRIVILEGES: &str = r#"
SELECT line FROM (
  SELECT 'role platform_app: superuser=' || rolsuper || ' bypassrls=' || rolbypassrls || ' createrole=' || rolcreaterole || ' createdb=' || rolcreatedb AS line
    FROM pg_roles WHERE rolname = 'platform_app'
  UNION ALL
  SELECT 'table ' || table_name || ': ' || string_agg(privilege_type, ', ' ORDER BY privilege_type)
    FROM information_schema.role_table_grants
   WHERE grantee = 'platform_app' AND table_schema = 'public'
   GROUP BY table_name
  UNION ALL
  SELECT 'column ' || c.relname || '.' || a.attname || ': ' || string_agg(x.privilege_type, ', ' ORDER BY x.privilege_type)
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid AND c.relnamespace = 'public'::regnamespace
    CROSS JOIN LATERAL aclexplode(a.attacl) x
   WHERE x.grantee = 'platform_app'::regrole
   GROUP BY c.relname, a.attname
  UNION ALL
  SELECT 'function ' || p.oid::regprocedure::text || ': EXECUTE' || CASE WHEN p.prosecdef THEN ' (SECURITY DEFINER)' ELSE '' END
    FROM pg_proc p
   WHERE p.pronamespace = 'public'::regnamespace
     AND has_function_privilege('platform_app', p.oid, 'EXECUTE')
) lines ORDER BY line
"#;

#[tokio::test]
async fn the_application_roles_privileges_are_the_reviewed_allow_list() {
    if skip() {
        return;
    }
    let app = TestApp::spawn().await;
    let owner = app.owner_db().await;
    let rows = owner
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            APP_ROLE_PRIVILEGES,
        ))
        .await
        .unwrap();
    let actual: Vec<String> = rows
        .iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect();
    let reviewed: Vec<&str> = include_str!("app_role_privileges.txt")
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    assert_eq!(
        actual,
        reviewed,
        "the application role's privileges changed; review them and update \
         tests/api/app_role_privileges.txt:\n{}",
        actual.join("\n")
    );
}

/// The gaps the allow-list closed, tried as the application role.
#[tokio::test]
async fn the_application_role_cannot_make_staff_rewrite_accounts_or_renumber_invoices() {
    if skip() {
        return;
    }
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let acme = app.org(&alice, "Acme").await;
    let app_db = app.app_db().await;
    for sql in [
        "UPDATE users SET is_staff = true",
        "UPDATE users SET password_hash = 'chosen'",
        "INSERT INTO users (id, email, email_normalized, name, password_hash, created_at, is_staff)
         VALUES (gen_random_uuid(), 'x@example.com', 'x@example.com', 'X', 'x', now(), true)",
        "DELETE FROM users",
        "UPDATE organizations SET name = 'taken'",
        "DELETE FROM organizations",
        "UPDATE sessions SET user_id = user_id",
        "UPDATE login_failures SET scope = 'x'",
    ] {
        let refused = app_db.execute_unprepared(sql).await;
        let error = refused.expect_err(sql).to_string();
        assert!(error.contains("permission denied"), "{sql}: {error}");
    }
    // A session is still revoked by the application (the column it may change).
    app_db
        .execute_unprepared("UPDATE sessions SET revoked_at = revoked_at WHERE false")
        .await
        .unwrap();
    // Invoice numbers move one step forward only.
    app_db
        .execute_unprepared(
            "INSERT INTO invoice_numbers (issuer, kind, next_number) VALUES ('test', 'invoice', 5)",
        )
        .await
        .unwrap();
    for sql in [
        "UPDATE invoice_numbers SET next_number = 1 WHERE issuer = 'test'",
        "UPDATE invoice_numbers SET next_number = 100 WHERE issuer = 'test'",
    ] {
        let error = app_db.execute_unprepared(sql).await.expect_err(sql);
        assert!(
            error.to_string().contains("one step forward"),
            "{sql}: {error}"
        );
    }
    app_db
        .execute_unprepared(
            "UPDATE invoice_numbers SET next_number = next_number + 1 WHERE issuer = 'test'",
        )
        .await
        .unwrap();

    // audit_purge enforces its anchor itself: with the organization bound and no anchor
    // recorded in the transaction it deletes nothing (it deleted every event before).
    let events = format!(
        "SELECT count(*) FROM audit_events WHERE organization_id = '{}'",
        acme.org_id()
    );
    let owner = app.owner_db().await;
    let before = scalar_i64(&owner, &events).await;
    assert!(before > 0);
    let bind = format!("SELECT set_config('app.org_id', '{}', true)", acme.org_id());
    let tx = app_db.begin().await.unwrap();
    tx.execute_unprepared(&bind).await.unwrap();
    let error = tx
        .execute_unprepared("SELECT audit_purge(1000000)")
        .await
        .expect_err("no anchor");
    assert!(error.to_string().contains("purge anchor"), "{error}");
    tx.rollback().await.unwrap();
    // An anchor from an earlier transaction does not cover a later purge.
    let tx = app_db.begin().await.unwrap();
    tx.execute_unprepared(&bind).await.unwrap();
    tx.execute_unprepared(&format!(
        "INSERT INTO audit_purges (organization_id, through_seq, anchor_hash, purged_at)
         VALUES ('{}', 1000000, 'x', now())",
        acme.org_id()
    ))
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let tx = app_db.begin().await.unwrap();
    tx.execute_unprepared(&bind).await.unwrap();
    assert!(
        tx.execute_unprepared("SELECT audit_purge(1000000)")
            .await
            .is_err()
    );
    tx.rollback().await.unwrap();
    // Personal-data keys are deleted only for the person the transaction erases.
    let keys = "SELECT count(*) FROM personal_data_keys";
    let all_keys = scalar_i64(&owner, keys).await;
    assert!(all_keys >= 1, "alice's key exists");
    app_db
        .execute_unprepared("DELETE FROM personal_data_keys")
        .await
        .unwrap();
    assert_eq!(
        scalar_i64(&owner, keys).await,
        all_keys,
        "none without a person"
    );
    let bob = app.user("bob@example.com").await;
    let with_bob = scalar_i64(&owner, keys).await;
    let tx = app_db.begin().await.unwrap();
    tx.execute_unprepared(&format!(
        "SELECT set_config('app.erasing_user', '{}', true)",
        alice.id_uuid().unwrap()
    ))
    .await
    .unwrap();
    tx.execute_unprepared("DELETE FROM personal_data_keys")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let left = scalar_i64(&owner, keys).await;
    assert!(left < with_bob, "alice's keys went");
    let bobs = format!(
        "SELECT count(*) FROM personal_data_keys WHERE subject IN ('user:{}', 'email:bob@example.com')",
        bob.id_uuid().unwrap()
    );
    assert!(scalar_i64(&owner, &bobs).await >= 1, "bob's stayed");
    // The extra subject an erasure may name is an email's pseudonym, never a person.
    let tx = app_db.begin().await.unwrap();
    tx.execute_unprepared(&format!(
        "SELECT set_config('app.erasing_user', '{}', true),
                set_config('app.erasing_email_subject', 'user:{}', true)",
        alice.id_uuid().unwrap(),
        bob.id_uuid().unwrap()
    ))
    .await
    .unwrap();
    tx.execute_unprepared("DELETE FROM personal_data_keys")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(
        scalar_i64(&owner, &bobs).await >= 1,
        "bob's key is not an email"
    );

    // Without an organization bound it refuses too.
    let unbound = app_db
        .execute_unprepared("SELECT audit_purge(1000000)")
        .await;
    assert!(unbound.is_err());
    assert_eq!(scalar_i64(&owner, &events).await, before);
}
