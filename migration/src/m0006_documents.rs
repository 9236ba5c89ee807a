//! Documents with immutable versions and approvals, and the number of distinct approvals
//! a project requires. Every table is tenant-scoped and under RLS; versions can only be
//! inserted and read by the application role.

use crate::tenant_table::{enable_rls, grant};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn belongs_to_document(table: &'static str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("{table}_document_fk"))
        .from(table, ("organization_id", "document_id"))
        .to("documents", ("organization_id", "id"))
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("projects")
                    .add_column(integer("required_approvals").default(1))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("documents")
                    .col(uuid("organization_id"))
                    .col(uuid("id"))
                    .col(uuid("project_id"))
                    .col(text("title"))
                    .col(text("body"))
                    .col(text("status"))
                    .col(uuid("author_id"))
                    .col(integer("version"))
                    // Approvals count only within the current review round; an edit or a
                    // request for changes starts a new one.
                    .col(integer("review_round"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .primary_key(Index::create().col("organization_id").col("id"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("documents_project_fk")
                            .from("documents", ("organization_id", "project_id"))
                            .to("projects", ("organization_id", "id"))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("documents_by_project")
                    .table("documents")
                    .col("organization_id")
                    .col("project_id")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        grant(manager, "documents", "SELECT, INSERT, UPDATE").await?;
        enable_rls(manager, "documents", None).await?;

        manager
            .create_table(
                Table::create()
                    .table("document_versions")
                    .col(uuid("organization_id"))
                    .col(uuid("document_id"))
                    .col(integer("version"))
                    .col(text("title"))
                    .col(text("body"))
                    .col(uuid("edited_by"))
                    .col(timestamp_with_time_zone("edited_at"))
                    // Which fields this version changed, as a JSON array of names.
                    .col(text("changed_fields"))
                    .primary_key(
                        Index::create()
                            .col("organization_id")
                            .col("document_id")
                            .col("version"),
                    )
                    .foreign_key(&mut belongs_to_document("document_versions"))
                    .to_owned(),
            )
            .await?;
        grant(manager, "document_versions", "SELECT, INSERT").await?;
        enable_rls(manager, "document_versions", None).await?;

        manager
            .create_table(
                Table::create()
                    .table("document_reviews")
                    .col(uuid("organization_id"))
                    .col(uuid("id"))
                    .col(uuid("document_id"))
                    .col(integer("review_round"))
                    .col(integer("version"))
                    .col(uuid("reviewer_id"))
                    .col(text("decision"))
                    .col(text_null("comment"))
                    .col(timestamp_with_time_zone("created_at"))
                    .primary_key(Index::create().col("organization_id").col("id"))
                    .foreign_key(&mut belongs_to_document("document_reviews"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("document_reviews_by_document")
                    .table("document_reviews")
                    .col("organization_id")
                    .col("document_id")
                    .col("review_round")
                    .to_owned(),
            )
            .await?;
        grant(manager, "document_reviews", "SELECT, INSERT").await?;
        enable_rls(manager, "document_reviews", None).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["document_reviews", "document_versions", "documents"] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table("projects")
                    .drop_column("required_approvals")
                    .to_owned(),
            )
            .await
    }
}
