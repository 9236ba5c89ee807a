//! Invoices and credit notes (`invoices`, with their `invoice_lines`), numbered without
//! gaps per issuer and kind (`invoice_numbers`, a counter row locked by the finalizing
//! transaction, so a rolled-back finalization gives its number back).
//!
//! A finalized invoice never changes: triggers on both engines refuse any change to a
//! non-draft invoice except its status moving forward (`finalized → paid | void |
//! uncollectible`, `uncollectible → paid | void`) with its payment bookkeeping, refuse
//! deleting it, and refuse adding, changing or removing lines of a non-draft invoice.
//! Corrections are credit notes.

use crate::tenant_table::{enable_rls, grant};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Columns a non-draft invoice may never change.
pub(crate) const FROZEN: &[&str] = &[
    "number",
    "kind",
    "currency",
    "period_start",
    "period_end",
    "subtotal_minor",
    "tax_rate",
    "tax_minor",
    "total_minor",
    "credit_of",
    "subscription_id",
    "finalized_at",
    "created_at",
];

pub(crate) const PG_TRIGGERS: &str = r#"
CREATE FUNCTION invoices_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION 'a finalized invoice cannot be deleted' USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status = 'draft' THEN
        RETURN NEW;
    END IF;
    IF __FROZEN_CHANGED__ THEN
        RAISE EXCEPTION 'a finalized invoice never changes (issue a credit note)' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT (OLD.status = NEW.status
            OR (OLD.status = 'finalized' AND NEW.status IN ('paid', 'void', 'uncollectible'))
            OR (OLD.status = 'uncollectible' AND NEW.status IN ('paid', 'void'))) THEN
        RAISE EXCEPTION 'invoice status cannot move from % to %', OLD.status, NEW.status USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER invoices_immutable BEFORE UPDATE OR DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION invoices_immutable();
CREATE FUNCTION invoice_lines_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
BEGIN
    SELECT status INTO v_status FROM invoices
     WHERE organization_id = COALESCE(NEW.organization_id, OLD.organization_id)
       AND id = COALESCE(NEW.invoice_id, OLD.invoice_id);
    IF v_status IS DISTINCT FROM 'draft' THEN
        RAISE EXCEPTION 'lines of a finalized invoice never change' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN COALESCE(NEW, OLD);
END $$;
CREATE TRIGGER invoice_lines_frozen BEFORE INSERT OR UPDATE OR DELETE ON invoice_lines
    FOR EACH ROW EXECUTE FUNCTION invoice_lines_frozen();
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("invoices")
                    .col(uuid("organization_id"))
                    .col(uuid("id"))
                    // Allocated when finalized: `INV-000001`, `CN-000001`.
                    .col(text_null("number"))
                    // `invoice` or `credit_note`.
                    .col(text("kind"))
                    .col(text("status"))
                    .col(text("currency"))
                    .col(timestamp_with_time_zone("period_start"))
                    .col(timestamp_with_time_zone("period_end"))
                    .col(big_integer("subtotal_minor"))
                    .col(text("tax_rate"))
                    .col(big_integer("tax_minor"))
                    .col(big_integer("total_minor"))
                    // The invoice a credit note corrects.
                    .col(uuid_null("credit_of"))
                    .col(uuid_null("subscription_id"))
                    .col(timestamp_with_time_zone_null("finalized_at"))
                    .col(timestamp_with_time_zone_null("paid_at"))
                    .col(timestamp_with_time_zone_null("voided_at"))
                    .col(integer("payment_attempts"))
                    .col(timestamp_with_time_zone_null("next_payment_attempt_at"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .primary_key(Index::create().col("organization_id").col("id"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("invoices_organization_fk")
                            .from("invoices", "organization_id")
                            .to("organizations", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                // Numbers come from the issuer's counter, unique across organizations by
                // construction; a unique key spanning tenants would let one learn of
                // another's rows through a violation, so the key includes the tenant.
                Index::create()
                    .name("invoices_org_kind_number_key")
                    .table("invoices")
                    .col("organization_id")
                    .col("kind")
                    .col("number")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("invoice_lines")
                    .col(uuid("organization_id"))
                    .col(uuid("id"))
                    .col(uuid("invoice_id"))
                    .col(integer("position"))
                    // `fixed`, `seats`, `usage`, `proration_credit`, `proration_charge`,
                    // `credit`.
                    .col(text("kind"))
                    .col(text("description"))
                    // Exact decimals as text.
                    .col(text("quantity"))
                    .col(text_null("unit_price"))
                    .col(big_integer("amount_minor"))
                    .col(timestamp_with_time_zone("period_start"))
                    .col(timestamp_with_time_zone("period_end"))
                    .primary_key(Index::create().col("organization_id").col("id"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("invoice_lines_invoice_fk")
                            .from_tbl("invoice_lines")
                            .from_col("organization_id")
                            .from_col("invoice_id")
                            .to_tbl("invoices")
                            .to_col("organization_id")
                            .to_col("id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("invoice_numbers")
                    .col(text("issuer"))
                    .col(text("kind"))
                    .col(big_integer("next_number"))
                    .primary_key(Index::create().col("issuer").col("kind"))
                    .to_owned(),
            )
            .await?;
        let conn = manager.get_connection();
        grant(manager, "invoices", "SELECT, INSERT, UPDATE, DELETE").await?;
        enable_rls(manager, "invoices", None).await?;
        grant(manager, "invoice_lines", "SELECT, INSERT, UPDATE, DELETE").await?;
        enable_rls(manager, "invoice_lines", None).await?;
        grant(manager, "invoice_numbers", "SELECT, INSERT, UPDATE").await?;
        let changed = |old: &str, new: &str| {
            FROZEN
                .iter()
                .map(|c| format!("{old}.{c} IS NOT {new}.{c}"))
                .collect::<Vec<_>>()
                .join(" OR ")
        };
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                let frozen = FROZEN
                    .iter()
                    .map(|c| format!("OLD.{c} IS DISTINCT FROM NEW.{c}"))
                    .collect::<Vec<_>>()
                    .join(" OR ");
                conn.execute_unprepared(&PG_TRIGGERS.replace("__FROZEN_CHANGED__", &frozen))
                    .await?;
            }
            _ => {
                conn.execute_unprepared(&format!(
                    "CREATE TRIGGER invoices_frozen BEFORE UPDATE ON invoices
                     WHEN OLD.status <> 'draft' AND ({})
                     BEGIN SELECT RAISE(ABORT, 'a finalized invoice never changes (issue a credit note)'); END;
                     CREATE TRIGGER invoices_status_forward BEFORE UPDATE ON invoices
                     WHEN OLD.status <> 'draft' AND OLD.status <> NEW.status
                      AND NOT ((OLD.status = 'finalized' AND NEW.status IN ('paid', 'void', 'uncollectible'))
                            OR (OLD.status = 'uncollectible' AND NEW.status IN ('paid', 'void')))
                     BEGIN SELECT RAISE(ABORT, 'invoice status cannot move backwards'); END;
                     CREATE TRIGGER invoices_no_delete BEFORE DELETE ON invoices
                     WHEN OLD.status <> 'draft'
                     BEGIN SELECT RAISE(ABORT, 'a finalized invoice cannot be deleted'); END;
                     CREATE TRIGGER invoice_lines_no_insert BEFORE INSERT ON invoice_lines
                     WHEN (SELECT status FROM invoices WHERE organization_id = NEW.organization_id AND id = NEW.invoice_id) IS NOT 'draft'
                     BEGIN SELECT RAISE(ABORT, 'lines of a finalized invoice never change'); END;
                     CREATE TRIGGER invoice_lines_no_update BEFORE UPDATE ON invoice_lines
                     WHEN (SELECT status FROM invoices WHERE organization_id = OLD.organization_id AND id = OLD.invoice_id) IS NOT 'draft'
                     BEGIN SELECT RAISE(ABORT, 'lines of a finalized invoice never change'); END;
                     CREATE TRIGGER invoice_lines_no_delete BEFORE DELETE ON invoice_lines
                     WHEN (SELECT status FROM invoices WHERE organization_id = OLD.organization_id AND id = OLD.invoice_id) IS NOT 'draft'
                     BEGIN SELECT RAISE(ABORT, 'lines of a finalized invoice never change'); END;",
                    changed("OLD", "NEW")
                ))
                .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(
                    "DROP TRIGGER IF EXISTS invoice_lines_frozen ON invoice_lines;
                     DROP TRIGGER IF EXISTS invoices_immutable ON invoices;
                     DROP FUNCTION IF EXISTS invoice_lines_frozen();
                     DROP FUNCTION IF EXISTS invoices_immutable();",
                )
                .await?;
        }
        for table in ["invoice_lines", "invoices", "invoice_numbers"] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
