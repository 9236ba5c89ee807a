//! Least privilege for the application role on the platform tables (PostgreSQL): it
//! keeps only the privileges the code uses, so a bug or an injected statement in the
//! application cannot make someone staff, rewrite or delete organizations, accounts or
//! sessions, or renumber invoices. `tests/api/app_role_privileges.txt` lists what is
//! left, and a test compares it with the catalog.
//!
//! - `users`: created by sign-up (never as staff: `is_staff` takes its default), read;
//!   never updated or deleted by the application (`is_staff` is an operator's action,
//!   run as the owner role).
//! - `organizations`: created and read; never updated or deleted.
//! - `sessions`: a refresh rotates (`rotated_at`), a log-out revokes (`revoked_at`);
//!   nothing else of a session changes, and none is deleted.
//! - `login_failures`: inserted, read, aged out; never changed.
//! - `invoice_numbers`: only `next_number` changes, and only one step forward at a time
//!   (a trigger), so numbers are never reused.
//! - `personal_data_keys`: read and added freely (the audit trail seals values with
//!   them), but deleted only for the one person whose erasure the transaction names
//!   (`app.erasing_user`): their `user:` and `email:` keys, never anyone else's.
//! - `audit_purge` checks its own preconditions: an organization bound to the
//!   transaction, and a purge anchor covering the range recorded in the same transaction.

use crate::tenant_table::APP_ROLE;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(&format!(
                r#"
REVOKE INSERT, UPDATE, DELETE ON users FROM {APP_ROLE};
GRANT INSERT (id, email, email_normalized, name, password_hash, created_at) ON users TO {APP_ROLE};
REVOKE UPDATE, DELETE ON organizations FROM {APP_ROLE};
REVOKE UPDATE, DELETE ON sessions FROM {APP_ROLE};
GRANT UPDATE (rotated_at, revoked_at) ON sessions TO {APP_ROLE};
REVOKE UPDATE ON login_failures FROM {APP_ROLE};
REVOKE UPDATE ON invoice_numbers FROM {APP_ROLE};

ALTER TABLE personal_data_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE personal_data_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY personal_data_keys_read ON personal_data_keys FOR SELECT USING (true);
CREATE POLICY personal_data_keys_add ON personal_data_keys FOR INSERT WITH CHECK (true);
CREATE POLICY personal_data_keys_erase ON personal_data_keys FOR DELETE USING (
    subject = 'user:' || NULLIF(current_setting('app.erasing_user', true), '')
    OR subject = 'email:' || (
        SELECT u.email_normalized FROM users u
         WHERE u.id = NULLIF(current_setting('app.erasing_user', true), '')::uuid
    )
);
GRANT UPDATE (next_number) ON invoice_numbers TO {APP_ROLE};

CREATE FUNCTION invoice_numbers_step() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.next_number <> OLD.next_number + 1 THEN
        RAISE EXCEPTION 'invoice numbers only move one step forward (% to %)',
            OLD.next_number, NEW.next_number;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER invoice_numbers_step BEFORE UPDATE ON invoice_numbers
    FOR EACH ROW EXECUTE FUNCTION invoice_numbers_step();

CREATE OR REPLACE FUNCTION audit_purge(through_seq bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    org uuid := NULLIF(current_setting('app.org_id', true), '')::uuid;
    purged bigint;
BEGIN
    IF org IS NULL THEN
        RAISE EXCEPTION 'audit_purge needs the transaction bound to an organization';
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM audit_purges p
         WHERE p.organization_id = org
           AND p.through_seq >= audit_purge.through_seq
           AND p.xmin = pg_current_xact_id()::xid
    ) THEN
        RAISE EXCEPTION 'audit_purge deletes only up to a purge anchor recorded in this transaction';
    END IF;
    PERFORM set_config('audit.purge_through', through_seq::text, true);
    DELETE FROM audit_events
     WHERE organization_id = org
       AND seq <= through_seq;
    GET DIAGNOSTICS purged = ROW_COUNT;
    PERFORM set_config('audit.purge_through', '', true);
    RETURN purged;
END $$;
REVOKE ALL ON FUNCTION audit_purge(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_purge(bigint) TO {APP_ROLE};
"#
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // Privileges are not handed back: a rollback that widened them would be a hole.
        Ok(())
    }
}
