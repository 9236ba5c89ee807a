//! Permissions: custom roles, policy rules (allow and deny), role assignments, record
//! grants and the per-organization policy version that invalidates cached enforcers.
//! Built-in role templates live in code and are shared by every organization.

use crate::tenant_table::{enable_rls, grant};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const CRUD: &str = "SELECT, INSERT, UPDATE, DELETE";

fn org_fk(table: &'static str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("{table}_organization_fk"))
        .from(table, "organization_id")
        .to("organizations", "id")
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

async fn unique(
    manager: &SchemaManager<'_>,
    table: &'static str,
    name: &str,
    cols: &[&'static str],
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.name(name).table(table).unique();
    for col in cols {
        index.col(*col);
    }
    manager.create_index(index.to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("authz_roles")
                    .col(uuid("organization_id"))
                    .col(uuid("id"))
                    .col(text("name"))
                    .col(text("description"))
                    .col(timestamp_with_time_zone("created_at"))
                    .primary_key(Index::create().col("organization_id").col("id"))
                    .foreign_key(&mut org_fk("authz_roles"))
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "authz_roles",
            "authz_roles_org_name_key",
            &["organization_id", "name"],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("authz_rules")
                    .col(uuid("organization_id"))
                    .col(uuid("id"))
                    .col(text("subject"))
                    .col(text("resource_type"))
                    .col(text("action"))
                    .col(text("effect"))
                    .col(timestamp_with_time_zone("created_at"))
                    .primary_key(Index::create().col("organization_id").col("id"))
                    .foreign_key(&mut org_fk("authz_rules"))
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "authz_rules",
            "authz_rules_org_rule_key",
            &[
                "organization_id",
                "subject",
                "resource_type",
                "action",
                "effect",
            ],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("authz_role_assignments")
                    .col(uuid("organization_id"))
                    .col(text("subject"))
                    .col(text("role"))
                    .col(timestamp_with_time_zone("created_at"))
                    .primary_key(
                        Index::create()
                            .col("organization_id")
                            .col("subject")
                            .col("role"),
                    )
                    .foreign_key(&mut org_fk("authz_role_assignments"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("record_grants")
                    .col(uuid("organization_id"))
                    .col(uuid("id"))
                    .col(text("subject"))
                    .col(text("resource_type"))
                    .col(uuid("resource_id"))
                    .col(text("relation"))
                    .col(text("granted_by"))
                    .col(timestamp_with_time_zone("created_at"))
                    .primary_key(Index::create().col("organization_id").col("id"))
                    .foreign_key(&mut org_fk("record_grants"))
                    .to_owned(),
            )
            .await?;
        // One grant per subject, record and relation; also the list filter's access path
        // (organization, subject, type → record ids).
        unique(
            manager,
            "record_grants",
            "record_grants_org_subject_record_key",
            &[
                "organization_id",
                "subject",
                "resource_type",
                "resource_id",
                "relation",
            ],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("authz_policy_versions")
                    .col(uuid("organization_id").primary_key())
                    .col(big_integer("version"))
                    .foreign_key(&mut org_fk("authz_policy_versions"))
                    .to_owned(),
            )
            .await?;

        for table in [
            "authz_roles",
            "authz_rules",
            "authz_role_assignments",
            "record_grants",
            "authz_policy_versions",
        ] {
            grant(manager, table, CRUD).await?;
            enable_rls(manager, table, None).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "authz_policy_versions",
            "record_grants",
            "authz_role_assignments",
            "authz_rules",
            "authz_roles",
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
