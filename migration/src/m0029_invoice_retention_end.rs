//! When a purged organization's invoices reach the end of their legal retention they are
//! deleted too: the triggers that keep finalized invoices and their lines from ever being
//! deleted now make one exception, an organization that was purged (its row a tombstone,
//! `purged_at` set, which only the purge can set). The retention run decides when.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Whether the row's organization was purged (SQL, `OLD` being the row).
const PURGED: &str = "EXISTS (SELECT 1 FROM organizations o \
    WHERE o.id = OLD.organization_id AND o.purged_at IS NOT NULL)";

/// The text `from` must be in `text`: a migration that silently changed nothing would
/// leave the old rule in place.
fn replaced(text: &str, from: &str, to: &str) -> Result<String, DbErr> {
    if text.contains(from) {
        Ok(text.replace(from, to))
    } else {
        Err(DbErr::Migration(format!("m0029: `{from}` not found")))
    }
}

/// The invoice triggers of m0011, with the exception or without it.
fn pg_triggers(with_exception: bool) -> Result<String, DbErr> {
    let frozen = crate::m0011_invoices::FROZEN
        .iter()
        .map(|c| format!("OLD.{c} IS DISTINCT FROM NEW.{c}"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let text = crate::m0011_invoices::PG_TRIGGERS.replace("__FROZEN_CHANGED__", &frozen);
    let text = replaced(&text, "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")?;
    let text = replaced(&text, "CREATE TRIGGER", "CREATE OR REPLACE TRIGGER")?;
    if !with_exception {
        return Ok(text);
    }
    let text = replaced(
        &text,
        "IF OLD.status <> 'draft' THEN",
        &format!("IF OLD.status <> 'draft' AND NOT {PURGED} THEN"),
    )?;
    replaced(
        &text,
        "IF v_status IS DISTINCT FROM 'draft' THEN",
        &format!(
            "IF v_status IS DISTINCT FROM 'draft' AND NOT (TG_OP = 'DELETE' AND {PURGED}) THEN"
        ),
    )
}

/// SQLite's two delete triggers, with the exception or without it.
fn sqlite_triggers(with_exception: bool) -> String {
    let unless = if with_exception {
        format!(" AND NOT {PURGED}")
    } else {
        String::new()
    };
    format!(
        "DROP TRIGGER invoices_no_delete;
         CREATE TRIGGER invoices_no_delete BEFORE DELETE ON invoices
         WHEN OLD.status <> 'draft'{unless}
         BEGIN SELECT RAISE(ABORT, 'a finalized invoice cannot be deleted'); END;
         DROP TRIGGER invoice_lines_no_delete;
         CREATE TRIGGER invoice_lines_no_delete BEFORE DELETE ON invoice_lines
         WHEN (SELECT status FROM invoices WHERE organization_id = OLD.organization_id AND id = OLD.invoice_id) IS NOT 'draft'{unless}
         BEGIN SELECT RAISE(ABORT, 'lines of a finalized invoice never change'); END;"
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sql = match manager.get_database_backend() {
            DbBackend::Postgres => pg_triggers(true)?,
            _ => sqlite_triggers(true),
        };
        manager.get_connection().execute_unprepared(&sql).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sql = match manager.get_database_backend() {
            DbBackend::Postgres => pg_triggers(false)?,
            _ => sqlite_triggers(false),
        };
        manager.get_connection().execute_unprepared(&sql).await?;
        Ok(())
    }
}
