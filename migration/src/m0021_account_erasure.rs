//! Erasure of a person's account (GDPR Art. 17).
//!
//! - `erasure_requests`: the erasure ledger, written before anything is erased and
//!   holding no plaintext (the person's id and a keyed hash of their email), so every
//!   erasure can be re-applied after a backup is restored.
//! - The application role may now pseudonymize a `users` row: UPDATE of `email`,
//!   `email_normalized`, `name` and `password_hash` (never `is_staff`).
//! - Email subjects of personal-data keys are now pseudonyms (a keyed hash the database
//!   cannot compute), so the erasing transaction names that one subject too
//!   (`app.erasing_email_subject`): still at most one person's keys per transaction.

use crate::tenant_table::{APP_ROLE, grant};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("erasure_requests")
                    .col(uuid("id").primary_key())
                    .col(uuid("user_id"))
                    .col(text("email_hash"))
                    .col(timestamp_with_time_zone("requested_at"))
                    .col(text("requested_by"))
                    .col(text("steps"))
                    .col(timestamp_with_time_zone_null("completed_at"))
                    .to_owned(),
            )
            .await?;
        grant(manager, "erasure_requests", "SELECT, INSERT, UPDATE").await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(&format!(
                    "GRANT UPDATE (email, email_normalized, name, password_hash) ON users TO {APP_ROLE};
                     DROP POLICY personal_data_keys_erase ON personal_data_keys;
                     CREATE POLICY personal_data_keys_erase ON personal_data_keys FOR DELETE USING (
                         subject = 'user:' || NULLIF(current_setting('app.erasing_user', true), '')
                         OR subject = 'email:' || (
                             SELECT u.email_normalized FROM users u
                              WHERE u.id = NULLIF(current_setting('app.erasing_user', true), '')::uuid
                         )
                         OR (NULLIF(current_setting('app.erasing_user', true), '') IS NOT NULL
                             AND subject = NULLIF(current_setting('app.erasing_email_subject', true), ''))
                     );"
                ))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("erasure_requests").to_owned())
            .await
    }
}
