//! Pseudonymizing an erased account goes through `pseudonymize_user(id)`, a narrow
//! SECURITY DEFINER function that writes only fixed placeholders; the application role
//! loses its UPDATE on `users` columns again. So nothing the application can be made to
//! run sets a chosen email or password hash on someone's account (a takeover); the worst
//! is erasing one.

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
REVOKE UPDATE (email, email_normalized, name, password_hash) ON users FROM {APP_ROLE};
CREATE FUNCTION pseudonymize_user(p_user uuid) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public AS $$
    UPDATE users
       SET email = 'deleted-' || replace(p_user::text, '-', '') || '@erased.invalid',
           email_normalized = 'deleted-' || replace(p_user::text, '-', '') || '@erased.invalid',
           name = 'Deleted user',
           password_hash = ''
     WHERE id = p_user;
$$;
REVOKE ALL ON FUNCTION pseudonymize_user(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pseudonymize_user(uuid) TO {APP_ROLE};
"#
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
