//! The spine: users, organizations, memberships, invitations, API keys, log-in sessions
//! and the log-in throttle.

use crate::tenant_table::{enable_rls, ensure_app_role, grant};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const CRUD: &str = "SELECT, INSERT, UPDATE, DELETE";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ensure_app_role(manager).await?;

        manager
            .create_table(
                Table::create()
                    .table("users")
                    .col(uuid("id").primary_key())
                    .col(text("email"))
                    .col(text_uniq("email_normalized"))
                    .col(text("name"))
                    .col(text("password_hash"))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        grant(manager, "users", CRUD).await?;

        manager
            .create_table(
                Table::create()
                    .table("organizations")
                    .col(uuid("id").primary_key())
                    .col(text("name"))
                    .col(text_uniq("slug"))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        grant(manager, "organizations", CRUD).await?;

        manager
            .create_table(
                Table::create()
                    .table("memberships")
                    .col(uuid("organization_id"))
                    .col(uuid("id"))
                    .col(uuid("user_id"))
                    .col(text("role"))
                    .col(timestamp_with_time_zone("created_at"))
                    .primary_key(Index::create().col("organization_id").col("id"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("memberships_organization_fk")
                            .from("memberships", "organization_id")
                            .to("organizations", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("memberships_user_fk")
                            .from("memberships", "user_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("memberships_org_user_key")
                    .table("memberships")
                    .col("organization_id")
                    .col("user_id")
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Looks up a user's organizations (viewer.organizations) without a scan.
        manager
            .create_index(
                Index::create()
                    .name("memberships_user_idx")
                    .table("memberships")
                    .col("user_id")
                    .to_owned(),
            )
            .await?;
        grant(manager, "memberships", CRUD).await?;
        // A user may read their own memberships in every organization (to list them and
        // to choose one); writing still requires the organization's own setting.
        enable_rls(
            manager,
            "memberships",
            Some("user_id = NULLIF(current_setting('app.user_id', true), '')::uuid"),
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("invitations")
                    .col(uuid("organization_id"))
                    .col(uuid("id"))
                    .col(text("email"))
                    .col(text("email_normalized"))
                    .col(text("role"))
                    .col(text("token_hash"))
                    .col(uuid("invited_by"))
                    .col(timestamp_with_time_zone("expires_at"))
                    .col(timestamp_with_time_zone_null("accepted_at"))
                    .col(uuid_null("accepted_by"))
                    .col(timestamp_with_time_zone_null("revoked_at"))
                    .col(timestamp_with_time_zone("created_at"))
                    .primary_key(Index::create().col("organization_id").col("id"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("invitations_organization_fk")
                            .from("invitations", "organization_id")
                            .to("organizations", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("invitations_org_token_key")
                    .table("invitations")
                    .col("organization_id")
                    .col("token_hash")
                    .unique()
                    .to_owned(),
            )
            .await?;
        grant(manager, "invitations", CRUD).await?;
        enable_rls(manager, "invitations", None).await?;

        manager
            .create_table(
                Table::create()
                    .table("api_keys")
                    .col(uuid("organization_id"))
                    .col(uuid("id"))
                    .col(text("name"))
                    .col(text("role"))
                    .col(text("secret_hash"))
                    .col(uuid("created_by"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("last_used_at"))
                    .col(timestamp_with_time_zone_null("revoked_at"))
                    .primary_key(Index::create().col("organization_id").col("id"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("api_keys_organization_fk")
                            .from("api_keys", "organization_id")
                            .to("organizations", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        grant(manager, "api_keys", CRUD).await?;
        enable_rls(manager, "api_keys", None).await?;

        manager
            .create_table(
                Table::create()
                    .table("sessions")
                    .col(uuid("id").primary_key())
                    .col(uuid("user_id"))
                    .col(uuid("family_id"))
                    .col(text_uniq("token_hash"))
                    .col(timestamp_with_time_zone("expires_at"))
                    .col(timestamp_with_time_zone_null("rotated_at"))
                    .col(timestamp_with_time_zone_null("revoked_at"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("sessions_user_fk")
                            .from("sessions", "user_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("sessions_family_idx")
                    .table("sessions")
                    .col("family_id")
                    .to_owned(),
            )
            .await?;
        grant(manager, "sessions", CRUD).await?;

        manager
            .create_table(
                Table::create()
                    .table("login_failures")
                    .col(uuid("id").primary_key())
                    .col(text("scope"))
                    .col(timestamp_with_time_zone("occurred_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("login_failures_scope_idx")
                    .table("login_failures")
                    .col("scope")
                    .col("occurred_at")
                    .to_owned(),
            )
            .await?;
        grant(manager, "login_failures", CRUD).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "login_failures",
            "sessions",
            "api_keys",
            "invitations",
            "memberships",
            "organizations",
            "users",
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
