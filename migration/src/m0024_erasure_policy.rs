//! The erasing transaction may name one extra personal-data subject, its email's
//! pseudonym: only an `email:` subject, never another person's `user:` key.

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
            .execute_unprepared(
                "DROP POLICY personal_data_keys_erase ON personal_data_keys;
                 CREATE POLICY personal_data_keys_erase ON personal_data_keys FOR DELETE USING (
                     subject = 'user:' || NULLIF(current_setting('app.erasing_user', true), '')
                     OR subject = 'email:' || (
                         SELECT u.email_normalized FROM users u
                          WHERE u.id = NULLIF(current_setting('app.erasing_user', true), '')::uuid
                     )
                     OR (NULLIF(current_setting('app.erasing_user', true), '') IS NOT NULL
                         AND subject LIKE 'email:%'
                         AND subject = NULLIF(current_setting('app.erasing_email_subject', true), ''))
                 );",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
