//! Issuing: the draft stored with its lines, numbered without gaps per organization and
//! kind, and finalized.

use super::{Draft, DraftLine, ISSUER, InvoiceKind, Invoices};
use crate::entity::invoice::{self, InvoiceStatus};
use crate::entity::{invoice_item, invoice_line};
use crate::error::{Error, Result};
use audit::NewEvent;
use kernel::TenantTx;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, Statement,
};
use uuid::Uuid;

impl Invoices {
    /// Stores `draft` and finalizes it (numbered); the `items` it took are marked taken.
    /// A total of zero or less is paid at once.
    pub(crate) async fn issue(
        &self,
        tx: &TenantTx,
        subscription_id: Option<Uuid>,
        draft: &Draft,
        items: &[Uuid],
    ) -> Result<invoice::Model> {
        let totals = draft.totals()?;
        let now = self.clock.now();
        let row = invoice::Model {
            organization_id: tx.org_id().as_uuid(),
            id: Uuid::now_v7(),
            number: None,
            kind: InvoiceKind::Invoice,
            status: InvoiceStatus::Draft,
            currency: draft.currency.code().to_owned(),
            period_start: draft.period_start,
            period_end: draft.period_end,
            subtotal_minor: totals.subtotal.minor(),
            tax_rate: draft.tax_rate.normalize().to_string(),
            tax_minor: totals.tax.minor(),
            total_minor: totals.total.minor(),
            credit_of: None,
            subscription_id,
            finalized_at: None,
            paid_at: None,
            voided_at: None,
            payment_attempts: 0,
            next_payment_attempt_at: None,
            created_at: now,
            updated_at: now,
        };
        self.store(tx, &row, &draft.lines).await?;
        for item in items {
            invoice_item::Entity::update_many()
                .col_expr(
                    invoice_item::Column::InvoiceId,
                    sea_orm::sea_query::Expr::value(row.id),
                )
                .filter(invoice_item::Column::OrganizationId.eq(tx.org_id().as_uuid()))
                .filter(invoice_item::Column::Id.eq(*item))
                .exec(tx.conn())
                .await?;
        }
        let mut finalized = self.finalize(tx, row).await?;
        if finalized.total_minor <= 0 {
            finalized = self.settle(tx, finalized, "zero_total").await?;
        }
        Ok(finalized)
    }

    pub(super) async fn store(
        &self,
        tx: &TenantTx,
        row: &invoice::Model,
        lines: &[DraftLine],
    ) -> Result<()> {
        invoice::Entity::insert(row.clone().into_active_model())
            .exec_without_returning(tx.conn())
            .await?;
        for (position, l) in lines.iter().enumerate() {
            invoice_line::Entity::insert(invoice_line::ActiveModel {
                organization_id: Set(row.organization_id),
                id: Set(Uuid::now_v7()),
                invoice_id: Set(row.id),
                position: Set(i32::try_from(position).unwrap_or(i32::MAX)),
                kind: Set(l.kind.clone()),
                description: Set(l.description.clone()),
                quantity: Set(l.quantity.normalize().to_string()),
                unit_price: Set(l.unit_price.map(|p| p.normalize().to_string())),
                amount_minor: Set(l.amount.minor()),
                period_start: Set(l.period_start),
                period_end: Set(l.period_end),
                metric: Set(l.metric.clone()),
            })
            .exec_without_returning(tx.conn())
            .await?;
        }
        Ok(())
    }

    /// The next number of `kind` for the issuer: the counter row is locked until the
    /// transaction ends, so numbers are handed out in commit order without gaps.
    pub(super) async fn next_number(&self, tx: &TenantTx, kind: InvoiceKind) -> Result<i64> {
        let backend = tx.conn().get_database_backend();
        let insert = kernel::numbered(
            backend,
            "INSERT INTO invoice_numbers (issuer, kind, next_number) VALUES ($1, $2, 1) \
             ON CONFLICT (issuer, kind) DO NOTHING",
        );
        let update = kernel::numbered(
            backend,
            "UPDATE invoice_numbers SET next_number = next_number + 1 \
             WHERE issuer = $1 AND kind = $2 RETURNING next_number - 1",
        );
        let values = || -> [sea_orm::Value; 2] { [ISSUER.into(), kind.into()] };
        tx.conn()
            .execute_raw(Statement::from_sql_and_values(backend, insert, values()))
            .await?;
        let row = tx
            .conn()
            .query_one_raw(Statement::from_sql_and_values(backend, update, values()))
            .await?
            .ok_or(Error::NotFound("invoice number counter"))?;
        Ok(row.try_get_by_index(0)?)
    }

    pub(super) async fn finalize(
        &self,
        tx: &TenantTx,
        row: invoice::Model,
    ) -> Result<invoice::Model> {
        let (prefix, action) = if row.kind == InvoiceKind::CreditNote {
            ("CN", "credit_note.issued")
        } else {
            ("INV", "invoice.finalized")
        };
        let number = format!("{prefix}-{:06}", self.next_number(tx, row.kind).await?);
        let now = self.clock.now();
        let mut active = row.clone().into_active_model();
        active.number = Set(Some(number.clone()));
        active.status = Set(InvoiceStatus::Finalized);
        active.finalized_at = Set(Some(now));
        if self.automatic && row.kind == InvoiceKind::Invoice && row.total_minor > 0 {
            active.next_payment_attempt_at = Set(Some(now));
        }
        active.updated_at = Set(now);
        let finalized = active.update(tx.conn()).await?;
        self.audit
            .record(
                tx,
                NewEvent::new(action, "invoice", Some(finalized.id))
                    .change("number", None::<String>, Some(number))
                    .change("total_minor", None::<i64>, Some(finalized.total_minor))
                    .change("currency", None::<String>, Some(finalized.currency.clone())),
            )
            .await?;
        Ok(finalized)
    }
}
